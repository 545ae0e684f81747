//! The contract's typed errors, one to one with the WIT `store-error`,
//! `notify-error` and `spec-error` variants. Plain data (a message per
//! case), so they cross the component boundary, go over the wire as JSON
//! and compare in tests. Display and Error are written by hand: the plugin
//! carries no error-derive crate.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::prelude::*;

/// A failure of the `keyvalue` store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
pub enum StoreError {
    /// The key is not acceptable to the store.
    InvalidKey(String),
    /// The key is outside what the plugin may touch (0.2: only spec keys).
    AccessDenied(String),
    /// A compare-and-swap write found the key elsewhere than expected.
    RevisionMismatch(String),
    /// The store did not answer in time; the write may or may not be applied.
    Timeout(String),
    /// The connection to the store is lost.
    ConnectionLost(String),
    /// Any other failure.
    Other(String),
}

/// A failure delivering a link to a provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
pub enum NotifyError {
    /// No provider with that id runs on this host.
    NoSuchProvider(String),
    /// The provider is local but the delivery failed.
    DeliveryFailed(String),
}

/// Everything an exported function can fail with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum SpecError {
    /// A component id breaks the id rules ([`crate::validate::validate_id`]).
    InvalidId(String),
    /// A link lacks a required field; the message names it.
    InvalidLink(String),
    /// A stored spec does not decode; it is left as it is.
    Decode {
        /// The component whose stored value is corrupt.
        id: String,
        /// What the decoder said.
        message: String,
    },
    /// The store failed; nothing was written by this call.
    Store(StoreError),
    /// The request conflicts with what is stored (wasmCloud's message for a
    /// link put that would re-point a link).
    Conflict(String),
    /// Concurrent writers won every compare-and-swap retry.
    RevisionConflict(String),
    /// A table snapshot could not be restored.
    InvalidSnapshot(String),
    /// A provider delivery failed where the caller asked for it to count.
    Notify(NotifyError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidKey(m) => write!(f, "invalid key: {m}"),
            StoreError::AccessDenied(m) => write!(f, "key not allowed: {m}"),
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
            SpecError::Conflict(m) => write!(f, "{m}"),
            SpecError::RevisionConflict(m) => write!(f, "revision conflict: {m}"),
            SpecError::InvalidSnapshot(m) => write!(f, "invalid snapshot: {m}"),
            SpecError::Notify(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for StoreError {}
impl core::error::Error for NotifyError {}

impl core::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
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

impl SpecError {
    /// The store failure inside, if that is what this is.
    pub fn store(&self) -> Option<&StoreError> {
        match self {
            SpecError::Store(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::error::Error as _;
    use std::string::ToString;

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
