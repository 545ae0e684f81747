//! Section 5: memory with 10,000 and 100,000 links in the table.
//!
//! * Plugin linear memory. `SpecHost` does not expose the instance's memory
//!   size, but it does enforce `PluginLimits::memory_cap`: the smallest cap
//!   under which the table can be built is the plugin's peak linear memory.
//!   It is found by bisection, to one 64 KiB wasm page (1 MiB in quick
//!   mode).
//! * Host RSS (`VmRSS` from `/proc/self/status`) before and after building
//!   the table, plugin and native side each in a child process of its own
//!   (`spec-bench probe-memory`), so that neither inherits the other's heap.
//!
//! The table is built the same way everywhere: ids `m-0`, `m-1`, … with 100
//! links each, applied with update-host-with-spec.

use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::{CallError, LoadedPlugin, PluginEngine, PluginLimits, SpecHost};

use crate::fixtures;
use crate::sides::{Kind, Side};

/// Table sizes measured.
pub const SIZES: [usize; 2] = [10_000, 100_000];
const LINKS_PER_ID: usize = 100;
const PAGE: usize = 64 << 10;

/// Builds a table of `links` links on `side`.
async fn fill(side: &Side, links: usize) -> Result<()> {
    for j in 0..links.div_ceil(LINKS_PER_ID) {
        let id = format!("m-{j}");
        let n = LINKS_PER_ID.min(links - j * LINKS_PER_ID);
        side.update(&id, fixtures::spec(&id, "t", n)).await?;
    }
    Ok(())
}

/// Whether a table of `links` links can be built under `cap` bytes of
/// linear memory. Only a memory-limit failure counts as "no"; anything else
/// is an error of the run.
async fn fits(plugin: &LoadedPlugin, cap: usize, links: usize) -> Result<bool> {
    let limits = PluginLimits {
        memory_cap: cap,
        ..PluginLimits::default()
    };
    let started = SpecHost::start(
        plugin.clone(),
        std::sync::Arc::new(MemoryKv::new()),
        std::sync::Arc::new(RecordingNotifier::new(Vec::<String>::new())),
        limits,
    )
    .await;
    let host = match started {
        Ok(host) => host,
        // The initial memory alone is above the cap.
        Err(CallError::Instantiate { .. }) => return Ok(false),
        Err(e) => return Err(e).context("starting the plugin host"),
    };
    let side = Side::Plugin(host);
    match fill(&side, links).await {
        Ok(()) => Ok(true),
        Err(e) => match e.downcast_ref::<CallError>() {
            Some(CallError::MemoryLimit { .. }) | Some(CallError::Instantiate { .. }) => Ok(false),
            _ => Err(e),
        },
    }
}

/// The smallest memory cap (bytes, a multiple of `step`) under which the
/// plugin builds a table of `links` links.
pub async fn peak_linear_memory(plugin: &LoadedPlugin, links: usize, quick: bool) -> Result<usize> {
    let step = if quick { 16 * PAGE } else { PAGE };
    // Invariant: `lo` steps do not fit, `hi` steps do.
    let (mut lo, mut hi) = (0usize, (256usize << 20) / step);
    if !fits(plugin, hi * step, links).await? {
        bail!("the plugin cannot hold {links} links even in 256 MiB");
    }
    // Bounded: halves the interval each time (at most 12 rounds).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(plugin, mid * step, links).await? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi * step)
}

/// What a `probe-memory` child reports, in bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RssProbe {
    /// RSS once the host is up, before the table is built.
    pub before: u64,
    /// RSS after.
    pub after: u64,
    /// Peak RSS of the process.
    pub peak: u64,
}

fn status_kib(field: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    field_kib(&status, field)
}

pub fn field_kib(status: &str, field: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow!("/proc/…/status has no {field}"))?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("no number in {line:?}"))?;
    kib.parse().with_context(|| format!("parsing {line:?}"))
}

/// `VmRSS` in bytes from the text of a `/proc/PID/status`.
pub fn vm_rss(status: &str) -> Option<u64> {
    field_kib(status, "VmRSS:").ok().map(|kib| kib * 1024)
}

/// The child side: runs in `spec-bench probe-memory`.
pub fn probe(native: bool, links: usize) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting a tokio runtime")?;
    let out = rt.block_on(async {
        let engine = PluginEngine::new().context("setting up the engine")?;
        let plugin = engine.load_bytes(spec_embed::bundled::PLUGIN)?;
        let kind = if native { Kind::Native } else { Kind::Plugin };
        let side = Side::start_memory(kind, &plugin).await?;
        let before = status_kib("VmRSS:")? * 1024;
        fill(&side, links).await?;
        let after = status_kib("VmRSS:")? * 1024;
        let peak = status_kib("VmHWM:")? * 1024;
        anyhow::Ok(RssProbe {
            before,
            after,
            peak,
        })
    })?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn spawn_probe(native: bool, links: usize) -> Result<RssProbe> {
    let exe = std::env::current_exe().context("locating the spec-bench binary")?;
    let out = Command::new(exe)
        .args(["probe-memory", "--links", &links.to_string()])
        .args(native.then_some("--native"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running the memory probe")?;
    if !out.status.success() {
        bail!("the memory probe failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).with_context(|| format!("the memory probe answered {text:?}"))
}

/// One table size.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Links in the table.
    pub links: usize,
    /// Peak plugin linear memory, bytes (bisected).
    pub plugin_linear: usize,
    /// Plugin host RSS growth, bytes.
    pub plugin_rss_delta: i64,
    /// Native host RSS growth, bytes.
    pub native_rss_delta: i64,
    /// Plugin host RSS after, bytes.
    pub plugin_rss_after: u64,
    /// Native host RSS after, bytes.
    pub native_rss_after: u64,
}

/// Runs the section.
pub async fn run(plugin: &LoadedPlugin, quick: bool) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for links in SIZES {
        let plugin_linear = peak_linear_memory(plugin, links, quick).await?;
        let (p, n) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((spawn_probe(false, links)?, spawn_probe(true, links)?))
        })
        .await
        .context("the memory probes panicked")??;
        let delta = |r: &RssProbe| r.after as i64 - r.before as i64;
        rows.push(Row {
            links,
            plugin_linear,
            plugin_rss_delta: delta(&p),
            native_rss_delta: delta(&n),
            plugin_rss_after: p.after,
            native_rss_after: n.after,
        });
    }
    Ok(rows)
}
