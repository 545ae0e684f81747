//! [`SpecHost`]: a running plugin, driven through typed async methods.
//!
//! One task (the worker) owns the wasmtime `Store` and runs calls one after
//! another, so no lock is held across the plugin's awaits on storage. A
//! call that traps or hits a limit loses its instance; the next call gets a
//! fresh one whose link table is restored from the host's mirror — a copy
//! of the table kept from every update report — so the host keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use wasmtime::{Store, UpdateDeadline};

use super::bindings::{wit_specs as s, wit_types as t, SpecPlugin};
use super::convert;
use super::runtime::{LoadedPlugin, PluginLimits};
use super::state::{CpuBudgetExceeded, HostState, MemoryCapExceeded};
use crate::backend::{KeyValue, ProviderNotify};
use crate::error::CallError;
use crate::model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, Link, LinkListing, PutLinkResult,
    ReloadReport, StoreResult, TableEntry, UpdateReport,
};

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Job = Box<dyn for<'a> FnOnce(&'a mut Worker) -> Fut<'a, ()> + Send>;
type Answer<R> = wasmtime::Result<Result<R, t::SpecError>>;

/// A live instance and its store.
struct Live {
    store: Store<HostState>,
    plugin: SpecPlugin,
}

impl Live {
    fn specs(&mut self) -> (&s::Guest, &mut Store<HostState>) {
        (self.plugin.lattice_spec_specs(), &mut self.store)
    }
}

/// What a call's answer did to the host table, so the mirror can follow.
trait TableEffect {
    fn report(&self) -> Option<&s::UpdateReport> {
        None
    }
    /// The store revision this call wrote and applied, if any.
    fn written(&self) -> Option<u64> {
        None
    }
}

impl TableEffect for String {}
impl TableEffect for Option<t::ComponentSpecification> {}
impl TableEffect for s::LinkListing {}
impl TableEffect for Vec<s::TableEntry> {}
// Restore and reload replace the whole table: their callers take the
// mirror again from the plugin (`resync_mirror`).
impl TableEffect for () {}
impl TableEffect for s::ReloadReport {}
impl TableEffect for s::UpdateReport {
    fn report(&self) -> Option<&s::UpdateReport> {
        Some(self)
    }
}
impl TableEffect for s::StoreResult {
    fn report(&self) -> Option<&s::UpdateReport> {
        Some(&self.update)
    }
    fn written(&self) -> Option<u64> {
        Some(self.revision)
    }
}
impl TableEffect for s::DeleteSpecResult {
    fn report(&self) -> Option<&s::UpdateReport> {
        Some(&self.update)
    }
}
impl TableEffect for s::PutLinkResult {
    fn report(&self) -> Option<&s::UpdateReport> {
        Some(&self.update)
    }
    fn written(&self) -> Option<u64> {
        Some(self.revision)
    }
}
impl TableEffect for s::DeleteLinkResult {
    fn report(&self) -> Option<&s::UpdateReport> {
        self.update.as_ref()
    }
    fn written(&self) -> Option<u64> {
        self.revision
    }
}

/// What every new instance is made with. Shared by reference across awaits,
/// so it holds only `Sync` parts (the worker itself owns a `Store`, which is
/// not).
struct Factory {
    kv: Arc<dyn KeyValue>,
    notify: Arc<dyn ProviderNotify>,
    limits: PluginLimits,
}

impl Factory {
    fn new_store(&self, plugin: &LoadedPlugin) -> Store<HostState> {
        let state = HostState::new(
            Arc::clone(&self.kv),
            Arc::clone(&self.notify),
            self.limits.memory_cap,
            self.limits.cpu_budget,
        );
        let mut store = Store::new(&plugin.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            let clock = &ctx.data().clock;
            if clock.guest_time() > clock.limit {
                return Err(CpuBudgetExceeded { limit: clock.limit }.into());
            }
            // Give the executor a turn while a long call runs.
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// A fresh instance of `plugin` with `table` restored into it.
    async fn instantiate(
        &self,
        plugin: &LoadedPlugin,
        table: Vec<s::TableEntry>,
    ) -> Result<Live, CallError> {
        let mut store = self.new_store(plugin);
        store.data_mut().clock.start();
        store.set_epoch_deadline(1);
        let instance = plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CallError::Instantiate {
                source: e.into_boxed_dyn_error(),
            })?;
        let mut live = Live {
            store,
            plugin: instance,
        };
        if !table.is_empty() {
            let (specs, store) = live.specs();
            let restored = specs.call_restore_table(store, &table).await;
            let failed: Option<crate::backend::BoxError> = match restored {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Box::new(convert::spec_error_from_wit(e))),
                Err(e) => Some(classify(&self.limits, "restore-table", e).into()),
            };
            if let Some(source) = failed {
                return Err(CallError::Instantiate { source });
            }
        }
        Ok(live)
    }
}

