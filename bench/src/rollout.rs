//! Section 9: lattice rollouts — three `spec-host serve` processes on one
//! nats-server trusting one issuer, a build pushed and signed with
//! [`spec_lattice::rollout::publish::push`] and rolled out by writing a
//! signed rollout record, as `spec-host plugin push|rollout --signing-key`
//! do. Every host compiles the build itself (compiled code never travels);
//! what one compile costs is measured on its own.
//!
//! * Shadow overhead: 8 clients put links (wasmCloud's control client)
//!   with no rollout, then while every host shadows a new build (a shadow
//!   window longer than the round), rounds alternating; p50/p99 of each and
//!   their ratio. The shadow repeats every request off the request path, so
//!   what it costs is CPU shared with the live requests.
//! * Rollout time: from writing the desired build until every host has
//!   settled on it, one host at a time and all at once, with a light load
//!   running; beside it the windows the rollout was told to wait (shadow,
//!   then a watch per batch), so what the machinery itself adds shows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spec_lattice::rollout::store::{now, now_ms};
use spec_lattice::rollout::{Desired, Phase, RolloutRecord, Rollouts, SigningKey};
use spec_nats::{Lattice, LatticeOptions, LocalNatsServer, ServerOptions};

use crate::hosts::{self, HostProcess};
use crate::lattice::{ctl_client, run_load, Putter};
use crate::stats::percentile;

/// Hosts in the lattice.
const HOSTS: usize = 3;

/// One load round.
#[derive(Clone, Debug, Serialize)]
pub struct ShadowRound {
    /// Whether every host was shadowing a build.
    pub shadowing: bool,
    /// Puts/s.
    pub ops_s: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// p99, µs.
    pub p99_us: f64,
    /// Failed puts.
    pub failed: u64,
}

/// One rollout, timed.
#[derive(Clone, Debug, Serialize)]
pub struct RolloutTime {
    /// Hosts switching at once.
    pub batch: usize,
    /// From the desired build written to every host settled, seconds.
    pub seconds: f64,
    /// What the rollout was told to wait: the shadow window plus one watch
    /// window per batch, seconds.
    pub windows_s: f64,
    /// Puts of the light load meanwhile, and how many failed.
    pub puts: u64,
    /// Failed puts.
    pub failed: u64,
}

/// What the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct RolloutBench {
    /// Load rounds, in the order run.
    pub rounds: Vec<ShadowRound>,
    /// Median p50 with shadows / without.
    pub p50_ratio: f64,
    /// Median p99 with shadows / without.
    pub p99_ratio: f64,
    /// Requests the shadows compared in the shadowing rounds, and how many
    /// differed (the build differs in its version string only: 0).
    pub compared: u64,
    /// Differences found.
    pub differences: u64,
    /// Rollouts timed.
    pub rollouts: Vec<RolloutTime>,
    /// One compile of the build, as each host does before shadowing (no
    /// cache), milliseconds (median of 3).
    pub compile_ms: f64,
}

/// Writes a rollout record signed by `key`: `Some` a rollout, `None` a
/// cancel.
async fn ask(rollouts: &Rollouts, key: &SigningKey, desired: Option<&Desired>) -> Result<()> {
    let record = RolloutRecord {
        desired: desired.cloned(),
        issued_at_ms: now_ms(),
    };
    rollouts.set_record(&key.sign_record(&record)?).await?;
    Ok(())
}

fn host_ids() -> Vec<String> {
    (0..HOSTS).map(|i| format!("bench-rollout-{i}")).collect()
}

fn desired(digest: &str, from: &str, batch: usize, shadow: u64, watch: u64) -> Desired {
    Desired {
        digest: digest.into(),
        from_digest: from.into(),
        batch,
        shadow_secs: shadow,
        watch_secs: watch,
        expect: vec![],
        order: host_ids(),
        at: now(),
    }
}

