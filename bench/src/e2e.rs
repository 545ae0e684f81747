//! Section 2: end to end on NATS — a nats-server of our own (loopback, temp
//! store), JetStream KV behind `keyvalue`, NATS deliveries to one local
//! provider behind `provider-notify`.
//!
//! Sequential latency (p50, p99) of get, store, put-link and delete-link,
//! and put-link throughput on distinct ids with 1, 8 and 32 concurrent
//! clients: the plugin against the native logic with its worker as a task
//! and on a dedicated thread (see `native::Placement`); ratios are taken
//! against the faster native. The sides share one connection and bucket
//! but never one key (`p-…`, `n-…`, `t-…`), and never run at the same
//! time. Tables: [`crate::e2e_table`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use spec_embed::backend::{KeyValue, ProviderNotify};
use spec_embed::{LoadedPlugin, PluginLimits};
use spec_nats::{Lattice, LatticeOptions, LocalNatsServer, LocalProvider, ServerOptions};

use crate::fixtures;
use crate::sides::{interleave, Batch, Kind, Side};
use crate::stats::{median, percentile, plugin_first, ratio, us_since};

/// The provider every benchmark link targets; it is local, so each new or
/// removed link is published to it (a NATS publish and flush).
const PROVIDER: &str = "bench-provider";

/// Concurrent clients measured for throughput.
pub const CLIENTS: [usize; 3] = [1, 8, 32];

/// The sides, in slot order: plugin, native (task), native (thread).
const KINDS: [Kind; 3] = [Kind::Plugin, Kind::Native, Kind::NativeThread];
/// Id prefix of each slot, so sides never share a key.
const PREFIXES: [&str; 3] = ["p", "n", "t"];

/// Median and tail of some latencies.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Pct {
    /// p50, µs.
    pub p50_us: f64,
    /// p99, µs.
    pub p99_us: f64,
}

impl Pct {
    fn of(samples: &[f64]) -> Pct {
        Pct {
            p50_us: percentile(samples, 50.0),
            p99_us: percentile(samples, 99.0),
        }
    }
}

/// Latency of one operation.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    /// Operation name.
    pub op: &'static str,
    /// The plugin.
    pub plugin: Pct,
    /// Native, worker as a task.
    pub native_task: Pct,
    /// Native, worker on a thread.
    pub native_thread: Pct,
    /// Plugin / faster native, at p50.
    pub ratio_p50: Option<f64>,
    /// Plugin / faster native, at p99.
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
    /// Median native (task) throughput, puts/s.
    pub native_task_ops_s: f64,
    /// Median native (thread) throughput, puts/s.
    pub native_thread_ops_s: f64,
    /// Plugin / faster native.
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
    /// The floor: a JetStream KV get awaited directly, no host.
    pub raw_get: Pct,
    /// A KV get on the native worker (task) through its bridge, no logic.
    pub bridged_get_task: Pct,
    /// The same with the worker on a thread.
    pub bridged_get_thread: Pct,
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
    counter: [usize; 3],
    /// Sources with one link, made by put-link, waiting for delete-link.
    made: [VecDeque<String>; 3],
}

/// Links per spec for get and store.
const SPEC_LINKS: usize = 10;

