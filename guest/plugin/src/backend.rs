//! The two things the plugin needs from its host, as small traits.
//!
//! The logic is generic over these so that it runs natively in tests and
//! benchmarks (with [`crate::memory`]) and in the component (with the imported
//! WIT functions) unchanged.

pub use spec_model::Entry;
use spec_model::{Link, NotifyError, StoreError};

use crate::prelude::*;

/// Key-value storage with revisions, shaped like JetStream KV.
///
/// Revisions only grow and are never reused within a store.
pub trait KeyValue {
    /// Reads `key`; `Ok(None)` when it is absent or deleted.
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Writes `key` unconditionally; returns the new revision.
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError>;

    /// Writes `key` only if it is at revision `expected`, or, for `None`, only
    /// if it is absent or deleted (create-only). Otherwise fails with
    /// [`StoreError::RevisionMismatch`] and writes nothing. Returns the new
    /// revision.
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError>;

    /// Deletes `key` (a marker watchers see); deleting an absent key
    /// succeeds. Returns the revision of the marker.
    fn delete(&mut self, key: &str) -> Result<u64, StoreError>;

    /// The present keys starting with `prefix`, in no set order.
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// Delivery of link changes to the providers running on this host.
pub trait ProviderNotify {
    /// Ids of the providers on this host, in no set order. The plugin asks at
    /// most once per table update and delivers only to these ids.
    fn local_providers(&mut self) -> Vec<String>;

    /// Tells `provider` that `link` is now in force.
    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError>;

    /// Tells `provider` that `link` is gone.
    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError>;
}

impl<S: KeyValue + ?Sized> KeyValue for &mut S {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        (**self).get(key)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        (**self).set(key, value)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        (**self).compare_and_swap(key, value, expected)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        (**self).delete(key)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        (**self).list_keys(prefix)
    }
}

impl<N: ProviderNotify + ?Sized> ProviderNotify for &mut N {
    fn local_providers(&mut self) -> Vec<String> {
        (**self).local_providers()
    }
    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        (**self).link_put(provider, link)
    }
    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        (**self).link_delete(provider, link)
    }
}
