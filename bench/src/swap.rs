//! Section 4b: swapping to another plugin build under load.
//!
//! A `SpecHost` over the in-memory store holds a table of about 1,200
//! links while four client tasks issue put-links back to back. The host is
//! swapped between the regular build and the `alt-version` build (both
//! compiled beforehand: a swap is given a `LoadedPlugin`) several times.
//! Measured: how long each `swap` call takes (it queues behind at most the
//! four in-flight puts, instantiates, restores the table), how long puts
//! that overlapped a swap took, and how many requests failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::{LoadedPlugin, PluginEngine, PluginLimits, SpecHost};

use crate::fixtures;
use crate::stats::{median, percentile, us};

/// Path of the `alt-version` build.
const ALT_PLUGIN_WASM: &str = test_artifacts::PLUGIN_ALT_WASM;

/// Client tasks issuing puts during the swaps.
const CLIENTS: usize = 4;
/// Distinct sources each client cycles through, so the table stays the
/// same size (each put replaces a link instead of adding one).
const SOURCES_PER_CLIENT: usize = 50;

/// What the part measured.
#[derive(Clone, Debug, Serialize)]
pub struct Swap {
    /// Swaps done.
    pub swaps: usize,
    /// Median duration of a `swap` call, µs.
    pub swap_median_us: f64,
    /// Longest `swap` call, µs.
    pub swap_max_us: f64,
    /// Requests issued during the whole run.
    pub requests: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Longest put that overlapped a swap, µs.
    pub put_during_swap_max_us: f64,
    /// Median put latency overall, µs.
    pub put_median_us: f64,
    /// Links in the table that each swap restored.
    pub table_links: usize,
}

/// One put as a client saw it.
struct Call {
    start: Instant,
    took: Duration,
    ok: bool,
}

async fn client(host: SpecHost, c: usize, stop: Arc<AtomicBool>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut i = 0usize;
    // Bounded: stops when told, and in any case after a million puts.
    while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
        let source = format!("load-{c}-{}", i % SOURCES_PER_CLIENT);
        let link = fixtures::toggled(
            fixtures::link(&source, "load-target", 0),
            (i / SOURCES_PER_CLIENT) % 2 == 1,
        );
        let start = Instant::now();
        let ok = host.put_link(link).await.is_ok();
        calls.push(Call {
            start,
            took: start.elapsed(),
            ok,
        });
        i += 1;
    }
    calls
}

/// Runs the part.
pub async fn run(engine: &PluginEngine, regular: &LoadedPlugin, quick: bool) -> Result<Swap> {
    let alt = engine
        .load_file(std::path::Path::new(ALT_PLUGIN_WASM))
        .with_context(|| format!("loading the alt plugin build {ALT_PLUGIN_WASM}"))?;
    let host = SpecHost::start(
        regular.clone(),
        Arc::new(MemoryKv::new()),
        Arc::new(RecordingNotifier::new(Vec::<String>::new())),
        PluginLimits::default(),
    )
    .await
    .context("starting the plugin host")?;
    for j in 0..10 {
        let id = format!("held-{j}");
        host.update_host_with_spec(&id, fixtures::spec(&id, "t", 100))
            .await?;
    }
    let table_links = 1000 + CLIENTS * SOURCES_PER_CLIENT;

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(host.clone(), c, Arc::clone(&stop))))
        .collect();
    let swaps = if quick { 4 } else { 20 };
    let mut windows = Vec::with_capacity(swaps);
    let mut swap_error = None;
    for s in 0..swaps {
        // Let the load run between swaps, and fill the table first.
        tokio::time::sleep(Duration::from_millis(if s == 0 { 100 } else { 30 })).await;
        let (target, alt_expected) = if s % 2 == 0 {
            (alt.clone(), true)
        } else {
            (regular.clone(), false)
        };
        let start = Instant::now();
        let answer = host.swap(target).await;
        let took = start.elapsed();
        match answer {
            Ok(version) if version.ends_with("+alt") == alt_expected => {
                windows.push((start, took));
            }
            Ok(version) => {
                swap_error = Some(format!("swap {s} answered version {version:?}"));
                break;
            }
            Err(e) => {
                swap_error = Some(format!("swap {s} failed: {e}"));
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await.context("a load client panicked")?);
    }
    if let Some(e) = swap_error {
        bail!(e);
    }

    let overlaps = |c: &Call| {
        windows
            .iter()
            .any(|(s, d)| c.start < *s + *d && *s < c.start + c.took)
    };
    let during: Vec<f64> = calls
        .iter()
        .filter(|c| overlaps(c))
        .map(|c| us(c.took))
        .collect();
    let all: Vec<f64> = calls.iter().map(|c| us(c.took)).collect();
    let swap_times: Vec<f64> = windows.iter().map(|(_, d)| us(*d)).collect();
    Ok(Swap {
        swaps: windows.len(),
        swap_median_us: median(&swap_times),
        swap_max_us: percentile(&swap_times, 100.0),
        requests: calls.len(),
        failed: calls.iter().filter(|c| !c.ok).count(),
        put_during_swap_max_us: percentile(&during, 100.0),
        put_median_us: median(&all),
        table_links,
    })
}
