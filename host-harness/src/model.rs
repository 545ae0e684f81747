//! The host's own view of the contract's data: links, specifications and the
//! reports the plugin returns.
//!
//! These mirror the WIT records in `wit/spec.wit`. The wasmtime bindings stay
//! private to [`crate::plugin`]; callers of the library only ever see these
//! types, so a change of binding generator never leaks into their code.
//! `Link` and `ComponentSpecification` serialize exactly as wasmCloud's do.

use serde::{Deserialize, Serialize};

fn default_link_name() -> String {
    "default".to_string()
}

/// An outbound link, with wasmCloud's `Link` fields in wasmCloud's JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Link {
    /// Id of the calling component.
    pub source_id: String,
    /// Id of the called component or provider.
    pub target: String,
    /// Link name (`default` when absent in JSON).
    #[serde(default = "default_link_name")]
    pub name: String,
    /// WIT namespace, e.g. `wasi`.
    pub wit_namespace: String,
    /// WIT package, e.g. `keyvalue`.
    pub wit_package: String,
    /// Interfaces of the package, e.g. `store`.
    pub interfaces: Vec<String>,
    /// Configuration names for the source.
    #[serde(default)]
    pub source_config: Vec<String>,
    /// Configuration names for the target.
    #[serde(default)]
    pub target_config: Vec<String>,
}

impl Link {
    /// A link with the default name and no configuration.
    pub fn new(
        source_id: impl Into<String>,
        target: impl Into<String>,
        wit_namespace: impl Into<String>,
        wit_package: impl Into<String>,
        interfaces: &[&str],
    ) -> Self {
        Link {
            source_id: source_id.into(),
            target: target.into(),
            name: default_link_name(),
            wit_namespace: wit_namespace.into(),
            wit_package: wit_package.into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            source_config: Vec::new(),
            target_config: Vec::new(),
        }
    }

    /// The same link under another name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// A component's URL and outbound links.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSpecification {
    /// Image reference or file URL; `""` when unknown.
    pub url: String,
    /// Outbound links, in the order they were put.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// Which way a delivery to a provider went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// A new link.
    Put,
    /// A link that is gone.
    Delete,
}

/// One delivery to a local provider and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The provider delivered to.
    pub provider_id: String,
    /// Put or delete.
    pub kind: DeliveryKind,
    /// The link delivered.
    pub link: Link,
    /// Why the delivery failed; `None` when it went through.
    pub error: Option<crate::backend::NotifyError>,
}

/// One row of a component's import-link table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLink {
    /// Link name.
    pub name: String,
    /// `namespace:package/interface`.
    pub interface: String,
    /// Target id.
    pub target: String,
}

/// What an update of the host-local link table did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// The component updated.
    pub id: String,
    /// Links new to the table (delivered as puts).
    pub added: Vec<Link>,
    /// Links gone from the id's spec (delivered as deletes).
    pub removed: Vec<Link>,
    /// Every delivery tried and its outcome.
    pub deliveries: Vec<Delivery>,
    /// The component's import-link table.
    pub import_links: Vec<ImportLink>,
    /// The id's links in the table after the update.
    pub links: Vec<Link>,
}

/// How a link put changed the stored spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// Added after the existing links.
    Appended,
    /// A link with the same source, target, namespace, package and name was
    /// replaced in place.
    Replaced,
    /// An equal link was stored already; nothing was written.
    Unchanged,
}

/// Result of a link put.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutLinkResult {
    /// What happened to the stored spec.
    pub outcome: PutOutcome,
    /// The source spec's revision after the call.
    pub revision: u64,
    /// The host update that followed.
    pub update: UpdateReport,
}

/// Result of a link delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLinkResult {
    /// Links removed; empty when there was nothing to delete.
    pub removed: Vec<Link>,
    /// The host update; `None` when nothing was removed.
    pub update: Option<UpdateReport>,
    /// The revision written; `None` when nothing was written.
    pub revision: Option<u64>,
}

/// Result of storing a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreResult {
    /// The revision written.
    pub revision: u64,
    /// The host update that followed.
    pub update: UpdateReport,
}

/// Result of deleting a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSpecResult {
    /// Whether a spec was stored.
    pub existed: bool,
    /// The host update (all the id's links removed).
    pub update: UpdateReport,
}

/// All links of the lattice's stored specs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkListing {
    /// Links of every decodable spec.
    pub links: Vec<Link>,
    /// Ids whose stored spec does not decode.
    pub undecodable: Vec<String>,
}

/// What a reload of the table from the store loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Ids loaded.
    pub loaded: u32,
    /// Links loaded.
    pub links: u32,
    /// Ids whose stored spec does not decode.
    pub undecodable: Vec<String>,
}

/// The links of one component in the host-local table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Component id.
    pub id: String,
    /// Its links.
    pub links: Vec<Link>,
}
