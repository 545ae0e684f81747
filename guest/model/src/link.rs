//! The contract's two records, with exactly the fields of wasmCloud's
//! `Link` and `ComponentSpecification` in wasmCloud's order: serde writes
//! fields in declaration order, and the stored JSON must be byte-identical
//! to what a wasmCloud host writes (see [`crate::json`]).

use serde::{Deserialize, Serialize};

use crate::prelude::*;

/// wasmCloud's default link name.
pub const DEFAULT_LINK_NAME: &str = "default";

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}

/// An outbound link from one component to another (or to a provider).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Link {
    /// Id of the component that makes the calls.
    pub source_id: String,
    /// Id of the component or provider that receives them.
    pub target: String,
    /// Link name (`default` when absent in JSON).
    #[serde(default = "default_link_name")]
    pub name: String,
    /// WIT namespace of the linked interfaces, e.g. `wasi`.
    pub wit_namespace: String,
    /// WIT package, e.g. `keyvalue`.
    pub wit_package: String,
    /// Interfaces of that package covered by the link, e.g. `store`.
    pub interfaces: Vec<String>,
    /// Configuration names given to the source (`SECRET…`: secret references).
    #[serde(default)]
    pub source_config: Vec<String>,
    /// Configuration names given to the target.
    #[serde(default)]
    pub target_config: Vec<String>,
}

/// `source -[ns:pkg/a,b (name)]-> target`: how tools print a link.
impl core::fmt::Display for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} -[{}:{}/",
            self.source_id, self.wit_namespace, self.wit_package
        )?;
        for (i, interface) in self.interfaces.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(interface)?;
        }
        write!(f, " ({})]-> {}", self.name, self.target)
    }
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

    /// Whether the two links share an interface.
    pub fn interfaces_overlap(&self, other: &Link) -> bool {
        self.interfaces.iter().any(|i| other.interfaces.contains(i))
    }

    /// Every config name of the link, source's first.
    pub fn config_names(&self) -> impl Iterator<Item = &str> {
        self.source_config
            .iter()
            .chain(&self.target_config)
            .map(String::as_str)
    }
}

/// What the lattice knows of one component: where its code is and its links.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ComponentSpecification {
    /// Image reference or file URL; `""` when unknown.
    pub url: String,
    /// Outbound links, in the order they were put.
    #[serde(default)]
    pub links: Vec<Link>,
}
