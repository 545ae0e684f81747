//! Section 11: what metrics cost a `link.put`. Four `spec-host serve`
//! processes on one nats-server: two with the admin endpoint on (request
//! metrics recorded, `/metrics` scraped every second — Prometheus's usual
//! interval is 15 s), two with it off (nothing recorded). Each round takes
//! one pair (on, off), measures 1-client p50 and 32-client throughput on
//! both back to back, and the median of the rounds' ratios is reported.
//! Pairs and which kind goes first alternate. Beside it, the recording's
//! own cost is measured in process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use spec_nats::{Lattice, LatticeOptions, LocalNatsServer, ServerOptions};

use crate::hosts;
use crate::lattice::{ctl_client, run_load, Putter};
use crate::report::{target, Target};
use crate::stats::percentile;
use crate::table::{self, TextTable};

/// One host's medians over the rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    /// 1 client: put p50, µs.
    pub p50_us: f64,
    /// 32 clients: puts/s.
    pub c32_ops_s: f64,
    /// Failed puts over all rounds.
    pub failed: u64,
}

/// What the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsCost {
    /// Rounds run.
    pub rounds: usize,
    /// Admin endpoint on, scraped every second.
    pub on: Side,
    /// Off.
    pub off: Side,
    /// Scrapes answered during the run (on side).
    pub scrapes: u64,
    /// One scrape's size, bytes.
    pub scrape_bytes: usize,
    /// p50 on / off, the median of each round's ratio (both hosts measured
    /// back to back in a round, so drift over the run cancels).
    pub p50_ratio: f64,
    /// Throughput off / on, likewise.
    pub ops_ratio: f64,
    /// What recording one request costs, measured in this process
    /// (`Metrics::request` in a loop), ns.
    pub record_ns: f64,
    /// What one scrape costs to encode, µs.
    pub encode_us: f64,
}

impl MetricsCost {
    /// p50 on / off − 1, the median over rounds (positive: slower with
    /// metrics).
    pub fn p50_delta(&self) -> f64 {
        self.p50_ratio - 1.0
    }

    /// Throughput off / on − 1, the median over rounds (positive: slower
    /// with metrics).
    pub fn ops_delta(&self) -> f64 {
        self.ops_ratio - 1.0
    }
}

