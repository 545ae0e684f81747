//! `spec-plugin`: the component-spec logic of a wasmCloud host as a
//! WebAssembly component (world `lattice:spec/spec-plugin`).
//!
//! All logic lives in plain modules that compile natively and are generic over
//! [`backend::Store`] and [`backend::Notifier`], so they are tested without a
//! component runtime. This file only adds, on wasm32, the WIT bindings: the
//! conversions between native and generated types (one each way) and the
//! export that delegates to [`ops::Plugin`].

pub mod backend;
mod compact;
pub mod error;
mod hash;
pub mod keys;
pub mod memory;
pub mod model;
pub mod ops;
pub mod report;
pub mod table;
pub mod validate;

pub use hash::{FxBuildHasher, FxHashMap, FxHashSet, FxHasher};

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

/// The version string returned by the `plugin-version` export.
#[cfg(not(feature = "alt-version"))]
pub const PLUGIN_VERSION: &str =
    concat!("spec-plugin ", env!("CARGO_PKG_VERSION"), faulty_suffix!());

/// The version string returned by the `plugin-version` export (alt build, so
/// a test can tell two plugin builds apart after a swap).
#[cfg(feature = "alt-version")]
pub const PLUGIN_VERSION: &str = concat!(
    "spec-plugin ",
    env!("CARGO_PKG_VERSION"),
    faulty_suffix!(),
    "+alt"
);

// The bindings only make sense inside a component: natively the imports have
// no implementation, and exporting WIT-named symbols from a native cdylib
// would be noise for crates that link this one as an rlib.
#[cfg(target_arch = "wasm32")]
mod component;

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
