//! Rebuilding the owner's table from the store, when the plugin refused
//! the host's copy of it.
//!
//! The bucket is read as a stream ([`KeyValue::scan`]: NATS sends it
//! through one ordered consumer), and every spec is applied to a fresh
//! instance whose deliveries go nowhere (those links are in force
//! already). Each step has its own deadline — the next spec from the
//! store, each plugin call — so a bucket of any size is read in steps, not
//! under one deadline for the whole listing. The instance's memory cap
//! grows with the table it is given. The mirror and the revisions applied
//! are replaced only when the whole bucket was read.

use std::collections::HashMap;
use std::sync::Arc;

use spec_model::keys::COMPONENT_KEY_PREFIX;
use spec_model::ReloadReport;
use tokio::sync::mpsc;

use super::instance::Instance;
use super::mirror::Mirror;
use super::owner::{table_memory_cap, write, OwnerState};
use crate::backend::{error_chain, BackendError, Entry, KeyValue, Silent};
use crate::error::CallError;

/// Specs read ahead of the plugin, at most.
const READ_AHEAD: usize = 256;

impl OwnerState {
    /// Rebuilds the table from the store: the instance holding it, and what
    /// was loaded. On failure nothing of the owner's state has changed.
    pub(crate) async fn rebuild(&mut self) -> Result<(Instance, ReloadReport), CallError> {
        let mut instance = self.factory.instantiate(&self.plugin).await?;
        instance.set_notify(Arc::new(Silent));
        // Stops reading if this rebuild is given up (its future dropped).
        let (reading, mut specs) = StoreScan::start(&self.factory.kv);
        let step = self.factory.limits.deadline;
        let per_call = self.factory.limits.memory_cap;
        let mut mirror = Mirror::default();
        let mut applied: HashMap<String, u64> = HashMap::new();
        let mut report = ReloadReport::default();
        let mut top = 0u64;
        loop {
            let next = tokio::time::timeout(step, specs.recv())
                .await
                .map_err(|_| CallError::NotReady {
                    reason: format!(
                        "the store sent no spec for {step:?} while the table was rebuilt"
                    ),
                })?;
            let Some((key, entry)) = next else { break };
            let Some(id) = key.strip_prefix(COMPONENT_KEY_PREFIX) else {
                continue;
            };
            top = top.max(entry.revision);
            if applied.get(id).is_some_and(|&seen| seen >= entry.revision) {
                continue;
            }
            instance.set_memory_cap(table_memory_cap(per_call, mirror.bytes(), mirror.ids()));
            let out = instance
                .call("apply-stored-spec", async |p, s| {
                    p.apply_stored_spec(s, id, &entry.value).await
                })
                .await;
            match out {
                Ok(update) => {
                    report.loaded = report.loaded.saturating_add(1);
                    mirror.set(id, update.entry);
                }
                // The plugin's answer (a value that does not decode): left
                // out, as the follower leaves it out.
                Err(CallError::Spec(e)) => {
                    tracing::warn!(id, error = %e, "stored spec left out of the rebuilt table");
                    report.undecodable.push(id.to_string());
                }
                Err(e) => return Err(e),
            }
            applied.insert(id.to_string(), entry.revision);
        }
        reading.finish().await?;
        instance.set_notify(Arc::clone(&self.factory.notify));
        report.links = u32::try_from(mirror.links()).unwrap_or(u32::MAX);
        *write(&self.mirror) = mirror;
        self.applied.extend(applied);
        self.position.send_if_modified(|p| {
            let newer = top > *p;
            *p = (*p).max(top);
            newer
        });
        Ok((instance, report))
    }
}

/// The spec values of the store, read by a task into a bounded channel
/// (at most [`READ_AHEAD`] ahead of their reader); the task stops when this
/// is dropped.
pub(crate) struct StoreScan(Option<tokio::task::JoinHandle<Result<(), BackendError>>>);

impl StoreScan {
    pub(crate) fn start(kv: &Arc<dyn KeyValue>) -> (Self, mpsc::Receiver<(String, Entry)>) {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let kv = Arc::clone(kv);
        let task = tokio::spawn(async move { kv.scan(COMPONENT_KEY_PREFIX, tx).await });
        (StoreScan(Some(task)), rx)
    }

    /// Whether the whole store was read (call once its channel is closed).
    pub(crate) async fn finish(mut self) -> Result<(), CallError> {
        let Some(task) = self.0.take() else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CallError::NotReady {
                reason: format!("reading the store: {}", error_chain(&e)),
            }),
            Err(e) => Err(CallError::NotReady {
                reason: format!("the store reader ended: {e}"),
            }),
        }
    }
}

impl Drop for StoreScan {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}
