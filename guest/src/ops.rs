//! The plugin's operations: the spec store rules on top of [`Store`], and the
//! host-local table on top of [`Notifier`].
//!
//! [`Plugin`] holds only the link table; the store and the notifier are passed
//! to each call, so the same code runs against the imported WIT functions in
//! the component and against [`crate::memory`] natively.
//!
//! Link puts and deletes are read-modify-write cycles on one key. They write
//! with compare-and-swap at the revision they read and retry from the read
//! when another writer got there first, so concurrent writers can never drop
//! each other's links (the failure behind wasmCloud issue #3260).

use crate::backend::{Notifier, Store};
use crate::error::{SpecError, StoreError};
use crate::keys::{component_key, id_from_key, COMPONENT_KEY_PREFIX};
use crate::model::{decode_spec, encode_spec, ComponentSpecification, Link, DEFAULT_LINK_NAME};
use crate::report::{
    DeleteLinkResult, DeleteSpecResult, LinkListing, PutLinkResult, PutOutcome, ReloadReport,
    StoreResult, TableEntry, UpdateReport,
};
use crate::table::LinkTable;
use crate::validate::{validate_id, validate_link, validate_spec};

/// How many compare-and-swap attempts a link put or delete makes before it
/// gives up with `RevisionConflict`.
pub const MAX_CAS_TRIES: usize = 10;

/// The text of wasmCloud's error for a put that would re-point a link.
pub const CONFLICT_MESSAGE: &str = "link already exists with different target, consider deleting the existing link or using a different link name";

/// The plugin's state (the host-local link table) and its operations.
#[derive(Clone, Debug, Default)]
pub struct Plugin {
    table: LinkTable,
}

impl Plugin {
    /// A plugin with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The host-local link table.
    pub fn table(&self) -> &LinkTable {
        &self.table
    }

    /// Reads `id`'s spec: `None` when absent, `Decode` when corrupt (the
    /// stored value is left as it is).
    pub fn get_component_spec(
        &self,
        store: &mut impl Store,
        id: &str,
    ) -> Result<Option<ComponentSpecification>, SpecError> {
        validate_id(id)?;
        Ok(read_spec(store, id)?.map(|(spec, _)| spec))
    }

