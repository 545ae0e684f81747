//! Running the plugin.
//!
//! * [`embed`] and [`exports`] — the contract's host side as a library any
//!   wasmtime embedder can use: imports added to its own `Linker<T>`,
//!   exports called with [`spec_model`] types.
//! * [`runtime`] — engine, linker, contract-version check, loaded builds;
//!   [`cache`] — compiled builds on disk, trusted only when private and
//!   unchanged.
//! * `instance` — one instance and the limits every call runs under;
//!   `pool` — request instances; `owner` — the one table owner;
//!   `mirror` — the host's copy of the table.
//! * [`host`] — [`SpecHost`], the engine as one handle: pool, owner, swap.

mod bindings;
pub mod cache;
mod convert;
pub mod embed;
pub mod exports;
pub mod host;
mod instance;
pub mod keylock;
mod mirror;
mod owner;
mod pool;
pub mod runtime;

pub use cache::ComponentCache;
pub use embed::{CallLimit, CallLimits};
pub use host::{default_pool_size, SpecHost, TableStats};
pub use instance::PluginLimits;
pub use owner::Handoff;
pub use runtime::{digest_of, LoadedPlugin, PluginEngine, SUPPORTED_CONTRACTS};
pub use spec_model::Applied;
