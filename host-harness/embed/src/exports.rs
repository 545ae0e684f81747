//! The plugin's exports, called with [`spec_model`] types: [`Plugin`] wraps
//! the generated bindings of an instance of either contract version so
//! that neither `spec-host` nor another embedder ever handles a generated
//! type, or needs to know which version a build speaks.
//!
//! Each method returns `wasmtime::Result<Result<T, SpecError>>`: the outer
//! error is a trap (the instance must not be used again), the inner one the
//! plugin's typed answer.
//!
//! Where the versions differ, the difference stays here: a 0.3 plugin
//! takes and returns specs as wasmCloud's JSON bytes (encoded and decoded
//! with [`spec_model::json`] on this side) and reports links packed or as
//! positions ([`super::convert::v0_3`]).

use spec_model::json::{decode_spec, encode_spec};
use spec_model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, ImportLink, Link, LinkListing,
    PutLinkResult, ReloadReport, Snapshot, SpecError, UpdateReport, Written,
};
use wasmtime::component::{Component, Linker};
use wasmtime::AsContextMut;

use super::bindings::{v0_2, v0_3};
use super::convert::{self as c, v0_2 as c2, v0_3 as c3};

/// Answer of one export call: trap outside, the plugin's answer inside.
pub type Answer<T> = wasmtime::Result<Result<T, SpecError>>;

/// An instance of a `lattice:spec` plugin, of contract 0.2 or 0.3.
pub struct Plugin {
    bindings: Bindings,
}

enum Bindings {
    V0_2(v0_2::SpecPlugin),
    V0_3(v0_3::SpecPlugin),
}

/// Compiled-and-linked plugins of either version (`InstancePre`).
pub(crate) enum PluginPre<T: 'static> {
    V0_2(v0_2::SpecPluginPre<T>),
    V0_3(v0_3::SpecPluginPre<T>),
}

impl<T: 'static> Clone for PluginPre<T> {
    fn clone(&self) -> Self {
        match self {
            PluginPre::V0_2(p) => PluginPre::V0_2(p.clone()),
            PluginPre::V0_3(p) => PluginPre::V0_3(p.clone()),
        }
    }
}

impl<T: Send + 'static> PluginPre<T> {
    /// Type-checks `pre` against contract `version` (`major.minor…`).
    pub(crate) fn new(
        version: &str,
        pre: wasmtime::component::InstancePre<T>,
    ) -> wasmtime::Result<Self> {
        if version.starts_with("0.2") {
            Ok(PluginPre::V0_2(v0_2::SpecPluginPre::new(pre)?))
        } else {
            Ok(PluginPre::V0_3(v0_3::SpecPluginPre::new(pre)?))
        }
    }
}

/// Maps the generated answer of a fallible export into model types.
fn answer<W, T>(
    out: wasmtime::Result<Result<W, super::bindings::wit_types::SpecError>>,
    map: impl FnOnce(W) -> T,
) -> Answer<T> {
    out.map(|r| r.map(map).map_err(c::spec_error_from_wit))
}

/// As [`answer`], for a conversion that can find the plugin's bytes
/// malformed.
fn answer_checked<W, T>(
    out: wasmtime::Result<Result<W, super::bindings::wit_types::SpecError>>,
    map: impl FnOnce(W) -> Result<T, SpecError>,
) -> Answer<T> {
    out.map(|r| r.map_err(c::spec_error_from_wit).and_then(map))
}

/// A spec a 0.3 plugin returned as stored bytes, decoded here.
fn decoded(id: &str, value: &[u8]) -> Result<ComponentSpecification, SpecError> {
    decode_spec(value).map_err(|message| SpecError::Decode {
        id: id.to_string(),
        message,
    })
}

