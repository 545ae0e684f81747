//! Builds the plugin for wasm32-wasip2 so that the binary can embed it.

#[path = "../../guest/guest_build.rs"]
mod guest_build;

fn main() {
    guest_build::build_guests(&[guest_build::Guest {
        package: "spec-plugin",
        features: &[],
        dir: "plugin",
        env: "SPEC_PLUGIN_WASM",
    }]);
}
