//! Lattice rollouts on hosts that trust one issuer: a build and a rollout
//! record signed by it roll out to both hosts; an unsigned record, one
//! signed by another key, a tampered one, an unsigned build and a replayed
//! older record are each refused, before anything is compiled, and the
//! hosts keep the build they run. A host that trusts nobody takes part in
//! no rollout and says so.

use std::time::{Duration, Instant};

use spec_e2e::{nats, serve_trusting};
use spec_embed::{PluginEngine, PluginLimits};
use spec_lattice::rollout::publish::push;
use spec_lattice::rollout::store::{now, now_ms};
use spec_lattice::rollout::trust::unsigned;
use spec_lattice::rollout::{
    Desired, HostRollout, Phase, RolloutRecord, Rollouts, SignedRecord, SigningKey, Trust,
};
use spec_nats::{Lattice, LatticeOptions};

const LATTICE: &str = "signed";
const HOSTS: [&str; 2] = ["host-a", "host-b"];

fn wanted(digest: &str, from: &str) -> Desired {
    Desired {
        digest: digest.into(),
        from_digest: from.into(),
        batch: 1,
        shadow_secs: 1,
        watch_secs: 1,
        expect: Vec::new(),
        order: HOSTS.iter().map(|h| h.to_string()).collect(),
        at: now(),
    }
}

fn record(desired: Desired, issued_at_ms: u64) -> RolloutRecord {
    RolloutRecord {
        desired: Some(desired),
        issued_at_ms,
    }
}

/// Waits until every host in `ids` is in `phase` with a reason containing
/// `reason`; fails with what they said after `limit`.
async fn wait_for(
    rollouts: &Rollouts,
    ids: &[&str],
    phase: Phase,
    reason: &str,
) -> Vec<HostRollout> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = rollouts.hosts().await.unwrap_or_default();
        let there: Vec<HostRollout> = hosts
            .into_iter()
            .filter(|h| ids.contains(&h.host_id.as_str()))
            .collect();
        let done = there.len() == ids.len()
            && there.iter().all(|h| {
                h.phase == phase && h.reason.as_deref().unwrap_or_default().contains(reason)
            });
        if done {
            return there;
        }
        assert!(
            Instant::now() < deadline,
            "hosts never reached {phase:?} ({reason:?}): {there:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn write(rollouts: &Rollouts, signed: &SignedRecord) {
    rollouts.set_record(signed).await.expect("record written");
}

#[tokio::test]
async fn only_what_a_trusted_issuer_signed_is_rolled_out() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(&dir.path().join("issuer.nk")).unwrap();
    let stranger = SigningKey::generate(&dir.path().join("stranger.nk")).unwrap();
    let trust = Trust::new(vec![key.public_key()], false).unwrap();
    let a = serve_trusting(&url, LATTICE, HOSTS[0], trust.clone()).await;
    let b = serve_trusting(&url, LATTICE, HOSTS[1], trust.clone()).await;
    let nobody = serve_trusting(
        &url,
        LATTICE,
        "host-trusts-nobody",
        Trust::new(vec![], false).unwrap(),
    )
    .await;

    let lattice = Lattice::open(LatticeOptions::new(&url, LATTICE))
        .await
        .unwrap();
    let rollouts = Rollouts::open(&lattice).await.unwrap();
    let engine = PluginEngine::new().unwrap();
    let limits = PluginLimits::default();
    let running = a.service.plugin_info().digest;
    let alt = std::fs::read(spec_e2e::PLUGIN_ALT_WASM).unwrap();
    let alt = push(&rollouts, &engine, &alt, limits, Some(&key))
        .await
        .unwrap()
        .digest;
    let faulty = std::fs::read(spec_e2e::PLUGIN_FAULTY_WASM).unwrap();
    let faulty = push(&rollouts, &engine, &faulty, limits, None)
        .await
        .unwrap()
        .digest;

    let off = wait_for(
        &rollouts,
        &["host-trusts-nobody"],
        Phase::Off,
        "no --trusted-issuer",
    )
    .await;
    println!("a host that trusts nobody: {:?}", off[0].reason);

    // An older record, signed now but issued before the rollout that follows.
    let replay = key
        .sign_record(&record(wanted(&running, &alt), now_ms() - 60_000))
        .unwrap();

    let refused = [
        (
            "unsigned record",
            unsigned(&record(wanted(&alt, &running), now_ms())).unwrap(),
            "not signed",
        ),
        (
            "record of an untrusted issuer",
            stranger
                .sign_record(&record(wanted(&alt, &running), now_ms()))
                .unwrap(),
            "not a trusted issuer",
        ),
        (
            "tampered record",
            {
                let mut d = wanted(&alt, &running);
                d.shadow_secs = 3600;
                let mut signed = key.sign_record(&record(d, now_ms())).unwrap();
                signed.record = signed
                    .record
                    .replace("\"shadow_secs\":3600", "\"shadow_secs\":0");
                assert!(signed.record.contains("\"shadow_secs\":0"));
                signed
            },
            "does not verify",
        ),
        (
            "unsigned build",
            key.sign_record(&record(wanted(&faulty, &running), now_ms()))
                .unwrap(),
            "is not signed by a trusted issuer",
        ),
    ];
    for (what, signed, reason) in refused {
        write(&rollouts, &signed).await;
        let hosts = wait_for(&rollouts, &HOSTS, Phase::Refused, reason).await;
        println!("{what}: {:?}", hosts[0].reason);
        for served in [&a, &b] {
            assert_eq!(
                served.service.plugin_info().digest,
                running,
                "{what}: a host switched"
            );
        }
    }

    // Signed build, signed record: both hosts shadow, switch and settle.
    let started = Instant::now();
    write(
        &rollouts,
        &key.sign_record(&record(wanted(&alt, &running), now_ms()))
            .unwrap(),
    )
    .await;
    wait_for(&rollouts, &HOSTS, Phase::Settled, "").await;
    println!(
        "signed rollout to 2 hosts settled in {:?}",
        started.elapsed()
    );
    for served in [&a, &b] {
        assert_eq!(served.service.plugin_info().digest, alt);
    }

    // The older record replayed: refused, the hosts stay where they are.
    write(&rollouts, &replay).await;
    let hosts = wait_for(&rollouts, &HOSTS, Phase::Refused, "a replay").await;
    println!("replayed record: {:?}", hosts[0].reason);
    for served in [&a, &b] {
        assert_eq!(served.service.plugin_info().digest, alt);
    }
    for served in [a, b, nobody] {
        served.stop().await.unwrap();
    }
}
