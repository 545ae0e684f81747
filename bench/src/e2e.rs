//! Section 2: end to end on NATS — a nats-server of our own (loopback, temp
//! store), JetStream KV behind `keyvalue`, NATS deliveries to one local
//! provider behind `provider-notify`.
//!
//! Sequential latency (p50, p99) of get, store, put-link and delete-link,
//! and put-link throughput on distinct ids with 1, 8 and 32 concurrent
//! clients, plugin vs native. The two sides share one connection and
//! bucket but never one key (`p-…` / `n-…`), and never run at the same
//! time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use spec_host::backend::{KeyValue, ProviderNotify};
use spec_host::nats::{Lattice, LatticeOptions, LocalNatsServer, LocalProvider, ServerOptions};
use spec_host::{LoadedPlugin, PluginLimits};

use crate::fixtures;
use crate::sides::{interleave, Batch, Kind, Side};
use crate::stats::{percentile, plugin_first, ratio, us_since};
use crate::table::{self, TextTable};

/// The provider every benchmark link targets; it is local, so each new or
/// removed link is published to it (a NATS publish and flush).
const PROVIDER: &str = "bench-provider";

/// Concurrent clients measured for throughput.
pub const CLIENTS: [usize; 3] = [1, 8, 32];

/// Latency of one operation.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    /// Operation name.
    pub op: &'static str,
    /// Plugin p50, µs.
    pub plugin_p50_us: f64,
    /// Plugin p99, µs.
    pub plugin_p99_us: f64,
    /// Native p50, µs.
    pub native_p50_us: f64,
    /// Native p99, µs.
    pub native_p99_us: f64,
    /// Plugin / native at p50.
    pub ratio_p50: Option<f64>,
    /// Plugin / native at p99.
    pub ratio_p99: Option<f64>,
    /// Calls timed per side.
    pub samples: usize,
}

/// Put-link throughput at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    /// Concurrent clients.
    pub clients: usize,
    /// Median plugin throughput, puts/s.
    pub plugin_ops_s: f64,
    /// Median native throughput, puts/s.
    pub native_ops_s: f64,
    /// Plugin / native.
    pub ratio: Option<f64>,
    /// Runs per side.
    pub runs: usize,
}

/// Everything the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct E2e {
    /// `nats-server --version`.
    pub server_version: String,
    /// Sequential latencies.
    pub latency: Vec<LatencyRow>,
    /// Throughputs.
    pub throughput: Vec<ThroughputRow>,
    /// The floor: a JetStream KV get awaited directly, no host, p50 µs.
    pub raw_get_p50_us: f64,
    /// The same at p99.
    pub raw_get_p99_us: f64,
    /// A KV get on the native worker through its sync→async bridge, no
    /// logic, p50 µs.
    pub bridged_get_p50_us: f64,
    /// The same at p99.
    pub bridged_get_p99_us: f64,
}

fn prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Plugin => "p",
        Kind::Native => "n",
    }
}

fn slot(kind: Kind) -> usize {
    usize::from(kind == Kind::Native)
}

/// The operations of the latency part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Store,
    /// Puts a new link on a new source each call (create + delivery).
    PutLink,
    /// Deletes the links the put-link batches made, oldest first.
    DeleteLink,
}

struct LatencyBatch {
    op: Op,
    calls: usize,
    counter: [usize; 2],
    /// Sources with one link, made by put-link, waiting for delete-link.
    made: [VecDeque<String>; 2],
}

/// Links per spec for get and store.
const SPEC_LINKS: usize = 10;

