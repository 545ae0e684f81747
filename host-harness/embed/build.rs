//! With feature `bundled`, builds the plugin for wasm32-wasip2 so that the
//! library can embed it (`spec_embed::bundled`). Without it (the default
//! for library users) nothing is built.

use guest_build::{build_guests, Guest};

fn main() {
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_none() {
        return;
    }
    build_guests(&[Guest {
        package: "spec-plugin",
        features: &[],
        dir: "plugin",
        env: "SPEC_PLUGIN_WASM",
    }]);
}
