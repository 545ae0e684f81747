//! Reading and writing specs in the store (the `specs` export): wasmCloud's
//! link put and delete rules on top of [`KeyValue`].
//!
//! Nothing here keeps state or delivers anything, so a host may run these
//! on any number of instances at once. Every write returns what it wrote
//! ([`Written`]) for the host to apply to its one table.
//!
//! Link puts and deletes are read-modify-write cycles on one key. They write
//! with compare-and-swap at the revision they read and retry from the read
//! when another writer got there first, so concurrent writers can never drop
//! each other's links (the failure behind wasmCloud issue #3260).

use spec_model::json::{decode_spec, encode_spec};
use spec_model::keys::{component_key, id_from_key, COMPONENT_KEY_PREFIX};
use spec_model::validate::{validate_id, validate_link, validate_spec};
use spec_model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, Link, LinkListing, PutLinkResult,
    PutOutcome, SpecError, StoreError, Written, DEFAULT_LINK_NAME,
};

use crate::backend::{Entry, KeyValue};
use crate::prelude::*;

/// How many compare-and-swap attempts a link put or delete makes before it
/// gives up with `RevisionConflict`. The host backs off a random share of a
/// window that doubles to 64 ms after each lost race, so 32 tries outlast
/// another host writing the same key back to back for about a second; the
/// call's deadline (5 s by default) and import cap bound them anyway. (10
/// tries lost, now and then, to a second host writing one component 100
/// times in a row.)
pub const MAX_CAS_TRIES: usize = 32;

/// The text of wasmCloud's error for a put that would re-point a link.
pub const CONFLICT_MESSAGE: &str = "link already exists with different target, consider deleting the existing link or using a different link name";

/// Checks a link against the rules, touching nothing.
pub fn check_link(link: &Link) -> Result<(), SpecError> {
    validate_link(link)
}

/// Reads `id`'s spec: `None` when absent, `Decode` when corrupt (the stored
/// value is left as it is).
pub fn get_component_spec(
    store: &mut impl KeyValue,
    id: &str,
) -> Result<Option<ComponentSpecification>, SpecError> {
    validate_id(id)?;
    Ok(read_spec(store, id)?.map(|(spec, _)| spec))
}

/// The value stored under `id` as stored, with its revision; not decoded
/// (contract 0.3's `get-component-spec`: the caller decodes it, so a read
/// costs one parse).
pub fn get_stored(store: &mut impl KeyValue, id: &str) -> Result<Option<Entry>, SpecError> {
    validate_id(id)?;
    Ok(store.get(&component_key(id))?)
}

/// Decodes `value` (wasmCloud's JSON, as a caller hands it in), then stores
/// it as [`store_component_spec`] does. A value that does not decode fails
/// with `decode` naming `id`, and nothing is written.
pub fn store_spec_json(
    store: &mut impl KeyValue,
    id: &str,
    value: &[u8],
) -> Result<Written, SpecError> {
    validate_id(id)?;
    let spec = decode_spec(value).map_err(|message| SpecError::Decode {
        id: id.to_string(),
        message,
    })?;
    store_component_spec(store, id, &spec)
}

/// Validates and writes `spec` under `id` unconditionally.
pub fn store_component_spec(
    store: &mut impl KeyValue,
    id: &str,
    spec: &ComponentSpecification,
) -> Result<Written, SpecError> {
    validate_id(id)?;
    validate_spec(spec)?;
    let value = encode_spec(spec);
    let revision = store.set(&component_key(id), value.clone())?;
    Ok(Written { revision, value })
}

