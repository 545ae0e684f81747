//! Native error types, one to one with the WIT `store-error`, `notify-error`
//! and `spec-error` variants.
//!
//! The logic modules use these instead of the generated WIT types so that they
//! compile and test natively; `lib.rs` converts at the boundary. Display and
//! Error are written by hand to keep the component free of extra crates.

use std::fmt;

/// A failure of the key-value store (mirrors WIT `store-error`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// The key is not acceptable to the store.
    InvalidKey(String),
    /// A compare-and-swap found the key at another revision, or present when
    /// it was expected absent. Nothing was written.
    RevisionMismatch(String),
    /// The store did not answer in time; the write may or may not be applied.
    Timeout(String),
    /// The connection to the store is lost.
    ConnectionLost(String),
    /// Any other failure, with its message.
    Other(String),
}

/// A failure delivering a link to a provider (mirrors WIT `notify-error`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotifyError {
    /// No provider with that id runs on this host.
    NoSuchProvider(String),
    /// The provider is local but the delivery failed.
    DeliveryFailed(String),
}

/// Everything an operation can fail with (mirrors WIT `spec-error`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpecError {
    /// A component id breaking the id rules; the message says which.
    InvalidId(String),
    /// A link with an empty required field or no interface; the message names
    /// the field.
    InvalidLink(String),
    /// The spec stored under `id` does not decode.
    Decode {
        /// The component whose stored value is corrupt.
        id: String,
        /// What the decoder said.
        message: String,
    },
    /// The store failed; nothing was written by the call.
    Store(StoreError),
    /// The request conflicts with what is stored.
    Conflict(String),
    /// Every compare-and-swap retry lost to a concurrent writer.
    RevisionConflict(String),
    /// A table snapshot could not be restored.
    InvalidSnapshot(String),
    /// A provider delivery failed where it was asked to count.
    Notify(NotifyError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidKey(m) => write!(f, "invalid key: {m}"),
            StoreError::RevisionMismatch(m) => write!(f, "revision mismatch: {m}"),
            StoreError::Timeout(m) => write!(f, "store timeout: {m}"),
            StoreError::ConnectionLost(m) => write!(f, "store connection lost: {m}"),
            StoreError::Other(m) => write!(f, "store error: {m}"),
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::NoSuchProvider(m) => write!(f, "no such provider: {m}"),
            NotifyError::DeliveryFailed(m) => write!(f, "delivery failed: {m}"),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::InvalidId(m) => write!(f, "invalid component id: {m}"),
            SpecError::InvalidLink(m) => write!(f, "invalid link: {m}"),
            SpecError::Decode { id, message } => {
                write!(
                    f,
                    "stored spec of component {id:?} does not decode: {message}"
                )
            }
            SpecError::Store(e) => write!(f, "{e}"),
            SpecError::Conflict(m) => write!(f, "conflict: {m}"),
            SpecError::RevisionConflict(m) => write!(f, "revision conflict: {m}"),
            SpecError::InvalidSnapshot(m) => write!(f, "invalid snapshot: {m}"),
            SpecError::Notify(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}
impl std::error::Error for NotifyError {}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpecError::Store(e) => Some(e),
            SpecError::Notify(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SpecError {
    fn from(e: StoreError) -> Self {
        SpecError::Store(e)
    }
}

impl From<NotifyError> for SpecError {
    fn from(e: NotifyError) -> Self {
        SpecError::Notify(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_and_source() {
        let e = SpecError::Decode {
            id: "a".into(),
            message: "eof".into(),
        };
        assert_eq!(
            e.to_string(),
            "stored spec of component \"a\" does not decode: eof"
        );
        let e = SpecError::from(StoreError::Timeout("5s".into()));
        assert_eq!(e.to_string(), "store timeout: 5s");
        assert!(e.source().is_some());
        assert!(SpecError::Conflict("x".into()).source().is_none());
    }
}
