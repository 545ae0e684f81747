//! What the plugin's imports are backed by: one small async trait per import.
//!
//! * [`KeyValue`] backs `lattice:spec/keyvalue`. Its contract is JetStream
//!   KV's, so the NATS backend maps each method onto one JetStream call and
//!   the in-memory one behaves the same way (keys, revisions, tombstones).
//! * [`ProviderNotify`] backs `lattice:spec/provider-notify`.
//!
//! Backends live one per module: [`memory`] for tests and the demo.

pub mod memory;

use async_trait::async_trait;
use spec_model::Link;
pub use spec_model::NotifyError;

/// A boxed error kept as the cause of a backend failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A value read from the store, with the revision it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// Revision of this value (JetStream: the stream sequence).
    pub revision: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not acceptable to the store.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is outside what the plugin may touch.
    #[error("key {key:?} is outside the keys the plugin may use ({allowed})")]
    AccessDenied {
        /// The key asked for.
        key: String,
        /// What is allowed, e.g. `keys starting with COMPONENT_`.
        allowed: String,
    },
    /// A compare-and-swap write found the key elsewhere than expected.
    #[error("revision mismatch on {key:?}: expected {}", expected_text(*.expected))]
    RevisionMismatch {
        /// The key written.
        key: String,
        /// The revision the writer expected (`None`: absent).
        expected: Option<u64>,
    },
    /// The store did not answer in time: the write may or may not be applied.
    #[error("store timed out during {op} of {key:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The connection to the store is gone.
    #[error("connection to the store lost during {op}")]
    ConnectionLost {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Any other failure.
    #[error("store failed during {op}")]
    Other {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl From<&StoreError> for spec_model::StoreError {
    /// The contract's form of a backend failure: its kind, and its message
    /// with every cause (the plugin gets the whole story as text).
    fn from(e: &StoreError) -> Self {
        use spec_model::StoreError as M;
        let message = error_chain(e);
        match e {
            StoreError::InvalidKey { .. } => M::InvalidKey(message),
            StoreError::AccessDenied { .. } => M::AccessDenied(message),
            StoreError::RevisionMismatch { .. } => M::RevisionMismatch(message),
            StoreError::Timeout { .. } => M::Timeout(message),
            StoreError::ConnectionLost { .. } => M::ConnectionLost(message),
            StoreError::Other { .. } => M::Other(message),
        }
    }
}

fn expected_text(expected: Option<u64>) -> String {
    match expected {
        Some(rev) => format!("revision {rev}"),
        None => "no value".to_string(),
    }
}

/// Renders an error with every cause in its chain, `outer: inner: root`.
///
/// Used where an error must cross the WIT boundary as a string: the causes
/// travel with it instead of being dropped.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Key-value storage with revisions, as JetStream KV offers it.
///
/// Exact semantics, which every backend keeps:
/// * revisions are positive, only grow, and are never reused for a key;
/// * a deleted key reads as absent and is not listed;
/// * `compare_and_swap(key, v, Some(r))` writes only if the key's current
///   revision is `r`; `compare_and_swap(key, v, None)` writes only if the key
///   is absent or deleted. Otherwise it fails with
///   [`StoreError::RevisionMismatch`] and writes nothing;
/// * keys follow JetStream's rules: `[-/_=.a-zA-Z0-9]+`, not starting or
///   ending with `.`.
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Reads a key.
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    /// Writes a key unconditionally, returning the new revision.
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError>;
    /// Writes a key if it is still at `expected`, returning the new revision.
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError>;
    /// Deletes a key (a marker watchers see); deleting an absent key
    /// succeeds. Returns the marker's revision.
    async fn delete(&self, key: &str) -> Result<u64, StoreError>;
    /// Lists present keys starting with `prefix`.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
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
pub fn check_key(key: &str) -> Result<(), StoreError> {
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
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}
