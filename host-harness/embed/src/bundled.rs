//! The plugin built together with this crate (see `build.rs`), embedded so
//! that `spec-host` runs with no file beside it. `--plugin PATH` loads
//! another build instead.

/// Path of the plugin built with this crate.
pub const PLUGIN_PATH: &str = env!("SPEC_PLUGIN_WASM");

/// The plugin's bytes.
pub static PLUGIN: &[u8] = include_bytes!(env!("SPEC_PLUGIN_WASM"));
