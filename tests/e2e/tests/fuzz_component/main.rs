//! Bad input through the real component (`SpecHost` over in-memory
//! backends, memory capped at 64 MiB unless a test says otherwise): a
//! bounded, deterministic fuzz run. Every call answers `Ok` or
//! `CallError::Spec` (never a trap, a CPU or memory limit, or a lost host),
//! a failed call leaves the store as it was, and the host still answers
//! `plugin_version` afterwards.
//!
//! * `generated`: a few hundred cases drawn with proptest's deterministic
//!   `TestRunner`: corrupt, huge and deeply nested stored values, arbitrary
//!   ids, links with arbitrary fields, malformed table snapshots;
//! * `fixed`: 1 MiB strings, repeated megabyte calls under a 16 MiB cap,
//!   a 5,000-link spec, 100,000 levels of nesting, and the regressions found.
//!
//! This file holds what the two share.

mod fixed;
mod generated;

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use spec_e2e::{plugin, start_with, MemoryHost};
use spec_embed::{CallError, PluginLimits, SpecError};
use test_support::fuzz::{any_id, any_link, id_ok, link_ok, nest, text, Spot};
use test_support::{spec, store_link};

/// Starts the plugin with a 64 MiB memory cap and one good spec stored.
async fn host() -> MemoryHost {
    let limits = PluginLimits {
        memory_cap: 64 << 20,
        ..PluginLimits::default()
    };
    let h = start_with(plugin(), &["p", "q"], limits).await;
    let good = spec("u", vec![store_link("good", "p")]);
    let stored = typed("store", h.host.store_component_spec("good", good).await);
    assert!(stored.is_ok(), "{stored:?}");
    h
}

/// `n` values of `strategy`, always the same ones.
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("generating: {e}"),
        })
        .collect()
}

/// The plugin's typed answer. Anything else (trap, limit, host gone) fails
/// the test on the spot.
fn typed<T: Debug>(call: &str, r: Result<T, CallError>) -> Result<T, SpecError> {
    match r {
        Ok(v) => Ok(v),
        Err(CallError::Spec(e)) => Err(e),
        Err(other) => panic!("{call}: the plugin misbehaved: {other:?}"),
    }
}

async fn assert_alive(h: &MemoryHost) {
    // A real call on the plugin (the version string is cached by the host).
    let answer = typed(
        "get-component-spec",
        h.host.get_component_spec("alive").await,
    );
    assert!(matches!(answer, Ok(None)), "{answer:?}");
    assert!(h.host.plugin_version().starts_with("spec-plugin "));
}
