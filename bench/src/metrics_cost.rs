//! Section 11: what metrics cost a `link.put`. Two `spec-host serve`
//! processes on one nats-server: one with the admin endpoint on (request
//! metrics recorded, `/metrics` scraped every second — Prometheus's usual
//! interval is 15 s), one with it off (nothing recorded). Rounds alternate
//! which host goes first; each round measures 1-client p50 and 32-client
//! throughput on both, and the medians over rounds are compared.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use spec_nats::{Lattice, LatticeOptions, LocalNatsServer, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
}

impl MetricsCost {
    /// p50 on / off − 1 (positive: slower with metrics).
    pub fn p50_delta(&self) -> f64 {
        self.on.p50_us / self.off.p50_us - 1.0
    }

    /// Throughput off / on − 1 (positive: slower with metrics).
    pub fn ops_delta(&self) -> f64 {
        self.off.c32_ops_s / self.on.c32_ops_s - 1.0
    }
}

/// `GET /metrics` on `addr`: the body's size.
async fn scrape(addr: &str) -> Result<usize> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    anyhow::ensure!(
        text.starts_with("HTTP/1.1 200"),
        "scrape answered {text:.40}"
    );
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    Ok(body)
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Runs the section.
pub async fn run(quick: bool) -> Result<MetricsCost> {
    let (rounds, one_client, many) = if quick {
        (2, 150, 320)
    } else {
        (6, 400, 1_600)
    };
    let dir = tempfile::tempdir().context("a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("js")))
        .await
        .context("starting nats-server")?;
    let url = server.url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let admin = format!("127.0.0.1:{port}");
    let mut hosts_up = Vec::new();
    let mut putters: Vec<Vec<Arc<Putter>>> = Vec::new();
    for (lattice, flags) in [
        (
            "bench-metrics-on",
            vec!["--admin-listen".to_string(), admin.clone()],
        ),
        ("bench-metrics-off", vec![]),
    ] {
        let watch = Lattice::open(LatticeOptions::new(&url, lattice)).await?;
        let mut host = hosts::spawn_spec_host_serving(
            &url,
            lattice,
            &format!("bench-{lattice}"),
            &[],
            &flags,
        )?;
        hosts::spec_host_ready(
            &mut host,
            &watch.client,
            lattice,
            0,
            Duration::from_secs(60),
        )
        .await?;
        let mut side = Vec::new();
        for _ in 0..32 {
            side.push(Arc::new(Putter::Ctl(Box::new(
                ctl_client(&url, lattice).await?,
            ))));
        }
        run_load(&side, 8, 20, &format!("warm-{lattice}")).await?;
        putters.push(side);
        hosts_up.push(host);
    }
    let scrape_bytes = scrape(&admin).await?;
    let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let scraper = {
        let (admin, scrapes) = (admin.clone(), Arc::clone(&scrapes));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if scrape(&admin).await.is_ok() {
                    scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let mut p50 = [Vec::new(), Vec::new()];
    let mut ops = [Vec::new(), Vec::new()];
    let mut failed = [0u64, 0u64];
    for round in 0..rounds {
        for k in 0..2 {
            let side = (k + round) % 2;
            let tag = format!("r{round}-s{side}");
            let (_, times, f1) =
                run_load(&putters[side][..1], 1, one_client, &format!("{tag}-one")).await?;
            p50[side].push(percentile(&times, 50.0));
            let (ops_s, _, f2) =
                run_load(&putters[side], 32, many / 32, &format!("{tag}-many")).await?;
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
    Ok(MetricsCost {
        rounds,
        on: side(0),
        off: side(1),
        scrapes: scrapes.load(std::sync::atomic::Ordering::Relaxed),
        scrape_bytes,
    })
}

/// The section's table.
pub fn table(m: &MetricsCost) -> TextTable {
    let mut t = TextTable::new(
        "11. Metrics on (scraped every second) vs off: link.put, medians over rounds",
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

/// The section's targets: metrics do not slow `link.put`.
pub fn targets(m: &MetricsCost) -> Vec<Target> {
    vec![
        target(
            "link.put p50 (1 client), metrics on vs off",
            "≤ 3 % apart",
            format!(
                "{:+.1} % ({} vs {}; {} rounds, {} scrapes of {} B)",
                m.p50_delta() * 100.0,
                table::time(m.on.p50_us),
                table::time(m.off.p50_us),
                m.rounds,
                m.scrapes,
                m.scrape_bytes
            ),
            m.p50_delta().abs() <= 0.03,
        ),
        target(
            "link.put throughput (32 clients), metrics on vs off",
            "≤ 3 % apart",
            format!(
                "{:+.1} % ({:.0}/s vs {:.0}/s)",
                m.ops_delta() * 100.0,
                m.on.c32_ops_s,
                m.off.c32_ops_s
            ),
            m.ops_delta().abs() <= 0.03,
        ),
    ]
}
