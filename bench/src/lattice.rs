//! Section 7: lattice load — `spec-host serve` against the real wasmCloud
//! v1.9 host and against the raw JetStream floor, on one nats-server,
//! driven by wasmCloud's own control client.
//!
//! * Load: `link.put` of distinct components from 1, 8 and 32 clients (one
//!   NATS connection each), every run a fresh set of components, rounds
//!   interleaved across the three (the order rotates per round); the best
//!   round's throughput and its p50/p99 per target. The floor is the same
//!   KV get + create a put needs, issued by the bench itself with the same
//!   number in flight: what JetStream allows with no host at all.
//! * Floods: 64 clients send `link.get` (or status requests) in a loop on
//!   a lattice of 1,000 specs while one client puts links: how many puts
//!   fail, and their p99.
//! * Stuck call: one client keeps sending a put that makes the (test-only)
//!   faulty plugin loop over its imports until its deadline, while 8
//!   clients put links: their p99 against the same without it.
//!
//! Each host serves a lattice of its own, so they never share a queue
//! group. The wasmCloud column is skipped, with the reason printed, when
//! its binary is not built. Catch-up lives in [`crate::catchup`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::Serialize;
use spec_model::json::encode_spec;
use spec_model::keys::component_key;
use spec_model::{ComponentSpecification, Link};
use spec_nats::{Lattice, LatticeOptions, LocalNatsServer, ServerOptions};
use test_support::store_link;
use wasmcloud_control_interface::{Client as CtlClient, ClientBuilder};

use crate::hosts::{self, HostProcess};
use crate::stats::{percentile, us_since};

/// Concurrent clients measured.
pub const CLIENTS: [usize; 3] = [1, 8, 32];

/// Width of the request floods.
const FLOOD: usize = 64;

/// Specs stored before a flood.
const FLOOD_SPECS: usize = 1_000;

/// What is measured in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `spec-host serve` (the plugin, contract 0.3).
    SpecHost,
    /// `spec-host serve` running the contract 0.2 build.
    SpecHostV02,
    /// The wasmCloud v1.9 host (`wasmcloud-host` 0.27.1).
    WasmCloud,
    /// JetStream KV get + create from the bench, no host.
    Raw,
}

impl Target {
    /// Name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Target::SpecHost => "spec-host serve",
            Target::SpecHostV02 => "spec-host serve, plugin 0.2",
            Target::WasmCloud => "wasmCloud v1.9 host",
            Target::Raw => "raw JetStream (get + create)",
        }
    }
}

/// `link.put` throughput at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct LoadRow {
    /// Who answered.
    pub target: Target,
    /// Concurrent clients.
    pub clients: usize,
    /// Best round, puts/s.
    pub ops_s: f64,
    /// That round's median latency, µs.
    pub p50_us: f64,
    /// That round's p99, µs.
    pub p99_us: f64,
    /// Puts that failed or timed out, all rounds.
    pub failed: u64,
    /// Puts per round.
    pub puts: usize,
}

/// Puts under a flood of reads.
#[derive(Clone, Debug, Serialize)]
pub struct FloodRow {
    /// Who answered.
    pub target: Target,
    /// What floods: `link.get` or `status`.
    pub flood: &'static str,
    /// Puts sent.
    pub puts: usize,
    /// Puts that failed or timed out.
    pub failed: u64,
    /// Put p50, µs.
    pub p50_us: f64,
    /// Put p99, µs.
    pub p99_us: f64,
    /// Flood requests answered meanwhile.
    pub flood_answered: u64,
}

/// Puts while one request is stuck in a plugin loop.
#[derive(Clone, Debug, Serialize)]
pub struct StuckRow {
    /// p99 of 8 clients' puts with nothing stuck, µs.
    pub normal_p99_us: f64,
    /// The same while one call after another loops until its deadline, µs.
    pub stuck_p99_us: f64,
    /// Their ratio.
    pub ratio: f64,
    /// Puts that failed (not counting the looping ones), with/without.
    pub failed: u64,
    /// Looping calls cut off by the deadline meanwhile.
    pub loops_cut: u64,
}