/// The state the worker task owns.
struct Worker {
    plugin: LoadedPlugin,
    live: Option<Live>,
    factory: Factory,
    /// The host-local link table as the plugin last reported it.
    mirror: BTreeMap<String, Vec<t::Link>>,
    /// Per id, the newest store revision in the table: written by this host
    /// or applied from the bucket. Kept here, in the one task that runs the
    /// plugin, so that checking it and applying a change are one step.
    applied: HashMap<String, u64>,
}

impl Worker {
    fn mirrored_table(&self) -> Vec<s::TableEntry> {
        self.mirror
            .iter()
            .map(|(id, links)| s::TableEntry {
                id: id.clone(),
                links: links.clone(),
            })
            .collect()
    }

    /// A new instance holding the mirrored table. Should the plugin refuse
    /// that table, the host must not be left unable to make any instance:
    /// the table is rebuilt from the store instead (nothing delivered), or,
    /// failing that too, the instance starts empty — both logged.
    async fn fresh_instance(&mut self) -> Result<Live, CallError> {
        let table = self.mirrored_table();
        let refused = match self.factory.instantiate(&self.plugin, table).await {
            Ok(live) => return Ok(live),
            Err(e) if !self.mirror.is_empty() => e,
            Err(e) => return Err(e),
        };
        tracing::error!(error = %crate::backend::error_chain(&refused), "the plugin refused the mirrored link table; rebuilding it from the store");
        let mut live = self.factory.instantiate(&self.plugin, Vec::new()).await?;
        live.store.data_mut().clock.start();
        live.store.set_epoch_deadline(1);
        let (specs, store) = live.specs();
        let rebuilt = match specs.call_reload_from_store(&mut *store).await {
            Ok(Ok(_)) => specs.call_snapshot_table(store).await.ok(),
            Ok(Err(e)) => {
                tracing::error!(error = %convert::spec_error_from_wit(e), "cannot rebuild the table from the store; starting empty");
                None
            }
            Err(trap) => {
                tracing::error!(error = %crate::backend::error_chain(&classify(&self.factory.limits, "reload-from-store", trap)), "cannot rebuild the table from the store; starting empty");
                return self.factory.instantiate(&self.plugin, Vec::new()).await;
            }
        };
        self.mirror = rebuilt
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.id, e.links))
            .collect();
        Ok(live)
    }

    /// The live instance, made anew when the last call lost it; its CPU
    /// budget restarted for a new call.
    async fn live(&mut self) -> Result<&mut Live, CallError> {
        let live = match self.live.take() {
            Some(live) => live,
            None => self.fresh_instance().await?,
        };
        let live = self.live.insert(live);
        live.store.data_mut().clock.start();
        live.store.set_epoch_deadline(1);
        Ok(live)
    }

    /// Sorts out a call's answer: a trap drops the instance; a report
    /// updates the mirror.
    fn settle<R: TableEffect>(
        &mut self,
        call: &'static str,
        answer: Answer<R>,
    ) -> Result<R, CallError> {
        match answer {
            Err(trap) => {
                self.live = None;
                let err = classify(&self.factory.limits, call, trap);
                tracing::warn!(call, error = %crate::backend::error_chain(&err), "plugin call failed; instance replaced");
                Err(err)
            }
            Ok(Err(e)) => Err(CallError::Spec(convert::spec_error_from_wit(e))),
            Ok(Ok(value)) => {
                if let (Some(revision), Some(report)) = (value.written(), value.report()) {
                    let newest = self.applied.entry(report.id.clone()).or_insert(revision);
                    *newest = (*newest).max(revision);
                }
                if let Some(report) = value.report() {
                    if report.links.is_empty() {
                        self.mirror.remove(&report.id);
                    } else {
                        self.mirror.insert(report.id.clone(), report.links.clone());
                    }
                }
                Ok(value)
            }
        }
    }

    /// Takes the mirror again from the plugin after the whole table changed.
    async fn resync_mirror(&mut self) -> Result<(), CallError> {
        let live = self.live().await?;
        let (specs, store) = live.specs();
        let answer = specs.call_snapshot_table(store).await.map(Ok);
        let entries: Vec<s::TableEntry> = self.settle("snapshot-table", answer)?;
        self.mirror = entries.into_iter().map(|e| (e.id, e.links)).collect();
        Ok(())
    }
}

