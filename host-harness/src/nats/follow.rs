//! Following other hosts through the spec bucket.
//!
//! A [`Follower`] watches `LATTICEDATA_{lattice}` and applies every
//! `COMPONENT_` change to the plugin's host table: a put through
//! `apply-stored-spec` (the plugin decodes wasmCloud's JSON), a delete *and
//! a purge* through `remove-host-spec` (wasmCloud v1.9 ignored purges, so
//! specs deleted by its own `delete_component_spec` lingered on other
//! hosts). The watch starts with the last value of every key and then
//! follows new writes in one consumer, so nothing written between "read the
//! existing keys" and "start watching" can be missed (wasmCloud issue #940
//! was that race). A value that does not decode is logged with its key and
//! skipped.
//!
//! The host keeps each id's newest applied revision
//! ([`SpecHost::apply_store_change`]): a revision is applied at most once and
//! never after a newer one — also when this host wrote it itself, or when
//! the watch is re-created after a server restart and replays from its last
//! position.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::subjects;
use crate::backend::error_chain;
use crate::error::{CallError, SpecError};
use crate::plugin::SpecHost;

/// Counters of what a follower did.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Spec puts applied.
    pub applied: AtomicU64,
    /// Deletes and purges applied.
    pub removed: AtomicU64,
    /// Entries skipped: already applied, or not a spec.
    pub skipped: AtomicU64,
    /// Values that did not decode, or failed to apply.
    pub failed: AtomicU64,
    /// Times the watch was (re)established.
    pub watches: AtomicU64,
}

/// Applies bucket changes to a [`SpecHost`].
pub struct Follower {
    bucket: kv::Store,
    host: SpecHost,
    reconnects: Option<watch::Receiver<u64>>,
}

/// A running follower: stop it, or wait until its watch is up.
pub struct FollowerHandle {
    stop: watch::Sender<bool>,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
    /// What it has done so far.
    pub stats: Arc<FollowStats>,
}

impl FollowerHandle {
    /// Resolves once the first watch is established: from then on every
    /// write to the bucket reaches the host.
    pub async fn ready(&mut self) {
        // An error means the task ended: nothing more to wait for.
        let _ = self.ready.wait_for(|r| *r).await;
    }

    /// Stops following and waits for the task to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Follower {
    /// A follower of `bucket` for `host`.
    pub fn new(bucket: kv::Store, host: SpecHost) -> Self {
        Follower {
            bucket,
            host,
            reconnects: None,
        }
    }

    /// Re-creates the watch (from the last position) whenever `reconnects`
    /// changes, i.e. when the NATS connection is back after an outage.
    pub fn with_reconnects(mut self, reconnects: watch::Receiver<u64>) -> Self {
        self.reconnects = Some(reconnects);
        self
    }

    /// Starts following in a task.
    pub fn spawn(self) -> FollowerHandle {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let stats = Arc::new(FollowStats::default());
        let task = tokio::spawn(self.run(stop_rx, ready_tx, Arc::clone(&stats)));
        FollowerHandle {
            stop,
            ready,
            task,
            stats,
        }
    }

    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        ready: watch::Sender<bool>,
        stats: Arc<FollowStats>,
    ) {
        let mut reconnects = self.reconnects.take();
        // Highest stream revision handled: a new watch resumes after it.
        let mut position: u64 = 0;
        let mut backoff = Duration::from_millis(100);
        loop {
            let watch = if position == 0 {
                self.bucket.watch_with_history(">").await
            } else {
                self.bucket.watch_all_from_revision(position + 1).await
            };
            let mut entries = match watch {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot watch the spec bucket; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            stats.watches.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(true);
            loop {
                let reconnected = async {
                    match reconnects.as_mut() {
                        Some(r) => r.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                let next = tokio::select! {
                    _ = stop.changed() => return,
                    true = reconnected => {
                        tracing::info!(position, "NATS connection is back; resuming the watch");
                        break;
                    }
                    next = entries.next() => next,
                };
                match next {
                    // The consumer ended: make a new one from our position.
                    None => break,
                    // The watcher recovers by itself (e.g. a missed heartbeat
                    // while the server restarts): keep reading.
                    Some(Err(e)) => {
                        tracing::warn!(error = %error_chain(&e), "spec bucket watch hiccup")
                    }
                    Some(Ok(entry)) => {
                        position = position.max(entry.revision);
                        self.apply(entry, &stats).await;
                    }
                }
            }
        }
    }

    async fn apply(&self, entry: kv::Entry, stats: &FollowStats) {
        let Some(id) = subjects::component_id(&entry.key) else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let value = match entry.operation {
            Operation::Put => Some(entry.value.to_vec()),
            Operation::Delete | Operation::Purge => None,
        };
        let outcome = self
            .host
            .apply_store_change(id, entry.revision, value)
            .await;
        match outcome {
            Ok(None) => {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(report)) => {
                match entry.operation {
                    Operation::Put => stats.applied.fetch_add(1, Ordering::Relaxed),
                    _ => stats.removed.fetch_add(1, Ordering::Relaxed),
                };
                for d in report.deliveries.iter().filter(|d| d.error.is_some()) {
                    tracing::warn!(id, provider = %d.provider_id, error = ?d.error, "delivery failed");
                }
                tracing::debug!(
                    id,
                    revision = entry.revision,
                    added = report.added.len(),
                    removed = report.removed.len(),
                    "applied spec change"
                );
            }
            Err(CallError::Spec(SpecError::Decode { message, .. })) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key = %entry.key, revision = entry.revision, error = %message, "stored spec does not decode; skipped");
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key = %entry.key, revision = entry.revision, error = %error_chain(&e), "spec change not applied");
            }
        }
    }
}
