//! The scale half of section 8: what one host costs at the size of the
//! bucket, beside what JetStream itself costs.
//!
//! * the floor: the bench reading the whole bucket with a raw KV watch
//!   (every key's last value, as a host's follower must), in process;
//! * RSS per component: the caught-up host's RSS less an empty host's,
//!   over the components;
//! * lag under load: after catch-up, other clients write specs at a set
//!   rate; the host's own lag histogram (`spec_host_follower_lag_seconds`,
//!   store write → table applied) gives the p99.
//!
//! The bucket holds one spec per component: one link each, and a tenth of
//! them with 20 links ([`fill`]).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use spec_model::json::encode_spec;
use spec_model::keys::component_key;
use spec_model::ComponentSpecification;
use spec_nats::Lattice;
use test_support::store_link;

/// Links of component `i`: 20 for every tenth, else 1.
pub fn links_of(i: usize) -> usize {
    if i.is_multiple_of(10) {
        20
    } else {
        1
    }
}

/// Links in a bucket of `n` components filled by [`fill`].
pub fn total_links(n: usize) -> usize {
    (0..n).map(links_of).sum()
}

fn spec(prefix: &str, i: usize, generation: usize) -> (String, Bytes) {
    let source = format!("{prefix}-{i}");
    let links = (0..links_of(i))
        .map(|k| store_link(&source, &format!("kv{k}-{generation}")).named(format!("n{k}")))
        .collect();
    let spec = ComponentSpecification {
        url: format!("file:///{source}.wasm"),
        links,
    };
    (component_key(&source), Bytes::from(encode_spec(&spec)))
}

