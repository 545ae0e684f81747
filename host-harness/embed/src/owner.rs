//! The table owner: the one instance that holds the host-local link table
//! and drives deliveries to local providers.
//!
//! One task owns it and runs its calls one at a time, in the order they
//! arrive: changes seen in the store (its own writes, applied directly, and
//! other hosts', from the bucket watch), snapshots and swaps. Per id it
//! keeps the newest store revision applied, so a revision is applied — and
//! delivered — at most once and never after a newer one, whichever of the
//! two paths brings it first.
//!
//! A call that traps or runs past a limit loses the instance; the next call
//! gets a fresh one with the table restored from the host's [`Mirror`].
//! Such a change is *not* counted as applied: its caller (the follower)
//! tries it again. A change the plugin answers with an error (a value that
//! does not decode) is counted: retrying it cannot help.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use spec_model::{
    ComponentSpecification, ImportLink, ReloadReport, Snapshot, UpdateReport, SNAPSHOT_FORMAT,
};
use tokio::sync::{mpsc, oneshot};

use super::instance::{Factory, Instance};
use super::mirror::Mirror;
use super::runtime::LoadedPlugin;
use crate::backend::error_chain;
use crate::error::CallError;

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Job = Box<dyn for<'a> FnOnce(&'a mut OwnerState) -> Fut<'a, ()> + Send>;

/// Changes waiting for the owner, at most; senders wait beyond that.
const QUEUE: usize = 1024;

/// Reads of the mirror never wait on writes for long (each write is one
/// entry); a poisoned lock still holds whole entries.
pub(crate) fn read(mirror: &RwLock<Mirror>) -> std::sync::RwLockReadGuard<'_, Mirror> {
    mirror.read().unwrap_or_else(|p| p.into_inner())
}

fn write(mirror: &RwLock<Mirror>) -> std::sync::RwLockWriteGuard<'_, Mirror> {
    mirror.write().unwrap_or_else(|p| p.into_inner())
}

/// Import calls a table update may make beyond the cap: a delivery to the
/// source and one to the target for every link it is given or the table
/// held for the id (a loop is still cut off: the grant is bounded by the
/// input). A link takes at least 64 bytes of wasmCloud's JSON, so a stored
/// value's size bounds the links it carries without decoding it.
fn delivery_grant(new_links: usize, old_links: usize) -> u32 {
    u32::try_from(new_links.saturating_add(old_links).saturating_mul(2)).unwrap_or(u32::MAX)
}

fn links_in_value(value: &[u8]) -> usize {
    value.len() / 64 + 1
}

/// The state the owner task holds.
pub(crate) struct OwnerState {
    plugin: LoadedPlugin,
    instance: Option<Instance>,
    factory: Arc<Factory>,
    mirror: Arc<RwLock<Mirror>>,
    /// Per id, the newest store revision in the table.
    applied: HashMap<String, u64>,
    /// The highest store revision handled (applied, or known to be moot).
    /// The follower hands changes over in stream order, so every revision
    /// up to this one has been handled.
    position: tokio::sync::watch::Sender<u64>,
}

impl OwnerState {
    fn handled(&mut self, id: &str, revision: u64) {
        self.applied.insert(id.to_string(), revision);
        self.position.send_if_modified(|p| {
            let newer = revision > *p;
            *p = (*p).max(revision);
            newer
        });
    }
}

impl OwnerState {
    /// The instance, made anew (table restored) when the last call lost it.
    async fn live(&mut self) -> Result<&mut Instance, CallError> {
        if self.instance.as_ref().is_some_and(Instance::is_poisoned) {
            self.instance = None;
        }
        let instance = match self.instance.take() {
            Some(instance) => instance,
            None => self.fresh().await?,
        };
        Ok(self.instance.insert(instance))
    }

