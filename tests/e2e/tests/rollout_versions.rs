//! A lattice moves between contract versions with a rollout, and back:
//! two hosts running the 0.3 plugin shadow, switch to and settle on a
//! signed build of contract 0.2 while a client keeps putting links, then
//! roll back to the 0.3 build the same way. No put fails, the shadowing
//! finds no difference between the versions (or the rollout would stop),
//! and every host's table is what the bucket holds.

use std::time::{Duration, Instant};

use spec_e2e::{ctl_client, kv_link, nats, serve_trusting, PLUGIN_V0_2_WASM};
use spec_embed::{PluginEngine, PluginLimits};
use spec_lattice::rollout::publish::push;
use spec_lattice::rollout::store::{now, now_ms};
use spec_lattice::rollout::{Desired, Phase, RolloutRecord, Rollouts, SigningKey, Trust};
use spec_nats::{Lattice, LatticeOptions};

const LATTICE: &str = "versions";
const HOSTS: [&str; 2] = ["host-a", "host-b"];

/// Rolls the lattice from `from` to `to` and waits until both hosts
/// settled on it.
async fn roll(rollouts: &Rollouts, key: &SigningKey, from: &str, to: &str) {
    let desired = Desired {
        digest: to.into(),
        from_digest: from.into(),
        batch: 1,
        shadow_secs: 1,
        watch_secs: 1,
        expect: Vec::new(),
        order: HOSTS.iter().map(|h| h.to_string()).collect(),
        at: now(),
    };
    let record = RolloutRecord {
        desired: Some(desired),
        issued_at_ms: now_ms(),
    };
    let signed = key.sign_record(&record).expect("signed");
    rollouts.set_record(&signed).await.expect("record written");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let hosts = rollouts.hosts().await.unwrap_or_default();
        let settled = HOSTS.iter().all(|id| {
            hosts
                .iter()
                .any(|h| h.host_id == *id && h.phase == Phase::Settled && h.running == to)
        });
        if settled {
            return;
        }
        let stopped = hosts
            .iter()
            .find(|h| matches!(h.phase, Phase::Refused | Phase::RolledBack));
        assert!(stopped.is_none(), "the rollout stopped: {stopped:#?}");
        assert!(Instant::now() < deadline, "never settled: {hosts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_lattice_rolls_to_contract_0_2_and_back_without_a_failed_put() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(&dir.path().join("issuer.nk")).unwrap();
    let trust = Trust::new(vec![key.public_key()], false).unwrap();
    let a = serve_trusting(&url, LATTICE, HOSTS[0], trust.clone()).await;
    let b = serve_trusting(&url, LATTICE, HOSTS[1], trust).await;
    let lattice = Lattice::open(LatticeOptions::new(&url, LATTICE))
        .await
        .unwrap();
    let rollouts = Rollouts::open(&lattice).await.unwrap();
    let engine = PluginEngine::new().unwrap();
    let limits = PluginLimits::default();
    let new = std::fs::read(spec_e2e::PLUGIN_WASM).unwrap();
    let new = push(&rollouts, &engine, &new, limits, Some(&key))
        .await
        .unwrap()
        .digest;
    assert_eq!(a.service.plugin_info().digest, new);
    let old = std::fs::read(PLUGIN_V0_2_WASM).unwrap();
    let old = push(&rollouts, &engine, &old, limits, Some(&key))
        .await
        .unwrap()
        .digest;

    // A client puts links all along, on both hosts' lattice.
    let client = ctl_client(&url, LATTICE).await;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let mut i = 0;
        while !*stopped.borrow_and_update() {
            let reply = client
                .put_link(kv_link(
                    &format!("c{i}"),
                    &format!("kv{}", i % 7),
                    "default",
                    &[],
                ))
                .await;
            match reply {
                Ok(r) if r.succeeded() => ok += 1,
                Ok(r) => failed.push(r.message().to_string()),
                Err(e) => failed.push(e.to_string()),
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (ok, failed)
    });

    roll(&rollouts, &key, &new, &old).await;
    for served in [&a, &b] {
        let version = served.service.plugin_info().version;
        assert!(version.ends_with("+contract-0.2"), "{version}");
    }
    roll(&rollouts, &key, &old, &new).await;
    for served in [&a, &b] {
        let version = served.service.plugin_info().version;
        assert!(!version.contains("contract-0.2"), "{version}");
    }
    stop.send(true).unwrap();
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} puts failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(ok > 20, "only {ok} puts went through");
    println!("{ok} puts during two rollouts, none failed");

    // Every table is what the bucket says.
    let stored = a.service.host.list_links().await.expect("listing").links;
    let mut stored: Vec<String> = stored.iter().map(|l| l.to_string()).collect();
    stored.sort();
    for served in [&a, &b] {
        assert!(
            served
                .service
                .host
                .caught_up_with_own_writes(Duration::from_secs(5))
                .await
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut held: Vec<String> = served
                .service
                .host
                .links()
                .iter()
                .map(|l| l.to_string())
                .collect();
            held.sort();
            if held == stored {
                break;
            }
            assert!(Instant::now() < deadline, "a table differs from the bucket");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for served in [a, b] {
        served.stop().await.unwrap();
    }
}
