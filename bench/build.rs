//! Builds a second build of the plugin (feature `alt-version`) for the swap
//! benchmark, exactly as `tests/build.rs` does; the regular plugin comes from
//! `spec-host`'s own build (`spec_host::bundled`).

#[path = "../build-support/guest_build.rs"]
mod guest_build;

fn main() {
    guest_build::build_guests(&[guest_build::Guest {
        package: "spec-plugin",
        features: &["alt-version"],
        // Same directory as the tests' alt build: same package and features,
        // so the two share one artifact instead of building it twice.
        dir: "plugin-alt",
        env: "SPEC_PLUGIN_ALT_WASM",
    }]);
}
