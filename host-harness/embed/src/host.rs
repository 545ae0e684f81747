//! [`SpecHost`]: a running plugin build, driven through typed async methods.
//!
//! The engine has two parts:
//! * a [`Pool`] of request instances runs the `specs` calls (reads, writes
//!   with compare-and-swap) — as many at once as it has instances, so link
//!   requests scale with clients the way a wasmCloud host's do;
//! * the [`Owner`] runs the `host-table` calls one at a time: it alone holds
//!   the host-local table and drives deliveries.
//!
//! A write made here is applied to the table directly, at the revision it
//! was written (so a caller sees its change in the table and its report);
//! the bucket watch brings the same revision later and the owner skips it.
//! Reads of the table (`links`, `table_stats`, `snapshot_table`) come from
//! the owner's mirror and never queue behind it.
//!
//! [`SpecHost::swap`] replaces the whole engine at one point in the owner's
//! queue: requests that already hold the old pool finish on it; everything
//! after uses the new build; a build that cannot instantiate, read the
//! table's format or restore it is refused and the old one keeps serving.

use std::sync::{Arc, RwLock};

use spec_model::{
    Applied, ComponentSpecification, DeleteLinkResult, DeleteSpecResult, ImportLink, Link,
    LinkListing, PutLinkResult, ReloadReport, Snapshot, TableEntry, UpdateReport, Written,
};

use super::instance::{Factory, PluginLimits};
use super::keylock::KeyLocks;
use super::owner::{self, Handoff, Owner, StoreChange};
use super::pool::Pool;
use super::runtime::LoadedPlugin;
use crate::backend::{KeyValue, ProviderNotify};
use crate::error::CallError;

/// Counts of the host-local table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Ids with links.
    pub components: usize,
    /// Links over all ids.
    pub links: usize,
    /// The table's packed size (ids and links), bytes.
    pub bytes: usize,
    /// The table owner's linear memory (the plugin's copy of the table and
    /// its working space), bytes.
    pub plugin_memory: usize,
    /// The most the table owner's memory may grow to now: room for the
    /// table plus one call's worth, at most wasm32's 4 GiB.
    pub memory_cap: usize,
    /// Table owner instances made after the first (each after a fault,
    /// with the whole table restored or rebuilt into it).
    pub owner_restarts: u64,
}

/// One build's request instances.
struct Engine {
    plugin: LoadedPlugin,
    pool: Pool,
    version: String,
}

struct Inner {
    engine: RwLock<Arc<Engine>>,
    owner: Owner,
    factory: Arc<Factory>,
    pool_size: usize,
    writers: KeyLocks,
    /// Whether a follower of the bucket brings this host's own writes to
    /// the table (then writes are not applied directly).
    followed: std::sync::atomic::AtomicBool,
    /// The highest revision this host wrote.
    last_written: std::sync::atomic::AtomicU64,
}

/// Request instances per core by default: calls mostly wait on NATS, so
/// many more than the cores can be in flight.
pub const POOL_PER_CORE: usize = 16;

/// The default pool size for this machine.
pub fn default_pool_size() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * POOL_PER_CORE).clamp(8, 256)
}

/// A running plugin with its backends. Cheap to clone; every clone drives
/// the same engine.
#[derive(Clone)]
pub struct SpecHost {
    inner: Arc<Inner>,
}

impl SpecHost {
    /// Starts `plugin` over these backends with the default pool size, and
    /// checks that it instantiates. Must be called within a tokio runtime.
    pub async fn start(
        plugin: LoadedPlugin,
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        limits: PluginLimits,
    ) -> Result<Self, CallError> {
        Self::start_with_pool(plugin, kv, notify, limits, default_pool_size()).await
    }

