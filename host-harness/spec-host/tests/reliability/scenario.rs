//! One scenario from start to report: start the lattice, run the load,
//! inject the fault once every client is a third of the way through, let
//! the service recover by itself, then compare the store, the hosts and
//! the providers with what the replies promised.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use spec_nats::subjects;

use super::checks;
use super::fixture::{connect, Fixture, PROVIDERS};
use super::load::{self, ctl_client, Plan};
use super::model;
use super::providers::{Mismatch, Recorder};
use super::report::Report;
use super::watchdog::{Watchdog, SILENCE_BOUND};
use test_support::signal;

/// What goes wrong during the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing; bad inputs are sent alongside the load.
    None,
    /// `kill -9` of the single nats-server, restarted on its store dir.
    NatsKill,
    /// `kill -9` of host A, restarted.
    HostKill,
    /// `kill -9` of one node of a 3-node cluster (the bucket's leader),
    /// restarted after the load went on without it.
    ClusterNodeKill,
    /// Both hosts swapped to the plugin that traps on `poison-pill`,
    /// poison pills sent, swapped back; bad inputs alongside.
    PluginSwap,
    /// 64 clients flood `link.get` and status requests beside the load.
    Flood,
    /// Both hosts run the faulty build; one client keeps sending a put that
    /// makes it loop over its imports until the import cap cuts it off.
    ImportLoop,
    /// Three hosts: lattice rollouts of a good build, of one caught in
    /// shadow, of one rolled back, of one that cannot take over the table.
    Rollout,
    /// Host A stopped with SIGSTOP for longer than the watchdog's bound,
    /// then continued: the hang measure must see it (this scenario passes
    /// only if it does; nothing may be lost meanwhile).
    FrozenHost,
}

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The load.
    pub plan: Plan,
    /// Bad inputs per scenario that sends them.
    pub bad_inputs: usize,
    /// Poison pills in the plugin scenario.
    pub poison: usize,
}

/// Upper bound on any wait for the service to come back.
const RECOVERY_BOUND: Duration = Duration::from_secs(120);