/// Waits until every host's status says `phase` for this rollout, or
/// (`phase` `None`) no host shadows any more.
async fn wait_phase(
    lattice: &Lattice,
    want: Option<(&Desired, Phase)>,
    limit: Duration,
) -> Result<Vec<spec_lattice::serve::status::Status>> {
    let deadline = Instant::now() + limit;
    loop {
        let found = spec_lattice::serve::collect_status(
            &lattice.client,
            &lattice.options.lattice,
            Duration::from_millis(200),
        )
        .await?;
        let done = found.len() == HOSTS
            && found.iter().all(|s| match (&want, &s.rollout) {
                (Some((d, phase)), Some(r)) => {
                    r.rollout_at.as_deref() == Some(&d.at) && r.phase == *phase
                }
                (Some(_), None) => false,
                (None, r) => r.as_ref().is_none_or(|r| r.phase != Phase::Shadowing),
            });
        if done {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("hosts did not reach {want:?} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn round(
    putters: &[Arc<Putter>],
    per: usize,
    tag: &str,
    shadowing: bool,
) -> Result<ShadowRound> {
    let (ops_s, times, failed) = run_load(putters, putters.len(), per, tag).await?;
    Ok(ShadowRound {
        shadowing,
        ops_s,
        p50_us: percentile(&times, 50.0),
        p99_us: percentile(&times, 99.0),
        failed,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Times one rollout to `to` with a light load (2 clients) running.
async fn time_rollout(
    url: &str,
    lattice: &Lattice,
    rollouts: &Rollouts,
    key: &SigningKey,
    want: Desired,
) -> Result<RolloutTime> {
    let stop = Arc::new(AtomicBool::new(false));
    let (puts, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for c in 0..2 {
        let putter = Arc::new(Putter::Ctl(Box::new(
            ctl_client(url, &lattice.options.lattice).await?,
        )));
        let (stop, puts, failed) = (Arc::clone(&stop), Arc::clone(&puts), Arc::clone(&failed));
        let tag = format!("during-{}-{c}", want.batch);
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (_, _, f) =
                    run_load(&[Arc::clone(&putter)], 1, 10, &format!("{tag}-{i}")).await?;
                puts.fetch_add(10, Ordering::Relaxed);
                failed.fetch_add(f, Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    ask(rollouts, key, Some(&want)).await?;
    let outcome = wait_phase(
        lattice,
        Some((&want, Phase::Settled)),
        Duration::from_secs(300),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.context("a load client panicked")??;
    }
    outcome?;
    let batches = HOSTS.div_ceil(want.batch) as u64;
    Ok(RolloutTime {
        batch: want.batch,
        seconds,
        windows_s: (want.shadow_secs + batches * want.watch_secs) as f64,
        puts: puts.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    })
}

/// Runs the section.
pub async fn run(quick: bool) -> Result<RolloutBench> {
    let dir = tempfile::tempdir().context("a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("js")))
        .await
        .context("starting nats-server")?;
    let url = server.url();
    let name = "bench-rollout";
    let lattice = Lattice::open(LatticeOptions::new(&url, name))
        .await
        .context("opening the rollout lattice")?;
    let key = SigningKey::generate(&dir.path().join("issuer.nk"))?;
    let trust = ["--trusted-issuer".to_string(), key.public_key()];
    let mut procs: Vec<HostProcess> = Vec::new();
    for id in host_ids() {
        procs.push(hosts::spawn_spec_host_serving(
            &url,
            name,
            &id,
            &[],
            &trust,
        )?);
    }
    for p in &mut procs {
        hosts::spec_host_ready(p, &lattice.client, name, 0, Duration::from_secs(60)).await?;
    }
    wait_phase(&lattice, None, Duration::from_secs(60)).await?;
    let rollouts = Rollouts::open(&lattice).await?;
    let engine = spec_embed::PluginEngine::new()?;
    let limits = spec_embed::PluginLimits::default();
    let bundled = spec_lattice::rollout::publish::push(
        &rollouts,
        &engine,
        spec_embed::bundled::PLUGIN,
        limits,
        Some(&key),
    )
    .await?
    .digest;
    let alt_bytes =
        std::fs::read(test_artifacts::PLUGIN_ALT_WASM).context("reading the alt build")?;
    let alt =
        spec_lattice::rollout::publish::push(&rollouts, &engine, &alt_bytes, limits, Some(&key))
            .await?
            .digest;
    // What each host pays before it can shadow: one compile, no cache.
    let mut compiles = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        engine.load_bytes(&alt_bytes)?;
        compiles.push(started.elapsed().as_secs_f64() * 1e3);
    }
    compiles.sort_by(f64::total_cmp);
    let compile_ms = compiles[1];

    // Shadow overhead.
    let mut putters = Vec::new();
    for _ in 0..8 {
        putters.push(Arc::new(Putter::Ctl(Box::new(
            ctl_client(&url, name).await?,
        ))));
    }
    let per = if quick { 40 } else { 250 };
    let pairs = if quick { 1 } else { 3 };
    run_load(&putters, 8, 10, "warm").await?;
    let mut rounds = Vec::new();
    let (mut compared, mut differences) = (0, 0);
    for i in 0..pairs {
        rounds.push(round(&putters, per, &format!("off{i}"), false).await?);
        let want = desired(&alt, &bundled, 1, 3600, 1);
        ask(&rollouts, &key, Some(&want)).await?;
        wait_phase(
            &lattice,
            Some((&want, Phase::Shadowing)),
            Duration::from_secs(60),
        )
        .await?;
        rounds.push(round(&putters, per, &format!("on{i}"), true).await?);
        let found = wait_phase(
            &lattice,
            Some((&want, Phase::Shadowing)),
            Duration::from_secs(5),
        )
        .await?;
        for s in found
            .iter()
            .filter_map(|s| s.rollout.as_ref()?.shadow.as_ref())
        {
            compared += s.compared;
            differences += s.differences.values().sum::<u64>();
        }
        ask(&rollouts, &key, None).await?;
        wait_phase(&lattice, None, Duration::from_secs(30)).await?;
    }
    let ratio = |f: fn(&ShadowRound) -> f64| {
        let on = median(rounds.iter().filter(|r| r.shadowing).map(f).collect());
        let off = median(rounds.iter().filter(|r| !r.shadowing).map(f).collect());
        on / off.max(1.0)
    };
    let (p50_ratio, p99_ratio) = (ratio(|r| r.p50_us), ratio(|r| r.p99_us));

    // Rollout time: one at a time to the alt build, all at once back.
    let (shadow, watch) = if quick { (1, 1) } else { (2, 2) };
    let mut timed = Vec::new();
    timed.push(
        time_rollout(
            &url,
            &lattice,
            &rollouts,
            &key,
            desired(&alt, &bundled, 1, shadow, watch),
        )
        .await?,
    );
    timed.push(
        time_rollout(
            &url,
            &lattice,
            &rollouts,
            &key,
            desired(&bundled, &alt, HOSTS, shadow, watch),
        )
        .await?,
    );
    for p in &mut procs {
        p.check_alive()?;
    }
    drop(procs);
    drop(server);
    Ok(RolloutBench {
        rounds,
        p50_ratio,
        p99_ratio,
        compared,
        differences,
        rollouts: timed,
        compile_ms,
    })
}
