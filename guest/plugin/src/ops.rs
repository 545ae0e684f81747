//! A whole host in one, natively: [`NativePlugin`] writes through [`crate::specs`]
//! and applies what it wrote to its [`HostTable`], exactly the sequence
//! `spec-host` runs across its request instances and its table owner. Used
//! by the native tests and by the benchmark's native twin, so both sides
//! of a comparison do the same work.

use spec_model::{
    Applied, ComponentSpecification, DeleteLinkResult, DeleteSpecResult, Link, LinkListing,
    PutLinkResult, ReloadReport, Snapshot, SpecError, TableEntry, UpdateReport, Written,
};

use crate::backend::{KeyValue, ProviderNotify};
use crate::host_table::HostTable;
use crate::prelude::*;
use crate::specs;

/// The table of one host and the operations on it.
#[derive(Clone, Debug, Default)]
pub struct NativePlugin {
    table: HostTable,
}

impl NativePlugin {
    /// A host with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table.
    pub fn table(&self) -> &crate::table::LinkTable {
        self.table.table()
    }

    /// The table, to call its operations directly.
    pub fn table_mut(&mut self) -> &mut HostTable {
        &mut self.table
    }

    fn apply(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        written: Option<&Written>,
    ) -> Result<Option<UpdateReport>, SpecError> {
        written
            .map(|w| self.table.apply_stored_spec(notifier, id, &w.value))
            .transpose()
    }

    /// See [`specs::get_component_spec`].
    pub fn get_component_spec(
        &self,
        store: &mut impl KeyValue,
        id: &str,
    ) -> Result<Option<ComponentSpecification>, SpecError> {
        specs::get_component_spec(store, id)
    }

    /// Stores a spec, then applies it to the table.
    pub fn store_component_spec(
        &mut self,
        store: &mut impl KeyValue,
        notifier: &mut impl ProviderNotify,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<Applied<Written>, SpecError> {
        let written = specs::store_component_spec(store, id, &spec)?;
        let update = self.apply(notifier, id, Some(&written))?;
        Ok(Applied {
            result: written,
            update,
        })
    }

    /// Deletes a spec, then removes its links from the table (also when
    /// no spec was stored: the table must not keep links of a spec that is
    /// gone).
    pub fn delete_component_spec(
        &mut self,
        store: &mut impl KeyValue,
        notifier: &mut impl ProviderNotify,
        id: &str,
    ) -> Result<Applied<DeleteSpecResult>, SpecError> {
        let deleted = specs::delete_component_spec(store, id)?;
        let update = self.table.remove_host_spec(notifier, id)?;
        Ok(Applied {
            result: deleted,
            update: Some(update),
        })
    }

    /// Puts a link, then applies the written spec to the table.
    pub fn put_link(
        &mut self,
        store: &mut impl KeyValue,
        notifier: &mut impl ProviderNotify,
        link: Link,
    ) -> Result<Applied<PutLinkResult>, SpecError> {
        let put = specs::put_link(store, &link)?;
        let update = self.apply(notifier, &link.source_id, put.written().as_ref())?;
        Ok(Applied {
            result: put,
            update,
        })
    }

    /// Deletes a link, then applies the written spec to the table.
    pub fn delete_link(
        &mut self,
        store: &mut impl KeyValue,
        notifier: &mut impl ProviderNotify,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<Applied<DeleteLinkResult>, SpecError> {
        let deleted = specs::delete_link(store, source_id, wit_namespace, wit_package, name)?;
        let update = self.apply(notifier, source_id, deleted.written.as_ref())?;
        Ok(Applied {
            result: deleted,
            update,
        })
    }

    /// See [`specs::list_links`].
    pub fn list_links(&self, store: &mut impl KeyValue) -> Result<LinkListing, SpecError> {
        specs::list_links(store)
    }

    /// See [`HostTable::update_host_with_spec`].
    pub fn update_host_with_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport, SpecError> {
        self.table.update_host_with_spec(notifier, id, &spec)
    }

    /// See [`HostTable::apply_stored_spec`].
    pub fn apply_stored_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        value: &[u8],
    ) -> Result<UpdateReport, SpecError> {
        self.table.apply_stored_spec(notifier, id, value)
    }

    /// See [`HostTable::remove_host_spec`].
    pub fn remove_host_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
    ) -> Result<UpdateReport, SpecError> {
        self.table.remove_host_spec(notifier, id)
    }

    /// See [`HostTable::reload_from_store`].
    pub fn reload_from_store(
        &mut self,
        store: &mut impl KeyValue,
    ) -> Result<ReloadReport, SpecError> {
        self.table.reload_from_store(store)
    }

    /// The table, unpacked, by id.
    pub fn snapshot_table(&self) -> Vec<TableEntry> {
        self.table
            .snapshot_table()
            .entries
            .iter()
            .filter_map(|e| e.unpack().ok())
            .collect()
    }

    /// Replaces the table with decoded entries (packed on the way).
    pub fn restore_table(&mut self, entries: Vec<TableEntry>) -> Result<(), SpecError> {
        self.table.restore_table(Snapshot::pack(&entries))
    }
}
