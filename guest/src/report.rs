//! Result types of the operations, native mirrors of the WIT `specs` records.

use crate::error::NotifyError;
use crate::model::Link;

/// Which way a delivery went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// A new link, sent as a put.
    Put,
    /// A link that is gone, sent as a delete.
    Delete,
}

/// One delivery to a local provider and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The provider it went to.
    pub provider_id: String,
    /// Put or delete.
    pub kind: DeliveryKind,
    /// The link delivered.
    pub link: Link,
    /// `None` when it was delivered.
    pub error: Option<NotifyError>,
}

/// One row of a component's import-link table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImportLink {
    /// Link name.
    pub name: String,
    /// `namespace:package/interface`.
    pub interface: String,
    /// The target id.
    pub target: String,
}

/// What an update of the host-local link table did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpdateReport {
    /// The component whose links were updated.
    pub id: String,
    /// Links not in the table before (under their source or target); put.
    pub added: Vec<Link>,
    /// Links the table held for `id` that the new spec lacks; deleted.
    pub removed: Vec<Link>,
    /// Every delivery tried, in order: deletes first, then puts.
    pub deliveries: Vec<Delivery>,
    /// Import-link rows, sorted by name then interface.
    pub import_links: Vec<ImportLink>,
    /// The links the table holds for `id` after the update.
    pub links: Vec<Link>,
}

/// How a link put changed the stored spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PutOutcome {
    /// Added after the existing links.
    Appended,
    /// Replaced a link with the same source, target, namespace, package, name.
    Replaced,
    /// An equal link was already stored; nothing was written.
    Unchanged,
}

/// Result of `put_link`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PutLinkResult {
    /// What happened to the stored spec.
    pub outcome: PutOutcome,
    /// Revision of the source's spec after the call.
    pub revision: u64,
    /// The host update that followed.
    pub update: UpdateReport,
}

/// Result of `delete_link`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteLinkResult {
    /// Links removed from the stored spec; empty when nothing matched.
    pub removed: Vec<Link>,
    /// The host update; `None` when nothing was removed.
    pub update: Option<UpdateReport>,
    /// The revision written; `None` when nothing was written.
    pub revision: Option<u64>,
}

/// Result of `store_component_spec`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreResult {
    /// The revision written.
    pub revision: u64,
    /// The host update that followed.
    pub update: UpdateReport,
}

/// Result of `delete_component_spec`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteSpecResult {
    /// Whether a spec was stored under the id.
    pub existed: bool,
    /// The host update removing every link the table held for the id.
    pub update: UpdateReport,
}

/// The links of one component in the host-local table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableEntry {
    /// The component id.
    pub id: String,
    /// Its links.
    pub links: Vec<Link>,
}

/// All links of the stored specs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkListing {
    /// Links of decodable specs, by source id then as stored.
    pub links: Vec<Link>,
    /// Ids whose stored spec does not decode (skipped, untouched).
    pub undecodable: Vec<String>,
}

/// What `reload_from_store` loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReloadReport {
    /// Decodable specs loaded (including ones with no links).
    pub loaded: u32,
    /// Links loaded into the table.
    pub links: u32,
    /// Ids whose stored spec does not decode (left out, untouched).
    pub undecodable: Vec<String>,
}
