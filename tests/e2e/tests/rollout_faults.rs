//! What a rollout holds against a build: the plugin's own faults, not the
//! time its calls spent waiting on a NATS that stalled. A good build whose
//! watch window meets a stalled nats-server (SIGSTOP, longer than the call
//! deadline) under load settles; it is not rolled back. And which hosts a
//! rollout waits for: one that answers the census late or "busy" has not
//! left.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spec_e2e::{ctl_client, kv_link, nats, serve_with, ServeOptions};
use spec_embed::{PluginEngine, PluginLimits};
use spec_lattice::rollout::publish::push;
use spec_lattice::rollout::store::{now, now_ms};
use spec_lattice::rollout::trust::unsigned;
use spec_lattice::rollout::{Desired, Phase, RolloutRecord, Rollouts, Trust};
use spec_nats::{Lattice, LatticeOptions};
use test_support::signal;

const LATTICE: &str = "stall";
const HOST: &str = "stall-host";

/// Waits until the host's rollout phase is one of `phases`; returns it.
async fn phase_in(rollouts: &Rollouts, phases: &[Phase], limit: Duration) -> Phase {
    let started = Instant::now();
    loop {
        let hosts = rollouts.hosts().await.unwrap_or_default();
        if let Some(h) = hosts.iter().find(|h| h.host_id == HOST) {
            if phases.contains(&h.phase) {
                return h.phase;
            }
        }
        assert!(
            started.elapsed() < limit,
            "never reached {phases:?}: {hosts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_stall_in_the_watch_window_does_not_roll_back_a_good_build() {
    let n = nats().await;
    let url = n.server.url();
    let pid = n.server.pid().expect("a child process");
    let limits = PluginLimits {
        deadline: Duration::from_millis(400),
        ..PluginLimits::default()
    };
    let served = serve_with(
        &url,
        LATTICE,
        ServeOptions {
            rollouts: Some(Trust::new(vec![], true).unwrap()),
            host_id: Some(HOST.into()),
            limits: Some(limits),
            ..ServeOptions::default()
        },
    )
    .await;
    let lattice = Lattice::open(LatticeOptions::new(&url, LATTICE))
        .await
        .unwrap();
    let rollouts = Rollouts::open(&lattice).await.unwrap();
    let running = served.service.plugin_info().digest;
    let engine = PluginEngine::new().unwrap();
    let alt = std::fs::read(spec_e2e::PLUGIN_ALT_WASM).unwrap();
    let alt = push(&rollouts, &engine, &alt, PluginLimits::default(), None)
        .await
        .unwrap()
        .digest;

    // Load from 16 clients, so that calls are in flight when NATS stalls.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for c in 0..16 {
        let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            let client = ctl_client(&url, LATTICE).await;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let link = kv_link(&format!("c{c}"), &format!("t{i}"), &format!("n{i}"), &[]);
                if matches!(client.put_link(link).await, Ok(r) if r.succeeded()) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }

    let desired = Desired {
        digest: alt.clone(),
        from_digest: running.clone(),
        batch: 1,
        shadow_secs: 1,
        watch_secs: 8,
        expect: Vec::new(),
        order: vec![HOST.into()],
        at: now(),
    };
    let record = RolloutRecord {
        desired: Some(desired),
        issued_at_ms: now_ms(),
    };
    rollouts
        .set_record(&unsigned(&record).unwrap())
        .await
        .unwrap();
    phase_in(&rollouts, &[Phase::Switched], Duration::from_secs(60)).await;
    let faults_before = served.service.faults();

    // NATS stalls for three call deadlines and more, inside the window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(pid, "STOP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    signal(pid, "CONT");

    let end = phase_in(
        &rollouts,
        &[Phase::Settled, Phase::RolledBack],
        Duration::from_secs(60),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let faults = served.service.faults() - faults_before;
    println!(
        "NATS stalled 2.5 s in the watch window: {end:?}, plugin faults {faults}, {} puts acknowledged in all",
        acked.load(Ordering::Relaxed)
    );
    assert_eq!(end, Phase::Settled, "a good build was rolled back");
    assert_eq!(served.service.plugin_info().digest, alt);
    assert!(acked.load(Ordering::Relaxed) > 0);
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_host_that_answers_the_census_busy_or_late_is_not_taken_for_gone() {
    // A rollout's next batch waits for the hosts before it unless they have
    // left; a host too loaded to report, or one reply late, has not.
    let n = nats().await;
    let url = n.server.url();
    let served = serve_with(&url, "census", ServeOptions::default()).await;
    let responder = async_nats::connect(&url).await.unwrap();
    let mut asked = responder
        .subscribe(spec_nats::subjects::status("census"))
        .await
        .unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Some(msg) = futures::StreamExt::next(&mut asked).await {
            // In time once, then always after the census stopped listening.
            if !first {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            first = false;
            if let Some(reply) = msg.reply {
                let busy = bytes::Bytes::from_static(br#"{"host_id":"slowpoke","busy":true}"#);
                let _ = responder.publish(reply, busy).await;
            }
        }
    });
    let started = Instant::now();
    while !served.service.census().spec_hosts.contains("slowpoke") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a busy host was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Three more censuses, each answered late: still there.
    let seen = Instant::now();
    while seen.elapsed() < Duration::from_secs(6) {
        assert!(
            served.service.census().spec_hosts.contains("slowpoke"),
            "taken for gone after {:?}",
            seen.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    served.stop().await.unwrap();
}
