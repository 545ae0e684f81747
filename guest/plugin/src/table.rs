//! The host-local link table: component id → the links of its current spec.
//!
//! A wasmCloud host keeps this to decide which links are new when a spec
//! changes, and so which providers to tell. Each id's links are kept once, in
//! spec order and in the packed form of [`crate::compact`], beside an index
//! from a link's 64-bit hash to the position of the first link with that
//! hash. A lookup compares the link at that position token by token and only
//! on a real collision (a different link with the same hash) scans the id's
//! links: always correct, O(1) in practice, one copy of each link. Diffing a
//! spec against the table is therefore O(n).

use alloc::collections::BTreeMap;

use spec_model::hash::{FxHashMap, FxHashSet};
use spec_model::packed::{hash_tokens, link_hash, LinkFields, Packed, Token};
use spec_model::validate::validate_id;
use spec_model::{
    DeliveryFailure, DeliveryKind, ImportLink, Link, PackedEntry, Snapshot, SpecError,
    UpdateReport, SNAPSHOT_FORMAT,
};

use crate::backend::ProviderNotify;
use crate::prelude::*;

/// The links of one id, packed, with their hash index.
#[derive(Clone, Debug, Default)]
struct IdLinks {
    packed: Packed,
    /// Link hash → position of the first link with that hash.
    index: FxHashMap<u64, usize>,
}

impl IdLinks {
    fn new<L: LinkFields>(links: &[L]) -> Self {
        let mut index = FxHashMap::with_capacity_and_hasher(links.len(), Default::default());
        for (pos, link) in links.iter().enumerate() {
            index.entry(hash_tokens(link.tokens())).or_insert(pos);
        }
        Self {
            packed: Packed::new(links),
            index,
        }
    }

    /// The entry of links already packed (a restored snapshot).
    fn from_packed(packed: Packed) -> Self {
        let mut index = FxHashMap::with_capacity_and_hasher(packed.len(), Default::default());
        for pos in 0..packed.len() {
            if let Some(tokens) = packed.tokens(pos) {
                index.entry(hash_tokens(tokens)).or_insert(pos);
            }
        }
        Self { packed, index }
    }

    fn same<'a>(&self, pos: usize, tokens: impl Iterator<Item = Token<'a>>) -> bool {
        self.packed.tokens(pos).is_some_and(|t| t.eq(tokens))
    }

    /// Position of the first link equal to the one `tokens` describe (whose
    /// hash is `hash`).
    fn position<'a, I>(&self, tokens: I, hash: u64) -> Option<usize>
    where
        I: Iterator<Item = Token<'a>> + Clone,
    {
        let pos = *self.index.get(&hash)?;
        if self.same(pos, tokens.clone()) {
            // The first link with this hash is the first equal one: any
            // earlier equal link would have had the same hash.
            return Some(pos);
        }
        // Another link owns this hash: a real collision. Rare, so a scan is
        // fine.
        (0..self.packed.len()).find(|&i| self.same(i, tokens.clone()))
    }

    fn contains_link<L: LinkFields>(&self, link: &L, hash: u64) -> bool {
        self.position(link.tokens(), hash).is_some()
    }

    /// Positions of the links without repeats (first occurrence kept).
    fn distinct(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.packed.len()).filter(|&i| {
            self.packed
                .tokens(i)
                .is_some_and(|t| self.position(t.clone(), hash_tokens(t)) == Some(i))
        })
    }

    fn decoded(&self) -> Vec<Link> {
        self.packed.links()
    }

    /// Whether link `i` of `self` is among `other`'s links.
    fn held_by(&self, i: usize, other: &IdLinks) -> bool {
        self.packed
            .tokens(i)
            .is_some_and(|t| other.position(t.clone(), hash_tokens(t)).is_some())
    }
}

/// What [`LinkTable::update_at`] changed: an [`UpdateReport`] whose added
/// links are positions in the spec's links.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Positions of the added links in the spec's links (and the entry's).
    pub added_at: Vec<usize>,
    /// Links the table held for the id that the new spec lacks.
    pub removed: Vec<Link>,
    /// Deliveries that succeeded.
    pub delivered: u32,
    /// Deliveries that failed.
    pub failures: Vec<DeliveryFailure>,
    /// The id's links after the update, packed (empty: none).
    pub entry: Vec<u8>,
}

/// The host-local link table.
#[derive(Clone, Debug, Default)]
pub struct LinkTable {
    entries: FxHashMap<String, IdLinks>,
}

