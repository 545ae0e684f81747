//! The imports as the [`KeyValue`] and [`ProviderNotify`] traits the logic
//! is written against, and the table an instance keeps. Both contract
//! versions import the same 0.2 interfaces, so this serves either build.

use core::cell::RefCell;

use spec_model::{Link, NotifyError, SpecError, StoreError};

use super::bindings::imported::{keyvalue, provider_notify};
use crate::backend::{Entry, KeyValue, ProviderNotify};
use crate::host_table::HostTable;
use crate::prelude::*;

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
pub(super) fn with_table<T>(
    f: impl FnOnce(&mut HostTable) -> Result<T, SpecError>,
) -> Result<T, SpecError> {
    match TABLE.0.try_borrow_mut() {
        Ok(mut table) => f(table.get_or_insert_with(HostTable::new)),
        Err(_) => Err(SpecError::Store(StoreError::Other(
            "plugin re-entered".into(),
        ))),
    }
}

/// [`KeyValue`] over the imported `keyvalue` interface.
pub(super) struct HostStore;

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
pub(super) struct HostNotifier;

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