    /// As [`SpecHost::start`], with `pool_size` request instances.
    pub async fn start_with_pool(
        plugin: LoadedPlugin,
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        limits: PluginLimits,
        pool_size: usize,
    ) -> Result<Self, CallError> {
        let factory = Arc::new(Factory {
            kv,
            notify,
            limits,
            stats: Arc::default(),
        });
        let owner = Owner::start(plugin.clone(), Arc::clone(&factory)).await?;
        let engine = new_engine(plugin, &factory, pool_size).await?;
        Ok(SpecHost {
            inner: Arc::new(Inner {
                engine: RwLock::new(Arc::new(engine)),
                owner,
                factory,
                pool_size,
                writers: KeyLocks::default(),
                followed: std::sync::atomic::AtomicBool::new(false),
                last_written: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    pub(crate) fn factory(&self) -> &Arc<Factory> {
        &self.inner.factory
    }

    fn engine(&self) -> Arc<Engine> {
        // Only whole values are ever written: a poisoned lock still holds one.
        Arc::clone(&self.inner.engine.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The running build's `plugin-version`.
    pub fn plugin_version(&self) -> String {
        self.engine().version.clone()
    }

    /// Asks a request instance for its version: a real call that does
    /// nothing else (a health check; the cost of a call).
    pub async fn ping(&self) -> Result<String, CallError> {
        self.on_pool("plugin-version", async |p, s| {
            p.plugin_version(s).await.map(Ok)
        })
        .await
    }

    /// The running build's digest.
    pub fn plugin_digest(&self) -> String {
        self.engine().plugin.digest().to_string()
    }

    /// Request instances: how many may run at once, and how many do now.
    pub fn pool_load(&self) -> (usize, usize) {
        let engine = self.engine();
        (engine.pool.size(), engine.pool.busy())
    }

    /// Faults by class and instances replaced, over every instance of this
    /// host (all builds it ran).
    pub fn plugin_stats(&self) -> &crate::stats::PluginStats {
        &self.inner.factory.stats
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> PluginLimits {
        self.inner.factory.limits
    }

    /// Runs one `specs` call on a request instance of the current build.
    async fn on_pool<R>(
        &self,
        name: &'static str,
        f: impl AsyncFnOnce(
            &super::exports::Plugin,
            &mut wasmtime::Store<super::instance::HostState>,
        ) -> super::exports::Answer<R>,
    ) -> Result<R, CallError> {
        let engine = self.engine();
        // Waiting for a free instance is bounded by the call deadline: past
        // it the caller has given up, and the work must not run for nobody.
        let limit = self.inner.factory.limits.deadline;
        let mut instance = tokio::time::timeout(limit, engine.pool.acquire())
            .await
            .map_err(|_| CallError::Overloaded {
                call: name,
                waited: limit,
            })??;
        instance.call(name, f).await
    }

    /// Applies what a call wrote to the table, at its revision — unless a
    /// follower of the bucket does (then the write reaches the table through
    /// it, once, and the call returns without waiting for the table).
    async fn applied<T>(
        &self,
        id: &str,
        result: T,
        written: Option<(u64, Option<Vec<u8>>)>,
    ) -> Result<Applied<T>, CallError> {
        use std::sync::atomic::Ordering;
        let update = match written {
            Some((revision, _)) if self.inner.followed.load(Ordering::Relaxed) => {
                self.inner
                    .last_written
                    .fetch_max(revision, Ordering::Relaxed);
                None
            }
            Some((revision, value)) => {
                self.inner
                    .last_written
                    .fetch_max(revision, Ordering::Relaxed);
                self.inner
                    .owner
                    .apply(id.to_string(), revision, value)
                    .await?
            }
            None => None,
        };
        Ok(Applied { result, update })
    }

    /// Lets a follower of the bucket bring this host's own writes to the
    /// table: writes return as soon as they are stored (their `update` is
    /// `None`); [`SpecHost::caught_up_with_own_writes`] waits for the table.
    pub fn followed_by_bucket_watch(&self, followed: bool) {
        self.inner
            .followed
            .store(followed, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits (at most `limit`) until the table holds every write this host
    /// made so far (read-your-writes for readers of the table); false if it
    /// did not in time.
    pub async fn caught_up_with_own_writes(&self, limit: std::time::Duration) -> bool {
        let written = self
            .inner
            .last_written
            .load(std::sync::atomic::Ordering::Relaxed);
        self.inner.owner.reached(written, limit).await
    }

    /// Checks a link against the running build's rules, touching nothing.
    pub async fn check_link(&self, link: &Link) -> Result<(), CallError> {
        self.on_pool("check-link", async |p, s| p.check_link(s, link).await)
            .await
    }

    /// The spec stored under `id`, if any.
    pub async fn get_component_spec(
        &self,
        id: &str,
    ) -> Result<Option<ComponentSpecification>, CallError> {
        self.on_pool("get-component-spec", async |p, s| {
            p.get_component_spec(s, id).await
        })
        .await
    }

    /// Validates and stores a spec, then applies it to the table.
    pub async fn store_component_spec(
        &self,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<Applied<Written>, CallError> {
        let _writing = self.inner.writers.lock(id).await;
        let written = self
            .on_pool("store-component-spec", async |p, s| {
                p.store_component_spec(s, id, &spec).await
            })
            .await?;
        let apply = Some((written.revision, Some(written.value.clone())));
        self.applied(id, written, apply).await
    }

    /// Validates and stores a spec given as wasmCloud's JSON (what `spec
    /// put` and other writers hand in), then applies it to the table. A
    /// 0.3 plugin takes the bytes as they are and decodes them itself.
    pub async fn store_spec_json(
        &self,
        id: &str,
        value: &[u8],
    ) -> Result<Applied<Written>, CallError> {
        let _writing = self.inner.writers.lock(id).await;
        let written = self
            .on_pool("store-component-spec", async |p, s| {
                p.store_spec_json(s, id, value).await
            })
            .await?;
        let apply = Some((written.revision, Some(written.value.clone())));
        self.applied(id, written, apply).await
    }

    /// Deletes a spec, then removes its links from the table (also when no
    /// spec was stored: the table must not keep links of a spec that is
    /// gone).
    pub async fn delete_component_spec(
        &self,
        id: &str,
    ) -> Result<Applied<DeleteSpecResult>, CallError> {
        let _writing = self.inner.writers.lock(id).await;
        let deleted = self
            .on_pool("delete-component-spec", async |p, s| {
                p.delete_component_spec(s, id).await
            })
            .await?;
        match deleted.revision {
            Some(revision) => self.applied(id, deleted, Some((revision, None))).await,
            // Nothing stored: a follower keeps the table as the store is.
            None if self
                .inner
                .followed
                .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                Ok(Applied {
                    result: deleted,
                    update: None,
                })
            }
            None => {
                let update = self.inner.owner.remove_host_spec(id.to_string()).await?;
                Ok(Applied {
                    result: deleted,
                    update: Some(update),
                })
            }
        }
    }

    /// Puts a link into its source's spec (compare-and-swap with retries),
    /// then applies the spec to the table.
    pub async fn put_link(&self, link: Link) -> Result<Applied<PutLinkResult>, CallError> {
        let _writing = self.inner.writers.lock(&link.source_id).await;
        let put = self
            .on_pool("put-link", async |p, s| p.put_link(s, &link).await)
            .await?;
        let written = put.value.clone().map(|v| (put.revision, Some(v)));
        self.applied(&link.source_id, put, written).await
    }

    /// Removes a link (name `None`: `default`); absent: success, nothing
    /// written.
    pub async fn delete_link(
        &self,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<Applied<DeleteLinkResult>, CallError> {
        let _writing = self.inner.writers.lock(source_id).await;
        let deleted = self
            .on_pool("delete-link", async |p, s| {
                p.delete_link(s, source_id, wit_namespace, wit_package, name)
                    .await
            })
            .await?;
        let written = deleted
            .written
            .as_ref()
            .map(|w| (w.revision, Some(w.value.clone())));
        self.applied(source_id, deleted, written).await
    }

    /// Every link of every stored spec, read from the store (one read per
    /// spec: for tools and tests; request paths use [`SpecHost::links`]).
    pub async fn list_links(&self) -> Result<LinkListing, CallError> {
        self.on_pool("list-links", async |p, s| p.list_links(s).await)
            .await
    }

    /// Applies a spec to the table (no store write).
    pub async fn update_host_with_spec(
        &self,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport, CallError> {
        self.inner
            .owner
            .update_host_with_spec(id.to_string(), spec)
            .await
    }

    /// Applies a stored value (wasmCloud JSON) to the table (no store
    /// write, no revision).
    pub async fn apply_stored_spec(
        &self,
        id: &str,
        value: Vec<u8>,
    ) -> Result<UpdateReport, CallError> {
        self.inner
            .owner
            .apply_stored_spec(id.to_string(), value)
            .await
    }

    /// Applies a spec's deletion to the table (no store write).
    pub async fn remove_host_spec(&self, id: &str) -> Result<UpdateReport, CallError> {
        self.inner.owner.remove_host_spec(id.to_string()).await
    }

    /// Applies a change seen in the store at `revision` — a value (`Some`,
    /// wasmCloud JSON) or a delete/purge (`None`) — unless the table already
    /// holds that revision of `id` or a newer one: then `Ok(None)`. A change
    /// that failed with a fault (trap, limit) is not counted as applied:
    /// call again.
    pub async fn apply_store_change(
        &self,
        id: &str,
        revision: u64,
        value: Option<Vec<u8>>,
    ) -> Result<Option<UpdateReport>, CallError> {
        self.inner
            .owner
            .apply(id.to_string(), revision, value)
            .await
    }

    /// Applies store changes in order, each as [`SpecHost::apply_store_change`]
    /// would, in one turn of the table owner: one result per change. For a
    /// follower with many changes at hand (a catch-up), where a turn per
    /// change costs more than the changes.
    pub async fn apply_store_changes(
        &self,
        changes: Vec<StoreChange>,
    ) -> Vec<Result<Option<UpdateReport>, CallError>> {
        let n = changes.len();
        match self.inner.owner.apply_all(changes).await {
            Ok(out) => out,
            // The owner went away (the only way the job itself fails):
            // none was applied.
            Err(_) => (0..n).map(|_| Err(CallError::Stopped)).collect(),
        }
    }

    /// Tries a store change on a scratch instance of the running build (an
    /// empty table, deliveries going nowhere) and says whether the plugin
    /// faults on it. A follower does this before it hands a change that
    /// faulted back to the table owner: a value that faults every time then
    /// costs a scratch instance off the owner's queue, not a stall of every
    /// change behind it plus a restore of the whole table. The plugin's
    /// own errors (a value that does not decode) are not faults.
    pub async fn probe_change(&self, id: &str, value: Option<&[u8]>) -> Result<(), CallError> {
        let plugin = self.loaded_plugin();
        let mut instance = self.inner.factory.instantiate(&plugin).await?;
        instance.set_notify(Arc::new(crate::backend::Silent));
        let out = match value {
            Some(bytes) => {
                instance
                    .call("apply-stored-spec", async |p, s| {
                        p.apply_stored_spec(s, id, bytes).await
                    })
                    .await
            }
            None => {
                instance
                    .call("remove-host-spec", async |p, s| {
                        p.remove_host_spec(s, id).await
                    })
                    .await
            }
        };
        match out {
            Ok(_) | Err(CallError::Spec(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `id`'s import-link table.
    pub async fn import_links(&self, id: &str) -> Result<Vec<ImportLink>, CallError> {
        self.inner.owner.import_links(id.to_string()).await
    }

    /// Rebuilds the table from the store without delivering anything.
    pub async fn reload_from_store(&self) -> Result<ReloadReport, CallError> {
        self.inner.owner.reload_from_store().await
    }

    /// Every link in the table, by source id (no plugin call, no queue).
    pub fn links(&self) -> Vec<Link> {
        owner::read(self.inner.owner.mirror()).all_links()
    }

    /// Every link in the table with the table's version (see
    /// [`SpecHost::table_version`]), read at one moment.
    pub fn links_versioned(&self) -> (u64, Vec<Link>) {
        let mirror = owner::read(self.inner.owner.mirror());
        (mirror.version(), mirror.all_links())
    }

    /// A number that changes whenever the table does (for caches).
    pub fn table_version(&self) -> u64 {
        owner::read(self.inner.owner.mirror()).version()
    }

    /// `id`'s links in the table.
    pub fn links_of(&self, id: &str) -> Vec<Link> {
        owner::read(self.inner.owner.mirror()).links_of(id)
    }

    /// Why the table is not whole, when it is not: it was lost and could
    /// not yet be rebuilt from the store. The host keeps trying; calls that
    /// need the table fail with [`CallError::NotReady`] meanwhile, and
    /// readers of it ([`SpecHost::links`]) should refuse to answer.
    pub fn table_degraded(&self) -> Option<String> {
        self.inner.owner.degraded()
    }

    /// Counts of the table (no plugin call, no queue).
    pub fn table_stats(&self) -> TableStats {
        let mirror = owner::read(self.inner.owner.mirror());
        TableStats {
            components: mirror.ids(),
            links: mirror.links(),
            bytes: mirror.bytes(),
            plugin_memory: self.inner.owner.memory(),
            memory_cap: owner::table_memory_cap(
                self.inner.factory.limits.memory_cap,
                mirror.bytes(),
                mirror.ids(),
            ),
            owner_restarts: self.inner.owner.restarts(),
        }
    }

    /// The table, by id (from the mirror: no plugin call).
    pub async fn snapshot_table(&self) -> Result<Vec<TableEntry>, CallError> {
        Ok(owner::read(self.inner.owner.mirror()).entries())
    }

    /// The table in snapshot format 1 (from the mirror).
    pub fn snapshot(&self) -> Snapshot {
        owner::read(self.inner.owner.mirror()).snapshot()
    }

    /// The table as the plugin instance holds it (one call on the owner;
    /// for tests that check the mirror against it).
    pub async fn plugin_snapshot(&self) -> Result<Snapshot, CallError> {
        self.inner.owner.plugin_snapshot().await
    }

    /// Replaces the table (delivers nothing).
    pub async fn restore_table(&self, entries: Vec<TableEntry>) -> Result<(), CallError> {
        self.inner
            .owner
            .restore_table(Snapshot::pack(&entries))
            .await
    }

    /// Replaces the table from a snapshot (delivers nothing).
    pub async fn restore_snapshot(&self, snapshot: Snapshot) -> Result<(), CallError> {
        self.inner.owner.restore_table(snapshot).await
    }

    /// The table with the store revision of each id, taken at one point
    /// among the table's changes (for a shadow host to start from).
    pub async fn handoff(&self) -> Result<Handoff, CallError> {
        self.inner.owner.handoff().await
    }

    /// Takes over a table another host handed off; refused, with the
    /// reason, by a build that cannot read its format (nothing changes).
    pub async fn take_over(&self, handoff: Handoff) -> Result<(), CallError> {
        self.inner.owner.take_over(handoff).await
    }

    /// The build serving requests now.
    pub fn loaded_plugin(&self) -> LoadedPlugin {
        self.engine().plugin.clone()
    }

    /// Switches to another build: its table owner is instantiated, checked
    /// to read the table's format and given the table; its request pool
    /// is warmed; only then does it replace the running one. On any failure
    /// the running build stays. Returns the new version string.
    pub async fn swap(&self, plugin: LoadedPlugin) -> Result<String, CallError> {
        let host = self.clone();
        let next = plugin.clone();
        self.inner
            .owner
            .swap(plugin, move |version| {
                let version = version.to_string();
                Box::pin(async move {
                    let mut engine =
                        new_engine(next, &host.inner.factory, host.inner.pool_size).await?;
                    engine.version = version;
                    *host.inner.engine.write().unwrap_or_else(|p| p.into_inner()) =
                        Arc::new(engine);
                    Ok(())
                })
            })
            .await
    }
}

/// A pool for `plugin` with one instance made (proving it instantiates),
/// and its version string.
async fn new_engine(
    plugin: LoadedPlugin,
    factory: &Arc<Factory>,
    pool_size: usize,
) -> Result<Engine, CallError> {
    let pool = Pool::new(plugin.clone(), Arc::clone(factory), pool_size);
    pool.warm().await?;
    let version = {
        let mut instance = pool.acquire().await?;
        instance
            .call_infallible("plugin-version", async |p, s| p.plugin_version(s).await)
            .await?
    };
    Ok(Engine {
        plugin,
        pool,
        version,
    })
}