/// Everything the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct LatticeLoad {
    /// `nats-server --version`.
    pub server_version: String,
    /// Why the wasmCloud column is empty, if it is.
    pub wasmcloud_skipped: Option<String>,
    /// Throughput rows.
    pub load: Vec<LoadRow>,
    /// Where a 1-client put's time goes, per spec-host build.
    pub put_time: Vec<crate::put_time::Row>,
    /// Flood rows.
    pub flood: Vec<FloodRow>,
    /// Stuck-call row.
    pub stuck: Option<StuckRow>,
}

/// A wasmCloud control client on an async-nats 0.39 connection.
pub(crate) async fn ctl_client(url: &str, lattice: &str) -> Result<CtlClient> {
    let nc = async_nats_039::connect(url)
        .await
        .context("connecting a control client")?;
    Ok(ClientBuilder::new(nc)
        .lattice(lattice)
        .timeout(Duration::from_secs(10))
        .build())
}

fn ctl_link(l: &Link) -> Result<wasmcloud_control_interface::Link> {
    wasmcloud_control_interface::Link::builder()
        .source_id(&l.source_id)
        .target(&l.target)
        .name(&l.name)
        .wit_namespace(&l.wit_namespace)
        .wit_package(&l.wit_package)
        .interfaces(l.interfaces.clone())
        .build()
        .map_err(|e| anyhow::anyhow!("building a control-interface link: {e}"))
}

/// One put through a host, or the raw floor; `Ok(false)` for an error reply.
async fn put_once(how: &Putter, source: &str) -> Result<bool> {
    match how {
        Putter::Ctl(ctl) => {
            let reply = ctl
                .put_link(ctl_link(&store_link(source, "kvredis"))?)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(reply.succeeded())
        }
        Putter::Raw(kv) => {
            let key = component_key(source);
            let current = kv.entry(&key).await?;
            let spec = ComponentSpecification {
                url: String::new(),
                links: vec![store_link(source, "kvredis")],
            };
            let value = Bytes::from(encode_spec(&spec));
            match current {
                Some(e) if e.operation == async_nats::jetstream::kv::Operation::Put => {
                    kv.update(&key, value, e.revision).await?;
                }
                _ => {
                    kv.create(&key, value).await?;
                }
            }
            Ok(true)
        }
    }
}

/// How a client puts.
pub(crate) enum Putter {
    Ctl(Box<CtlClient>),
    Raw(Box<async_nats::jetstream::kv::Store>),
}

/// One run: `clients` clients, `per_client` puts each, fresh sources.
/// Returns (puts/s, latencies µs, failures).
pub(crate) async fn run_load(
    putters: &[Arc<Putter>],
    clients: usize,
    per_client: usize,
    tag: &str,
) -> Result<(f64, Vec<f64>, u64)> {
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let putter = Arc::clone(&putters[c % putters.len()]);
        let failed = Arc::clone(&failed);
        let tag = format!("{tag}-c{c}");
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                let ok = tokio::time::timeout(
                    Duration::from_secs(10),
                    put_once(&putter, &format!("{tag}-{i}")),
                )
                .await;
                times.push(us_since(t));
                if !matches!(ok, Ok(Ok(true))) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            times
        }));
    }
    let mut all = Vec::with_capacity(clients * per_client);
    for t in tasks {
        all.extend(t.await.context("a load client panicked")?);
    }
    let wall = started.elapsed().as_secs_f64();
    Ok((
        (clients * per_client) as f64 / wall,
        all,
        failed.load(Ordering::Relaxed),
    ))
}

/// A host (or the floor) with its clients.
pub(crate) struct Side {
    pub(crate) target: Target,
    pub(crate) putters: Vec<Arc<Putter>>,
    /// The host's admin endpoint (spec-host only), for where a put's time
    /// goes.
    pub(crate) admin: Option<String>,
    _process: Option<HostProcess>,
}

async fn lattice_of(url: &str, name: &str) -> Result<Lattice> {
    Lattice::open(LatticeOptions::new(url, name))
        .await
        .with_context(|| format!("opening lattice {name}"))
}