impl LinkTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The links held for `id`, in spec order (empty when none).
    pub fn links_of(&self, id: &str) -> Vec<Link> {
        self.entries
            .get(id)
            .map(IdLinks::decoded)
            .unwrap_or_default()
    }

    /// Number of ids with links.
    pub fn id_count(&self) -> usize {
        self.entries.len()
    }

    /// Number of links over all ids.
    pub fn link_count(&self) -> usize {
        self.entries.values().map(|e| e.packed.len()).sum()
    }

    /// Whether an equal link is held under `id`.
    pub fn holds(&self, id: &str, link: &Link) -> bool {
        self.holds_hashed(id, link, link_hash(link))
    }

    fn holds_hashed<L: LinkFields>(&self, id: &str, link: &L, hash: u64) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| e.contains_link(link, hash))
    }

    /// Makes `links` the links of `id`, delivering what changed:
    ///
    /// 1. a link is new unless an equal link is held under its `source_id` or
    ///    under its `target` (repeats within `links` count once);
    /// 2. links held for `id` that `links` lacks are delivered as deletes,
    ///    then new links as puts (deletes first, so a replaced link ends up in
    ///    force at a provider that keys links by source and name), each to its
    ///    source and to its target when that id is a local provider (once when
    ///    they are the same);
    /// 3. the table then holds exactly `links` for `id` (none → no entry);
    /// 4. delivery errors are recorded in the report, never returned.
    ///
    /// `notifier.local_providers()` is asked once, and only if there is
    /// something to deliver. The report's `entry` is `links` packed.
    pub fn update<L: LinkFields>(
        &mut self,
        id: &str,
        links: &[L],
        notifier: &mut impl ProviderNotify,
    ) -> UpdateReport {
        let change = self.update_at(id, links, notifier);
        let mut added = Vec::with_capacity(change.added_at.len());
        added.extend(
            change
                .added_at
                .iter()
                .filter_map(|&pos| links.get(pos).map(LinkFields::to_link)),
        );
        UpdateReport {
            added,
            removed: change.removed,
            delivered: change.delivered,
            failures: change.failures,
            entry: change.entry,
        }
    }

    /// [`LinkTable::update`], with the added links as positions in `links`
    /// (and so in the report's `entry`) instead of copies: what contract
    /// 0.3 returns, so that no link is copied for a report.
    pub fn update_at<L: LinkFields>(
        &mut self,
        id: &str,
        links: &[L],
        notifier: &mut impl ProviderNotify,
    ) -> Change {
        let new = IdLinks::new(links);

        // Rule 1 against the table as it was (which includes `id`'s old entry).
        let added_at: Vec<usize> = links
            .iter()
            .enumerate()
            .filter(|(pos, link)| {
                let hash = hash_tokens(link.tokens());
                new.position(link.tokens(), hash) == Some(*pos)
                    && !self.holds_hashed(link.source_id(), *link, hash)
                    && !self.holds_hashed(link.target(), *link, hash)
            })
            .map(|(pos, _)| pos)
            .collect();

        let removed: Vec<Link> = match self.entries.remove(id) {
            None => Vec::new(),
            Some(old) => old
                .distinct()
                .filter(|&i| !old.held_by(i, &new))
                .filter_map(|i| old.packed.link(i))
                .collect(),
        };

        let mut change = Change {
            added_at,
            removed,
            ..Change::default()
        };
        if !change.added_at.is_empty() || !change.removed.is_empty() {
            let locals: FxHashSet<String> = notifier.local_providers().into_iter().collect();
            let mut outcome = Outcome {
                delivered: &mut change.delivered,
                failures: &mut change.failures,
            };
            for link in change.removed.iter() {
                deliver(&locals, notifier, DeliveryKind::Delete, link, &mut outcome);
            }
            for link in change.added_at.iter().filter_map(|&pos| links.get(pos)) {
                deliver(&locals, notifier, DeliveryKind::Put, link, &mut outcome);
            }
        }

        if !new.packed.is_empty() {
            change.entry = new.packed.to_bytes();
            self.entries.insert(id.to_string(), new);
        }
        change
    }

    /// Drops `id`'s entry and delivers each of its links as a delete to its
    /// source and target when local.
    pub fn remove(&mut self, id: &str, notifier: &mut impl ProviderNotify) -> UpdateReport {
        let removed: Vec<Link> = match self.entries.remove(id) {
            None => Vec::new(),
            Some(old) => old.distinct().filter_map(|i| old.packed.link(i)).collect(),
        };
        let mut report = UpdateReport::default();
        if !removed.is_empty() {
            let locals: FxHashSet<String> = notifier.local_providers().into_iter().collect();
            let mut outcome = Outcome {
                delivered: &mut report.delivered,
                failures: &mut report.failures,
            };
            for link in &removed {
                deliver(&locals, notifier, DeliveryKind::Delete, link, &mut outcome);
            }
        }
        report.removed = removed;
        report
    }

    /// The links held for `id`, packed (empty when none).
    pub fn packed_of(&self, id: &str) -> Vec<u8> {
        self.entries
            .get(id)
            .map(|e| e.packed.to_bytes())
            .unwrap_or_default()
    }

    /// The whole table in snapshot format 1, sorted by id.
    pub fn snapshot(&self) -> Snapshot {
        let mut entries: Vec<PackedEntry> = self
            .entries
            .iter()
            .map(|(id, e)| PackedEntry {
                id: id.clone(),
                links: e.packed.to_bytes(),
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Snapshot {
            format: SNAPSHOT_FORMAT,
            entries,
        }
    }

    /// Replaces the table with `snapshot` after checking all of it: a format
    /// other than 1, a bad or repeated id, or an entry that does not decode
    /// fails with `InvalidSnapshot` and leaves the table untouched. Entries
    /// without links are dropped.
    pub fn restore(&mut self, snapshot: Snapshot) -> Result<(), SpecError> {
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SpecError::InvalidSnapshot(format!(
                "snapshot format {} is not one this build reads (it reads {SNAPSHOT_FORMAT})",
                snapshot.format
            )));
        }
        let mut seen = FxHashSet::default();
        let mut decoded = Vec::with_capacity(snapshot.entries.len());
        for entry in &snapshot.entries {
            validate_id(&entry.id)
                .map_err(|e| SpecError::InvalidSnapshot(format!("entry {:?}: {e}", entry.id)))?;
            if !seen.insert(entry.id.as_str()) {
                return Err(SpecError::InvalidSnapshot(format!(
                    "id {:?} appears twice",
                    entry.id
                )));
            }
            // Links are taken as they are: the table mirrors stored specs,
            // and other writers may have stored links this plugin would
            // refuse to write. Refusing them here would make a snapshot
            // impossible to restore, and a host unable to replace a
            // crashed instance.
            let packed = if entry.links.is_empty() {
                None
            } else {
                Some(Packed::from_bytes(&entry.links).map_err(|m| {
                    SpecError::InvalidSnapshot(format!("entry {:?}: {m}", entry.id))
                })?)
            };
            decoded.push(packed);
        }
        drop(seen);
        // The old table is dropped first so that both never sit in memory
        // together.
        self.entries = FxHashMap::default();
        let mut map =
            FxHashMap::with_capacity_and_hasher(snapshot.entries.len(), Default::default());
        for (entry, packed) in snapshot.entries.into_iter().zip(decoded) {
            if let Some(packed) = packed.filter(|p| !p.is_empty()) {
                map.insert(entry.id, IdLinks::from_packed(packed));
            }
        }
        self.entries = map;
        Ok(())
    }

    /// Sets `id`'s links without diffing or delivering (for building a table
    /// from the store); no links → no entry.
    pub(crate) fn insert_trusted(&mut self, id: String, links: &[Link]) {
        if links.is_empty() {
            self.entries.remove(&id);
        } else {
            self.entries.insert(id, IdLinks::new(links));
        }
    }
}