    /// A fresh instance holding the mirrored table. Should the plugin refuse
    /// it, the host must not be left unable to make any instance: the table
    /// is rebuilt from the store instead (nothing delivered), or, failing
    /// that too, the instance starts empty — both logged.
    async fn fresh(&mut self) -> Result<Instance, CallError> {
        let mut instance = self.factory.instantiate(&self.plugin).await?;
        let snapshot = read(&self.mirror).snapshot();
        if snapshot.entries.is_empty() {
            return Ok(instance);
        }
        let refused = match restore(&mut instance, &snapshot).await {
            Ok(()) => return Ok(instance),
            Err(e) => e,
        };
        tracing::error!(error = %error_chain(&refused), "the plugin refused the mirrored link table; rebuilding it from the store");
        let mut instance = self.factory.instantiate(&self.plugin).await?;
        let rebuilt = instance
            .call("reload-from-store", async |p, s| {
                p.reload_from_store(s).await
            })
            .await;
        match rebuilt {
            Ok(_) => {
                let snapshot = instance
                    .call_infallible("snapshot-table", async |p, s| p.snapshot_table(s).await)
                    .await?;
                write(&self.mirror).load(snapshot);
                Ok(instance)
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "cannot rebuild the table from the store; starting empty");
                write(&self.mirror).load(Snapshot::default());
                self.factory.instantiate(&self.plugin).await
            }
        }
    }

    /// Applies one change seen in the store at `revision`: a value (`Some`)
    /// or a delete (`None`); `Ok(None)` when the table already holds this
    /// revision of `id` or a newer one.
    async fn apply(
        &mut self,
        id: &str,
        revision: u64,
        value: Option<&[u8]>,
    ) -> Result<Option<UpdateReport>, CallError> {
        if self.applied.get(id).is_some_and(|&seen| seen >= revision) {
            self.position.send_if_modified(|p| {
                let newer = revision > *p;
                *p = (*p).max(revision);
                newer
            });
            return Ok(None);
        }
        let held = read(&self.mirror).count_of(id);
        let instance = self.live().await?;
        let out = match value {
            Some(bytes) => {
                let grant = delivery_grant(links_in_value(bytes), held);
                instance
                    .call_with_grant("apply-stored-spec", grant, async |p, s| {
                        p.apply_stored_spec(s, id, bytes).await
                    })
                    .await
            }
            None => {
                instance
                    .call_with_grant("remove-host-spec", delivery_grant(0, held), async |p, s| {
                        p.remove_host_spec(s, id).await
                    })
                    .await
            }
        };
        match out {
            Ok(report) => {
                write(&self.mirror).set(id, report.entry.clone());
                self.handled(id, revision);
                Ok(Some(report))
            }
            // The plugin's own answer (a value that does not decode, an id it
            // refuses): applying it again cannot help. Counted as seen.
            Err(e @ CallError::Spec(_)) => {
                self.handled(id, revision);
                Err(e)
            }
            // A fault: not applied; the caller tries again.
            Err(e) => Err(e),
        }
    }

    /// Runs a table update that carries no revision and keeps the mirror.
    async fn update(
        &mut self,
        id: &str,
        spec: Option<&ComponentSpecification>,
    ) -> Result<UpdateReport, CallError> {
        let held = read(&self.mirror).count_of(id);
        let instance = self.live().await?;
        let report = match spec {
            Some(spec) => {
                let grant = delivery_grant(spec.links.len(), held);
                instance
                    .call_with_grant("update-host-with-spec", grant, async |p, s| {
                        p.update_host_with_spec(s, id, spec).await
                    })
                    .await?
            }
            None => {
                instance
                    .call_with_grant("remove-host-spec", delivery_grant(0, held), async |p, s| {
                        p.remove_host_spec(s, id).await
                    })
                    .await?
            }
        };
        write(&self.mirror).set(id, report.entry.clone());
        Ok(report)
    }

    /// Switches to `plugin`: a new instance that can read the table's
    /// format, restored and answering, else the running one stays.
    async fn swap(&mut self, plugin: LoadedPlugin) -> Result<(Instance, String), CallError> {
        let mut instance = self.factory.instantiate(&plugin).await?;
        check_formats(&mut instance).await?;
        let snapshot = read(&self.mirror).snapshot();
        restore(&mut instance, &snapshot).await?;
        let version = instance
            .call_infallible("plugin-version", async |p, s| p.plugin_version(s).await)
            .await?;
        Ok((instance, version))
    }
}