impl Batch for LatencyBatch {
    async fn run(&mut self, side: &Side, kind: Kind) -> Result<Vec<f64>> {
        let mut times = Vec::with_capacity(self.calls);
        let k = slot(kind);
        let pre = prefix(kind);
        let (get_id, store_id) = (format!("{pre}-get"), format!("{pre}-store"));
        let spec = fixtures::spec(&store_id, PROVIDER, SPEC_LINKS);
        for _ in 0..self.calls {
            match self.op {
                Op::Get => {
                    let t = Instant::now();
                    let got = side.get(&get_id).await?;
                    times.push(us_since(t));
                    if got.is_none() {
                        bail!("{get_id} is gone from the bucket");
                    }
                }
                Op::Store => {
                    let spec = spec.clone();
                    let t = Instant::now();
                    side.store(&store_id, spec).await?;
                    times.push(us_since(t));
                }
                Op::PutLink => {
                    self.counter[k] += 1;
                    let source = format!("{pre}-pl-{}", self.counter[k]);
                    let link = fixtures::link(&source, PROVIDER, 0);
                    let t = Instant::now();
                    side.put_link(link).await?;
                    times.push(us_since(t));
                    self.made[k].push_back(source);
                }
                Op::DeleteLink => {
                    let source = self.made[k]
                        .pop_front()
                        .ok_or_else(|| anyhow!("no link left to delete"))?;
                    let t = Instant::now();
                    let out = side
                        .delete_link(&source, fixtures::namespace(), &fixtures::package(0))
                        .await?;
                    times.push(us_since(t));
                    if out.removed.len() != 1 {
                        bail!(
                            "delete-link on {source} removed {} links",
                            out.removed.len()
                        );
                    }
                }
            }
        }
        Ok(times)
    }
}

/// One throughput run: `total` puts on distinct new sources, spread over
/// `clients` tasks. Returns puts per second.
async fn throughput_run(side: &Side, tag: &str, clients: usize, total: usize) -> Result<f64> {
    let per_client = total / clients;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let side = side.clone();
        let tag = format!("{tag}-{c}");
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let link = fixtures::link(&format!("{tag}-{i}"), PROVIDER, 0);
                side.put_link(link).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a throughput client panicked")??;
    }
    Ok((per_client * clients) as f64 / started.elapsed().as_secs_f64())
}

