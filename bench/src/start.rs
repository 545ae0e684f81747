//! Section 4a: from process start to the first served request, with and
//! without a cached precompiled component.
//!
//! The bench runs itself as a child (`spec-bench probe-start`), which sets
//! up an engine, loads the bundled plugin (through a `ComponentCache` when
//! given one), starts a `SpecHost` over the in-memory store and serves one
//! get; the parent times spawn → the child's answer line, so exec, dynamic
//! linking and runtime start are counted. In-process, it also times
//! `PluginEngine::load_bytes` cold (Cranelift) against a warm cache.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::ComponentCache;
use spec_embed::{PluginEngine, PluginLimits, SpecHost};

use crate::stats::{median, us_since};

/// What a `probe-start` child reports, µs since its `main` began.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProbeTimes {
    /// Engine and linker set up.
    pub engine_us: f64,
    /// Plugin compiled (or deserialized) and linked.
    pub load_us: f64,
    /// `SpecHost` started (instantiated).
    pub host_us: f64,
    /// First request answered.
    pub first_us: f64,
}

/// The child side: runs in `spec-bench probe-start`. `main_started` is
/// taken first thing in `main`.
pub fn probe(main_started: Instant, cache: Option<&Path>) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting a tokio runtime")?;
    let times = rt.block_on(async {
        let mut engine = PluginEngine::new().context("setting up the engine")?;
        if let Some(dir) = cache {
            engine = engine.with_cache(ComponentCache::new(dir));
        }
        let engine_us = us_since(main_started);
        let plugin = engine
            .load_bytes(spec_embed::bundled::PLUGIN)
            .context("loading the bundled plugin")?;
        let load_us = us_since(main_started);
        let host = SpecHost::start(
            plugin,
            Arc::new(MemoryKv::new()),
            Arc::new(RecordingNotifier::new(Vec::<String>::new())),
            PluginLimits::default(),
        )
        .await
        .context("starting the plugin host")?;
        let host_us = us_since(main_started);
        host.get_component_spec("probe")
            .await
            .context("serving the first request")?;
        let first_us = us_since(main_started);
        anyhow::Ok(ProbeTimes {
            engine_us,
            load_us,
            host_us,
            first_us,
        })
    })?;
    println!("{}", serde_json::to_string(&times)?);
    Ok(())
}

/// Medians of one way of starting.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StartMode {
    /// Spawn → first request answered, as the parent saw it, µs.
    pub wall_us: f64,
    /// The child's own breakdown (medians of each field).
    pub child: ProbeTimes,
    /// Runs.
    pub runs: usize,
}

/// Everything the start part measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Start {
    /// Without a cache: compiles the component.
    pub uncached: StartMode,
    /// With a warm `ComponentCache`: deserializes it.
    pub cached: StartMode,
    /// In-process `load_bytes` with no cache, median µs.
    pub load_cold_us: f64,
    /// In-process `load_bytes` from a warm cache, median µs.
    pub load_cached_us: f64,
}

/// Spawns one probe child and times it.
fn spawn_probe(cache: Option<&Path>) -> Result<(f64, ProbeTimes)> {
    let exe = std::env::current_exe().context("locating the spec-bench binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("probe-start");
    if let Some(dir) = cache {
        cmd.arg("--cache").arg(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().context("spawning the start probe")?;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(out) => BufReader::new(out).read_line(&mut line).map(|_| ()),
        None => Ok(()),
    };
    let wall = us_since(started);
    // Reap the child whatever the read gave, so none outlives the bench.
    let status = child.wait().context("waiting for the start probe")?;
    read.context("reading the start probe's answer")?;
    if !status.success() {
        bail!("the start probe failed ({status})");
    }
    let times: ProbeTimes = serde_json::from_str(line.trim())
        .with_context(|| format!("the start probe answered {line:?}"))?;
    Ok((wall, times))
}

fn summarize(runs: &[(f64, ProbeTimes)]) -> StartMode {
    let pick =
        |f: fn(&ProbeTimes) -> f64| median(&runs.iter().map(|(_, t)| f(t)).collect::<Vec<_>>());
    StartMode {
        wall_us: median(&runs.iter().map(|(w, _)| *w).collect::<Vec<_>>()),
        child: ProbeTimes {
            engine_us: pick(|t| t.engine_us),
            load_us: pick(|t| t.load_us),
            host_us: pick(|t| t.host_us),
            first_us: pick(|t| t.first_us),
        },
        runs: runs.len(),
    }
}

/// Runs the part (blocking: it waits on child processes).
pub fn run(quick: bool) -> Result<Start> {
    let runs = if quick { 3 } else { 9 };
    let dir = tempfile::tempdir().context("creating a temp dir for the component cache")?;
    let cache = dir.path().join("cache");
    // Warm-ups: the first child pays for reading the binary from disk, and
    // one cached run fills the cache.
    spawn_probe(None)?;
    spawn_probe(Some(&cache))?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..runs {
        if crate::stats::plugin_first(round) {
            cold.push(spawn_probe(None)?);
            warm.push(spawn_probe(Some(&cache))?);
        } else {
            warm.push(spawn_probe(Some(&cache))?);
            cold.push(spawn_probe(None)?);
        }
    }

    // In process: the load alone, without process start.
    let plain = PluginEngine::new().context("setting up an engine")?;
    let cached = PluginEngine::new()
        .context("setting up an engine")?
        .with_cache(ComponentCache::new(&cache));
    let (mut load_cold, mut load_cached) = (Vec::new(), Vec::new());
    for _ in 0..runs.min(5) {
        let t = Instant::now();
        plain.load_bytes(spec_embed::bundled::PLUGIN)?;
        load_cold.push(us_since(t));
        let t = Instant::now();
        cached.load_bytes(spec_embed::bundled::PLUGIN)?;
        load_cached.push(us_since(t));
    }
    Ok(Start {
        uncached: summarize(&cold),
        cached: summarize(&warm),
        load_cold_us: median(&load_cold),
        load_cached_us: median(&load_cached),
    })
}