/// Refuses a build that cannot restore this host's snapshot format.
async fn check_formats(instance: &mut Instance) -> Result<(), CallError> {
    let formats = instance
        .call_infallible("snapshot-formats", async |p, s| p.snapshot_formats(s).await)
        .await?;
    if !formats.contains(&SNAPSHOT_FORMAT) {
        return Err(CallError::Incompatible(format!(
            "the build restores table snapshot formats {formats:?}; the running table is format {SNAPSHOT_FORMAT}"
        )));
    }
    Ok(())
}

/// A table handed from one host to another: its snapshot and, per id, the
/// store revision it holds — taken at one point in the owner's queue, so a
/// change is in both or in neither.
#[derive(Clone, Debug, Default)]
pub struct Handoff {
    /// The table.
    pub snapshot: Snapshot,
    /// Per id, the newest store revision applied.
    pub applied: HashMap<String, u64>,
}

async fn restore(instance: &mut Instance, snapshot: &Snapshot) -> Result<(), CallError> {
    instance
        .call("restore-table", async |p, s| {
            p.restore_table(s, snapshot).await
        })
        .await
}

/// Handle on the owner task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Owner {
    jobs: mpsc::Sender<Job>,
    mirror: Arc<RwLock<Mirror>>,
    position: tokio::sync::watch::Receiver<u64>,
}

