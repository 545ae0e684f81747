//! Errors at the library's boundaries.
//!
//! * [`SpecError`]: what the plugin itself answered (the WIT `spec-error`), as
//!   plain data so it can be shown, compared and sent over the wire.
//! * [`CallError`]: a plugin call that failed, either with a [`SpecError`] or
//!   because the plugin misbehaved (trap, CPU or memory limit).
//! * [`LoadError`]: a plugin that cannot be read, compiled or linked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{BoxError, NotifyError};

/// Which kind of store failure the plugin saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreFailure {
    /// The key is not acceptable to the store.
    InvalidKey,
    /// A compare-and-swap lost against another writer.
    RevisionMismatch,
    /// The store did not answer in time.
    Timeout,
    /// The connection to the store is lost.
    ConnectionLost,
    /// Anything else.
    Other,
}

/// The plugin's own typed error (WIT `spec-error`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum SpecError {
    /// The component id is not valid.
    #[error("invalid id: {0}")]
    InvalidId(String),
    /// The link is not valid.
    #[error("invalid link: {0}")]
    InvalidLink(String),
    /// A stored spec does not decode.
    #[error("stored spec of {id:?} does not decode: {message}")]
    Decode {
        /// The component id.
        id: String,
        /// What the decoder said.
        message: String,
    },
    /// The store failed; nothing was written.
    #[error("store failure ({kind:?}): {message}")]
    Store {
        /// The kind of failure.
        kind: StoreFailure,
        /// The store's message, with its causes.
        message: String,
    },
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// Concurrent writers won every compare-and-swap retry.
    #[error("revision conflict: {0}")]
    RevisionConflict(String),
    /// A table snapshot could not be restored.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    /// A delivery failed.
    #[error("notify failed: {0}")]
    Notify(NotifyError),
}

/// A plugin call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The plugin ran past its CPU budget for one call and was stopped.
    #[error("plugin ran past its CPU budget of {limit:?} in {call}")]
    CpuLimit {
        /// The exported function called.
        call: &'static str,
        /// The budget.
        limit: Duration,
    },
    /// The plugin tried to grow its memory past the cap and was stopped.
    #[error("plugin tried to grow its memory past the cap of {cap} bytes in {call}")]
    MemoryLimit {
        /// The exported function called.
        call: &'static str,
        /// The cap.
        cap: usize,
    },
    /// The plugin trapped.
    #[error("plugin trapped in {call}")]
    Trap {
        /// The exported function called.
        call: &'static str,
        /// The trap, with wasm backtrace when there is one.
        #[source]
        source: BoxError,
    },
    /// No instance of the plugin could be made (instantiation or the table
    /// restore failed); the next call tries again.
    #[error("plugin could not be instantiated")]
    Instantiate {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The plugin host has shut down.
    #[error("the plugin host has stopped")]
    Stopped,
}

impl CallError {
    /// The plugin's typed error, when that is what failed the call.
    pub fn spec(&self) -> Option<&SpecError> {
        match self {
            CallError::Spec(e) => Some(e),
            _ => None,
        }
    }

    /// True when the plugin misbehaved (trap or limit), as opposed to
    /// answering with an error.
    pub fn is_plugin_fault(&self) -> bool {
        matches!(
            self,
            CallError::CpuLimit { .. } | CallError::MemoryLimit { .. } | CallError::Trap { .. }
        )
    }
}

/// A plugin that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}")]
    Read {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid component for this engine.
    #[error("plugin does not compile as a component")]
    Compile {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The component does not fit the `spec-plugin` world (wrong WIT, or an
    /// import the host does not grant).
    #[error("plugin does not fit the lattice:spec/spec-plugin world")]
    Link {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine")]
    Engine {
        /// Why.
        #[source]
        source: BoxError,
    },
}
