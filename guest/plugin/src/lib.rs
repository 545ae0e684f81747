//! `spec-plugin`: the component-spec logic of a wasmCloud host as a
//! WebAssembly component (world `lattice:spec/spec-plugin@0.3.0`, or
//! `@0.2.0` with the feature `contract-0-2`).
//!
//! Layout:
//! * [`specs`] — reading and writing specs in the store: wasmCloud's link
//!   put/delete rules with compare-and-swap. Stateless; the `specs` export.
//! * [`table`] — the host-local link table (packed links, hashed O(n) diff).
//! * [`host_table`] — the `host-table` export: updates of the table, the
//!   deliveries they drive, snapshots.
//! * [`backend`] — the two imports as traits ([`backend::KeyValue`],
//!   [`backend::ProviderNotify`]), so all of the above runs natively in tests and
//!   benchmarks; [`memory`] implements them in memory.
//! * [`ops`] — both together natively, as a host runs them (tests, bench).
//! * `component` (wasm32 only) — the WIT bindings, one conversion each way
//!   between generated and [`spec_model`] types, and the exports.
//!
//! The crate is `no_std` + `alloc`: the component then imports exactly its
//! contract, and any wasmtime (or jco) host can load it without WASI.
//! Data types come from [`spec_model`], shared with the host.

// no_std where it matters, in the component; natively (tests, the
// benchmark's native twin, the cdylib crate type) std is there anyway.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod backend;
pub mod host_table;
pub mod memory;
pub mod ops;
pub mod specs;
pub mod table;

pub use spec_model as model;

/// `+faulty` in builds with the test-only `fault-injection` feature.
#[cfg(feature = "fault-injection")]
macro_rules! faulty_suffix {
    () => {
        "+faulty"
    };
}
#[cfg(not(feature = "fault-injection"))]
macro_rules! faulty_suffix {
    () => {
        ""
    };
}

/// `+contract-0.2` in builds of the previous contract version.
#[cfg(feature = "contract-0-2")]
macro_rules! contract_suffix {
    () => {
        "+contract-0.2"
    };
}
#[cfg(not(feature = "contract-0-2"))]
macro_rules! contract_suffix {
    () => {
        ""
    };
}

/// The version string returned by the `plugin-version` export.
#[cfg(not(feature = "alt-version"))]
pub const PLUGIN_VERSION: &str = concat!(
    "spec-plugin ",
    env!("CARGO_PKG_VERSION"),
    contract_suffix!(),
    faulty_suffix!()
);

/// The version string returned by the `plugin-version` export (alt build, so
/// a test can tell two plugin builds apart after a swap).
#[cfg(feature = "alt-version")]
pub const PLUGIN_VERSION: &str = concat!(
    "spec-plugin ",
    env!("CARGO_PKG_VERSION"),
    contract_suffix!(),
    faulty_suffix!(),
    "+alt"
);

/// Traps (aborts the call) when a test-only fault is asked for: the
/// `fault-injection` build's poison ids. A no-op in every other build.
#[inline]
pub(crate) fn inject_fault(id: &str, poison: &str) {
    if cfg!(feature = "fault-injection") && id == poison {
        panic!("fault injected for {poison}");
    }
}

/// In a fault-injection build, never returns for the id `poison-spin`: a
/// plugin stuck in a loop, which only the host's CPU budget ends.
pub(crate) fn inject_spin(id: &str) {
    if cfg!(feature = "fault-injection") && id == "poison-spin" {
        let mut n: u64 = 0;
        loop {
            n = core::hint::black_box(n.wrapping_add(1));
        }
    }
}

// The bindings only make sense inside a component: natively the imports have
// no implementation, and exporting WIT-named symbols from a native cdylib
// would be noise for crates that link this one as an rlib.
#[cfg(target_arch = "wasm32")]
mod component;

/// What every module here uses from `alloc`.
mod prelude {
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
}

#[cfg(test)]
mod tests {
    use super::PLUGIN_VERSION;

    #[test]
    fn version_names_the_crate_and_the_build() {
        let plain = concat!("spec-plugin ", env!("CARGO_PKG_VERSION"));
        assert!(PLUGIN_VERSION.starts_with(plain));
        assert_eq!(
            PLUGIN_VERSION.ends_with("+alt"),
            cfg!(feature = "alt-version")
        );
        assert_eq!(
            PLUGIN_VERSION.contains("+faulty"),
            cfg!(feature = "fault-injection")
        );
    }
}