impl Owner {
    /// Starts the owner task with an instance of `plugin` (proving it
    /// instantiates). Must be called within a tokio runtime.
    pub async fn start(plugin: LoadedPlugin, factory: Arc<Factory>) -> Result<Self, CallError> {
        let mirror = Arc::new(RwLock::new(Mirror::default()));
        let (position_tx, position) = tokio::sync::watch::channel(0);
        let mut state = OwnerState {
            plugin,
            instance: None,
            factory,
            mirror: Arc::clone(&mirror),
            applied: HashMap::new(),
            position: position_tx,
        };
        state.live().await?;
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                job(&mut state).await;
            }
        });
        Ok(Owner {
            jobs,
            mirror,
            position,
        })
    }

    /// Waits (at most `limit`) until every store revision up to `revision`
    /// has been handled; false if it has not in time.
    pub async fn reached(&self, revision: u64, limit: std::time::Duration) -> bool {
        let mut position = self.position.clone();
        tokio::time::timeout(limit, position.wait_for(|p| *p >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The host's copy of the table.
    pub fn mirror(&self) -> &Arc<RwLock<Mirror>> {
        &self.mirror
    }

    /// Runs `f` on the owner and waits for its result. If the caller goes
    /// away first, the work still runs to the end (a change half applied
    /// would be worse than one applied for nobody).
    async fn run<R, F>(&self, f: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut OwnerState) -> Fut<'a, Result<R, CallError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |state| {
            Box::pin(async move {
                let out = f(state).await;
                let _ = reply.send(out);
            })
        });
        self.jobs.send(job).await.map_err(|_| CallError::Stopped)?;
        answer.await.map_err(|_| CallError::Stopped)?
    }

    /// See [`OwnerState::apply`].
    pub async fn apply(
        &self,
        id: String,
        revision: u64,
        value: Option<Vec<u8>>,
    ) -> Result<Option<UpdateReport>, CallError> {
        self.run(move |s| Box::pin(async move { s.apply(&id, revision, value.as_deref()).await }))
            .await
    }

    /// Applies `spec` as `id`'s spec (no store revision involved).
    pub async fn update_host_with_spec(
        &self,
        id: String,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport, CallError> {
        self.run(move |s| Box::pin(async move { s.update(&id, Some(&spec)).await }))
            .await
    }

    /// Applies a stored value as `id`'s spec (no store revision involved).
    pub async fn apply_stored_spec(
        &self,
        id: String,
        value: Vec<u8>,
    ) -> Result<UpdateReport, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let held = read(&s.mirror).count_of(&id);
                let grant = delivery_grant(links_in_value(&value), held);
                let instance = s.live().await?;
                let report = instance
                    .call_with_grant("apply-stored-spec", grant, async |p, st| {
                        p.apply_stored_spec(st, &id, &value).await
                    })
                    .await?;
                write(&s.mirror).set(&id, report.entry.clone());
                Ok(report)
            })
        })
        .await
    }

    /// Applies the deletion of `id`'s spec (no store revision involved).
    pub async fn remove_host_spec(&self, id: String) -> Result<UpdateReport, CallError> {
        self.run(move |s| Box::pin(async move { s.update(&id, None).await }))
            .await
    }

    /// `id`'s import-link table.
    pub async fn import_links(&self, id: String) -> Result<Vec<ImportLink>, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let instance = s.live().await?;
                instance
                    .call_infallible("import-links", async |p, st| p.import_links(st, &id).await)
                    .await
            })
        })
        .await
    }

    /// Rebuilds the table from the store, delivering nothing.
    pub async fn reload_from_store(&self) -> Result<ReloadReport, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let instance = s.live().await?;
                let report = instance
                    .call("reload-from-store", async |p, st| {
                        p.reload_from_store(st).await
                    })
                    .await?;
                let snapshot = instance
                    .call_infallible("snapshot-table", async |p, st| p.snapshot_table(st).await)
                    .await?;
                write(&s.mirror).load(snapshot);
                Ok(report)
            })
        })
        .await
    }

    /// Replaces the table (delivers nothing).
    pub async fn restore_table(&self, snapshot: Snapshot) -> Result<(), CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let instance = s.live().await?;
                restore(instance, &snapshot).await?;
                write(&s.mirror).load(snapshot);
                Ok(())
            })
        })
        .await
    }

    /// The table and the revisions it holds, at this point in the queue.
    pub async fn handoff(&self) -> Result<Handoff, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                Ok(Handoff {
                    snapshot: read(&s.mirror).snapshot(),
                    applied: s.applied.clone(),
                })
            })
        })
        .await
    }

    /// Takes over a table handed off by another host: refused (nothing
    /// changed) when the build cannot read its format.
    pub async fn take_over(&self, handoff: Handoff) -> Result<(), CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let instance = s.live().await?;
                check_formats(instance).await?;
                restore(instance, &handoff.snapshot).await?;
                write(&s.mirror).load(handoff.snapshot);
                s.applied = handoff.applied;
                let top = s.applied.values().copied().max().unwrap_or(0);
                s.position.send_if_modified(|p| {
                    let newer = top > *p;
                    *p = (*p).max(top);
                    newer
                });
                Ok(())
            })
        })
        .await
    }

    /// The table as the plugin itself holds it (not the mirror).
    pub async fn plugin_snapshot(&self) -> Result<Snapshot, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let instance = s.live().await?;
                instance
                    .call_infallible("snapshot-table", async |p, st| p.snapshot_table(st).await)
                    .await
            })
        })
        .await
    }

    /// Switches the owner to `plugin`, then runs `commit` (still on the
    /// owner, before any later change) with the new version, so the caller
    /// can switch its request instances at the same point. On any failure
    /// the running build stays and `commit` is not run.
    pub async fn swap(
        &self,
        plugin: LoadedPlugin,
        commit: impl for<'a> FnOnce(&'a str) -> Fut<'a, Result<(), CallError>> + Send + 'static,
    ) -> Result<String, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let (instance, version) = s.swap(plugin.clone()).await?;
                commit(&version).await?;
                s.plugin = plugin;
                s.instance = Some(instance);
                Ok(version)
            })
        })
        .await
    }
}
