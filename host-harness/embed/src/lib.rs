//! `spec-embed`: the host side of the `lattice:spec` plugin contract
//! (versions 0.3 and 0.2, either loaded by what a build exports), for any
//! wasmtime embedder.
//!
//! The plugin (`guest/plugin`, a WebAssembly component of the world
//! `lattice:spec/spec-plugin`) owns wasmCloud's component-spec logic: the
//! stored JSON, the link rules and the host-local link table. This crate
//! supplies its imports and calls its exports; it depends on wasmtime, the
//! contract's data ([`spec_model`], re-exported as [`model`]) and small
//! crates only. The NATS backends (`spec-nats`) and the lattice service
//! (`spec-lattice`) are crates of their own.
//!
//! Layout:
//! * [`embed`] and [`exports`] — the contract on your own `Linker<T>`:
//!   imports backed by your [`backend`]s, exports called with
//!   [`spec_model`] types.
//! * [`backend`] — one async trait per import ([`backend::KeyValue`],
//!   [`backend::ProviderNotify`]) and the in-memory backends
//!   ([`backend::memory`]).
//! * [`runtime`] — engine, linker, the contract-version check, loaded
//!   builds; [`cache`] — compiled builds on disk, trusted only when
//!   private and unchanged.
//! * [`host`] — [`SpecHost`], the batteries-included engine: a pool of
//!   request instances and one table owner, every call under a memory cap,
//!   CPU budget, deadline and import cap, instances replaced after a fault,
//!   the whole engine swapped at one point. Its parts: `instance` (one
//!   instance and its limits), `pool`, `owner` (its memory cap sized from
//!   the table it holds), `mirror` (the host's copy of the table),
//!   `rebuild` (the table streamed back from the store), `listing` (every
//!   link of a lattice of any size, in pages), `health` (whole
//!   or degraded), [`keylock`].
//! * [`error`] — the typed errors of each boundary; [`stats`] — faults by
//!   class, instances replaced and each export's time (plugin against
//!   imports), counted where every call ends.
//! * `bundled` (feature `bundled`) — the plugin built with this crate.

pub mod backend;
mod bindings;
#[cfg(feature = "bundled")]
pub mod bundled;
pub mod cache;
mod convert;
pub mod embed;
pub mod error;
pub mod exports;
mod health;
pub mod host;
mod instance;
pub mod keylock;
mod listing;
mod mirror;
mod owner;
mod pool;
mod rebuild;
pub mod runtime;
pub mod stats;

pub use cache::ComponentCache;
pub use embed::{CallLimit, CallLimits};
pub use error::{CallError, LoadError, SpecError};
pub use host::{default_pool_size, SpecHost, TableStats};
pub use instance::PluginLimits;
pub use owner::{Handoff, StoreChange};
pub use runtime::{digest_of, LoadedPlugin, PluginEngine, SUPPORTED_CONTRACTS};
pub use spec_model as model;
pub use spec_model::{Applied, ComponentSpecification, Link};
pub use stats::{CallTimes, FaultClass, PluginStats};