impl Plugin {
    /// Instantiates `component` with the imports `linker` provides (see
    /// [`super::embed::add_to_linker`]), by the contract version its
    /// exports speak.
    pub async fn instantiate_async<T: Send + 'static>(
        mut store: impl AsContextMut<Data = T>,
        component: &Component,
        linker: &Linker<T>,
    ) -> wasmtime::Result<Self> {
        let version = super::runtime::contract_version(component.engine(), component)?;
        let pre = PluginPre::new(&version, linker.instantiate_pre(component)?)?;
        Self::from_pre(&mut store, &pre).await
    }

    pub(crate) async fn from_pre<T: Send + 'static>(
        store: impl AsContextMut<Data = T>,
        pre: &PluginPre<T>,
    ) -> wasmtime::Result<Self> {
        let bindings = match pre {
            PluginPre::V0_2(pre) => Bindings::V0_2(pre.instantiate_async(store).await?),
            PluginPre::V0_3(pre) => Bindings::V0_3(pre.instantiate_async(store).await?),
        };
        Ok(Plugin { bindings })
    }

    /// The contract version this instance speaks (`0.2` or `0.3`).
    pub fn contract(&self) -> &'static str {
        match self.bindings {
            Bindings::V0_2(_) => "0.2",
            Bindings::V0_3(_) => "0.3",
        }
    }

    /// `specs.plugin-version`
    pub async fn plugin_version<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<String> {
        match &self.bindings {
            Bindings::V0_2(b) => b.specs().call_plugin_version(store).await,
            Bindings::V0_3(b) => b.specs().call_plugin_version(store).await,
        }
    }

    /// `specs.check-link`
    pub async fn check_link<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        link: &Link,
    ) -> Answer<()> {
        let link = c::link_to_wit(link);
        let out = match &self.bindings {
            Bindings::V0_2(b) => b.specs().call_check_link(store, &link).await,
            Bindings::V0_3(b) => b.specs().call_check_link(store, &link).await,
        };
        answer(out, |()| ())
    }

    /// `specs.get-component-spec`
    pub async fn get_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<Option<ComponentSpecification>> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.specs().call_get_component_spec(store, id).await;
                answer(out, |s| s.map(c::spec_from_wit))
            }
            Bindings::V0_3(b) => {
                let out = b.specs().call_get_component_spec(store, id).await;
                answer_checked(out, |s| s.map(|s| decoded(id, &s.value)).transpose())
            }
        }
    }

    /// `specs.store-component-spec`
    pub async fn store_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        spec: &ComponentSpecification,
    ) -> Answer<Written> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let spec = c::spec_to_wit(spec);
                let out = b.specs().call_store_component_spec(store, id, &spec).await;
                answer(out, c2::written_from_wit)
            }
            Bindings::V0_3(b) => {
                let value = encode_spec(spec);
                let out = b.specs().call_store_component_spec(store, id, &value).await;
                answer(out, c3::written_from_wit)
            }
        }
    }

    /// `specs.store-component-spec` from wasmCloud's JSON, as a caller
    /// hands it in: a 0.3 plugin decodes it itself; for a 0.2 plugin it
    /// is decoded here (a value that does not decode fails with `decode`,
    /// naming `id`, either way).
    pub async fn store_spec_json<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        value: &[u8],
    ) -> Answer<Written> {
        match &self.bindings {
            Bindings::V0_2(_) => match decoded(id, value) {
                Ok(spec) => self.store_component_spec(store, id, &spec).await,
                Err(e) => Ok(Err(e)),
            },
            Bindings::V0_3(b) => {
                let out = b.specs().call_store_component_spec(store, id, value).await;
                answer(out, c3::written_from_wit)
            }
        }
    }

    /// `specs.delete-component-spec`
    pub async fn delete_component_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<DeleteSpecResult> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.specs().call_delete_component_spec(store, id).await;
                answer(out, c2::delete_spec_result_from_wit)
            }
            Bindings::V0_3(b) => {
                let out = b.specs().call_delete_component_spec(store, id).await;
                answer(out, c3::delete_spec_result_from_wit)
            }
        }
    }

    /// `specs.put-link`
    pub async fn put_link<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        link: &Link,
    ) -> Answer<PutLinkResult> {
        let link = c::link_to_wit(link);
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.specs().call_put_link(store, &link).await;
                answer(out, c2::put_result_from_wit)
            }
            Bindings::V0_3(b) => {
                let out = b.specs().call_put_link(store, &link).await;
                answer(out, c3::put_result_from_wit)
            }
        }
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
        let (ns, pkg) = (wit_namespace, wit_package);
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.specs();
                let out = out.call_delete_link(store, source_id, ns, pkg, name).await;
                answer(out, c2::delete_link_result_from_wit)
            }
            Bindings::V0_3(b) => {
                let out = b.specs();
                let out = out.call_delete_link(store, source_id, ns, pkg, name).await;
                answer_checked(out, c3::delete_link_result_from_wit)
            }
        }
    }

    /// `specs.list-links`
    pub async fn list_links<S: AsContextMut<Data: Send>>(&self, store: S) -> Answer<LinkListing> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                answer(b.specs().call_list_links(store).await, c2::listing_from_wit)
            }
            Bindings::V0_3(b) => {
                answer_checked(b.specs().call_list_links(store).await, c3::listing_from_wit)
            }
        }
    }

    /// `host-table.snapshot-formats`
    pub async fn snapshot_formats<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<Vec<u32>> {
        match &self.bindings {
            Bindings::V0_2(b) => b.table().call_snapshot_formats(store).await,
            Bindings::V0_3(b) => b.table().call_snapshot_formats(store).await,
        }
    }

    /// `host-table.apply-stored-spec`
    pub async fn apply_stored_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        value: &[u8],
    ) -> Answer<UpdateReport> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.table().call_apply_stored_spec(store, id, value).await;
                answer(out, c2::report_from_wit)
            }
            Bindings::V0_3(b) => {
                let out = b.table().call_apply_stored_spec(store, id, value, false);
                answer_checked(out.await, c3::report_from_wit)
            }
        }
    }

    /// `host-table.update-host-with-spec` (0.2); a 0.3 plugin is handed the
    /// spec as JSON to apply with the link rules checked.
    pub async fn update_host_with_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
        spec: &ComponentSpecification,
    ) -> Answer<UpdateReport> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let spec = c::spec_to_wit(spec);
                let out = b.table().call_update_host_with_spec(store, id, &spec);
                answer(out.await, c2::report_from_wit)
            }
            Bindings::V0_3(b) => {
                let value = encode_spec(spec);
                let out = b.table().call_apply_stored_spec(store, id, &value, true);
                answer_checked(out.await, c3::report_from_wit)
            }
        }
    }

    /// `host-table.remove-host-spec`
    pub async fn remove_host_spec<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> Answer<UpdateReport> {
        match &self.bindings {
            Bindings::V0_2(b) => {
                let out = b.table().call_remove_host_spec(store, id).await;
                answer(out, c2::report_from_wit)
            }
            Bindings::V0_3(b) => {
                let out = b.table().call_remove_host_spec(store, id).await;
                answer_checked(out, c3::report_from_wit)
            }
        }
    }

    /// `host-table.import-links`
    pub async fn import_links<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        id: &str,
    ) -> wasmtime::Result<Vec<ImportLink>> {
        Ok(match &self.bindings {
            Bindings::V0_2(b) => {
                c2::import_links_from_wit(b.table().call_import_links(store, id).await?)
            }
            Bindings::V0_3(b) => {
                c3::import_links_from_wit(b.table().call_import_links(store, id).await?)
            }
        })
    }

    /// `host-table.reload-from-store`
    pub async fn reload_from_store<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> Answer<ReloadReport> {
        match &self.bindings {
            Bindings::V0_2(b) => answer(
                b.table().call_reload_from_store(store).await,
                c2::reload_from_wit,
            ),
            Bindings::V0_3(b) => answer(
                b.table().call_reload_from_store(store).await,
                c3::reload_from_wit,
            ),
        }
    }

    /// `host-table.snapshot-table`
    pub async fn snapshot_table<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
    ) -> wasmtime::Result<Snapshot> {
        Ok(match &self.bindings {
            Bindings::V0_2(b) => c2::snapshot_from_wit(b.table().call_snapshot_table(store).await?),
            Bindings::V0_3(b) => c3::snapshot_from_wit(b.table().call_snapshot_table(store).await?),
        })
    }

    /// `host-table.restore-table`
    pub async fn restore_table<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        snapshot: &Snapshot,
    ) -> Answer<()> {
        let out = match &self.bindings {
            Bindings::V0_2(b) => {
                let snapshot = c2::snapshot_to_wit(snapshot);
                b.table().call_restore_table(store, &snapshot).await
            }
            Bindings::V0_3(b) => {
                let snapshot = c3::snapshot_to_wit(snapshot);
                b.table().call_restore_table(store, &snapshot).await
            }
        };
        answer(out, |()| ())
    }
}

/// The two exported interfaces of a version's bindings, under one name.
trait Exports {
    type Specs;
    type Table;
    fn specs(&self) -> &Self::Specs;
    fn table(&self) -> &Self::Table;
}

impl Exports for v0_2::SpecPlugin {
    type Specs = v0_2::exports::lattice::spec0_2_0::specs::Guest;
    type Table = v0_2::exports::lattice::spec0_2_0::host_table::Guest;
    fn specs(&self) -> &Self::Specs {
        self.lattice_spec0_2_0_specs()
    }
    fn table(&self) -> &Self::Table {
        self.lattice_spec0_2_0_host_table()
    }
}

impl Exports for v0_3::SpecPlugin {
    type Specs = v0_3::exports::lattice::spec0_3_0::specs::Guest;
    type Table = v0_3::exports::lattice::spec0_3_0::host_table::Guest;
    fn specs(&self) -> &Self::Specs {
        self.lattice_spec0_3_0_specs()
    }
    fn table(&self) -> &Self::Table {
        self.lattice_spec0_3_0_host_table()
    }
}