/// Deletes `id`'s spec; absent is fine and writes nothing.
///
/// A spec that still has links is first written without them (url kept,
/// compare-and-swap) and only then deleted: wasmCloud v1.9 hosts ignore
/// delete and purge markers in the bucket but apply a spec without links,
/// so every host of a mixed lattice drops the links. A value that does not
/// decode is deleted as it is.
pub fn delete_component_spec(
    store: &mut impl KeyValue,
    id: &str,
) -> Result<DeleteSpecResult, SpecError> {
    validate_id(id)?;
    let key = component_key(id);
    for _ in 0..MAX_CAS_TRIES {
        let Some(entry) = store.get(&key)? else {
            return Ok(DeleteSpecResult {
                existed: false,
                revision: None,
            });
        };
        if let Ok(spec) = decode_spec(&entry.value) {
            if !spec.links.is_empty() {
                let emptied = encode_spec(&ComponentSpecification {
                    url: spec.url,
                    links: Vec::new(),
                });
                match store.compare_and_swap(&key, emptied, Some(entry.revision)) {
                    Ok(_) => {}
                    Err(StoreError::RevisionMismatch(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let revision = store.delete(&key)?;
        return Ok(DeleteSpecResult {
            existed: true,
            revision: Some(revision),
        });
    }
    Err(revision_conflict(&key))
}

/// Adds `link` to its source's spec, or replaces the link with the same
/// source, target, namespace, package and name; rejects a link that would
/// re-point a name's interface to another target (`Conflict`).
pub fn put_link(store: &mut impl KeyValue, link: &Link) -> Result<PutLinkResult, SpecError> {
    validate_link(link)?;
    crate::inject_fault(&link.source_id, "poison-pill");
    if cfg!(feature = "fault-injection") && link.source_id == "poison-loop" {
        // Test-only: a plugin stuck looping over its imports, which no CPU
        // budget stops; the host's deadline and import cap must.
        loop {
            store.get(&component_key(&link.source_id))?;
        }
    }
    let id = &link.source_id;
    let key = component_key(id);
    for _ in 0..MAX_CAS_TRIES {
        let (mut spec, expected) = match read_spec(store, id)? {
            Some((spec, revision)) => (spec, Some(revision)),
            None => (ComponentSpecification::default(), None),
        };
        let outcome = apply_put(&mut spec.links, link)?;
        if let (PutOutcome::Unchanged, Some(revision)) = (outcome, expected) {
            // Nothing to write: keep the revision we read.
            return Ok(PutLinkResult {
                outcome,
                revision,
                value: None,
            });
        }
        let value = encode_spec(&spec);
        match store.compare_and_swap(&key, value.clone(), expected) {
            Ok(revision) => {
                return Ok(PutLinkResult {
                    outcome,
                    revision,
                    value: Some(value),
                })
            }
            Err(StoreError::RevisionMismatch(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(revision_conflict(&key))
}

/// Removes every link of `source_id` with that namespace, package and name
/// (`None` → `default`). Nothing matching (or no spec) is a success that
/// writes nothing; otherwise the spec is written back, even with no links
/// left (its url kept).
pub fn delete_link(
    store: &mut impl KeyValue,
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
                written: None,
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
                written: None,
            });
        }
        let value = encode_spec(&ComponentSpecification {
            url: spec.url,
            links: kept,
        });
        match store.compare_and_swap(&key, value.clone(), Some(revision)) {
            Ok(revision) => {
                return Ok(DeleteLinkResult {
                    removed,
                    written: Some(Written { revision, value }),
                })
            }
            Err(StoreError::RevisionMismatch(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(revision_conflict(&key))
}

/// Links of every decodable stored spec, by id then as stored; ids whose
/// value does not decode are listed apart and left untouched. Specs are read
/// one at a time so only the listing itself grows with the lattice.
pub fn list_links(store: &mut impl KeyValue) -> Result<LinkListing, SpecError> {
    let mut links = Vec::new();
    let undecodable = for_each_spec(store, |_, spec| links.extend(spec.links))?;
    Ok(LinkListing { links, undecodable })
}

/// Reads and decodes `id`'s spec with its revision.
pub(crate) fn read_spec(
    store: &mut impl KeyValue,
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
pub(crate) fn for_each_spec(
    store: &mut impl KeyValue,
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

/// Applies a put of `link` to `links` in place (see [`put_link`]).
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

#[cfg(test)]
mod tests;
