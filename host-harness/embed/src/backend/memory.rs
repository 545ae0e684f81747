//! In-memory backends: a [`MemoryKv`] with JetStream's revision rules and a
//! [`RecordingNotifier`] that keeps every delivery, for tests and the demo.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{check_key, BackendError, Entry, KeyValue, NotifyError, ProviderNotify};
use spec_model::{DeliveryKind, Link};

#[derive(Default)]
struct KvState {
    /// Present keys and their value; deleted keys are removed.
    entries: BTreeMap<String, Entry>,
    /// Last revision handed out: one sequence for the whole bucket, like a
    /// JetStream stream, so a key deleted and recreated never reuses one.
    last_revision: u64,
    /// When set, every operation fails as if the store were unreachable.
    offline: bool,
    /// How long every operation takes, as if over a network.
    latency: Option<std::time::Duration>,
}

/// A key-value store in memory, with JetStream KV's semantics.
#[derive(Clone, Default)]
pub struct MemoryKv {
    state: Arc<Mutex<KvState>>,
}

#[derive(Debug, thiserror::Error)]
#[error("in-memory store is set offline")]
struct Offline;

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, KvState> {
        // A panic while the lock is held cannot leave the map half-written
        // (every mutation is one insert or remove), so a poisoned lock is
        // still consistent and safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every later operation fail (or succeed again), to test how
    /// callers handle an unreachable store.
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// Makes every later operation take `latency` (zero: answer at once),
    /// to test what slow store calls do to the plugin's limits.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = (!latency.is_zero()).then_some(latency);
    }

    async fn delay(&self) {
        let latency = self.lock().latency;
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
    }

    /// Writes raw bytes under a key, bypassing the plugin (e.g. a corrupt
    /// value written by someone else).
    pub fn put_raw(&self, key: &str, value: impl Into<Vec<u8>>) -> u64 {
        let mut state = self.lock();
        state.last_revision += 1;
        let revision = state.last_revision;
        state.entries.insert(
            key.to_string(),
            Entry {
                value: value.into(),
                revision,
            },
        );
        revision
    }

    /// Reads raw bytes, bypassing the plugin.
    pub fn get_raw(&self, key: &str) -> Option<Entry> {
        self.lock().entries.get(key).cloned()
    }

    /// Every present key and value, in key order.
    pub fn dump(&self) -> Vec<(String, Entry)> {
        let state = self.lock();
        state
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn guard(&self, op: &'static str, key: &str) -> Result<MutexGuard<'_, KvState>, BackendError> {
        check_key(key)?;
        let state = self.lock();
        if state.offline {
            return Err(BackendError::ConnectionLost {
                op,
                source: Box::new(Offline),
            });
        }
        Ok(state)
    }
}

#[async_trait]
impl KeyValue for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        self.delay().await;
        Ok(self.guard("get", key)?.entries.get(key).cloned())
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        self.delay().await;
        let mut state = self.guard("put", key)?;
        state.last_revision += 1;
        let revision = state.last_revision;
        state
            .entries
            .insert(key.to_string(), Entry { value, revision });
        Ok(revision)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError> {
        self.delay().await;
        let mut state = self.guard("update", key)?;
        let current = state.entries.get(key).map(|e| e.revision);
        if current != expected {
            return Err(BackendError::RevisionMismatch {
                key: key.to_string(),
                expected,
            });
        }
        state.last_revision += 1;
        let revision = state.last_revision;
        state
            .entries
            .insert(key.to_string(), Entry { value, revision });
        Ok(revision)
    }

    async fn delete(&self, key: &str) -> Result<u64, BackendError> {
        self.delay().await;
        let mut state = self.guard("delete", key)?;
        state.entries.remove(key);
        // The delete marker takes a revision, present key or not, as in
        // JetStream.
        state.last_revision += 1;
        Ok(state.last_revision)
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.delay().await;
        let state = self.lock();
        if state.offline {
            return Err(BackendError::ConnectionLost {
                op: "keys",
                source: Box::new(Offline),
            });
        }
        Ok(state
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// One delivery as a [`RecordingNotifier`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The provider delivered to.
    pub provider_id: String,
    /// Put or delete.
    pub kind: DeliveryKind,
    /// The link.
    pub link: Link,
}

#[derive(Default)]
struct NotifierState {
    local: BTreeSet<String>,
    failing: BTreeSet<String>,
    delivered: Vec<Recorded>,
}

/// A [`ProviderNotify`] that records deliveries to a fixed set of local
/// providers, and can be told to fail deliveries to some of them.
#[derive(Clone, Default)]
pub struct RecordingNotifier {
    state: Arc<Mutex<NotifierState>>,
}

impl RecordingNotifier {
    /// A notifier for these local provider ids.
    pub fn new<I, S>(local: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let notifier = Self::default();
        notifier.lock().local = local.into_iter().map(Into::into).collect();
        notifier
    }

    fn lock(&self) -> MutexGuard<'_, NotifierState> {
        // Every mutation is a single push or insert: a poisoned lock is
        // still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes deliveries to `provider_id` fail (or succeed again).
    pub fn set_failing(&self, provider_id: &str, failing: bool) {
        let mut state = self.lock();
        if failing {
            state.failing.insert(provider_id.to_string());
        } else {
            state.failing.remove(provider_id);
        }
    }

    /// Every successful delivery so far, in order.
    pub fn delivered(&self) -> Vec<Recorded> {
        self.lock().delivered.clone()
    }

    /// Takes the deliveries recorded so far, leaving none.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.lock().delivered)
    }

    fn deliver(
        &self,
        provider_id: &str,
        kind: DeliveryKind,
        link: &Link,
    ) -> Result<(), NotifyError> {
        let mut state = self.lock();
        if !state.local.contains(provider_id) {
            return Err(NotifyError::NoSuchProvider(provider_id.to_string()));
        }
        if state.failing.contains(provider_id) {
            return Err(NotifyError::DeliveryFailed(format!(
                "provider {provider_id} is set to fail"
            )));
        }
        state.delivered.push(Recorded {
            provider_id: provider_id.to_string(),
            kind,
            link: link.clone(),
        });
        Ok(())
    }
}

#[async_trait]
impl ProviderNotify for RecordingNotifier {
    fn local_providers(&self) -> Vec<String> {
        self.lock().local.iter().cloned().collect()
    }

    async fn link_put(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError> {
        self.deliver(provider_id, DeliveryKind::Put, link)
    }

    async fn link_delete(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError> {
        self.deliver(provider_id, DeliveryKind::Delete, link)
    }
}