/// `GET /metrics` on `addr`: the body's size.
async fn scrape(addr: &str) -> Result<usize> {
    Ok(hosts::scrape(addr).await?.len())
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Runs the section.
pub async fn run(quick: bool) -> Result<MetricsCost> {
    let (rounds, one_client, many) = if quick {
        (4, 60, 960)
    } else {
        (16, 150, 3_200)
    };
    let dir = tempfile::tempdir().context("a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("js")))
        .await
        .context("starting nats-server")?;
    let url = server.url();
    // Two hosts of each kind, started on, off, off, on: round r compares
    // pair r % 2, so neither start order nor where a process landed favours
    // one kind.
    let mut admins = Vec::new();
    let mut hosts_up = Vec::new();
    let mut putters: Vec<Vec<Arc<Putter>>> = Vec::new();
    for (i, on) in [true, false, false, true].into_iter().enumerate() {
        let lattice = format!("bench-metrics-{i}");
        let mut flags = Vec::new();
        if on {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let admin = format!("127.0.0.1:{port}");
            flags = vec!["--admin-listen".to_string(), admin.clone()];
            admins.push(admin);
        }
        let watch = Lattice::open(LatticeOptions::new(&url, &lattice)).await?;
        let mut host = hosts::spawn_spec_host_serving(
            &url,
            &lattice,
            &format!("bench-{lattice}"),
            &[],
            &flags,
        )?;
        hosts::spec_host_ready(
            &mut host,
            &watch.client,
            &lattice,
            0,
            Duration::from_secs(60),
        )
        .await?;
        let mut side = Vec::new();
        for _ in 0..32 {
            side.push(Arc::new(Putter::Ctl(Box::new(
                ctl_client(&url, &lattice).await?,
            ))));
        }
        run_load(&side, 8, 20, &format!("warm-{lattice}")).await?;
        putters.push(side);
        hosts_up.push(host);
    }
    // (on, off) host indexes of each pair.
    let pairs = [(0, 1), (3, 2)];
    let scrape_bytes = scrape(&admins[0]).await?;
    let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let scraper = {
        let (admins, scrapes) = (admins.clone(), Arc::clone(&scrapes));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                for admin in &admins {
                    if scrape(admin).await.is_ok() {
                        scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let mut p50 = [Vec::new(), Vec::new()];
    let mut ops = [Vec::new(), Vec::new()];
    let mut failed = [0u64, 0u64];
    for round in 0..rounds {
        let (on, off) = pairs[round % pairs.len()];
        for k in 0..2 {
            // Which kind goes first alternates too.
            let side = (k + round / pairs.len()) % 2;
            let host = if side == 0 { on } else { off };
            let tag = format!("r{round}-h{host}");
            let (_, times, f1) =
                run_load(&putters[host][..1], 1, one_client, &format!("{tag}-one")).await?;
            p50[side].push(percentile(&times, 50.0));
            let (ops_s, _, f2) =
                run_load(&putters[host], 32, many / 32, &format!("{tag}-many")).await?;
            ops[side].push(ops_s);
            failed[side] += f1 + f2;
        }
    }
    scraper.abort();
    for host in &mut hosts_up {
        host.check_alive()?;
    }
    let side = |i: usize| Side {
        p50_us: median(&p50[i]),
        c32_ops_s: median(&ops[i]),
        failed: failed[i],
    };
    let (record_ns, encode_us) = in_process(quick);
    let ratios = |v: &[Vec<f64>; 2], on_over_off: bool| {
        let per_round: Vec<f64> = v[0]
            .iter()
            .zip(&v[1])
            .map(|(on, off)| if on_over_off { on / off } else { off / on })
            .collect();
        median(&per_round)
    };
    Ok(MetricsCost {
        p50_ratio: ratios(&p50, true),
        ops_ratio: ratios(&ops, false),
        rounds,
        record_ns,
        encode_us,
        on: side(0),
        off: side(1),
        scrapes: scrapes.load(std::sync::atomic::Ordering::Relaxed),
        scrape_bytes,
    })
}

/// The recording and encoding cost alone, without NATS or a second
/// process in the way: the figure the on/off comparison can only bound.
fn in_process(quick: bool) -> (f64, f64) {
    use spec_lattice::admin::{Metrics, Outcome};
    let metrics = Metrics::new(None);
    let n: u32 = if quick { 200_000 } else { 2_000_000 };
    let methods = ["link.put", "link.del", "link.get", "status"];
    let started = std::time::Instant::now();
    for i in 0..n {
        let method = methods[i as usize % methods.len()];
        metrics.request(
            method,
            Outcome::Ok,
            Duration::from_micros(u64::from(i % 5_000)),
        );
    }
    let record_ns = started.elapsed().as_nanos() as f64 / f64::from(n);
    let started = std::time::Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        let _ = std::hint::black_box(metrics.encode());
    }
    let encode_us = started.elapsed().as_micros() as f64 / f64::from(rounds);
    (record_ns, encode_us)
}

/// The section's table.
pub fn table(m: &MetricsCost) -> TextTable {
    let mut t = TextTable::new(
        "11. Metrics on (scraped every second) vs off: link.put, medians over rounds (deltas: median of each round's ratio)",
        &["host", "1-client p50", "32-client puts/s", "failed"],
    )
    .left(0);
    for (what, side) in [("metrics on", &m.on), ("metrics off", &m.off)] {
        t.row(vec![
            what.to_string(),
            table::time(side.p50_us),
            format!("{:.0}", side.c32_ops_s),
            side.failed.to_string(),
        ]);
    }
    t
}

/// The section's targets: metrics do not slow `link.put`. A negative delta
/// (faster with metrics on) is the measure's noise: a few percent from run
/// to run on 2 cores, where the in-process figure is exact.
pub fn targets(m: &MetricsCost) -> Vec<Target> {
    vec![
        target(
            "link.put p50 (1 client), metrics on vs off",
            "≤ 3 % slower",
            format!(
                "{:+.1} % ({} vs {}; {} rounds, {} scrapes of {} B)",
                m.p50_delta() * 100.0,
                table::time(m.on.p50_us),
                table::time(m.off.p50_us),
                m.rounds,
                m.scrapes,
                m.scrape_bytes
            ),
            m.p50_delta() <= 0.03,
        ),
        target(
            "recording one request's metrics, in process",
            "≤ 3 % of a put's p50",
            format!(
                "{:.0} ns = {:.3} % of {} (encoding a scrape without the host's gauges: {:.0} µs)",
                m.record_ns,
                m.record_ns / (m.off.p50_us * 1_000.0) * 100.0,
                table::time(m.off.p50_us),
                m.encode_us
            ),
            m.record_ns / (m.off.p50_us * 1_000.0) <= 0.03,
        ),
        target(
            "link.put throughput (32 clients), metrics on vs off",
            "≤ 3 % slower",
            format!(
                "{:+.1} % ({:.0}/s vs {:.0}/s)",
                m.ops_delta() * 100.0,
                m.on.c32_ops_s,
                m.off.c32_ops_s
            ),
            m.ops_delta() <= 0.03,
        ),
    ]
}