/// Stores `n` specs under `{prefix}-{i}`.
pub async fn fill(lattice: &Lattice, prefix: &str, n: usize) -> Result<()> {
    let kv = lattice.specs.clone();
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let kv = kv.clone();
            let (key, value) = spec(prefix, i, 0);
            async move {
                kv.put(&key, value)
                    .await
                    .with_context(|| format!("storing {key}"))?;
                Ok(())
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The floor: a raw KV watch reading every key's last value, until `n`
/// keys were seen. Seconds.
pub async fn raw_watch(lattice: &Lattice, n: usize, limit: Duration) -> Result<f64> {
    let started = Instant::now();
    let watch = lattice
        .specs
        .watch_with_history(">")
        .await
        .context("a raw watch of the bucket")?;
    drain(watch, "the raw watch", n, started, limit).await
}

/// Reads the whole bucket through the ordered pull consumer the follower
/// reads it with ([`spec_nats::entries`]), doing nothing with the entries:
/// the floor of the follower's own read path. Seconds.
pub async fn raw_pull(lattice: &Lattice, n: usize, limit: Duration) -> Result<f64> {
    let started = Instant::now();
    let (_, entries) =
        spec_nats::entries::entries(&lattice.specs, spec_nats::entries::Start::LastPerKey)
            .await
            .map_err(|e| anyhow::anyhow!("a pull consumer of the bucket: {e}"))?;
    drain(entries, "the pull consumer", n, started, limit).await
}

/// Reads `n` entries of `entries` (`what`, for errors); seconds since
/// `started`.
async fn drain<T, E: std::fmt::Display>(
    mut entries: impl futures::Stream<Item = Result<T, E>> + Unpin,
    what: &str,
    n: usize,
    started: Instant,
    limit: Duration,
) -> Result<f64> {
    let mut seen = 0usize;
    while seen < n {
        let next = tokio::time::timeout_at((started + limit).into(), entries.next()).await;
        match next {
            Ok(Some(Ok(_))) => seen += 1,
            Ok(Some(Err(e))) => bail!("{what} failed after {seen} entries: {e}"),
            Ok(None) => bail!("{what} ended after {seen} of {n} entries"),
            Err(_) => bail!("{what} read {seen} of {n} entries in {limit:?}"),
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// `spec-host link list` over a whole lattice.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// Links it printed.
    pub links: usize,
    /// Process start to exit, seconds.
    pub seconds: f64,
    /// Its peak resident memory (`VmHWM`, sampled every 20 ms), MiB.
    pub peak_rss_mib: f64,
}

/// Runs `spec-host link list` (this binary as `probe-serve`) on `lattice`,
/// its output counted, not kept; fails unless it lists `links` links.
pub async fn listing(url: &str, lattice: &str, links: usize, limit: Duration) -> Result<Listing> {
    use std::io::{BufRead, BufReader};
    let me = std::env::current_exe().context("finding the bench binary")?;
    let started = Instant::now();
    let mut child = std::process::Command::new(me)
        .args(["probe-serve", "--", "--nats", url, "--lattice", lattice])
        .args(["link", "list"])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting spec-host link list")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("its stdout")?;
    // Lines counted on a thread; the peak memory sampled here meanwhile.
    let counting = std::thread::spawn(move || {
        let mut lines = 0usize;
        let mut last = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines += 1;
            last = line;
        }
        (lines, last)
    });
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Ok(kib) = crate::memory::field_kib(&status, "VmHWM:") {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("spec-host link list failed: {status}");
            }
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            bail!("spec-host link list took over {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (lines, last) = counting
        .join()
        .map_err(|_| anyhow::anyhow!("the line counter panicked"))?;
    // One line per link, then the count.
    if lines != links + 1 || last != format!("{links} link(s)") {
        bail!("spec-host link list printed {lines} lines ending {last:?}; {links} links expected");
    }
    Ok(Listing {
        links,
        seconds,
        peak_rss_mib: peak_kib as f64 / 1024.0,
    })
}

/// Follower lag under writes by other clients.
#[derive(Clone, Debug, Serialize)]
pub struct Lag {
    /// Writes per second asked for.
    pub rate: u64,
    /// Writes per second made.
    pub achieved: f64,
    /// Changes the host applied meanwhile (lag samples).
    pub samples: f64,
    /// p50 and p99 of the lag, seconds (upper bounds of the histogram's
    /// buckets).
    pub p50_s: f64,
    /// See `p50_s`.
    pub p99_s: f64,
}

/// Writes `rate` spec changes per second for `seconds` to the `n`
/// components under `prefix` (each a new target for its links), then reads
/// the host's lag histogram from `admin`.
pub async fn lag(
    lattice: &Lattice,
    prefix: &str,
    n: usize,
    rate: u64,
    seconds: u64,
    admin: &str,
) -> Result<Lag> {
    let before = histogram(admin).await?;
    let kv = lattice.specs.clone();
    let total = (rate * seconds) as usize;
    let tick = Duration::from_secs(1) / rate.max(1) as u32;
    let started = Instant::now();
    let mut writes = futures::stream::FuturesUnordered::new();
    for w in 0..total {
        let due = started + tick * w as u32;
        tokio::time::sleep_until(due.into()).await;
        // Spread over the bucket; generation 1 changes every link's target.
        let (key, value) = spec(prefix, (w * 7919) % n.max(1), 1 + w);
        let kv = kv.clone();
        writes.push(async move { kv.put(&key, value).await.map(|_| ()) });
        while let Some(Some(done)) = futures::FutureExt::now_or_never(writes.next()) {
            done.context("a load write")?;
        }
    }
    while let Some(done) = writes.next().await {
        done.context("a load write")?;
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    // Let the last changes land before reading the histogram.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = histogram(admin).await?;
    let buckets: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let was = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, c - was)
        })
        .collect();
    let samples = buckets.last().map_or(0.0, |(_, c)| *c);
    let quantile = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= q * samples)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    Ok(Lag {
        rate,
        achieved,
        samples,
        p50_s: quantile(0.5),
        p99_s: quantile(0.99),
    })
}

/// The lag histogram's cumulative buckets (`le` → count), `+Inf` last.
async fn histogram(admin: &str) -> Result<Vec<(f64, f64)>> {
    let text = crate::hosts::scrape(admin).await?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("spec_host_follower_lag_seconds_bucket{") else {
            continue;
        };
        let Some((labels, count)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("le=\""))
            .map(|l| l.trim_end_matches('"'))
        else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().context("a bucket bound")?
        };
        out.push((le, count.trim().parse().context("a bucket count")?));
    }
    if out.is_empty() {
        bail!("no spec_host_follower_lag_seconds histogram at {admin}");
    }
    Ok(out)
}