    /// Validates and writes `spec` under `id` unconditionally, then applies it
    /// to the table.
    pub fn store_component_spec(
        &mut self,
        store: &mut impl Store,
        notifier: &mut impl Notifier,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<StoreResult, SpecError> {
        validate_id(id)?;
        validate_spec(&spec)?;
        let revision = store.set(&component_key(id), encode_spec(&spec))?;
        let update = self.table.update(id, spec.links, notifier);
        Ok(StoreResult { revision, update })
    }

    /// Deletes `id`'s spec (absent is fine) and its table entry, delivering
    /// its links as deletes.
    pub fn delete_component_spec(
        &mut self,
        store: &mut impl Store,
        notifier: &mut impl Notifier,
        id: &str,
    ) -> Result<DeleteSpecResult, SpecError> {
        validate_id(id)?;
        let key = component_key(id);
        let existed = store.get(&key)?.is_some();
        store.delete(&key)?;
        let update = self.table.remove(id, notifier);
        Ok(DeleteSpecResult { existed, update })
    }

    /// Applies `spec` to the table as `id`'s current spec; no store access.
    pub fn update_host_with_spec(
        &mut self,
        notifier: &mut impl Notifier,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport, SpecError> {
        validate_id(id)?;
        validate_spec(&spec)?;
        Ok(self.table.update(id, spec.links, notifier))
    }

    /// Applies a stored value (wasmCloud JSON) of `id` to the table, as a
    /// host following the bucket does with other hosts' writes. A value that
    /// does not decode changes nothing. Stored links are taken as they are,
    /// as `put_link` and `reload_from_store` take them: every host's table
    /// must hold the same thing for the same stored spec.
    pub fn apply_stored_spec(
        &mut self,
        notifier: &mut impl Notifier,
        id: &str,
        value: &[u8],
    ) -> Result<UpdateReport, SpecError> {
        validate_id(id)?;
        let spec = decode_spec(value).map_err(|message| SpecError::Decode {
            id: id.to_string(),
            message,
        })?;
        Ok(self.table.update(id, spec.links, notifier))
    }

    /// Applies the deletion of `id`'s spec to the table; no store access.
    pub fn remove_host_spec(
        &mut self,
        notifier: &mut impl Notifier,
        id: &str,
    ) -> Result<UpdateReport, SpecError> {
        validate_id(id)?;
        Ok(self.table.remove(id, notifier))
    }

    /// Adds `link` to its source's spec, or replaces the link with the same
    /// source, target, namespace, package and name; rejects a link that would
    /// re-point a name's interface to another target (`Conflict`).
    pub fn put_link(
        &mut self,
        store: &mut impl Store,
        notifier: &mut impl Notifier,
        link: Link,
    ) -> Result<PutLinkResult, SpecError> {
        validate_link(&link)?;
        let id = link.source_id.clone();
        let key = component_key(&id);
        for _ in 0..MAX_CAS_TRIES {
            let (mut spec, expected) = match read_spec(store, &id)? {
                Some((spec, revision)) => (spec, Some(revision)),
                None => (ComponentSpecification::default(), None),
            };
            let outcome = apply_put(&mut spec.links, &link)?;
            let revision = match (outcome, expected) {
                // Nothing to write: keep the revision we read.
                (PutOutcome::Unchanged, Some(revision)) => revision,
                _ => match store.compare_and_swap(&key, encode_spec(&spec), expected) {
                    Ok(revision) => revision,
                    Err(StoreError::RevisionMismatch(_)) => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            let update = self.table.update(&id, spec.links, notifier);
            return Ok(PutLinkResult {
                outcome,
                revision,
                update,
            });
        }
        Err(revision_conflict(&key))
    }

    /// Removes every link of `source_id` with that namespace, package and
    /// name (`None` → `default`). Nothing matching (or no spec) is a success
    /// that writes nothing; otherwise the spec is written back, even with no
    /// links left (its url kept), and the host table updated.
    pub fn delete_link(
        &mut self,
        store: &mut impl Store,
        notifier: &mut impl Notifier,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<DeleteLinkResult, SpecError> {
        validate_id(source_id)?;
        if wit_namespace.is_empty() {
            return Err(SpecError::InvalidLink("wit_namespace is empty".into()));
        }
        if wit_package.is_empty() {
            return Err(SpecError::InvalidLink("wit_package is empty".into()));
        }
        let name = name.unwrap_or(DEFAULT_LINK_NAME);
        let key = component_key(source_id);
        for _ in 0..MAX_CAS_TRIES {
            let Some((spec, revision)) = read_spec(store, source_id)? else {
                return Ok(DeleteLinkResult {
                    removed: Vec::new(),
                    update: None,
                    revision: None,
                });
            };
            let (removed, kept): (Vec<Link>, Vec<Link>) = spec.links.into_iter().partition(|l| {
                l.source_id == source_id
                    && l.wit_namespace == wit_namespace
                    && l.wit_package == wit_package
                    && l.name == name
            });
            if removed.is_empty() {
                return Ok(DeleteLinkResult {
                    removed,
                    update: None,
                    revision: None,
                });
            }
            let spec = ComponentSpecification {
                url: spec.url,
                links: kept,
            };
            match store.compare_and_swap(&key, encode_spec(&spec), Some(revision)) {
                Ok(written) => {
                    let update = self.table.update(source_id, spec.links, notifier);
                    return Ok(DeleteLinkResult {
                        removed,
                        update: Some(update),
                        revision: Some(written),
                    });
                }
                Err(StoreError::RevisionMismatch(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(revision_conflict(&key))
    }

    /// Links of every decodable stored spec, by id then as stored; ids whose
    /// value does not decode are listed apart and left untouched. Specs are
    /// read one at a time so only the listing itself grows with the lattice.
    pub fn list_links(&self, store: &mut impl Store) -> Result<LinkListing, SpecError> {
        let mut links = Vec::new();
        let undecodable = for_each_spec(store, |_, spec| links.extend(spec.links))?;
        Ok(LinkListing { links, undecodable })
    }

    /// Replaces the table with every decodable stored spec, delivering
    /// nothing (for a host whose providers are already linked). The new table
    /// is built beside the old one, so a store failure leaves the old intact.
    pub fn reload_from_store(&mut self, store: &mut impl Store) -> Result<ReloadReport, SpecError> {
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

    /// The table, sorted by id.
    pub fn snapshot_table(&self) -> Vec<TableEntry> {
        self.table.snapshot()
    }

    /// Replaces the table with a snapshot; see [`LinkTable::restore`].
    pub fn restore_table(&mut self, entries: Vec<TableEntry>) -> Result<(), SpecError> {
        self.table.restore(entries)
    }
}

/// Reads and decodes `id`'s spec with its revision.
fn read_spec(
    store: &mut impl Store,
    id: &str,
) -> Result<Option<(ComponentSpecification, u64)>, SpecError> {
    let Some(entry) = store.get(&component_key(id))? else {
        return Ok(None);
    };
    match decode_spec(&entry.value) {
        Ok(spec) => Ok(Some((spec, entry.revision))),
        Err(message) => Err(SpecError::Decode {
            id: id.to_string(),
            message,
        }),
    }
}

/// Calls `f` with every decodable stored spec, in id order, and returns the
/// ids that do not decode. A key whose id breaks the id rules cannot be a spec
/// this plugin could ever address, so it counts as undecodable too. Keys gone
/// between list and get are skipped.
fn for_each_spec(
    store: &mut impl Store,
    mut f: impl FnMut(String, ComponentSpecification),
) -> Result<Vec<String>, SpecError> {
    let mut ids: Vec<String> = store
        .list_keys(COMPONENT_KEY_PREFIX)?
        .iter()
        .filter_map(|k| id_from_key(k))
        .map(str::to_string)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut undecodable = Vec::new();
    for id in ids {
        if validate_id(&id).is_err() {
            undecodable.push(id);
            continue;
        }
        match read_spec(store, &id) {
            Ok(Some((spec, _))) => f(id, spec),
            Ok(None) => {}
            Err(SpecError::Decode { .. }) => undecodable.push(id),
            Err(e) => return Err(e),
        }
    }
    Ok(undecodable)
}

/// Applies a put of `link` to `links` in place (see [`Plugin::put_link`]).
fn apply_put(links: &mut Vec<Link>, link: &Link) -> Result<PutOutcome, SpecError> {
    let same_name = |e: &Link| {
        e.source_id == link.source_id
            && e.wit_namespace == link.wit_namespace
            && e.wit_package == link.wit_package
            && e.name == link.name
    };
    if links
        .iter()
        .any(|e| same_name(e) && e.target != link.target && e.interfaces_overlap(link))
    {
        return Err(SpecError::Conflict(CONFLICT_MESSAGE.to_string()));
    }
    match links
        .iter_mut()
        .find(|e| same_name(e) && e.target == link.target)
    {
        Some(existing) if existing == link => Ok(PutOutcome::Unchanged),
        Some(existing) => {
            *existing = link.clone();
            Ok(PutOutcome::Replaced)
        }
        None => {
            links.push(link.clone());
            Ok(PutOutcome::Appended)
        }
    }
}

fn revision_conflict(key: &str) -> SpecError {
    SpecError::RevisionConflict(format!(
        "key {key} was changed by other writers during each of {MAX_CAS_TRIES} compare-and-swap \
         tries; nothing was written"
    ))
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
