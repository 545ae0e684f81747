//! Errors at the library's boundaries.
//!
//! * [`SpecError`]: what the plugin itself answered (the WIT `spec-error`),
//!   from [`spec_model`]: plain data that can be shown, compared and sent.
//! * [`CallError`]: a plugin call that failed, either with a [`SpecError`] or
//!   because the plugin misbehaved (trap, CPU or memory limit).
//! * [`LoadError`]: a plugin that cannot be read, compiled or linked.

use std::time::Duration;

pub use spec_model::SpecError;

use crate::backend::BoxError;

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
    /// The call ran past its wall-clock deadline (waiting on the store
    /// included) and was stopped.
    #[error("plugin call {call} ran past its deadline of {limit:?}{}", stalled_note(*.stalled))]
    Deadline {
        /// The exported function called.
        call: &'static str,
        /// The deadline.
        limit: Duration,
        /// When the deadline cut off a backend call (an import) in
        /// progress: how long that one call had waited. A backend call that
        /// held most of the deadline is the backend's slowness, not the
        /// plugin's fault ([`CallError::is_backend_stall`]).
        stalled: Option<Duration>,
    },
    /// The call made more import calls than allowed (a plugin looping over
    /// its imports) and was stopped.
    #[error("plugin call {call} made more than {cap} import calls")]
    ImportLimit {
        /// The exported function called.
        call: &'static str,
        /// The cap.
        cap: u32,
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
    /// No plugin instance became free within the call deadline; the call
    /// was not run.
    #[error("no plugin instance free for {call} within {waited:?}; not run")]
    Overloaded {
        /// The exported function that would have been called.
        call: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// A new build cannot take over from the running one (e.g. it does not
    /// read the table's snapshot format); the running one stays.
    #[error("the build cannot take over: {0}")]
    Incompatible(String),
    /// The host-local table is not whole (it was lost and could not yet
    /// be rebuilt from the store): a call that needs it is refused rather
    /// than answered from part of it. The host keeps trying to rebuild it.
    #[error("the link table is not ready: {reason}")]
    NotReady {
        /// Why, and what the host is doing about it.
        reason: String,
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

    /// True when the plugin misbehaved (trap, CPU budget, memory cap,
    /// import cap, or a deadline spent by its own doing), as opposed to
    /// answering with an error or waiting on a slow backend.
    pub fn is_plugin_fault(&self) -> bool {
        self.fault_class().is_some()
    }

    /// Which fault it is, when [`CallError::is_plugin_fault`].
    pub fn fault_class(&self) -> Option<crate::stats::FaultClass> {
        use crate::stats::FaultClass;
        match self {
            CallError::CpuLimit { .. } => Some(FaultClass::Cpu),
            CallError::MemoryLimit { .. } => Some(FaultClass::Memory),
            CallError::ImportLimit { .. } => Some(FaultClass::Imports),
            CallError::Trap { .. } => Some(FaultClass::Trap),
            CallError::Deadline { .. } if !self.is_backend_stall() => Some(FaultClass::Deadline),
            _ => None,
        }
    }

    /// True when the deadline was spent waiting on one backend call (a
    /// store or a notifier that stalled, e.g. NATS unreachable): at least
    /// half the deadline in that call.
    pub fn is_backend_stall(&self) -> bool {
        match self {
            CallError::Deadline {
                limit,
                stalled: Some(waited),
                ..
            } => *waited * 2 >= *limit,
            _ => false,
        }
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
    /// The bytes are not a WebAssembly component at all (another file, or
    /// a core module); what they are instead.
    #[error("plugin is not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The bytes are not a valid component for this engine.
    #[error("plugin does not compile as a component")]
    Compile {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The component speaks a contract version this host does not load.
    #[error("plugin speaks {found}; this host loads lattice:spec {supported}")]
    Contract {
        /// What the component exports (e.g. `lattice:spec@0.1.0`).
        found: String,
        /// The versions this host loads.
        supported: String,
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

/// The tail of a deadline's message: the backend call it cut off, if any.
fn stalled_note(stalled: Option<Duration>) -> String {
    match stalled {
        Some(waited) => format!(", cutting off a backend call that had waited {waited:?}"),
        None => String::new(),
    }
}