/// Where [`deliver`] counts its outcomes.
struct Outcome<'a> {
    delivered: &'a mut u32,
    failures: &'a mut Vec<DeliveryFailure>,
}

/// Delivers `link` to its source and its target when they are local (once
/// when they are the same id), counting successes and keeping failures.
fn deliver<L: LinkFields>(
    locals: &FxHashSet<String>,
    notifier: &mut impl ProviderNotify,
    kind: DeliveryKind,
    link: &L,
    outcome: &mut Outcome<'_>,
) {
    let (source, target) = (link.source_id(), link.target());
    let mut providers = Vec::with_capacity(2);
    if locals.contains(source) {
        providers.push(source);
    }
    if target != source && locals.contains(target) {
        providers.push(target);
    }
    if providers.is_empty() {
        return;
    }
    // An owned link only for a link that is delivered somewhere.
    let link = link.to_link();
    let link = &link;
    for provider in providers {
        let result = match kind {
            DeliveryKind::Put => notifier.link_put(provider, link),
            DeliveryKind::Delete => notifier.link_delete(provider, link),
        };
        match result {
            Ok(()) => *outcome.delivered = outcome.delivered.saturating_add(1),
            Err(error) => outcome.failures.push(DeliveryFailure {
                provider_id: provider.to_string(),
                kind,
                link: link.clone(),
                error,
            }),
        }
    }
}

/// The import-link table of `links`: one row per (name, interface), the
/// later link winning, sorted by name then `ns:pkg/interface`.
pub fn import_links(links: &[Link]) -> Vec<ImportLink> {
    let mut rows: BTreeMap<(&str, String), &str> = BTreeMap::new();
    for link in links {
        for iface in &link.interfaces {
            let interface = format!("{}:{}/{}", link.wit_namespace, link.wit_package, iface);
            rows.insert((link.name.as_str(), interface), link.target.as_str());
        }
    }
    rows.into_iter()
        .map(|((name, interface), target)| ImportLink {
            name: name.to_string(),
            interface,
            target: target.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
