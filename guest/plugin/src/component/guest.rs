//! The exports, each a one-line delegation, and the imports as the
//! [`KeyValue`] and [`ProviderNotify`] traits the logic is written against.

use core::cell::RefCell;

use spec_model::{Link, NotifyError, SpecError, StoreError};

use super::bindings::exports::lattice::spec::host_table as ht;
use super::bindings::exports::lattice::spec::specs as w;
use super::bindings::lattice::spec::types as wt;
use super::bindings::lattice::spec::{keyvalue, provider_notify};
use crate::backend::{Entry, KeyValue, ProviderNotify};
use crate::host_table::{HostTable, SNAPSHOT_FORMATS};
use crate::prelude::*;
use crate::specs;

/// The table of this instance (only the host's table owner fills it).
struct TableCell(RefCell<Option<HostTable>>);

// SAFETY: a wasm32 component without the threads proposal (this one is
// built without `atomics`) runs on exactly one thread, so the cell is never
// shared between threads.
unsafe impl Sync for TableCell {}

static TABLE: TableCell = TableCell(RefCell::new(None));

/// Runs `f` on the table. The component model forbids re-entering an
/// instance during one of its import calls, so the borrow cannot be taken
/// twice; should it ever be, the call fails instead of trapping.
fn with_table<T>(f: impl FnOnce(&mut HostTable) -> Result<T, SpecError>) -> Result<T, SpecError> {
    match TABLE.0.try_borrow_mut() {
        Ok(mut table) => f(table.get_or_insert_with(HostTable::new)),
        Err(_) => Err(SpecError::Store(StoreError::Other(
            "plugin re-entered".into(),
        ))),
    }
}

/// [`KeyValue`] over the imported `keyvalue` interface.
struct HostStore;

impl KeyValue for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        keyvalue::get(key)
            .map(|e| {
                e.map(|e| Entry {
                    value: e.value,
                    revision: e.revision,
                })
            })
            .map_err(Into::into)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        keyvalue::set(key, &value).map_err(Into::into)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        keyvalue::compare_and_swap(key, &value, expected).map_err(Into::into)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        keyvalue::delete(key).map_err(Into::into)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        keyvalue::list_keys(prefix).map_err(Into::into)
    }
}

/// [`ProviderNotify`] over the imported `provider-notify` interface.
struct HostNotifier;

impl ProviderNotify for HostNotifier {
    fn local_providers(&mut self) -> Vec<String> {
        provider_notify::local_providers()
    }
    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        provider_notify::link_put(provider, &link.into()).map_err(Into::into)
    }
    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        provider_notify::link_delete(provider, &link.into()).map_err(Into::into)
    }
}

/// The exported interfaces.
pub(super) struct SpecPlugin;

type Out<T> = Result<T, wt::SpecError>;

/// Converts a native result into the generated one.
fn out<T, U: From<T>>(r: Result<T, SpecError>) -> Out<U> {
    r.map(Into::into).map_err(Into::into)
}

impl w::Guest for SpecPlugin {
    fn plugin_version() -> String {
        crate::PLUGIN_VERSION.to_string()
    }

    fn check_link(link: wt::Link) -> Out<()> {
        specs::check_link(&link.into()).map_err(Into::into)
    }

    fn get_component_spec(id: String) -> Out<Option<wt::ComponentSpecification>> {
        specs::get_component_spec(&mut HostStore, &id)
            .map(|s| s.map(Into::into))
            .map_err(Into::into)
    }

    fn store_component_spec(id: String, spec: wt::ComponentSpecification) -> Out<w::Written> {
        out(specs::store_component_spec(
            &mut HostStore,
            &id,
            &spec.into(),
        ))
    }

    fn delete_component_spec(id: String) -> Out<w::DeleteSpecResult> {
        out(specs::delete_component_spec(&mut HostStore, &id))
    }

    fn put_link(link: wt::Link) -> Out<w::PutLinkResult> {
        out(specs::put_link(&mut HostStore, &link.into()))
    }

    fn delete_link(
        source_id: String,
        wit_namespace: String,
        wit_package: String,
        name: Option<String>,
    ) -> Out<w::DeleteLinkResult> {
        out(specs::delete_link(
            &mut HostStore,
            &source_id,
            &wit_namespace,
            &wit_package,
            name.as_deref(),
        ))
    }

    fn list_links() -> Out<w::LinkListing> {
        out(specs::list_links(&mut HostStore))
    }
}

impl ht::Guest for SpecPlugin {
    fn snapshot_formats() -> Vec<u32> {
        SNAPSHOT_FORMATS.to_vec()
    }

    fn apply_stored_spec(id: String, value: Vec<u8>) -> Out<ht::UpdateReport> {
        out(with_table(|t| {
            t.apply_stored_spec(&mut HostNotifier, &id, &value)
        }))
    }

    fn update_host_with_spec(
        id: String,
        spec: wt::ComponentSpecification,
    ) -> Out<ht::UpdateReport> {
        let spec = spec.into();
        out(with_table(|t| {
            t.update_host_with_spec(&mut HostNotifier, &id, &spec)
        }))
    }

    fn remove_host_spec(id: String) -> Out<ht::UpdateReport> {
        out(with_table(|t| t.remove_host_spec(&mut HostNotifier, &id)))
    }

    fn import_links(id: String) -> Vec<ht::ImportLink> {
        with_table(|t| Ok(t.import_links(&id)))
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    fn reload_from_store() -> Out<ht::ReloadReport> {
        out(with_table(|t| t.reload_from_store(&mut HostStore)))
    }

    fn snapshot_table() -> ht::Snapshot {
        with_table(|t| Ok(t.snapshot_table()))
            .map(Into::into)
            .unwrap_or_else(|_| ht::Snapshot {
                format: spec_model::SNAPSHOT_FORMAT,
                entries: Vec::new(),
            })
    }

    fn restore_table(snapshot: ht::Snapshot) -> Out<()> {
        with_table(|t| t.restore_table(snapshot.into())).map_err(Into::into)
    }
}

super::bindings::export!(SpecPlugin with_types_in super::bindings);