/// Turns a wasmtime error out of a call into the matching [`CallError`].
fn classify(limits: &PluginLimits, call: &'static str, err: wasmtime::Error) -> CallError {
    if err.downcast_ref::<CpuBudgetExceeded>().is_some() {
        CallError::CpuLimit {
            call,
            limit: limits.cpu_budget,
        }
    } else if err.downcast_ref::<MemoryCapExceeded>().is_some() {
        CallError::MemoryLimit {
            call,
            cap: limits.memory_cap,
        }
    } else {
        CallError::Trap {
            call,
            source: err.into_boxed_dyn_error(),
        }
    }
}

/// A running plugin with its backends. Cheap to clone; every clone drives
/// the same instance. Calls run one at a time, in the order received.
#[derive(Clone)]
pub struct SpecHost {
    jobs: mpsc::Sender<Job>,
}

impl SpecHost {
    /// Starts a worker for `plugin` over these backends and checks that the
    /// plugin instantiates. Must be called within a tokio runtime.
    pub async fn start(
        plugin: LoadedPlugin,
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        limits: PluginLimits,
    ) -> Result<Self, CallError> {
        let mut worker = Worker {
            plugin,
            live: None,
            factory: Factory { kv, notify, limits },
            mirror: BTreeMap::new(),
            applied: HashMap::new(),
        };
        worker.live().await?;
        let (jobs, mut queue) = mpsc::channel::<Job>(1024);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                job(&mut worker).await;
            }
        });
        Ok(SpecHost { jobs })
    }

    /// Runs `f` on the worker and waits for its result.
    async fn on_worker<R, F>(&self, f: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Worker) -> Fut<'a, Result<R, CallError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |worker| {
            Box::pin(async move {
                let out = f(worker).await;
                // The caller may have gone away (cancelled); the work is done
                // either way.
                let _ = reply.send(out);
            })
        });
        self.jobs.send(job).await.map_err(|_| CallError::Stopped)?;
        answer.await.map_err(|_| CallError::Stopped)?
    }
}

/// One exported function: how to call it and what the host makes of the
/// answer. Spelled once per function by the `export!` lines below.
macro_rules! export {
    (@answer fallible $answer:expr) => { $answer };
    (@answer infallible $answer:expr) => { $answer.map(Ok) };
    ($(#[$doc:meta])* $kind:ident $name:ident($($arg:ident: $ty:ty => $to_wit:expr),*) -> $out:ty,
     $wit:literal, $call:ident, $from_wit:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, $($arg: $ty),*) -> Result<$out, CallError> {
            $(let $arg = $to_wit($arg);)*
            self.on_worker(move |w| {
                Box::pin(async move {
                    let live = w.live().await?;
                    let (specs, store) = live.specs();
                    let answer = export!(@answer $kind specs.$call(store, $(&$arg),*).await);
                    let value = w.settle($wit, answer)?;
                    Ok($from_wit(value))
                })
            })
            .await
        }
    };
}

fn same<T>(value: T) -> T {
    value
}

impl SpecHost {
    export!(
        /// The plugin's version string.
        infallible plugin_version() -> String,
        "plugin-version", call_plugin_version, same
    );
    export!(
        /// The spec stored under `id`, if any.
        fallible get_component_spec(id: &str => str::to_string) -> Option<ComponentSpecification>,
        "get-component-spec", call_get_component_spec,
        |s: Option<t::ComponentSpecification>| s.map(convert::spec_from_wit)
    );
    export!(
        /// Validates and stores a spec, then updates the host table.
        fallible store_component_spec(id: &str => str::to_string, spec: ComponentSpecification => convert::spec_to_wit) -> StoreResult,
        "store-component-spec", call_store_component_spec, convert::store_result_from_wit
    );
    export!(
        /// Deletes a spec and removes its links from the host table.
        fallible delete_component_spec(id: &str => str::to_string) -> DeleteSpecResult,
        "delete-component-spec", call_delete_component_spec, convert::delete_spec_result_from_wit
    );
    export!(
        /// Applies a spec to the host table (no store write).
        fallible update_host_with_spec(id: &str => str::to_string, spec: ComponentSpecification => convert::spec_to_wit) -> UpdateReport,
        "update-host-with-spec", call_update_host_with_spec, convert::report_from_wit
    );
    export!(
        /// Applies a stored value (wasmCloud JSON) to the host table, as a
        /// follower of the bucket does (no store write).
        fallible apply_stored_spec(id: &str => str::to_string, value: Vec<u8> => same) -> UpdateReport,
        "apply-stored-spec", call_apply_stored_spec, convert::report_from_wit
    );
    export!(
        /// Applies a spec's deletion to the host table (no store write).
        fallible remove_host_spec(id: &str => str::to_string) -> UpdateReport,
        "remove-host-spec", call_remove_host_spec, convert::report_from_wit
    );
    export!(
        /// Puts a link into its source's spec (CAS with retries), then
        /// updates the host.
        fallible put_link(link: Link => convert::link_to_wit) -> PutLinkResult,
        "put-link", call_put_link, convert::put_result_from_wit
    );
    export!(
        /// All links of the lattice's stored specs.
        fallible list_links() -> LinkListing,
        "list-links", call_list_links, convert::listing_from_wit
    );
    export!(
        /// The host-local link table.
        infallible snapshot_table() -> Vec<TableEntry>,
        "snapshot-table", call_snapshot_table,
        |v: Vec<s::TableEntry>| v.into_iter().map(convert::entry_from_wit).collect()
    );