/// Starts the sides of the load part.
async fn sides(url: &str, wasmcloud: Option<&std::path::Path>) -> Result<Vec<Side>> {
    let clients = *CLIENTS.iter().max().unwrap_or(&32);
    let mut out = Vec::new();
    // spec-host serve, with the plugin of contract 0.3 (bundled) and with
    // the 0.2 build: before and after, side by side.
    let v02 = test_artifacts::PLUGIN_V0_2_WASM.to_string();
    for (target, name, extra) in [
        (Target::SpecHost, "bench-spec", vec![]),
        (
            Target::SpecHostV02,
            "bench-spec02",
            vec!["--plugin".to_string(), v02],
        ),
    ] {
        let lattice = lattice_of(url, name).await?;
        let port = crate::stats::free_port()?;
        let admin = format!("127.0.0.1:{port}");
        let serve = ["--admin-listen".to_string(), admin.clone()];
        let mut host =
            hosts::spawn_spec_host_serving(url, name, &format!("bench-{name}"), &extra, &serve)?;
        hosts::spec_host_ready(&mut host, &lattice.client, name, 0, Duration::from_secs(60))
            .await?;
        let mut putters = Vec::new();
        for _ in 0..clients {
            putters.push(Arc::new(Putter::Ctl(Box::new(
                ctl_client(url, name).await?,
            ))));
        }
        out.push(Side {
            target,
            putters,
            admin: Some(admin),
            _process: Some(host),
        });
    }
    // wasmCloud.
    if let Some(binary) = wasmcloud {
        let mut host = hosts::spawn_wasmcloud(binary, url, "bench-wc")?;
        hosts::wasmcloud_ready(&mut host, Duration::from_secs(60)).await?;
        let mut putters = Vec::new();
        for _ in 0..clients {
            putters.push(Arc::new(Putter::Ctl(Box::new(
                ctl_client(url, "bench-wc").await?,
            ))));
        }
        out.push(Side {
            target: Target::WasmCloud,
            putters,
            admin: None,
            _process: Some(host),
        });
    }
    // The floor: a connection per client, as the control clients have.
    let mut putters = Vec::new();
    for _ in 0..clients {
        let lattice = lattice_of(url, "bench-raw").await?;
        putters.push(Arc::new(Putter::Raw(Box::new(lattice.specs.clone()))));
    }
    out.push(Side {
        target: Target::Raw,
        putters,
        admin: None,
        _process: None,
    });
    Ok(out)
}

async fn load(sides: &[Side], quick: bool) -> Result<Vec<LoadRow>> {
    let (rounds, puts): (usize, usize) = if quick { (1, 200) } else { (2, 1_000) };
    let mut rows: Vec<LoadRow> = Vec::new();
    // Warm-up: each side's first puts pay connection and page-in costs.
    for side in sides {
        run_load(&side.putters, 8, 20, &format!("warm-{:?}", side.target)).await?;
    }
    for round in 0..rounds {
        for &clients in &CLIENTS {
            let per_client = puts.div_ceil(clients);
            for k in 0..sides.len() {
                // Rotate who goes first each round.
                let side = &sides[(k + round) % sides.len()];
                let tag = format!("r{round}-n{clients}-{:?}", side.target);
                let (ops_s, times, failed) =
                    run_load(&side.putters, clients, per_client, &tag).await?;
                let row = LoadRow {
                    target: side.target,
                    clients,
                    ops_s,
                    p50_us: percentile(&times, 50.0),
                    p99_us: percentile(&times, 99.0),
                    failed,
                    puts: clients * per_client,
                };
                match rows
                    .iter_mut()
                    .find(|r| r.target == side.target && r.clients == clients)
                {
                    Some(best) => {
                        let failed = best.failed + row.failed;
                        if row.ops_s > best.ops_s {
                            *best = row;
                        }
                        best.failed = failed;
                    }
                    None => rows.push(row),
                }
            }
        }
    }
    rows.sort_by_key(|r| (r.clients, r.target as u8));
    Ok(rows)
}