impl Batch for LatencyBatch {
    async fn run(&mut self, side: &Side, k: usize) -> Result<Vec<f64>> {
        let mut times = Vec::with_capacity(self.calls);
        let pre = PREFIXES[k];
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

/// The plugin's figure over the better of the two natives' (`better`:
/// `min` for latency, `max` for throughput).
fn vs_best(plugin: f64, task: f64, thread: f64, better: fn(f64, f64) -> f64) -> Option<f64> {
    ratio(plugin, better(task, thread))
}

/// Runs the section; the server is killed on return (also on error).
pub async fn run(plugin: &LoadedPlugin, quick: bool) -> Result<E2e> {
    let binary = spec_nats::server::find_binary().context("finding nats-server")?;
    let server_version = spec_nats::server::check_version(&binary)?;
    let dir = tempfile::tempdir().context("creating a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("store")))
        .await
        .context("starting nats-server")?;
    let lattice = Lattice::open(LatticeOptions::new(server.url(), "bench"))
        .await
        .context("opening the bench lattice")?;
    let provider: LocalProvider = PROVIDER.parse().map_err(|e: String| anyhow!(e))?;
    let mut sides = Vec::with_capacity(KINDS.len());
    for (kind, pre) in KINDS.into_iter().zip(PREFIXES) {
        let kv: Arc<dyn KeyValue> = Arc::new(lattice.key_value());
        let notify: Arc<dyn ProviderNotify> = Arc::new(lattice.notifier(vec![provider.clone()]));
        let side = Side::start(kind, plugin, kv, notify, PluginLimits::default()).await?;
        let id = format!("{pre}-get");
        side.store(&id, fixtures::spec(&id, PROVIDER, SPEC_LINKS))
            .await?;
        sides.push(side);
    }
    let all: Vec<&Side> = sides.iter().collect();

    let (rounds, calls) = if quick { (4, 40) } else { (40, 50) };
    let mut batch = LatencyBatch {
        op: Op::Get,
        calls,
        counter: [0; 3],
        made: Default::default(),
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
        let samples = interleave(&mut batch, &all, rounds).await?;
        let [p, n, t] = [0, 1, 2].map(|i| Pct::of(&samples[i]));
        latency.push(LatencyRow {
            op: name,
            plugin: p,
            native_task: n,
            native_thread: t,
            ratio_p50: vs_best(p.p50_us, n.p50_us, t.p50_us, f64::min),
            ratio_p99: vs_best(p.p99_us, n.p99_us, t.p99_us, f64::min),
            samples: samples[0].len(),
        });
    }

    // The floor under every get (the backend awaited directly), and a get
    // through each native worker's bridge with no logic around it.
    let kv = lattice.key_value();
    let key = spec_model::keys::component_key("p-get");
    let (mut raw, mut task, mut thread) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds * calls {
        let t = Instant::now();
        let mut found = kv.get(&key).await?.is_some();
        raw.push(us_since(t));
        for (side, out) in [(&sides[1], &mut task), (&sides[2], &mut thread)] {
            let Side::Native(native) = side else {
                bail!("a native side is not a NativeHost");
            };
            let t = Instant::now();
            found &= native.bridged_get(&key).await?;
            out.push(us_since(t));
        }
        if !found {
            bail!("{key} is gone from the bucket");
        }
    }

    let (runs, total) = if quick { (2, 192) } else { (10, 480) };
    let mut throughput = Vec::new();
    for clients in CLIENTS {
        let mut rates = vec![Vec::new(); sides.len()];
        for (side, pre) in sides.iter().zip(PREFIXES) {
            // A warm-up run each, not counted.
            throughput_run(side, &format!("{pre}-tw{clients}"), clients, total / 4).await?;
        }
        for run in 0..runs {
            for i in 0..sides.len() {
                let slot = if plugin_first(run) {
                    i
                } else {
                    sides.len() - 1 - i
                };
                let tag = format!("{}-t{clients}-{run}", PREFIXES[slot]);
                rates[slot].push(throughput_run(&sides[slot], &tag, clients, total).await?);
            }
        }
        let [p, n, t] = [0, 1, 2].map(|i| median(&rates[i]));
        throughput.push(ThroughputRow {
            clients,
            plugin_ops_s: p,
            native_task_ops_s: n,
            native_thread_ops_s: t,
            ratio: vs_best(p, n, t, f64::max),
            runs,
        });
    }
    drop(server);
    Ok(E2e {
        server_version,
        latency,
        throughput,
        raw_get: Pct::of(&raw),
        bridged_get_task: Pct::of(&task),
        bridged_get_thread: Pct::of(&thread),
    })
}
