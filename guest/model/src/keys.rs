//! The one place that knows how a component's spec is keyed in the store,
//! and what the store gives back for a key ([`Entry`]).
//!
//! wasmCloud keeps each spec under `COMPONENT_{id}` in the lattice's data
//! bucket (`LATTICEDATA_{lattice}`); plugin and host both go through these
//! helpers so the format can never drift between writers and readers.

use crate::prelude::*;

/// Prefix of every spec key; also the prefix to list all specs with.
pub const COMPONENT_KEY_PREFIX: &str = "COMPONENT_";

/// The store key of component `id`'s spec.
pub fn component_key(id: &str) -> String {
    let mut key = String::with_capacity(COMPONENT_KEY_PREFIX.len() + id.len());
    key.push_str(COMPONENT_KEY_PREFIX);
    key.push_str(id);
    key
}

/// The component id of a spec key; `None` for any other key.
pub fn id_from_key(key: &str) -> Option<&str> {
    key.strip_prefix(COMPONENT_KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips() {
        assert_eq!(component_key("echo"), "COMPONENT_echo");
        assert_eq!(id_from_key(&component_key("a/b=c")), Some("a/b=c"));
        assert_eq!(id_from_key("LINKDEF_x"), None);
    }
}

/// A value read from the store, with the revision it was written at (the
/// contract's `keyvalue.entry`; JetStream: the stream sequence).
///
/// Revisions are positive, only grow, and are never reused within a store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// The revision of this value.
    pub revision: u64,
}
