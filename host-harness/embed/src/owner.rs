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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use spec_model::{
    ComponentSpecification, ImportLink, ReloadReport, Snapshot, UpdateReport, SNAPSHOT_FORMAT,
};
use tokio::sync::{mpsc, oneshot};

use super::health::Health;
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

pub(crate) fn write(mirror: &RwLock<Mirror>) -> std::sync::RwLockWriteGuard<'_, Mirror> {
    mirror.write().unwrap_or_else(|p| p.into_inner())
}

/// The largest linear memory a wasm32 instance can have.
const WASM32_MEMORY: u64 = 1 << 32;

/// Room the plugin's table takes per byte of the mirror's packed form and
/// per id (hash indexes, map slots, allocator slack), with room for the
/// table's maps to double while the old ones are still held. Measured:
/// about 190 bytes per id of one link in the plugin's memory.
const TABLE_BYTES_PER_PACKED_BYTE: u64 = 4;
const TABLE_BYTES_PER_ID: u64 = 512;

/// See [`OwnerState::memory_cap`].
pub(crate) fn table_memory_cap(per_call: usize, packed_bytes: usize, ids: usize) -> usize {
    let table = (packed_bytes as u64)
        .saturating_mul(TABLE_BYTES_PER_PACKED_BYTE)
        .saturating_add((ids as u64).saturating_mul(TABLE_BYTES_PER_ID));
    let cap = (per_call as u64).saturating_add(table).min(WASM32_MEMORY);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Time a call over the whole table (a restore, a snapshot) may take
/// beyond the per-call CPU budget and deadline, per id in the table.
pub(crate) fn table_time(ids: usize) -> std::time::Duration {
    std::time::Duration::from_micros(20).saturating_mul(u32::try_from(ids).unwrap_or(u32::MAX))
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

/// A change seen in the store, for [`crate::SpecHost::apply_store_changes`]:
/// `id`'s value (wasmCloud's JSON) at `revision`, or `None` for a delete
/// or purge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreChange {
    /// The component id.
    pub id: String,
    /// Its store revision.
    pub revision: u64,
    /// The stored value; `None` for a delete or purge.
    pub value: Option<Arc<[u8]>>,
}

/// The state the owner task holds.
pub(crate) struct OwnerState {
    pub(crate) plugin: LoadedPlugin,
    instance: Option<Instance>,
    pub(crate) factory: Arc<Factory>,
    pub(crate) mirror: Arc<RwLock<Mirror>>,
    /// Per id, the newest store revision in the table.
    pub(crate) applied: HashMap<String, u64>,
    /// The highest store revision handled (applied, or known to be moot).
    /// The follower hands changes over in stream order, so every revision
    /// up to this one has been handled.
    pub(crate) position: tokio::sync::watch::Sender<u64>,
    /// Whether the table is whole.
    pub(crate) health: Health,
    /// The instance's linear memory after the last call, bytes.
    memory: Arc<AtomicUsize>,
    /// Instances made after the first.
    restarts: Arc<AtomicU64>,
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
    /// The instance, made anew (table restored) when the last call lost it,
    /// with its memory cap sized for the table it holds. While the table is
    /// degraded, a rebuild is tried when one is due and the call is
    /// refused with [`CallError::NotReady`] otherwise.
    pub(crate) async fn live(&mut self) -> Result<&mut Instance, CallError> {
        // A degraded table has no instance to trust.
        if self.instance.as_ref().is_some_and(Instance::is_poisoned)
            || self.health.reason().is_some()
        {
            self.instance = None;
        }
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => {
                if let Some(reason) = self.health.not_due() {
                    return Err(CallError::NotReady { reason });
                }
                self.fresh().await?
            }
        };
        instance.set_memory_cap(self.memory_cap());
        Ok(self.instance.insert(instance))
    }

    /// Refuses work that hands the table on (a swap, a handoff) while it is
    /// degraded: the host's copy is not current then.
    fn whole(&self) -> Result<(), CallError> {
        match self.health.reason() {
            Some(reason) => Err(CallError::NotReady { reason }),
            None => Ok(()),
        }
    }

    /// The owner's memory cap: room for the table it holds, plus one
    /// call's worth (the configured cap) on top. The per-call cap guards
    /// against a plugin that runs away in one call; it must not bound how
    /// large a lattice the table can follow.
    pub(crate) fn memory_cap(&self) -> usize {
        let mirror = read(&self.mirror);
        table_memory_cap(self.factory.limits.memory_cap, mirror.bytes(), mirror.ids())
    }

    /// A fresh instance holding the mirrored table. Should the plugin refuse
    /// it (or the table be degraded already), the table is rebuilt from the
    /// store, delivering nothing; should that fail too, the table is
    /// degraded — said in [`Owner::health`], retried with a backoff, and
    /// every call that needs it refused meanwhile. It never starts empty.
    async fn fresh(&mut self) -> Result<Instance, CallError> {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        if self.health.reason().is_none() {
            let mut instance = self.factory.instantiate(&self.plugin).await?;
            let snapshot = read(&self.mirror).snapshot();
            if snapshot.entries.is_empty() {
                return Ok(instance);
            }
            instance.set_memory_cap(self.memory_cap());
            match restore(&mut instance, &snapshot).await {
                Ok(()) => return Ok(instance),
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "the plugin refused the mirrored link table; rebuilding it from the store");
                }
            }
        }
        match self.rebuild().await {
            Ok((instance, report)) => {
                if self.health.reason().is_some() {
                    tracing::info!(
                        ids = report.loaded,
                        links = report.links,
                        "link table rebuilt from the store; whole again"
                    );
                }
                self.health.whole();
                Ok(instance)
            }
            Err(e) => {
                let reason = format!(
                    "the table was lost and its rebuild from the store failed: {}",
                    error_chain(&e)
                );
                let retry_in = self.health.degrade(reason.clone());
                tracing::error!(error = %error_chain(&e), ?retry_in, "cannot rebuild the link table from the store; requests that need it are refused until it is whole");
                Err(CallError::NotReady { reason })
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
    let time = table_time(snapshot.entries.len());
    instance
        .call_sized("restore-table", 0, time, async |p, s| {
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
    degraded: Arc<RwLock<Option<String>>>,
    memory: Arc<AtomicUsize>,
    restarts: Arc<AtomicU64>,
}

impl Owner {
    /// Starts the owner task with an instance of `plugin` (proving it
    /// instantiates). Must be called within a tokio runtime.
    pub async fn start(plugin: LoadedPlugin, factory: Arc<Factory>) -> Result<Self, CallError> {
        let mirror = Arc::new(RwLock::new(Mirror::default()));
        let (position_tx, position) = tokio::sync::watch::channel(0);
        let (health, degraded) = Health::new();
        let memory = Arc::new(AtomicUsize::new(0));
        let restarts = Arc::new(AtomicU64::new(0));
        let mut state = OwnerState {
            plugin,
            instance: None,
            factory,
            mirror: Arc::clone(&mirror),
            applied: HashMap::new(),
            position: position_tx,
            health,
            memory: Arc::clone(&memory),
            restarts: Arc::clone(&restarts),
        };
        state.live().await?;
        // The first instance is not a restart.
        restarts.store(0, Ordering::Relaxed);
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            loop {
                // A degraded table is rebuilt when due, also when no call
                // comes to try it.
                let due = state.health.due();
                let rebuild = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    job = queue.recv() => match job {
                        Some(job) => job(&mut state).await,
                        None => break,
                    },
                    () = rebuild => {
                        // Its outcome is in the health (and the log).
                        let _ = state.live().await;
                    }
                }
                if let Some(instance) = &state.instance {
                    state
                        .memory
                        .store(instance.memory_size(), Ordering::Relaxed);
                }
            }
        });
        Ok(Owner {
            jobs,
            mirror,
            position,
            degraded,
            memory,
            restarts,
        })
    }

    /// The table owner's linear memory after its last call, bytes.
    pub fn memory(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    /// Instances made after the first.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Why the table is not whole, when it is not (see [`Health`]).
    pub fn degraded(&self) -> Option<String> {
        super::health::read(&self.degraded)
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

    /// Applies `changes` in order in one job on the owner, each as
    /// [`Owner::apply`] would: one result per change. The owner's queue is
    /// a hop between threads per job; a follower catching up on a large
    /// bucket spent most of its time in those hops, not in the plugin.
    pub async fn apply_all(
        &self,
        changes: Vec<StoreChange>,
    ) -> Result<Vec<Result<Option<UpdateReport>, CallError>>, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let mut out = Vec::with_capacity(changes.len());
                for c in &changes {
                    out.push(s.apply(&c.id, c.revision, c.value.as_deref()).await);
                }
                Ok(out)
            })
        })
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

    /// Rebuilds the table from the store, delivering nothing (see
    /// `rebuild`: the bucket is streamed, each step under its own
    /// deadline). A failure leaves the table as it was.
    pub async fn reload_from_store(&self) -> Result<ReloadReport, CallError> {
        self.run(move |s| {
            Box::pin(async move {
                let (instance, report) = s.rebuild().await?;
                s.instance = Some(instance);
                s.health.whole();
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
                s.whole()?;
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
                let time = table_time(read(&s.mirror).ids());
                let instance = s.live().await?;
                instance
                    .call_sized("snapshot-table", 0, time, async |p, st| {
                        p.snapshot_table(st).await.map(Ok)
                    })
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
                s.whole()?;
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
