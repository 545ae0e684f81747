//! The `host-table` export: the host-local link table and what it does when
//! a spec changes. One instance of the plugin owns the table; the host
//! feeds it every change seen in the store, one at a time.

use spec_model::borrowed::{decode_spec_ref, SpecRef};
use spec_model::validate::{validate_id, validate_spec};
use spec_model::{
    ComponentSpecification, ImportLink, ReloadReport, Snapshot, SpecError, UpdateReport,
    SNAPSHOT_FORMAT,
};

use crate::backend::{KeyValue, ProviderNotify};
use crate::prelude::*;
use crate::specs::for_each_spec;
use crate::table::{import_links, Change, LinkTable};

/// The snapshot formats this build restores; the first is the one it writes.
#[cfg(not(feature = "foreign-snapshot"))]
pub const SNAPSHOT_FORMATS: &[u32] = &[SNAPSHOT_FORMAT];

/// The snapshot formats this build restores (test build that reads none of
/// the real ones, to exercise a host refusing a build that cannot take over
/// its table).
#[cfg(feature = "foreign-snapshot")]
pub const SNAPSHOT_FORMATS: &[u32] = &[99];

/// The table and its operations.
#[derive(Clone, Debug, Default)]
pub struct HostTable {
    table: LinkTable,
}

impl HostTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table itself.
    pub fn table(&self) -> &LinkTable {
        &self.table
    }

    /// Applies a stored value (wasmCloud JSON) of `id` as its current spec,
    /// as a host following the bucket does. A value that does not decode
    /// changes nothing. Stored links are taken as they are (other writers may
    /// have stored links this plugin would refuse to write): every host's
    /// table must hold the same thing for the same stored spec.
    pub fn apply_stored_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        value: &[u8],
    ) -> Result<UpdateReport, SpecError> {
        let spec = decoded(id, value)?;
        Ok(self.table.update(id, &spec.links, notifier))
    }

    /// [`HostTable::apply_stored_spec`] with the added links as positions
    /// in the value's links (contract 0.3); with `validate`, the links must
    /// also pass the link rules (a spec handed in rather than read).
    pub fn apply_stored_spec_at(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        value: &[u8],
        validate: bool,
    ) -> Result<Change, SpecError> {
        let spec = decoded(id, value)?;
        if validate {
            validate_spec(&spec.to_spec())?;
        }
        Ok(self.table.update_at(id, &spec.links, notifier))
    }

    /// Applies `spec` as `id`'s current spec (links validated first).
    pub fn update_host_with_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
        spec: &ComponentSpecification,
    ) -> Result<UpdateReport, SpecError> {
        validate_id(id)?;
        validate_spec(spec)?;
        crate::inject_fault(id, "poison-apply");
        Ok(self.table.update(id, &spec.links, notifier))
    }

    /// Applies the deletion of `id`'s spec.
    pub fn remove_host_spec(
        &mut self,
        notifier: &mut impl ProviderNotify,
        id: &str,
    ) -> Result<UpdateReport, SpecError> {
        validate_id(id)?;
        Ok(self.table.remove(id, notifier))
    }

    /// `id`'s import-link table.
    pub fn import_links(&self, id: &str) -> Vec<ImportLink> {
        import_links(&self.table.links_of(id))
    }

    /// Replaces the table with every decodable stored spec, delivering
    /// nothing (for a host whose providers are already linked). The new table
    /// is built beside the old one, so a store failure leaves the old intact.
    pub fn reload_from_store(
        &mut self,
        store: &mut impl KeyValue,
    ) -> Result<ReloadReport, SpecError> {
        let mut table = LinkTable::new();
        let (mut loaded, mut links) = (0usize, 0usize);
        let undecodable = for_each_spec(store, |id, spec| {
            loaded += 1;
            links += spec.links.len();
            table.insert_trusted(id, &spec.links);
        })?;
        self.table = table;
        Ok(ReloadReport {
            loaded: saturating_u32(loaded),
            links: saturating_u32(links),
            undecodable,
        })
    }

    /// The whole table.
    pub fn snapshot_table(&self) -> Snapshot {
        self.table.snapshot()
    }

    /// Replaces the table with a snapshot; see [`LinkTable::restore`].
    pub fn restore_table(&mut self, snapshot: Snapshot) -> Result<(), SpecError> {
        if !SNAPSHOT_FORMATS.contains(&snapshot.format) {
            return Err(SpecError::InvalidSnapshot(format!(
                "snapshot format {} is not one this build reads ({SNAPSHOT_FORMATS:?})",
                snapshot.format
            )));
        }
        if cfg!(feature = "fault-injection") {
            for entry in &snapshot.entries {
                crate::inject_fault(&entry.id, "poison-restore");
            }
        }
        self.table.restore(snapshot)
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The stored value of `id`, decoded without copying its strings (after
/// the id check and the test-only faults of applying a value).
fn decoded<'a>(id: &str, value: &'a [u8]) -> Result<SpecRef<'a>, SpecError> {
    validate_id(id)?;
    crate::inject_fault(id, "poison-apply");
    crate::inject_spin(id);
    decode_spec_ref(value).map_err(|message| SpecError::Decode {
        id: id.to_string(),
        message,
    })
}
