//! Section 7c: where one `link.put`'s time goes, per spec-host build.
//!
//! One client puts links on fresh sources, one at a time, through
//! wasmCloud's control client. The host's admin endpoint is scraped before
//! and after, and the differences split the mean put:
//! * the client's round trip;
//! * the host's handling (`rpc_server_call_duration_seconds`, link.put):
//!   what is left of the round trip is the control request and reply
//!   crossing the nats-server;
//! * the plugin calls of the request (`spec_host_plugin_call_seconds`,
//!   `check-link` and `put-link`): the plugin's own run — boundary, JSON
//!   parse and serialize, the rules — against its imports, the KV get and
//!   compare-and-swap round trips to JetStream;
//! * the rest of the handling: the request's JSON, config lookups, the
//!   `linkdefs` copies and the `linkdef_set` event;
//! * off the request path, the table owner applying the change the bucket
//!   watch brings (`apply-stored-spec`), per change.
//!
//! Beside them, a floor measured in the same run: a NATS request to a
//! responder that answers at once (the control hop with no work).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::lattice::{run_load, Side, Target};
use crate::stats::{mean, us_since};
use crate::table::{self, TextTable};

/// One build's split of a mean `link.put`, µs.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Which host.
    pub target: Target,
    /// Puts measured.
    pub puts: usize,
    /// The client's round trip, mean.
    pub client_us: f64,
    /// The host's handling, mean.
    pub server_us: f64,
    /// Plugin calls per put.
    pub calls_per_put: f64,
    /// The plugin's own run per put (boundary, parse, serialize, rules).
    pub plugin_us: f64,
    /// The plugin's imports per put (KV round trips).
    pub imports_us: f64,
    /// Changes the table owner applied per put, and their time per change.
    pub owner_us: f64,
    /// A NATS request to a responder that answers at once, mean.
    pub echo_us: f64,
}

/// Counters read from one scrape: (metric name with labels) → value.
type Scrape = BTreeMap<String, f64>;

async fn scrape(addr: &str) -> Result<Scrape> {
    let body = crate::hosts::scrape(addr).await?;
    let mut out = Scrape::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.rsplit_once(' ') {
            if let Ok(v) = value.parse::<f64>() {
                out.insert(name.to_string(), v);
            }
        }
    }
    Ok(out)
}

/// The sum over series of `metric` whose labels include every one of
/// `labels`, after minus before.
fn delta(before: &Scrape, after: &Scrape, metric: &str, labels: &[&str]) -> f64 {
    let sum = |s: &Scrape| -> f64 {
        s.iter()
            .filter(|(k, _)| {
                k.split('{').next() == Some(metric) && labels.iter().all(|l| k.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    };
    sum(after) - sum(before)
}

/// Mean of a NATS request to an echo responder on `url`.
async fn echo(url: &str, n: usize) -> Result<f64> {
    let client = async_nats::connect(url).await?;
    let mut sub = client.subscribe("bench.echo").await?;
    let responder = client.clone();
    let task = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, m.payload).await;
            }
        }
    });
    client.flush().await?;
    let asker = async_nats::connect(url).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(5),
            asker.request("bench.echo", "x".into()),
        )
        .await
        .context("echo timed out")??;
        times.push(us_since(t));
    }
    task.abort();
    Ok(mean(&times))
}

/// Splits `side`'s mean 1-client put; `None` for a side without an admin
/// endpoint (not a spec-host).
pub async fn measure(side: &Side, url: &str, quick: bool) -> Result<Option<Row>> {
    let Some(admin) = &side.admin else {
        return Ok(None);
    };
    let puts = if quick { 100 } else { 500 };
    let tag = format!("split-{:?}", side.target);
    // The table owner applies a put's change shortly after its reply; a
    // pause before the second scrape lets the last ones land.
    let before = scrape(admin).await?;
    let (_, times, failed) = run_load(&side.putters, 1, puts, &tag).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = scrape(admin).await?;
    anyhow::ensure!(failed == 0, "{failed} of {puts} puts failed");
    let per_put = |seconds: f64| seconds * 1e6 / puts as f64;
    let server = delta(
        &before,
        &after,
        "rpc_server_call_duration_seconds_sum",
        &["rpc_method=\"link.put\""],
    );
    let calls = ["call=\"put-link\"", "call=\"check-link\""];
    let (mut plugin, mut imports, mut n) = (0.0, 0.0, 0.0);
    for call in calls {
        let time = "spec_host_plugin_call_seconds_total";
        plugin += delta(&before, &after, time, &[call, "part=\"plugin\""]);
        imports += delta(&before, &after, time, &[call, "part=\"imports\""]);
        n += delta(&before, &after, "spec_host_plugin_calls_total", &[call]);
    }
    let apply = ["call=\"apply-stored-spec\""];
    let owner = delta(
        &before,
        &after,
        "spec_host_plugin_call_seconds_total",
        &apply,
    );
    let changes = delta(&before, &after, "spec_host_plugin_calls_total", &apply);
    Ok(Some(Row {
        target: side.target,
        puts,
        client_us: mean(&times),
        server_us: per_put(server),
        calls_per_put: n / puts as f64,
        plugin_us: per_put(plugin),
        imports_us: per_put(imports),
        owner_us: if changes > 0.0 {
            owner * 1e6 / changes
        } else {
            0.0
        },
        echo_us: echo(url, puts).await?,
    }))
}

/// The section's table: one column per build.
pub fn table(rows: &[Row]) -> TextTable {
    let mut headers = vec!["part of a link.put (mean, 1 client)".to_string()];
    headers.extend(rows.iter().map(|r| r.target.name().to_string()));
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = TextTable::new(
        "7c. Where a link.put's time goes (mean, 1 client)",
        &headers,
    );
    let line = |t: &mut TextTable, what: &str, f: &dyn Fn(&Row) -> String| {
        let mut cells = vec![what.to_string()];
        cells.extend(rows.iter().map(f));
        t.row(cells);
    };
    line(&mut t, "client round trip", &|r| table::time(r.client_us));
    line(&mut t, "control request and reply through NATS", &|r| {
        table::time(r.client_us - r.server_us)
    });
    line(&mut t, "host handling", &|r| table::time(r.server_us));
    line(&mut t, "· plugin calls per put", &|r| {
        format!("{:.2}", r.calls_per_put)
    });
    line(
        &mut t,
        "· plugin's own run (boundary, JSON, rules)",
        &|r| table::time(r.plugin_us),
    );
    line(&mut t, "· KV get + compare-and-swap (imports)", &|r| {
        table::time(r.imports_us)
    });
    line(
        &mut t,
        "· rest: request JSON, config lookups, linkdefs + event",
        &|r| table::time(r.server_us - r.plugin_us - r.imports_us),
    );
    line(
        &mut t,
        "off the path: table owner applying the change",
        &|r| table::time(r.owner_us),
    );
    line(&mut t, "floor: NATS request to an echo responder", &|r| {
        table::time(r.echo_us)
    });
    t.note("From the host's own counters (admin endpoint scraped before and after the puts); every put creates a new source with one link.");
    t
}
