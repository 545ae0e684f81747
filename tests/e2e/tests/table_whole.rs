//! A host never calls a partial table caught up.
//!
//! * The per-call memory cap guards one call; it does not bound the
//!   lattice: a table larger than the cap is followed whole, and status
//!   never says caught up with fewer components than the bucket holds.
//! * A table lost (the plugin refuses the host's copy of it) whose rebuild
//!   from the store then fails (NATS frozen with SIGSTOP: a store timeout)
//!   is degraded, not empty: status says why, `link.get` is refused, and
//!   neither a shadow nor a new build is handed it, and the host rebuilds
//!   it once the store answers again.

use std::time::{Duration, Instant};

use spec_e2e::{fill_specs, nats, serve_with, ServeOptions, PLUGIN_FAULTY_WASM};
use spec_embed::{CallError, PluginLimits};
use spec_lattice::serve::ctl::{self, LinkOp};
use spec_lattice::serve::{status, Service};
use spec_nats::{Lattice, LatticeOptions};
use test_support::signal;

/// Waits until `service` says it is caught up, checking at every look that
/// it never does so with a table smaller than `want` components.
async fn caught_up_whole(service: &Service, want: usize, limit: Duration) -> status::Status {
    let started = Instant::now();
    loop {
        let s = status::current(service);
        if s.caught_up {
            assert_eq!(
                s.components, want,
                "caught up with part of the table: {s:?}"
            );
            return s;
        }
        assert!(
            started.elapsed() < limit,
            "not caught up within {limit:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_table_larger_than_the_per_call_memory_cap_is_followed_whole() {
    const SPECS: usize = 50_000;
    const CAP: usize = 8 << 20;
    let n = nats().await;
    let url = n.server.url();
    let lattice = Lattice::open(LatticeOptions::new(&url, "big"))
        .await
        .unwrap();
    fill_specs(&lattice, "c", SPECS).await;
    let limits = PluginLimits {
        memory_cap: CAP,
        ..PluginLimits::default()
    };
    let served = serve_with(
        &url,
        "big",
        ServeOptions {
            limits: Some(limits),
            ..ServeOptions::default()
        },
    )
    .await;
    let s = caught_up_whole(&served.service, SPECS, Duration::from_secs(180)).await;
    assert_eq!(s.links, SPECS);
    // The table outgrew one call's cap; the owner's cap followed it.
    assert!(s.table_memory > CAP, "{s:?}");
    assert!(s.table_memory <= s.table_memory_cap, "{s:?}");
    assert_eq!(s.slow_consumers, 0, "{s:?}");
    println!(
        "{SPECS} specs: table owner at {} MiB (cap now {} MiB; per-call cap {} MiB)",
        s.table_memory >> 20,
        s.table_memory_cap >> 20,
        CAP >> 20
    );
}

#[tokio::test]
async fn a_table_whose_rebuild_fails_is_degraded_refused_and_rebuilt_later() {
    const SPECS: usize = 20;
    let n = nats().await;
    let url = n.server.url();
    let pid = n.server.pid().expect("a child process");
    let served = serve_with(
        &url,
        "lost",
        ServeOptions {
            plugin_file: Some(PLUGIN_FAULTY_WASM.into()),
            ..ServeOptions::default()
        },
    )
    .await;
    let service = &served.service;
    let host = &service.host;
    let lattice = Lattice::open(LatticeOptions::new(&url, "lost"))
        .await
        .unwrap();
    fill_specs(&lattice, "c", SPECS - 1).await;
    // In the table, the plugin refuses to restore it (a fault-injection build).
    let poisoned = test_support::spec(
        "file:///p.wasm",
        vec![test_support::store_link("poison-restore", "kvredis")],
    );
    host.store_component_spec("poison-restore", poisoned.clone())
        .await
        .unwrap();
    // The write returns once stored; the follower brings it to the table.
    // Its revision is past the fill's, so once the table holds it, it
    // holds all 20 (caught up was said at start, on an empty bucket).
    assert!(
        host.caught_up_with_own_writes(Duration::from_secs(30))
            .await,
        "the table never held this host's own write"
    );
    caught_up_whole(service, SPECS, Duration::from_secs(30)).await;

    // NATS freezes; the owner instance is lost (a trap); the plugin then
    // refuses the host's copy of the table and the store does not answer.
    signal(pid, "STOP");
    let value = spec_model::json::encode_spec(&poisoned);
    let trap = host.apply_stored_spec("poison-apply", value.clone()).await;
    assert!(matches!(trap, Err(CallError::Trap { .. })), "{trap:?}");
    let refused = host.apply_stored_spec("another", value).await;
    assert!(
        matches!(refused, Err(CallError::NotReady { .. })),
        "{refused:?}"
    );

    let s = status::current(service);
    assert!(!s.caught_up, "{s:?}");
    let why = s.not_caught_up.clone().unwrap_or_default();
    assert!(why.contains("degraded") && why.contains("store"), "{why}");
    let get = ctl::handle(service, LinkOp::Get, b"").await;
    assert!(!get.success, "link.get answered from a lost table");
    assert!(get.message.contains("not ready"), "{}", get.message);
    let imports = host.import_links("c-1").await;
    assert!(
        matches!(imports, Err(CallError::NotReady { .. })),
        "{imports:?}"
    );
    // Tried again with a growing wait while NATS stays frozen.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!status::current(service).caught_up);

    signal(pid, "CONT");
    let s = caught_up_whole(service, SPECS, Duration::from_secs(60)).await;
    assert_eq!(s.links, SPECS);
    assert_eq!(host.plugin_snapshot().await.unwrap(), host.snapshot());
    let get = ctl::handle(service, LinkOp::Get, b"").await;
    assert!(get.success, "{}", get.message);
}
