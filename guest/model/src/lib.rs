//! `spec-model`: the data of the `lattice:spec` contract, one definition for
//! the plugin (`spec-plugin`, built `no_std` for wasm), the host
//! (`spec-host`) and the benchmarks (`spec-bench`).
//!
//! Layout:
//! * [`link`] — [`Link`] and [`ComponentSpecification`], exactly wasmCloud's
//!   fields in wasmCloud's order.
//! * [`json`] — wasmCloud's stored JSON, byte for byte; [`borrowed`] —
//!   the same decoded without copying its strings (the table's fast path).
//! * [`error`] — the contract's typed errors ([`SpecError`], [`StoreError`],
//!   [`NotifyError`]).
//! * [`report`] — what each exported function returns.
//! * [`packed`] — the compact form of one id's links: the table's memory
//!   layout and snapshot format 1.
//! * [`validate`] — what a valid component id and link are.
//! * [`keys`] — the one place that spells a spec's key; [`Entry`], a
//!   stored value with its revision.
//! * [`hash`] — a deterministic hasher (no random seed, so no `wasi:random`).
//!
//! Nothing here does I/O; every function is pure and total (no panics on
//! any input).

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod borrowed;
pub mod error;
pub mod hash;
pub mod json;
pub mod keys;
pub mod link;
pub mod packed;
pub mod report;
pub mod validate;

pub use error::{NotifyError, SpecError, StoreError};
pub use keys::Entry;
pub use link::{ComponentSpecification, Link, DEFAULT_LINK_NAME};
pub use report::*;

/// What every module here uses from `alloc`.
mod prelude {
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
}