/// Runs one scenario and returns its report (not yet asserted).
pub async fn run(name: &'static str, fault: Fault, cfg: Config) -> Report {
    let wall = Instant::now();
    let mut fx = match fault {
        Fault::ClusterNodeKill => Fixture::cluster(name).await,
        Fault::PluginSwap | Fault::ImportLoop => Fixture::single(name, true).await,
        Fault::Rollout => Fixture::single_with(name, false, 3).await,
        _ => Fixture::single(name, false).await,
    };
    let urls = fx.urls();
    let topology = match fault {
        Fault::ClusterNodeKill => "3-node JetStream cluster (bucket R3), 2 spec-hosts".to_string(),
        Fault::Rollout => "1 nats-server, 3 spec-hosts".to_string(),
        _ => "1 nats-server, 2 spec-hosts".to_string(),
    };
    // In the cluster the providers listen on the nodes that stay up: core
    // NATS drops what a disconnected subscriber misses, for any provider.
    let victim = match fault {
        Fault::ClusterNodeKill => Some(bucket_leader(&fx).await),
        _ => None,
    };
    let provider_urls: Vec<String> = urls
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != victim)
        .map(|(_, u)| u.clone())
        .collect();
    let recorder = Recorder::start(connect(&provider_urls).await, &fx.lattice).await;
    let side = connect(&urls).await;

    let ids: Vec<&str> = fx.hosts.iter().map(|h| h.id.as_str()).collect();
    let watchdog = Watchdog::start(side.clone(), fx.lattice.clone(), &ids);

    let plan = cfg.plan;
    // Under a node kill, raw JetStream writers beside the load: the floor.
    let floor = match fault {
        Fault::ClusterNodeKill => Some(super::floor::start(&urls, &fx.lattice, plan.clients).await),
        _ => None,
    };
    let (load, gate) = load::start(&urls, &fx.lattice, plan, fault != Fault::None).await;
    let bad = match fault {
        Fault::None | Fault::PluginSwap | Fault::Flood => {
            let (client, lattice) = (side.clone(), fx.lattice.clone());
            let (n, seed) = (cfg.bad_inputs, plan.seed);
            Some(tokio::spawn(async move {
                checks::bad_inputs(&client, &lattice, n, seed).await
            }))
        }
        _ => None,
    };
    let mut faults = Vec::new();
    let mut problems = Vec::new();
    let mut poison = (0, 0);
    let mut wrongly_rolled_back = 0;
    if fault != Fault::None {
        load.reached(plan.ops / 3, RECOVERY_BOUND * 2).await;
        let at = load.progress.total();
        match fault {
            Fault::NatsKill => {
                fx.nats[0].kill();
                tokio::time::sleep(Duration::from_secs(1)).await;
                fx.nats[0].restart().await.expect("nats-server restarts");
                let restarted = Instant::now();
                let back = load
                    .progress
                    .first_ack_sent_after(restarted, RECOVERY_BOUND)
                    .await;
                faults.push(format!(
                    "kill -9 nats-server at op {at}, down 1.0 s, restarted on the same store dir; an op sent after the restart acknowledged {:.1} s after it",
                    back.as_secs_f64()
                ));
            }
            Fault::HostKill => {
                let pid = fx.hosts[0].pid().unwrap_or_default();
                fx.hosts[0].kill9();
                // Its last deliveries have arrived; its provider restarts
                // with it.
                tokio::time::sleep(Duration::from_millis(300)).await;
                recorder.reset(PROVIDERS[0]).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                fx.hosts[0].restart();
                let t = Instant::now();
                fx.wait_hosts(&["host-a", "host-b"], RECOVERY_BOUND).await;
                faults.push(format!(
                    "kill -9 spec-host host-a (pid {pid}) at op {at}, down 1.3 s, restarted; serving again {:.1} s after the restart",
                    t.elapsed().as_secs_f64()
                ));
            }
            Fault::ClusterNodeKill => {
                let i = victim.expect("a victim");
                let leader_now = bucket_leader(&fx).await;
                fx.nats[i].kill();
                let killed_at = Instant::now();
                let writable = load
                    .progress
                    .first_ack_sent_after(killed_at, RECOVERY_BOUND)
                    .await;
                // The lattice must keep serving on two nodes.
                let acked = load.progress.acked.load(Ordering::Relaxed);
                let want = acked + (plan.clients * plan.ops / 6).max(1) as u64;
                let deadline = Instant::now() + RECOVERY_BOUND;
                while load.progress.acked.load(Ordering::Relaxed) < want {
                    assert!(
                        Instant::now() < deadline,
                        "the cluster stopped serving with node {} down",
                        fx.node_names[i]
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let served = load.progress.acked.load(Ordering::Relaxed) - acked;
                let down = killed_at.elapsed();
                fx.nats[i].restart().await.expect("node restarts");
                let caught_up = replicas_current(&fx).await;
                fx.wait_hosts(&["host-a", "host-b"], RECOVERY_BOUND).await;
                let gap = load.progress.longest_gap_ms.load(Ordering::Relaxed) as f64 / 1000.0;
                let (floor_gap, floor_acked, floor_failed) = match floor {
                    Some(ref f) => (
                        f.progress.longest_gap_ms.load(Ordering::Relaxed) as f64 / 1000.0,
                        f.progress.acked.load(Ordering::Relaxed),
                        f.progress.unacked.load(Ordering::Relaxed),
                    ),
                    None => (0.0, 0, 0),
                };
                faults.push(format!(
                    "kill -9 cluster node {} ({} of the bucket) at op {at}; first op sent after the kill acknowledged {:.1} s after it; longest gap between two acknowledgements {gap:.1} s (raw JetStream puts into the same bucket meanwhile, the floor: longest gap {floor_gap:.1} s, {floor_acked} acknowledged, {floor_failed} failed); {served} ops acknowledged on the 2 others during {:.1} s down; restarted, its replica current again {caught_up:.1} s later",
                    fx.node_names[i],
                    if leader_now == i { "the leader" } else { "a replica" },
                    writable.as_secs_f64(),
                    down.as_secs_f64()
                ));
            }
            Fault::PluginSwap => {
                let ctl = ctl_client(&urls, &fx.lattice).await;
                let pids: Vec<_> = fx.hosts.iter().map(|h| h.pid()).collect();
                let t = Instant::now();
                fx.swap_plugin_file(test_artifacts::PLUGIN_FAULTY_WASM);
                wait_versions(&mut fx, true).await;
                let swapped = t.elapsed();
                let acked = load.progress.acked.load(Ordering::Relaxed);
                let (sent, refused, bad, example) = checks::poison_pills(&ctl, cfg.poison).await;
                poison = (sent, refused);
                problems.extend(bad);
                for h in &mut fx.hosts {
                    h.assert_running();
                }
                let t = Instant::now();
                fx.swap_plugin_file(spec_embed::bundled::PLUGIN_PATH);
                wait_versions(&mut fx, false).await;
                assert_eq!(
                    pids,
                    fx.hosts.iter().map(|h| h.pid()).collect::<Vec<_>>(),
                    "no host restarted"
                );
                faults.push(format!(
                    "plugin swap of both hosts to the +faulty build at op {at} ({:.1} s until both ran it)",
                    swapped.as_secs_f64()
                ));
                let during = load.progress.acked.load(Ordering::Relaxed) - acked;
                if during == 0 {
                    problems
                        .push("no load operation acknowledged while poison pills trapped".into());
                }
                faults.push(format!(
                    "{sent} puts on poison-pill, each a trap in the plugin, {during} load ops acknowledged meanwhile; swapped back ({:.1} s)",
                    t.elapsed().as_secs_f64()
                ));
                faults.push(format!(
                    "poison-pill reply: {}",
                    first_and_last_line(&example.unwrap_or_default())
                ));
            }
            Fault::Flood => {
                let (stats, stop) = checks::flood(&urls, &fx.lattice, 64).await;
                let acked = load.progress.acked.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(3)).await;
                let during = load.progress.acked.load(Ordering::Relaxed) - acked;
                let (answered, busy, failed) = stop.finish(stats).await;
                faults.push(format!(
                    "64 clients flooding link.get and status for 3 s from op {at}: {answered} answered, {busy} answered busy, {failed} failed; {during} load ops acknowledged meanwhile"
                ));
                if during == 0 {
                    problems.push("no load operation acknowledged during the flood".into());
                }
            }
            Fault::ImportLoop => {
                let t = Instant::now();
                fx.swap_plugin_file(test_artifacts::PLUGIN_FAULTY_WASM);
                wait_versions(&mut fx, true).await;
                let ctl = ctl_client(&urls, &fx.lattice).await;
                let acked = load.progress.acked.load(Ordering::Relaxed);
                let (loops, cut, example) =
                    checks::import_loops(&ctl, Duration::from_secs(3)).await;
                let during = load.progress.acked.load(Ordering::Relaxed) - acked;
                for h in &mut fx.hosts {
                    h.assert_running();
                }
                fx.swap_plugin_file(spec_embed::bundled::PLUGIN_PATH);
                wait_versions(&mut fx, false).await;
                faults.push(format!(
                    "both hosts on the +faulty build from op {at} ({:.1} s): {loops} puts that loop over `get`, {cut} of them cut off by the import cap, {during} load ops acknowledged meanwhile; swapped back",
                    t.elapsed().as_secs_f64()
                ));
                faults.push(format!(
                    "looping put reply: {}",
                    first_and_last_line(&example.unwrap_or_default())
                ));
                if cut != loops {
                    problems.push(format!(
                        "{} looping puts not cut off by the import cap",
                        loops - cut
                    ));
                }
                if during == 0 {
                    problems.push("no load operation acknowledged while calls looped".into());
                }
            }
            Fault::Rollout => {
                let ctl = ctl_client(&urls, &fx.lattice).await;
                let pids: Vec<_> = fx.hosts.iter().map(|h| h.pid()).collect();
                let (done, found, wrong) = super::rollout::exercise(&fx, &ctl).await;
                wrongly_rolled_back = wrong;
                faults.extend(done.into_iter().map(|d| format!("from op {at}: {d}")));
                problems.extend(found);
                if pids != fx.hosts.iter().map(|h| h.pid()).collect::<Vec<_>>() {
                    problems.push("a host restarted during the rollouts".into());
                }
            }
            Fault::FrozenHost => {
                let pid = fx.hosts[0].pid().expect("host-a runs");
                let frozen = SILENCE_BOUND + Duration::from_secs(3);
                signal(pid, "STOP");
                tokio::time::sleep(frozen).await;
                signal(pid, "CONT");
                fx.wait_hosts(&["host-a", "host-b"], RECOVERY_BOUND).await;
                faults.push(format!(
                    "SIGSTOP of spec-host host-a (pid {pid}) at op {at} for {:.0} s, then SIGCONT",
                    frozen.as_secs_f64()
                ));
            }
            Fault::None => {}
        }
        gate.close();
    }
    let (mut out, load_time) = load.join(Duration::from_secs(900)).await;
    if let Some(floor) = floor {
        floor.stop().await;
    }
    let silent = watchdog.finish().await;
    let bad_inputs = match bad {
        Some(task) => {
            let (sent, refused, bad) = task.await.expect("bad input task");
            problems.extend(bad);
            (sent, refused)
        }
        None => (0, 0),
    };
    // The service answers after the fault without anyone stepping in.
    let probe_ctl = ctl_client(&urls, &fx.lattice).await;
    checks::probe(&probe_ctl, &mut out, RECOVERY_BOUND).await;

    // Without a connection fault, no request may fail: not during a swap,
    // not beside a request that traps.
    if matches!(
        fault,
        Fault::None | Fault::PluginSwap | Fault::Flood | Fault::ImportLoop | Fault::Rollout
    ) && out.unacked > 0
    {
        problems.push(format!(
            "{} load operations failed without a connection fault",
            out.unacked
        ));
    }
    let (stored, odd) = checks::read_store(&side, &fx.lattice).await;
    problems.extend(odd);
    let stored_links: usize = stored.values().map(|l| l.len()).sum();
    let findings = model::compare(&out.model, &stored, &out.wrong_replies);
    let (hosts, sync_time) = match checks::hosts_in_sync(
        &side,
        &fx.lattice,
        fx.hosts.len(),
        stored_links,
        RECOVERY_BOUND,
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            problems.push(e);
            (Vec::new(), RECOVERY_BOUND)
        }
    };
    // link.get answers from the answering host's table, as wasmCloud v1.9
    // does, and the tables follow the bucket watch: right after a fault they
    // may still lag (a cluster leader election delays the watch). Once every
    // table holds the store's count, what wasmCloud's client reads back must
    // be the store itself, whichever host of the queue group answers.
    if !hosts.is_empty() {
        problems.extend(checks::ctl_views_match(&probe_ctl, &stored, 2 * fx.hosts.len()).await);
    }
    let (mismatches, settle_time, at_first) = recorder
        .check(&PROVIDERS, &stored, Duration::from_secs(15))
        .await;
    // Which of them the provider's host did publish (its log says so).
    let logs: Vec<String> = fx.hosts.iter().map(|h| h.log_text()).collect();
    let published_then_lost = mismatches
        .iter()
        .filter(|m| match m {
            Mismatch::Link { provider, .. } => PROVIDERS
                .iter()
                .position(|p| p == provider)
                .is_some_and(|i| m.published_by_host(&logs[i])),
            Mismatch::Odd(_) => false,
        })
        .count();
    let provider_mismatches: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    let late: Vec<String> = at_first.iter().map(ToString::to_string).collect();
    for h in &mut fx.hosts {
        h.assert_running();
    }
    Report {
        scenario: name,
        topology,
        plan,
        out,
        load_time,
        faults,
        bad_inputs,
        poison,
        problems,
        findings,
        stored_links,
        deliveries: recorder.deliveries(),
        resets: recorder.resets(),
        held: recorder.held(),
        provider_mismatches,
        published_then_lost,
        late,
        nats_crashed: matches!(fault, Fault::NatsKill | Fault::ClusterNodeKill),
        hosts,
        sync_time,
        settle_time,
        silent,
        expect_silent: fault == Fault::FrozenHost,
        wrongly_rolled_back,
        wall: wall.elapsed(),
    }
}

