//! What the contract's exported functions return (WIT `specs` and
//! `host-table` records), as plain data.
//!
//! Results of the `specs` functions say what was stored: the host hands the
//! written bytes to its one table owner (`host-table`), so store work can
//! run on any number of instances while the table has a single writer.
//! Results of the `host-table` functions say what changed, not everything
//! that went in: new and removed links, how many deliveries were made and
//! which failed, and the id's links after the update in packed form (the
//! host's copy for restoring a fresh instance and for answering reads).

use serde::{Deserialize, Serialize};

use crate::error::NotifyError;
use crate::link::Link;
use crate::packed;
use crate::prelude::*;

/// A value a call wrote to the store, with its revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Written {
    /// The revision written.
    pub revision: u64,
    /// The bytes written (wasmCloud's JSON).
    pub value: Vec<u8>,
}

/// How a link put changed the stored specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// Added after the existing links.
    Appended,
    /// Replaced the link with the same source, target, namespace, package
    /// and name, in place.
    Replaced,
    /// An equal link was already stored; nothing was written.
    Unchanged,
}

/// Result of `put-link`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PutLinkResult {
    /// What happened to the stored spec.
    pub outcome: PutOutcome,
    /// The revision of the source's spec after the call (the one read when
    /// nothing was written).
    pub revision: u64,
    /// The bytes written; `None` when the outcome is `Unchanged`.
    pub value: Option<Vec<u8>>,
}

impl PutLinkResult {
    /// What the call stored, if anything.
    pub fn written(&self) -> Option<Written> {
        self.value.as_ref().map(|value| Written {
            revision: self.revision,
            value: value.clone(),
        })
    }
}

/// Result of `delete-link`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteLinkResult {
    /// The links removed (more than one only when the stored spec held
    /// duplicates); empty when nothing matched.
    pub removed: Vec<Link>,
    /// What was written; `None` when nothing was removed.
    pub written: Option<Written>,
}

/// Result of `delete-component-spec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteSpecResult {
    /// Whether a spec was stored under the id.
    pub existed: bool,
    /// The revision of the delete marker; `None` when there was no spec
    /// (nothing written).
    pub revision: Option<u64>,
}

/// All links of the lattice's stored specs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkListing {
    /// Links of decodable specs, by source id then as stored.
    pub links: Vec<Link>,
    /// Ids whose stored spec does not decode (skipped, untouched).
    pub undecodable: Vec<String>,
}

/// Which way a delivery went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// A new link, sent as a put.
    Put,
    /// A link that is gone, sent as a delete.
    Delete,
}

/// A delivery to a local provider that failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeliveryFailure {
    /// The provider it was for.
    pub provider_id: String,
    /// Put or delete.
    pub kind: DeliveryKind,
    /// The link.
    pub link: Link,
    /// Why it failed.
    pub error: NotifyError,
}

/// What an update of the host-local table did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpdateReport {
    /// Links not in the table before (under their source or target),
    /// delivered as puts.
    pub added: Vec<Link>,
    /// Links the table held for the id that the new spec lacks, delivered
    /// as deletes.
    pub removed: Vec<Link>,
    /// Deliveries that succeeded.
    pub delivered: u32,
    /// Deliveries that failed (an update never fails because of them).
    pub failures: Vec<DeliveryFailure>,
    /// The id's links after the update, packed ([`crate::packed`]); empty
    /// when the id has none.
    pub entry: Vec<u8>,
}

impl UpdateReport {
    /// The id's links after the update, unpacked.
    pub fn links(&self) -> Result<Vec<Link>, String> {
        packed::unpack(&self.entry)
    }

    /// Whether the update changed nothing the providers can see.
    pub fn is_quiet(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// One row of a component's import-link table: calls it makes to
/// `interface` under link `name` go to `target`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImportLink {
    /// Link name.
    pub name: String,
    /// `namespace:package/interface`.
    pub interface: String,
    /// The target id.
    pub target: String,
}

/// One id of the table with its links packed ([`crate::packed`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PackedEntry {
    /// The component id.
    pub id: String,
    /// Its links, packed.
    pub links: Vec<u8>,
}

/// One id of the table with its links.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableEntry {
    /// The component id.
    pub id: String,
    /// Its links, in spec order.
    pub links: Vec<Link>,
}

impl TableEntry {
    /// The packed form.
    pub fn pack(&self) -> PackedEntry {
        PackedEntry {
            id: self.id.clone(),
            links: packed::pack(&self.links),
        }
    }
}

impl PackedEntry {
    /// The unpacked form; the decoder's message when the bytes are not a
    /// valid packed entry.
    pub fn unpack(&self) -> Result<TableEntry, String> {
        Ok(TableEntry {
            id: self.id.clone(),
            links: packed::unpack(&self.links)?,
        })
    }
}

/// The snapshot format of this crate's [`crate::packed`] encoding.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A whole table, handed from one instance (or build) to another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    /// How `entries` are encoded; a build lists the formats it restores.
    pub format: u32,
    /// Every id with links, ordered by id.
    pub entries: Vec<PackedEntry>,
}

impl Snapshot {
    /// A format-1 snapshot of decoded entries.
    pub fn pack(entries: &[TableEntry]) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            entries: entries.iter().map(TableEntry::pack).collect(),
        }
    }
}

/// What `reload-from-store` loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Decodable specs loaded (including ones with no links).
    pub loaded: u32,
    /// Links loaded into the table.
    pub links: u32,
    /// Ids whose stored spec does not decode (left out, untouched).
    pub undecodable: Vec<String>,
}

/// A store write and what it did to a host's table: how a host reports a
/// `specs` call after applying what it wrote (`host-table`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Applied<T> {
    /// What the plugin wrote.
    #[serde(flatten)]
    pub result: T,
    /// The table update that followed; `None` when nothing was written, or
    /// when the table already held this revision or a newer one.
    pub update: Option<UpdateReport>,
}

impl<T> core::ops::Deref for Applied<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.result
    }
}

impl<T> Applied<T> {
    /// The table update, or an empty one when there was none.
    pub fn report(&self) -> UpdateReport {
        self.update.clone().unwrap_or_default()
    }
}
