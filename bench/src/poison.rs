//! Section 10: a poison value — a stored spec the plugin faults on every
//! time — must not slow the delivery of every other spec.
//!
//! One `spec-host serve` runs the fault-injection build (its table update
//! spins on the id `poison-spin` until the 2 s CPU budget stops it) with
//! the local provider `kvredis`. Specs are written straight into the
//! bucket, paced, each with a new link to `kvredis`; for each, the time
//! from the write's start to the provider's `linkdefs.put` is measured.
//! Two phases in one run: a clean bucket, then the same with the
//! poison value stored and being tried again (four tries on the build,
//! each spinning for the whole budget).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde::Serialize;
use spec_model::json::encode_spec;
use spec_nats::{subjects, Lattice, LatticeOptions, LocalNatsServer, ServerOptions};
use test_support::{spec, store_link};

use crate::hosts;
use crate::report::{target, Target};
use crate::stats::percentile;
use crate::table::{self, TextTable};

/// Delivery latency of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// Changes written (and delivered).
    pub changes: usize,
    /// Write started → delivered, µs.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// See `p50_us`.
    pub max_us: f64,
}

/// What the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct Poison {
    /// Without the poison value.
    pub clean: Phase,
    /// With it stored and tried again meanwhile.
    pub poisoned: Phase,
    /// Tries of the poison value that faulted, as the host counted them.
    pub faults: u64,
    /// p99 with / without.
    pub p99_ratio: f64,
}

/// Runs the section.
pub async fn run(quick: bool) -> Result<Poison> {
    let changes = if quick { 200 } else { 1_000 };
    let dir = tempfile::tempdir().context("a temp dir for nats-server")?;
    let server = LocalNatsServer::start(ServerOptions::new(dir.path().join("js")))
        .await
        .context("starting nats-server")?;
    let url = server.url();
    let name = "bench-poison";
    let lattice = Lattice::open(LatticeOptions::new(&url, name))
        .await
        .context("opening the lattice")?;
    let extra = [
        "--provider".to_string(),
        "kvredis".to_string(),
        "--plugin".to_string(),
        test_artifacts::PLUGIN_FAULTY_WASM.to_string(),
    ];
    let mut host = hosts::spawn_spec_host(&url, name, &extra)?;
    hosts::spec_host_ready(&mut host, &lattice.client, name, 0, Duration::from_secs(60)).await?;
    let clean = phase(&lattice, name, "clean", changes).await?;
    // The poison value: its first apply spins on the table owner; after
    // that it waits and is tried again.
    put_spec(&lattice, "poison-spin").await?;
    let started = Instant::now();
    while status(&lattice, name).await?.pending_changes == 0 {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the poison value was never parked");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let poisoned = phase(&lattice, name, "poisoned", changes).await?;
    let faults = status(&lattice, name).await?.faults;
    host.check_alive()?;
    Ok(Poison {
        p99_ratio: poisoned.p99_us / clean.p99_us.max(1.0),
        clean,
        poisoned,
        faults,
    })
}

async fn status(lattice: &Lattice, name: &str) -> Result<spec_lattice::serve::status::Status> {
    let found =
        spec_lattice::serve::collect_status(&lattice.client, name, Duration::from_millis(300))
            .await?;
    found.into_iter().next().context("no status from the host")
}

async fn put_spec(lattice: &Lattice, id: &str) -> Result<()> {
    let value = encode_spec(&spec(
        &format!("file:///{id}.wasm"),
        vec![store_link(id, "kvredis")],
    ));
    lattice
        .specs
        .put(subjects::component_key(id), value.into())
        .await
        .with_context(|| format!("storing {id}"))?;
    Ok(())
}

/// Writes `changes` specs at 100 a second and measures each one's delivery.
async fn phase(lattice: &Lattice, name: &str, tag: &str, changes: usize) -> Result<Phase> {
    let written: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut deliveries = lattice
        .client
        .subscribe(format!("wasmbus.rpc.{name}.*.linkdefs.put"))
        .await?;
    lattice.client.flush().await?;
    let seen = Arc::clone(&written);
    let prefix = format!("{tag}-");
    let collect = tokio::spawn(async move {
        let mut took = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, deliveries.next()).await {
            let Ok(link) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
                continue;
            };
            let Some(source) = link.get("source_id").and_then(|s| s.as_str()) else {
                continue;
            };
            if !source.starts_with(&prefix) {
                continue;
            }
            let at = seen.lock().map(|mut w| w.remove(source)).ok().flatten();
            if let Some(at) = at {
                took.push(at.elapsed().as_secs_f64() * 1e6);
            }
            if took.len() == changes {
                break;
            }
        }
        took
    });
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for i in 0..changes {
        tick.tick().await;
        let id = format!("{tag}-{i}");
        // Timed from the write's start: the delivery may come back before
        // the write's acknowledgement does.
        if let Ok(mut w) = written.lock() {
            w.insert(id.clone(), Instant::now());
        }
        put_spec(lattice, &id).await?;
    }
    let took = collect.await.context("the delivery collector panicked")?;
    if took.len() < changes {
        bail!("{} of {changes} deliveries seen within 60 s", took.len());
    }
    Ok(Phase {
        changes,
        p50_us: percentile(&took, 50.0),
        p99_us: percentile(&took, 99.0),
        max_us: took.iter().copied().fold(0.0, f64::max),
    })
}

/// The section's table.
pub fn table(p: &Poison) -> TextTable {
    let mut t = TextTable::new(
        "10. A poison value beside 1,000 changing specs: write → provider delivery",
        &["bucket", "changes", "p50", "p99", "max"],
    )
    .left(0);
    for (what, phase) in [
        ("clean", &p.clean),
        ("poison value being retried", &p.poisoned),
    ] {
        t.row(vec![
            what.to_string(),
            phase.changes.to_string(),
            table::time(phase.p50_us),
            table::time(phase.p99_us),
            table::time(phase.max_us),
        ]);
    }
    t
}

/// The section's target: the poison value does not move the others' p99.
pub fn targets(p: &Poison) -> Vec<Target> {
    vec![target(
        "delivery p99 with a poison value being retried / without",
        "≤ 1.5×",
        format!(
            "{:.2}× ({} vs {}; {} faulted tries)",
            p.p99_ratio,
            table::time(p.poisoned.p99_us),
            table::time(p.clean.p99_us),
            p.faults
        ),
        p.p99_ratio <= 1.5,
    )]
}
