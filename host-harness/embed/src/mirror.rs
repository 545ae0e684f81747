//! The host's copy of the table owner's link table: each id's links in the
//! packed form the plugin reports after every update (snapshot format 1,
//! about 30 bytes a link).
//!
//! It lets the host restore a fresh owner instance after a fault (no change
//! is lost or delivered twice), hand the table to a new build on a swap, and
//! answer `link.get`, status and snapshots without queueing behind the owner
//! — as wasmCloud answers `link.get` from its in-memory table.

use std::collections::BTreeMap;

use spec_model::packed;
use spec_model::{Link, PackedEntry, Snapshot, TableEntry, SNAPSHOT_FORMAT};

/// The table, one packed entry per id with links.
#[derive(Debug, Default)]
pub struct Mirror {
    entries: BTreeMap<String, Packed>,
    links: usize,
    /// Packed bytes and id bytes over all entries.
    bytes: usize,
    /// Bumped by every change, so readers can cache what they derive.
    version: u64,
}

#[derive(Debug)]
struct Packed {
    bytes: Vec<u8>,
    links: usize,
}

impl Mirror {
    /// Sets `id`'s packed links (empty: the id has none).
    pub(crate) fn set(&mut self, id: &str, bytes: Vec<u8>) {
        self.version += 1;
        if let Some(old) = self.entries.remove(id) {
            self.links -= old.links;
            self.bytes -= old.bytes.len() + id.len();
        }
        if bytes.is_empty() {
            return;
        }
        // The plugin wrote these bytes; a count it cannot read is counted as
        // zero (and the entry kept, for the plugin to read back).
        let links = packed::count(&bytes).unwrap_or(0);
        self.links += links;
        self.bytes += bytes.len() + id.len();
        self.entries.insert(id.to_string(), Packed { bytes, links });
    }

    /// Replaces everything with `snapshot`'s entries.
    pub(crate) fn load(&mut self, snapshot: Snapshot) {
        let version = self.version + 1;
        *self = Mirror {
            version,
            ..Mirror::default()
        };
        for entry in snapshot.entries {
            self.set(&entry.id, entry.links);
        }
    }

    /// Changes so far (any change gives a new number).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Ids with links.
    pub fn ids(&self) -> usize {
        self.entries.len()
    }

    /// Links over all ids.
    pub fn links(&self) -> usize {
        self.links
    }

    /// The table's size in its packed form: ids and packed links, bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every link, ordered by source id then as in its spec. Entries that do
    /// not unpack (never written by a sound plugin) are skipped.
    pub fn all_links(&self) -> Vec<Link> {
        let mut out = Vec::with_capacity(self.links);
        for entry in self.entries.values() {
            if let Ok(links) = packed::unpack(&entry.bytes) {
                out.extend(links);
            }
        }
        out
    }

    /// How many links `id` has.
    pub fn count_of(&self, id: &str) -> usize {
        self.entries.get(id).map_or(0, |e| e.links)
    }

    /// `id`'s links.
    pub fn links_of(&self, id: &str) -> Vec<Link> {
        self.entries
            .get(id)
            .and_then(|e| packed::unpack(&e.bytes).ok())
            .unwrap_or_default()
    }

    /// The table in snapshot format 1, ordered by id.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            entries: self
                .entries
                .iter()
                .map(|(id, e)| PackedEntry {
                    id: id.clone(),
                    links: e.bytes.clone(),
                })
                .collect(),
        }
    }

    /// The table unpacked, ordered by id.
    pub fn entries(&self) -> Vec<TableEntry> {
        self.entries
            .iter()
            .map(|(id, e)| TableEntry {
                id: id.clone(),
                links: packed::unpack(&e.bytes).unwrap_or_default(),
            })
            .collect()
    }
}