/// Runs the section; the server is killed on return (also on error).
pub async fn run(plugin: &LoadedPlugin, quick: bool) -> Result<E2e> {
    let binary = spec_host::nats::server::find_binary().context("finding nats-server")?;
    let server_version = spec_host::nats::server::check_version(&binary)?;
    let dir = tempfile::tempdir().context("creating a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("store")))
        .await
        .context("starting nats-server")?;
    let lattice = Lattice::open(LatticeOptions::new(server.url(), "bench"))
        .await
        .context("opening the bench lattice")?;
    let provider: LocalProvider = PROVIDER.parse().map_err(|e: String| anyhow!(e))?;
    let start = |kind| {
        let kv: Arc<dyn KeyValue> = Arc::new(lattice.key_value());
        let notify: Arc<dyn ProviderNotify> = Arc::new(lattice.notifier(vec![provider.clone()]));
        Side::start(kind, plugin, kv, notify, PluginLimits::default())
    };
    let p = start(Kind::Plugin).await?;
    let n = start(Kind::Native).await?;
    for (side, kind) in [(&p, Kind::Plugin), (&n, Kind::Native)] {
        let id = format!("{}-get", prefix(kind));
        side.store(&id, fixtures::spec(&id, PROVIDER, SPEC_LINKS))
            .await?;
    }

    let (rounds, calls) = if quick { (4, 40) } else { (40, 50) };
    let mut batch = LatencyBatch {
        op: Op::Get,
        calls,
        counter: [0; 2],
        made: [VecDeque::new(), VecDeque::new()],
    };
    let mut latency = Vec::new();
    // Delete-link after put-link: it removes the links put-link made.
    for (op, name) in [
        (Op::Get, "get"),
        (Op::Store, "store"),
        (Op::PutLink, "put-link"),
        (Op::DeleteLink, "delete-link"),
    ] {
        batch.op = op;
        let (ps, ns) = interleave(&mut batch, &p, &n, rounds).await?;
        let (pp50, pp99) = (percentile(&ps, 50.0), percentile(&ps, 99.0));
        let (np50, np99) = (percentile(&ns, 50.0), percentile(&ns, 99.0));
        latency.push(LatencyRow {
            op: name,
            plugin_p50_us: pp50,
            plugin_p99_us: pp99,
            native_p50_us: np50,
            native_p99_us: np99,
            ratio_p50: ratio(pp50, np50),
            ratio_p99: ratio(pp99, np99),
            samples: ps.len(),
        });
    }

    // The floor under every get: the backend awaited directly.
    let kv = lattice.key_value();
    let key = spec_plugin::keys::component_key("p-get");
    let Side::Native(native) = &n else {
        bail!("the native side is not a NativeHost");
    };
    let (mut raw, mut bridged) = (Vec::new(), Vec::new());
    for _ in 0..rounds * calls {
        let t = Instant::now();
        let entry = kv.get(&key).await?;
        raw.push(us_since(t));
        let t = Instant::now();
        let found = native.bridged_get(&key).await?;
        bridged.push(us_since(t));
        if entry.is_none() || !found {
            bail!("{key} is gone from the bucket");
        }
    }

    let (runs, total) = if quick { (2, 192) } else { (6, 480) };
    let mut throughput = Vec::new();
    for clients in CLIENTS {
        let (mut pr, mut nr) = (Vec::new(), Vec::new());
        // One warm-up run each, not counted.
        throughput_run(&p, &format!("p-tw{clients}"), clients, total / 4).await?;
        throughput_run(&n, &format!("n-tw{clients}"), clients, total / 4).await?;
        for run in 0..runs {
            let (pt, nt) = (format!("p-t{clients}-{run}"), format!("n-t{clients}-{run}"));
            if plugin_first(run) {
                pr.push(throughput_run(&p, &pt, clients, total).await?);
                nr.push(throughput_run(&n, &nt, clients, total).await?);
            } else {
                nr.push(throughput_run(&n, &nt, clients, total).await?);
                pr.push(throughput_run(&p, &pt, clients, total).await?);
            }
        }
        let (pm, nm) = (crate::stats::median(&pr), crate::stats::median(&nr));
        throughput.push(ThroughputRow {
            clients,
            plugin_ops_s: pm,
            native_ops_s: nm,
            ratio: ratio(pm, nm),
            runs,
        });
    }
    drop(server);
    Ok(E2e {
        server_version,
        latency,
        throughput,
        raw_get_p50_us: percentile(&raw, 50.0),
        raw_get_p99_us: percentile(&raw, 99.0),
        bridged_get_p50_us: percentile(&bridged, 50.0),
        bridged_get_p99_us: percentile(&bridged, 99.0),
    })
}

/// The section's tables.
pub fn tables(e: &E2e) -> [TextTable; 2] {
    let mut lat = TextTable::new(
        format!(
            "2a. End-to-end sequential latency on NATS ({})",
            e.server_version
        ),
        &[
            "operation",
            "plugin p50",
            "native p50",
            "ratio p50",
            "plugin p99",
            "native p99",
            "ratio p99",
        ],
    );
    for r in &e.latency {
        lat.row(vec![
            r.op.to_string(),
            table::time(r.plugin_p50_us),
            table::time(r.native_p50_us),
            table::ratio(r.ratio_p50),
            table::time(r.plugin_p99_us),
            table::time(r.native_p99_us),
            table::ratio(r.ratio_p99),
        ]);
    }
    lat.row(vec![
        "KV get awaited directly (floor)".into(),
        table::time(e.raw_get_p50_us),
        table::time(e.raw_get_p50_us),
        String::new(),
        table::time(e.raw_get_p99_us),
        table::time(e.raw_get_p99_us),
    ]);
    lat.row(vec![
        "KV get on the native worker, no logic".into(),
        String::new(),
        table::time(e.bridged_get_p50_us),
        String::new(),
        String::new(),
        table::time(e.bridged_get_p99_us),
    ]);
    if let Some(r) = e.latency.first() {
        lat.note(format!(
            "{} calls per side per operation; JetStream KV (file storage) + NATS publish/flush to one local provider.",
            r.samples
        ));
    }
    let mut tp = TextTable::new(
        "2b. put-link throughput on distinct ids, NATS",
        &["clients", "plugin", "native", "plugin/native"],
    );
    for r in &e.throughput {
        tp.row(vec![
            r.clients.to_string(),
            format!("{:.0}/s", r.plugin_ops_s),
            format!("{:.0}/s", r.native_ops_s),
            table::ratio(r.ratio),
        ]);
    }
    tp.note("Both hosts serialize calls in one worker (as wasmCloud's host does per lattice), so clients only keep its queue full.");
    [lat, tp]
}