/// A multi-line error (a wasm backtrace) in one line: its first and last.
fn first_and_last_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    match lines.next_back() {
        Some(last) => format!("{first} … {last}"),
        None => first,
    }
}

/// Index of the node leading the spec bucket's stream (bounded retries).
async fn bucket_leader(fx: &Fixture) -> usize {
    let js = jetstream::new(connect(&fx.urls()).await);
    let stream = format!("KV_{}", subjects::spec_bucket(&fx.lattice));
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        if let Ok(mut s) = js.get_stream(&stream).await {
            if let Ok(info) = s.info().await {
                let leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
                if let Some(i) = leader.and_then(|l| fx.node_names.iter().position(|n| *n == l)) {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "{stream} has no leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds until the spec bucket has a leader and two current replicas
/// (bounded).
async fn replicas_current(fx: &Fixture) -> f64 {
    let t = Instant::now();
    let js = jetstream::new(connect(&fx.urls()).await);
    let stream = format!("KV_{}", subjects::spec_bucket(&fx.lattice));
    loop {
        if let Ok(mut s) = js.get_stream(&stream).await {
            if let Ok(info) = s.info().await {
                if let Some(c) = &info.cluster {
                    let replicas = c.replicas.iter().filter(|p| p.current && !p.offline);
                    if c.leader.is_some() && replicas.count() == 2 {
                        return t.elapsed().as_secs_f64();
                    }
                }
            }
        }
        assert!(
            t.elapsed() < RECOVERY_BOUND,
            "{stream} replicas not current within {RECOVERY_BOUND:?} of the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until both hosts run the faulty build (`faulty`) or not.
async fn wait_versions(fx: &mut Fixture, faulty: bool) {
    let client = connect(&fx.urls()).await;
    let deadline = Instant::now() + RECOVERY_BOUND * 2;
    loop {
        for h in &mut fx.hosts {
            h.assert_running();
        }
        let statuses =
            spec_lattice::serve::collect_status(&client, &fx.lattice, Duration::from_millis(300))
                .await
                .unwrap_or_default();
        let done = statuses.len() == 2
            && statuses
                .iter()
                .all(|s| s.plugin.version.ends_with("+faulty") == faulty);
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "plugin swap (faulty = {faulty}) not done: {:?}",
            statuses
                .iter()
                .map(|s| (&s.host_id, &s.plugin.version))
                .collect::<Vec<_>>()
        );
    }
}
