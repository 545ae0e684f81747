//! The links and specs every section works with, built the same way for
//! the plugin and the native side so that both do exactly the same work.

use spec_model::{ComponentSpecification, Link};

/// WIT namespace of every benchmark link.
const NAMESPACE: &str = "bench";

/// Link number `i` from `source` to `target`. Each gets its own WIT
/// package, so no two links of one source ever conflict (same name and
/// package to different targets) and every put appends or replaces.
pub fn link(source: &str, target: &str, i: usize) -> Link {
    Link::new(source, target, NAMESPACE, format!("p{i}"), &["store"])
}

/// `n` links from `source` to `target`.
pub fn links(source: &str, target: &str, n: usize) -> Vec<Link> {
    (0..n).map(|i| link(source, target, i)).collect()
}

/// A spec of `n` links from `source` to `target`.
pub fn spec(source: &str, target: &str, n: usize) -> ComponentSpecification {
    ComponentSpecification {
        url: format!("file:///bench/{source}.wasm"),
        links: links(source, target, n),
    }
}

/// The same link with one of two source configs, so that each put of it
/// replaces the stored one (a write and a table update every time) while
/// the spec keeps its size.
pub fn toggled(mut link: Link, flip: bool) -> Link {
    link.source_config = if flip {
        vec!["bench-config".to_string()]
    } else {
        Vec::new()
    };
    link
}

/// The package name of link `i`, for deletes.
pub fn package(i: usize) -> String {
    format!("p{i}")
}

/// The namespace of every benchmark link, for deletes.
pub fn namespace() -> &'static str {
    NAMESPACE
}
