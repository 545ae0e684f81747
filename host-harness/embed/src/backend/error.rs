//! How a backend fails: [`BackendError`], with its cause, and how that
//! reaches the plugin (the contract's `store-error`, every cause in its
//! message).

/// A boxed error kept as the cause of a backend failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed, with its cause. It reaches the plugin as
/// the contract's [`spec_model::StoreError`]: its kind, and a message that
/// carries every cause.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
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

impl From<&BackendError> for spec_model::StoreError {
    /// The contract's form of a backend failure: its kind, and its message
    /// with every cause (the plugin gets the whole story as text).
    fn from(e: &BackendError) -> Self {
        use spec_model::StoreError as M;
        let message = error_chain(e);
        match e {
            BackendError::InvalidKey { .. } => M::InvalidKey(message),
            BackendError::AccessDenied { .. } => M::AccessDenied(message),
            BackendError::RevisionMismatch { .. } => M::RevisionMismatch(message),
            BackendError::Timeout { .. } => M::Timeout(message),
            BackendError::ConnectionLost { .. } => M::ConnectionLost(message),
            BackendError::Other { .. } => M::Other(message),
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
