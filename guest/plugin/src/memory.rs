//! In-memory backends for native tests and benchmarks.
//!
//! Compiled in every build (not only under `cfg(test)`) so that the host's
//! native benchmarks and tests can drive [`crate::ops::NativePlugin`] without a
//! NATS server. They are small and cost nothing in the component when unused
//! (the linker drops them).

use alloc::collections::{BTreeMap, BTreeSet};

use spec_model::{DeliveryKind, Link, NotifyError, StoreError};

use crate::backend::{Entry, KeyValue, ProviderNotify};
use crate::prelude::*;

/// One delivery attempt recorded by [`RecordingNotifier`].
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

/// A [`KeyValue`] in memory with JetStream-like revisions: one sequence for the
/// whole store, bumped by every write and every delete (a delete writes a
/// marker, present key or not, as JetStream does), so revisions only grow
/// and are never reused. A deleted key is simply absent.
#[derive(Clone, Debug, Default)]
pub struct MemoryKv {
    entries: BTreeMap<String, Entry>,
    sequence: u64,
    writes: u64,
    fail_writes: Option<StoreError>,
}

impl MemoryKv {
    /// An empty store at sequence 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored entry of `key`, without going through the trait.
    pub fn raw(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Number of present keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last revision handed out (0 before the first write).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// How many writes reached the store (sets, successful CAS, deletes);
    /// lets tests assert that nothing was written.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// From now on, make every `set`, `compare_and_swap` and `delete` fail with
    /// `error` (without writing); `None` heals the store.
    pub fn fail_writes_with(&mut self, error: Option<StoreError>) {
        self.fail_writes = error;
    }

    fn write(&mut self, key: &str, value: Vec<u8>) -> u64 {
        self.sequence += 1;
        self.writes += 1;
        let revision = self.sequence;
        self.entries
            .insert(key.to_string(), Entry { value, revision });
        revision
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        match &self.fail_writes {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl KeyValue for MemoryKv {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.entries.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.check_writable()?;
        Ok(self.write(key, value))
    }

    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.check_writable()?;
        let current = self.entries.get(key).map(|e| e.revision);
        if current != expected {
            return Err(StoreError::RevisionMismatch(format!(
                "key {key}: expected revision {expected:?}, found {current:?}"
            )));
        }
        Ok(self.write(key, value))
    }

    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        self.check_writable()?;
        self.entries.remove(key);
        // The marker takes a sequence number, as in JetStream.
        self.sequence += 1;
        self.writes += 1;
        Ok(self.sequence)
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// A [`ProviderNotify`] that records every delivery attempt with its outcome.
///
/// Deliveries to ids outside the local set fail with `NoSuchProvider` (as a
/// real host's would); ids marked with [`RecordingNotifier::fail_deliveries_to`]
/// fail with `DeliveryFailed`. Both are recorded.
#[derive(Clone, Debug, Default)]
pub struct RecordingNotifier {
    local: BTreeSet<String>,
    failing: BTreeSet<String>,
    deliveries: Vec<Delivery>,
    provider_queries: usize,
}

impl RecordingNotifier {
    /// A notifier whose host runs the providers `local`.
    pub fn new<I, S>(local: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            local: local.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Adds `id` to the local providers.
    pub fn add_local(&mut self, id: &str) {
        self.local.insert(id.to_string());
    }

    /// Makes deliveries to `id` fail with `DeliveryFailed` from now on.
    pub fn fail_deliveries_to(&mut self, id: &str) {
        self.failing.insert(id.to_string());
    }

    /// Lets deliveries to `id` succeed again.
    pub fn heal(&mut self, id: &str) {
        self.failing.remove(id);
    }

    /// Every delivery attempt so far, in order.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// Takes the recorded deliveries, leaving none.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        core::mem::take(&mut self.deliveries)
    }

    /// How many times `local_providers` was asked.
    pub fn provider_queries(&self) -> usize {
        self.provider_queries
    }

    fn deliver(
        &mut self,
        provider: &str,
        kind: DeliveryKind,
        link: &Link,
    ) -> Result<(), NotifyError> {
        let result = if !self.local.contains(provider) {
            Err(NotifyError::NoSuchProvider(provider.to_string()))
        } else if self.failing.contains(provider) {
            Err(NotifyError::DeliveryFailed(format!(
                "{provider} is set to fail"
            )))
        } else {
            Ok(())
        };
        self.deliveries.push(Delivery {
            provider_id: provider.to_string(),
            kind,
            link: link.clone(),
            error: result.clone().err(),
        });
        result
    }
}

impl ProviderNotify for RecordingNotifier {
    fn local_providers(&mut self) -> Vec<String> {
        self.provider_queries += 1;
        self.local.iter().cloned().collect()
    }

    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        self.deliver(provider, DeliveryKind::Put, link)
    }

    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        self.deliver(provider, DeliveryKind::Delete, link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn revisions_grow_and_cas_checks_them() {
        let mut s = MemoryKv::new();
        let r1 = s
            .compare_and_swap("k", b"a".to_vec(), None)
            .expect("create");
        assert!(matches!(
            s.compare_and_swap("k", b"b".to_vec(), None),
            Err(StoreError::RevisionMismatch(_))
        ));
        let r2 = s
            .compare_and_swap("k", b"b".to_vec(), Some(r1))
            .expect("update");
        assert!(r2 > r1);
        assert!(s.compare_and_swap("k", b"c".to_vec(), Some(r1)).is_err());
        let marker = s.delete("k").expect("delete");
        assert_eq!(marker, r2 + 1, "the marker took a revision");
        assert_eq!(s.get("k"), Ok(None));
        let r3 = s
            .compare_and_swap("k", b"d".to_vec(), None)
            .expect("recreate");
        assert!(r3 > marker);
        assert_eq!(s.writes(), 4);
        assert!(s.delete("absent").expect("idempotent") > r3);
        assert_eq!(s.list_keys("k"), Ok(vec!["k".to_string()]));
    }

    #[test]
    fn notifier_records_and_fails_on_request() {
        let link = Link {
            source_id: "a".into(),
            target: "p".into(),
            name: "default".into(),
            wit_namespace: "wasi".into(),
            wit_package: "kv".into(),
            interfaces: vec!["store".into()],
            source_config: vec![],
            target_config: vec![],
        };
        let mut n = RecordingNotifier::new(["p"]);
        assert_eq!(n.link_put("p", &link), Ok(()));
        assert!(matches!(
            n.link_put("q", &link),
            Err(NotifyError::NoSuchProvider(_))
        ));
        n.fail_deliveries_to("p");
        assert!(matches!(
            n.link_delete("p", &link),
            Err(NotifyError::DeliveryFailed(_))
        ));
        assert_eq!(n.deliveries().len(), 3);
        assert_eq!(n.local_providers(), vec!["p".to_string()]);
        assert_eq!(n.provider_queries(), 1);
    }
}
