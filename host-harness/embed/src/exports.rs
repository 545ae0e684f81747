//! The plugin's exports, called with [`spec_model`] types: [`Plugin`] wraps
//! the generated bindings of an instance so that neither `spec-host` nor
//! another embedder ever handles a generated type.
//!
//! Each method returns `wasmtime::Result<Result<T, SpecError>>`: the outer
//! error is a trap (the instance must not be used again), the inner one the
//! plugin's typed answer.

use spec_model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, ImportLink, Link, LinkListing,
    PutLinkResult, ReloadReport, Snapshot, SpecError, UpdateReport, Written,
};
use wasmtime::component::{Component, Linker};
use wasmtime::AsContextMut;

use super::bindings::{SpecPlugin, SpecPluginPre};
use super::convert as c;

/// Answer of one export call: trap outside, the plugin's answer inside.
pub type Answer<T> = wasmtime::Result<Result<T, SpecError>>;

/// An instance of a `lattice:spec@0.2` plugin.
pub struct Plugin {
    bindings: SpecPlugin,
}

/// Maps the generated answer of a fallible export into model types.
fn answer<W, T>(
    out: wasmtime::Result<Result<W, super::bindings::wit_types::SpecError>>,
    map: impl FnOnce(W) -> T,
) -> Answer<T> {
    out.map(|r| r.map(map).map_err(c::spec_error_from_wit))
}

impl Plugin {
    /// Instantiates `component` with the imports `linker` provides (see
    /// [`super::embed::add_to_linker`]).
    pub async fn instantiate_async<T: Send + 'static>(
        store: impl AsContextMut<Data = T>,
        component: &Component,
        linker: &Linker<T>,
    ) -> wasmtime::Result<Self> {
        let bindings = SpecPlugin::instantiate_async(store, component, linker).await?;
        Ok(Plugin { bindings })
    }

    pub(crate) async fn from_pre<T: Send + 'static>(
        store: impl AsContextMut<Data = T>,
        pre: &SpecPluginPre<T>,
    ) -> wasmtime::Result<Self> {
        let bindings = pre.instantiate_async(store).await?;
        Ok(Plugin { bindings })
    }

    /// `specs.plugin-version`
    pub async fn plugin_version<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<String> {
        self.bindings
            .lattice_spec_specs()
            .call_plugin_version(store)
            .await
    }

    /// `specs.check-link`
    pub async fn check_link<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        link: &Link,
    ) -> Answer<()> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_check_link(store, &c::link_to_wit(link))
            .await;
        answer(out, |()| ())
    }

    /// `specs.get-component-spec`
    pub async fn get_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<Option<ComponentSpecification>> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_get_component_spec(store, id)
            .await;
        answer(out, |s| s.map(c::spec_from_wit))
    }

    /// `specs.store-component-spec`
    pub async fn store_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        spec: &ComponentSpecification,
    ) -> Answer<Written> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_store_component_spec(store, id, &c::spec_to_wit(spec))
            .await;
        answer(out, c::written_result_from_wit)
    }

    /// `specs.delete-component-spec`
    pub async fn delete_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<DeleteSpecResult> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_delete_component_spec(store, id)
            .await;
        answer(out, c::delete_spec_result_from_wit)
    }

    /// `specs.put-link`
    pub async fn put_link<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        link: &Link,
    ) -> Answer<PutLinkResult> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_put_link(store, &c::link_to_wit(link))
            .await;
        answer(out, c::put_result_from_wit)
    }

    /// `specs.delete-link`
    pub async fn delete_link<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Answer<DeleteLinkResult> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_delete_link(store, source_id, wit_namespace, wit_package, name)
            .await;
        answer(out, c::delete_link_result_from_wit)
    }

    /// `specs.list-links`
    pub async fn list_links<S: AsContextMut<Data: Send>>(&self, store: S) -> Answer<LinkListing> {
        let out = self
            .bindings
            .lattice_spec_specs()
            .call_list_links(store)
            .await;
        answer(out, c::listing_from_wit)
    }

    /// `host-table.snapshot-formats`
    pub async fn snapshot_formats<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<Vec<u32>> {
        self.bindings
            .lattice_spec_host_table()
            .call_snapshot_formats(store)
            .await
    }

    /// `host-table.apply-stored-spec`
    pub async fn apply_stored_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        value: &[u8],
    ) -> Answer<UpdateReport> {
        let out = self
            .bindings
            .lattice_spec_host_table()
            .call_apply_stored_spec(store, id, value)
            .await;
        answer(out, c::report_from_wit)
    }

    /// `host-table.update-host-with-spec`
    pub async fn update_host_with_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        spec: &ComponentSpecification,
    ) -> Answer<UpdateReport> {
        let out = self
            .bindings
            .lattice_spec_host_table()
            .call_update_host_with_spec(store, id, &c::spec_to_wit(spec))
            .await;
        answer(out, c::report_from_wit)
    }

    /// `host-table.remove-host-spec`
    pub async fn remove_host_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<UpdateReport> {
        let out = self
            .bindings
            .lattice_spec_host_table()
            .call_remove_host_spec(store, id)
            .await;
        answer(out, c::report_from_wit)
    }

    /// `host-table.import-links`
    pub async fn import_links<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> wasmtime::Result<Vec<ImportLink>> {
        let rows = self
            .bindings
            .lattice_spec_host_table()
            .call_import_links(store, id)
            .await?;
        Ok(c::import_links_from_wit(rows))
    }

    /// `host-table.reload-from-store`
    pub async fn reload_from_store<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> Answer<ReloadReport> {
        let out = self
            .bindings
            .lattice_spec_host_table()
            .call_reload_from_store(store)
            .await;
        answer(out, c::reload_from_wit)
    }

    /// `host-table.snapshot-table`
    pub async fn snapshot_table<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<Snapshot> {
        let snapshot = self
            .bindings
            .lattice_spec_host_table()
            .call_snapshot_table(store)
            .await?;
        Ok(c::snapshot_from_wit(snapshot))
    }

    /// `host-table.restore-table`
    pub async fn restore_table<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        snapshot: &Snapshot,
    ) -> Answer<()> {
        let out = self
            .bindings
            .lattice_spec_host_table()
            .call_restore_table(store, &c::snapshot_to_wit(snapshot))
            .await;
        answer(out, |()| ())
    }
}
