//! What every test suite of the workspace shares, written once:
//!
//! * builders of links and specs ([`link`], [`store_link`], [`spec`]), on top
//!   of [`spec_model::Link::new`];
//! * [`fuzz`] — the generators and hostile documents of the fuzz suites,
//!   and the documented id and link rules as an oracle;
//! * [`signal`] — a signal to a process the test started (SIGSTOP and
//!   SIGCONT freeze a nats-server or a host);
//! * [`prometheus`] — a strict check of a `/metrics` scrape's text format.
//!
//! Helpers that need a running host or a nats-server live with the suites
//! that start them (`spec-e2e`'s library, the reliability fixture).

pub mod fuzz;
pub mod prometheus;

use spec_model::{ComponentSpecification, Link};

/// A `wasi:keyvalue` link named `name` with these interfaces and no
/// configuration.
pub fn link(source: &str, target: &str, name: &str, interfaces: &[&str]) -> Link {
    Link::new(source, target, "wasi", "keyvalue", interfaces).named(name)
}

/// The link most tests need: `wasi:keyvalue/store`, named `default`.
pub fn store_link(source: &str, target: &str) -> Link {
    Link::new(source, target, "wasi", "keyvalue", &["store"])
}

/// A spec with this URL and these links.
pub fn spec(url: &str, links: Vec<Link>) -> ComponentSpecification {
    ComponentSpecification {
        url: url.into(),
        links,
    }
}

/// Sends signal `name` (`STOP`, `CONT`, `TERM`, …) to `pid`; panics when it
/// cannot be sent.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}