/// Stores `n` one-link specs straight into `lattice`'s bucket, many at once.
pub async fn fill_bucket(lattice: &Lattice, prefix: &str, n: usize) -> Result<()> {
    use futures::StreamExt;
    let kv = lattice.specs.clone();
    let prefix = prefix.to_string();
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let kv = kv.clone();
            let source = format!("{prefix}-{i}");
            async move {
                let spec = ComponentSpecification {
                    url: format!("file:///{source}.wasm"),
                    links: vec![store_link(&source, "kvredis")],
                };
                kv.put(component_key(&source), Bytes::from(encode_spec(&spec)))
                    .await
                    .with_context(|| format!("storing {source}"))?;
                Ok(())
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    results.into_iter().collect()
}

/// One flood: `FLOOD` clients sending `what` in a loop while one client puts.
async fn flood(
    url: &str,
    lattice: &str,
    target: Target,
    what: &'static str,
    puts: usize,
) -> Result<FloodRow> {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    for _ in 0..FLOOD {
        let stop = Arc::clone(&stop);
        let answered = Arc::clone(&answered);
        let ctl = ctl_client(url, lattice).await?;
        let raw = async_nats::connect(url).await?;
        let lattice = lattice.to_string();
        flooders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = match what {
                    "status" => spec_lattice::serve::collect_status(
                        &raw,
                        &lattice,
                        Duration::from_millis(50),
                    )
                    .await
                    .is_ok_and(|s| !s.is_empty()),
                    _ => matches!(ctl.get_links().await, Ok(r) if r.succeeded()),
                };
                if ok {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Let the flood build up before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let putter = [Arc::new(Putter::Ctl(Box::new(
        ctl_client(url, lattice).await?,
    )))];
    let (_, times, failed) = run_load(&putter, 1, puts, &format!("flood-{what}")).await?;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    Ok(FloodRow {
        target,
        flood: what,
        puts,
        failed,
        p50_us: percentile(&times, 50.0),
        p99_us: percentile(&times, 99.0),
        flood_answered: answered.load(Ordering::Relaxed),
    })
}

async fn floods(
    url: &str,
    wasmcloud: Option<&std::path::Path>,
    quick: bool,
) -> Result<Vec<FloodRow>> {
    let puts = if quick { 100 } else { 500 };
    let mut rows = Vec::new();
    let lattice = lattice_of(url, "bench-flood-spec").await?;
    fill_bucket(&lattice, "f", FLOOD_SPECS).await?;
    let mut host = hosts::spawn_spec_host(url, "bench-flood-spec", &[])?;
    hosts::spec_host_ready(
        &mut host,
        &lattice.client,
        "bench-flood-spec",
        FLOOD_SPECS,
        Duration::from_secs(60),
    )
    .await?;
    for what in ["link.get", "status"] {
        rows.push(flood(url, "bench-flood-spec", Target::SpecHost, what, puts).await?);
    }
    host.check_alive()?;
    drop(host);
    if let Some(binary) = wasmcloud {
        let lattice = lattice_of(url, "bench-flood-wc").await?;
        fill_bucket(&lattice, "f", FLOOD_SPECS).await?;
        let mut host = hosts::spawn_wasmcloud(binary, url, "bench-flood-wc")?;
        hosts::wasmcloud_ready(&mut host, Duration::from_secs(120)).await?;
        rows.push(flood(url, "bench-flood-wc", Target::WasmCloud, "link.get", puts).await?);
        host.check_alive()?;
    }
    Ok(rows)
}

/// Puts of 8 clients with and without a call looping over its imports.
async fn stuck(url: &str, quick: bool) -> Result<StuckRow> {
    let name = "bench-stuck";
    let lattice = lattice_of(url, name).await?;
    // Default limits: the import cap cuts each looping call off after
    // 1,000 store reads; the client sends the next at once, so one call is
    // always stuck in the loop.
    let extra = vec![
        "--plugin".to_string(),
        test_artifacts::PLUGIN_FAULTY_WASM.to_string(),
    ];
    let mut host = hosts::spawn_spec_host(url, name, &extra)?;
    hosts::spec_host_ready(&mut host, &lattice.client, name, 0, Duration::from_secs(60)).await?;
    let mut putters = Vec::new();
    for _ in 0..8 {
        putters.push(Arc::new(Putter::Ctl(Box::new(
            ctl_client(url, name).await?,
        ))));
    }
    let per_client = if quick { 40 } else { 250 };
    run_load(&putters, 8, 10, "warm").await?;
    let (_, normal, failed_normal) = run_load(&putters, 8, per_client, "normal").await?;
    // One client sends the looping put again and again.
    let stop = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicU64::new(0));
    let mut loopers = Vec::new();
    for _ in 0..1 {
        let ctl = ctl_client(url, name).await?;
        let (stop, cut) = (Arc::clone(&stop), Arc::clone(&cut));
        loopers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(reply) = ctl
                    .put_link(ctl_link(&store_link("poison-loop", "kvredis"))?)
                    .await
                {
                    if !reply.succeeded() && reply.message().contains("import calls") {
                        cut.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, with_stuck, failed_stuck) = run_load(&putters, 8, per_client, "stuck").await?;
    stop.store(true, Ordering::Relaxed);
    for l in loopers {
        let _ = l.await;
    }
    host.check_alive()?;
    let (normal_p99, stuck_p99) = (percentile(&normal, 99.0), percentile(&with_stuck, 99.0));
    Ok(StuckRow {
        normal_p99_us: normal_p99,
        stuck_p99_us: stuck_p99,
        ratio: stuck_p99 / normal_p99.max(1.0),
        failed: failed_normal + failed_stuck,
        loops_cut: cut.load(Ordering::Relaxed),
    })
}

/// The `probe-load` subcommand: puts for `seconds` from `clients` clients
/// on a lattice some host serves; prints puts/s, p50 and p99.
pub fn probe_load(url: &str, lattice: &str, clients: usize, seconds: u64) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut putters = Vec::new();
        for _ in 0..clients {
            putters.push(Arc::new(Putter::Ctl(Box::new(
                ctl_client(url, lattice).await?,
            ))));
        }
        let started = Instant::now();
        let mut round = 0;
        let mut all = Vec::new();
        let mut failed = 0;
        while started.elapsed() < Duration::from_secs(seconds) {
            let (_, times, f) = run_load(&putters, clients, 50, &format!("probe{round}")).await?;
            all.extend(times);
            failed += f;
            round += 1;
        }
        let wall = started.elapsed().as_secs_f64();
        println!(
            "{:.0} puts/s, p50 {:.0} µs, p99 {:.0} µs, {failed} failed",
            all.len() as f64 / wall,
            percentile(&all, 50.0),
            percentile(&all, 99.0)
        );
        anyhow::Ok(())
    })
}

/// Runs the section.
pub async fn run(quick: bool) -> Result<LatticeLoad> {
    let binary = spec_nats::server::find_binary()?;
    let server_version = spec_nats::server::check_version(&binary)?;
    let dir = tempfile::tempdir().context("a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("js")))
        .await
        .context("starting nats-server")?;
    let url = server.url();
    let wasmcloud = hosts::wasmcloud_binary();
    let wasmcloud_skipped = wasmcloud.as_ref().err().cloned();
    if let Some(why) = &wasmcloud_skipped {
        crate::progress(&format!("wasmCloud column skipped: {why}"));
    }
    let wasmcloud = wasmcloud.ok();
    let sides = sides(&url, wasmcloud.as_deref()).await?;
    let load = load(&sides, quick).await?;
    let mut put_time = Vec::new();
    for side in &sides {
        if let Some(row) = crate::put_time::measure(side, &url, quick).await? {
            put_time.push(row);
        }
    }
    drop(sides);
    let flood = floods(&url, wasmcloud.as_deref(), quick).await?;
    let stuck = Some(stuck(&url, quick).await?);
    // Failures are figures to report; only a target where nothing worked
    // means the setup is broken.
    if let Some(r) = load.iter().find(|r| r.failed >= r.puts as u64) {
        bail!("every put to {} failed: {r:?}", r.target.name());
    }
    drop(server);
    Ok(LatticeLoad {
        server_version,
        wasmcloud_skipped,
        load,
        put_time,
        flood,
        stuck,
    })
}