    /// Removes a link (name `None`: `default`). Absent: success, nothing
    /// written.
    pub async fn delete_link(
        &self,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<DeleteLinkResult, CallError> {
        let (source_id, ns, pkg) = (
            source_id.to_string(),
            wit_namespace.to_string(),
            wit_package.to_string(),
        );
        let name = name.map(str::to_string);
        self.on_worker(move |w| {
            Box::pin(async move {
                let live = w.live().await?;
                let (specs, store) = live.specs();
                let answer = specs
                    .call_delete_link(store, &source_id, &ns, &pkg, name.as_deref())
                    .await;
                let value = w.settle("delete-link", answer)?;
                Ok(convert::delete_link_result_from_wit(value))
            })
        })
        .await
    }

    /// Applies a change seen in the store at `revision` — a value
    /// (`Some`, wasmCloud JSON) or a delete/purge (`None`) — unless this
    /// host's table already holds that revision of `id` or a newer one
    /// (its own write, or a replay after a reconnect): then `Ok(None)`.
    pub async fn apply_store_change(
        &self,
        id: &str,
        revision: u64,
        value: Option<Vec<u8>>,
    ) -> Result<Option<UpdateReport>, CallError> {
        let id = id.to_string();
        self.on_worker(move |w| {
            Box::pin(async move {
                if w.applied.get(&id).is_some_and(|&seen| seen >= revision) {
                    return Ok(None);
                }
                let live = w.live().await?;
                let (specs, store) = live.specs();
                let (call, answer) = match &value {
                    Some(bytes) => (
                        "apply-stored-spec",
                        specs.call_apply_stored_spec(store, &id, bytes).await,
                    ),
                    None => (
                        "remove-host-spec",
                        specs.call_remove_host_spec(store, &id).await,
                    ),
                };
                // Counted as seen even if it fails: a value that does not
                // decode must not block newer ones, nor be retried forever.
                w.applied.insert(id, revision);
                let report = w.settle(call, answer)?;
                Ok(Some(convert::report_from_wit(report)))
            })
        })
        .await
    }

    /// Rebuilds the host table from the store without delivering anything.
    pub async fn reload_from_store(&self) -> Result<ReloadReport, CallError> {
        self.on_worker(move |w| {
            Box::pin(async move {
                let live = w.live().await?;
                let (specs, store) = live.specs();
                let answer = specs.call_reload_from_store(store).await;
                let value = w.settle("reload-from-store", answer)?;
                w.resync_mirror().await?;
                Ok(convert::reload_from_wit(value))
            })
        })
        .await
    }

    /// Replaces the host table (delivers nothing).
    pub async fn restore_table(&self, entries: Vec<TableEntry>) -> Result<(), CallError> {
        let entries: Vec<s::TableEntry> = entries.into_iter().map(convert::entry_to_wit).collect();
        self.on_worker(move |w| {
            Box::pin(async move {
                let live = w.live().await?;
                let (specs, store) = live.specs();
                let answer = specs.call_restore_table(store, &entries).await;
                w.settle("restore-table", answer)?;
                w.resync_mirror().await
            })
        })
        .await
    }

    /// Switches to another plugin build: it is instantiated and given the
    /// current table; only then does it replace the running one. On any
    /// failure the running plugin stays. Returns the new version string.
    pub async fn swap(&self, plugin: LoadedPlugin) -> Result<String, CallError> {
        self.on_worker(move |w| {
            Box::pin(async move {
                let table = w.mirrored_table();
                let mut next = w.factory.instantiate(&plugin, table).await?;
                next.store.data_mut().clock.start();
                next.store.set_epoch_deadline(1);
                let (specs, store) = next.specs();
                let version = match specs.call_plugin_version(store).await {
                    Ok(v) => v,
                    Err(e) => return Err(classify(&w.factory.limits, "plugin-version", e)),
                };
                w.plugin = plugin;
                w.live = Some(next);
                Ok(version)
            })
        })
        .await
    }
}
