//! Paths of the wasm guests built for tests and benchmarks (see `build.rs`).
//! The regular plugin is `spec_embed::bundled::PLUGIN_PATH`.

/// The plugin built with feature `alt-version` (a second build to swap to).
pub const PLUGIN_ALT_WASM: &str = env!("SPEC_PLUGIN_ALT_WASM");
/// The plugin of the previous contract version, `lattice:spec@0.2.0`
/// (feature `contract-0-2`; version `spec-plugin 0.3.0+contract-0.2`), for
/// moves between versions and side-by-side benchmarks.
pub const PLUGIN_V0_2_WASM: &str = env!("SPEC_PLUGIN_V0_2_WASM");
/// The plugin built with feature `fault-injection`: `put-link` traps when
/// the source id is `poison-pill` and loops over `get` for `poison-loop`,
/// applying a spec traps for the id `poison-apply`; its version ends in
/// `+faulty`.
pub const PLUGIN_FAULTY_WASM: &str = env!("SPEC_PLUGIN_FAULTY_WASM");
/// The plugin built with feature `foreign-snapshot`: it reads only table
/// snapshot format 99, so it cannot take over a running table.
pub const PLUGIN_FOREIGN_WASM: &str = env!("SPEC_PLUGIN_FOREIGN_WASM");
/// The misbehaving test guest.
pub const TRAP_GUEST_WASM: &str = env!("TRAP_GUEST_WASM");
/// A component of the old contract, `lattice:spec@0.1.0`.
pub const WRONG_WIT_GUEST_WASM: &str = env!("WRONG_WIT_GUEST_WASM");
