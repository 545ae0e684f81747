//! The backend traits, one per import, and the key rules every store keeps.

use async_trait::async_trait;
use spec_model::{Entry, Link, NotifyError};
use tokio::sync::mpsc;

use super::BackendError;

/// Key-value storage with revisions, as JetStream KV offers it.
///
/// Exact semantics, which every backend keeps:
/// * revisions are positive, only grow, and are never reused for a key;
/// * a deleted key reads as absent and is not listed;
/// * `compare_and_swap(key, v, Some(r))` writes only if the key's current
///   revision is `r`; `compare_and_swap(key, v, None)` writes only if the key
///   is absent or deleted. Otherwise it fails with
///   [`BackendError::RevisionMismatch`] and writes nothing;
/// * keys follow JetStream's rules: `[-/_=.a-zA-Z0-9]+`, not starting or
///   ending with `.`.
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Reads a key.
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError>;
    /// Writes a key unconditionally, returning the new revision.
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError>;
    /// Writes a key if it is still at `expected`, returning the new revision.
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError>;
    /// Deletes a key (a marker watchers see); deleting an absent key
    /// succeeds. Returns the marker's revision.
    async fn delete(&self, key: &str) -> Result<u64, BackendError>;
    /// Lists present keys starting with `prefix`.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError>;

    /// Sends every present key starting with `prefix`, with its entry, to
    /// `out` (in no set order) and returns once all were sent, or as soon
    /// as `out` is closed. A host rebuilding its table reads the bucket
    /// this way, waiting on each step with its own deadline, so the size of
    /// the bucket never meets one deadline for the whole listing.
    ///
    /// The default lists the keys, then reads each; a backend that can
    /// stream the values (NATS: one ordered consumer) should override it.
    async fn scan(
        &self,
        prefix: &str,
        out: mpsc::Sender<(String, Entry)>,
    ) -> Result<(), BackendError> {
        for key in self.list_keys(prefix).await? {
            if let Some(entry) = self.get(&key).await? {
                if out.send((key, entry)).await.is_err() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A notifier that delivers nothing: no provider runs here. Used while a
/// table is rebuilt from the store (those links are in force already).
pub struct Silent;

#[async_trait]
impl ProviderNotify for Silent {
    fn local_providers(&self) -> Vec<String> {
        Vec::new()
    }

    async fn link_put(&self, provider_id: &str, _link: &Link) -> Result<(), NotifyError> {
        Err(NotifyError::NoSuchProvider(provider_id.to_string()))
    }

    async fn link_delete(&self, provider_id: &str, _link: &Link) -> Result<(), NotifyError> {
        Err(NotifyError::NoSuchProvider(provider_id.to_string()))
    }
}

/// Delivery of link changes to providers running on this host.
#[async_trait]
pub trait ProviderNotify: Send + Sync + 'static {
    /// Ids of the providers running on this host.
    fn local_providers(&self) -> Vec<String>;
    /// Delivers a new link to `provider_id`.
    async fn link_put(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError>;
    /// Delivers a removed link to `provider_id`.
    async fn link_delete(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError>;
}

/// Checks a key against JetStream's key rules; the reason when it fails.
pub fn check_key(key: &str) -> Result<(), BackendError> {
    let reason = if key.is_empty() {
        Some("key is empty")
    } else if key.starts_with('.') || key.ends_with('.') {
        Some("key starts or ends with '.'")
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    {
        Some("key has a character outside [-/_=.a-zA-Z0-9]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BackendError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}
