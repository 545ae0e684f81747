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

#[path = "fuzz_component/fixed.rs"]
mod fixed;
#[path = "fuzz_component/generated.rs"]
mod generated;

use std::fmt::Debug;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use spec_e2e::{plugin, start_with, MemoryHost};
use spec_host::{CallError, ComponentSpecification, Link, PluginLimits, SpecError};

/// Starts the plugin with a 64 MiB memory cap and one good spec stored.
async fn host() -> MemoryHost {
    let limits = PluginLimits {
        memory_cap: 64 << 20,
        ..PluginLimits::default()
    };
    let h = start_with(plugin(), &["p", "q"], limits).await;
    let good = spec("u", vec![link("good", "p")]);
    let stored = typed("store", h.host.store_component_spec("good", good).await);
    assert!(stored.is_ok(), "{stored:?}");
    h
}

fn link(source: &str, target: &str) -> Link {
    Link::new(source, target, "wasi", "keyvalue", &["store"])
}

fn spec(url: &str, links: Vec<Link>) -> ComponentSpecification {
    ComponentSpecification {
        url: url.into(),
        links,
    }
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

// ---- generators and the documented rules ----------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["fz", "good", "p", "wasi", "keyvalue", "store", "default", ""])
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

fn any_link() -> impl Strategy<Value = Link> {
    let strs = (text(), text(), text(), text(), text());
    let lists = (vec(text(), 0..3), vec(text(), 0..2), vec(text(), 0..2));
    (strs, lists).prop_map(|((s, t, n, ns, pkg), (i, sc, tc))| Link {
        source_id: s,
        target: t,
        name: n,
        wit_namespace: ns,
        wit_package: pkg,
        interfaces: i,
        source_config: sc,
        target_config: tc,
    })
}

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-/_=.a-zA-Z0-9]{0,12}",
        any::<String>(),
        select(vec![
            "", ".", "..", "a..b", ".a", "a.", "a b", "a\u{0}", "é", "a*", "a>"
        ])
        .prop_map(String::from),
        (1usize..10_000).prop_map(|n| "a".repeat(n)),
        (1usize..10_000).prop_map(|n| format!("{}é", "a".repeat(n))),
    ]
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
}

fn link_ok(l: &Link) -> bool {
    !l.wit_namespace.is_empty()
        && !l.wit_package.is_empty()
        && !l.interfaces.is_empty()
        && l.interfaces.iter().all(|i| !i.is_empty())
        && id_ok(&l.source_id)
        && id_ok(&l.target)
}

/// `depth` nested arrays or objects, closed or not, as the whole value
/// (`spot` 0), as `links` (1) or as an unknown field (2).
fn nest(depth: usize, objects: bool, spot: u8, closed: bool) -> Vec<u8> {
    let (open, close) = if objects {
        ("{\"a\":", "}")
    } else {
        ("[", "]")
    };
    let mut inner = open.repeat(depth);
    inner.push('1');
    if closed {
        inner.push_str(&close.repeat(depth));
    }
    match spot {
        0 => inner,
        1 => format!("{{\"url\":\"u\",\"links\":{inner}}}"),
        _ => format!("{{\"url\":\"u\",\"extra\":{inner}}}"),
    }
    .into_bytes()
}
