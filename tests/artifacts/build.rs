//! Builds the extra guests that tests and benchmarks load: a second build of the
//! plugin (feature `alt-version`, for swaps), a build of contract 0.2 (feature
//! `contract-0-2`, for moves between versions), a build that traps on one id
//! (feature `fault-injection`, for the reliability suite), a build that
//! cannot read the table's snapshot format (`foreign-snapshot`), a
//! misbehaving guest and a component of the old 0.1 contract. The
//! regular plugin comes from `spec-host`'s own build (`bundled`).

use guest_build::{build_guests, Guest};

fn main() {
    build_guests(&[
        Guest {
            package: "spec-plugin",
            features: &["alt-version"],
            dir: "plugin-alt",
            env: "SPEC_PLUGIN_ALT_WASM",
        },
        Guest {
            package: "spec-plugin",
            features: &["contract-0-2"],
            dir: "plugin-v0-2",
            env: "SPEC_PLUGIN_V0_2_WASM",
        },
        Guest {
            package: "spec-plugin",
            features: &["fault-injection"],
            dir: "plugin-faulty",
            env: "SPEC_PLUGIN_FAULTY_WASM",
        },
        Guest {
            package: "spec-plugin",
            features: &["foreign-snapshot"],
            dir: "plugin-foreign",
            env: "SPEC_PLUGIN_FOREIGN_WASM",
        },
        Guest {
            package: "trap-guest",
            features: &[],
            dir: "trap",
            env: "TRAP_GUEST_WASM",
        },
        Guest {
            package: "wrong-wit-guest",
            features: &[],
            dir: "wrong-wit",
            env: "WRONG_WIT_GUEST_WASM",
        },
    ]);
}
