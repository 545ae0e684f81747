//! Everything one run measured, the targets checked against it, and how it
//! is shown: text tables, JSON and charts.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::chart::{self, Bar, Series};
use crate::table::{self, TextTable};
use crate::{boundary, diff, e2e, memory, start, swap};

/// One run's results; a section left out with `--only` is `None`.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    /// Quick mode.
    pub quick: bool,
    /// Section 1.
    pub boundary: Option<Vec<boundary::Row>>,
    /// Section 2.
    pub e2e: Option<e2e::E2e>,
    /// Section 3.
    pub diff: Option<Vec<diff::Row>>,
    /// Section 4a.
    pub start: Option<start::Start>,
    /// Section 4b.
    pub swap: Option<swap::Swap>,
    /// Section 5.
    pub memory: Option<Vec<memory::Row>>,
    /// Section 7: lattice load against the wasmCloud host and the floor.
    pub lattice: Option<crate::lattice::LatticeLoad>,
    /// Section 8: catch-up.
    pub catch_up: Option<crate::catchup::CatchUp>,
    /// Section 9: lattice rollout.
    pub rollout: Option<crate::rollout::RolloutBench>,
    /// Section 10: a poison value beside changing specs.
    pub poison: Option<crate::poison::Poison>,
    /// Section 11: metrics on vs off.
    pub metrics: Option<crate::metrics_cost::MetricsCost>,
    /// The targets, checked.
    pub targets: Vec<Target>,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
}

/// One target and how the run did against it.
#[derive(Debug, Serialize)]
pub struct Target {
    /// What is targeted.
    pub name: String,
    /// The goal, in words.
    pub goal: String,
    /// What was measured, in words.
    pub measured: String,
    /// Whether it was met.
    pub met: bool,
}

pub(crate) fn target(name: &str, goal: &str, measured: String, met: bool) -> Target {
    Target {
        name: name.into(),
        goal: goal.into(),
        measured,
        met,
    }
}

/// Checks every target whose section ran.
pub fn check_targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(e) = &r.e2e {
        for (p99, goal, limit) in [(false, "≤ 1.05×", 1.05), (true, "≤ 1.10×", 1.10)] {
            let worst = e
                .latency
                .iter()
                .filter_map(|l| Some(((if p99 { l.ratio_p99 } else { l.ratio_p50 })?, l.op)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((ratio, op)) = worst {
                let name = if p99 {
                    "e2e latency plugin / faster native, p99"
                } else {
                    "e2e latency plugin / faster native, p50"
                };
                out.push(target(
                    name,
                    goal,
                    format!("{ratio:.3}× (worst: {op})"),
                    ratio <= limit,
                ));
            }
        }
        if let Some(t) = e.throughput.iter().find(|t| t.clients == 32) {
            let ratio = t.ratio.unwrap_or(0.0);
            out.push(target(
                "put-link throughput, 32 clients, plugin / faster native",
                "≥ 0.80×",
                format!("{ratio:.3}×"),
                ratio >= 0.8,
            ));
        }
    }
    if let Some(rows) = &r.boundary {
        // The boundary's goal: at 100 links, no call through the plugin
        // (contract 0.3) costs more than 1.5× the native call.
        let worst = rows
            .iter()
            .filter(|b| b.links == 100)
            .filter_map(|b| Some((b.ratio?, b.op)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((ratio, op)) = worst {
            out.push(target(
                "in-memory boundary plugin 0.3 / native, 100 links",
                "≤ 1.5× for get, store, update, put-link",
                format!("{ratio:.2}× (worst: {op})"),
                ratio <= 1.5,
            ));
        }
    }
    if let Some(e) = &r.e2e {
        if let Some(l) = e.latency.iter().find(|l| l.op == "store") {
            let ratio = l.ratio_p50.unwrap_or(f64::INFINITY);
            out.push(target(
                "e2e store on NATS plugin / faster native, p50",
                "≤ 1.05×",
                format!("{ratio:.3}×"),
                ratio <= 1.05,
            ));
        }
    }
    if let Some(rows) = &r.diff {
        if let Some(d) = rows
            .iter()
            .find(|d| d.table_links == 10_000 && d.spec_links == 1_000)
        {
            out.push(target(
                "update, 1k-link stored value against a 10k table, through the plugin 0.3",
                "< 1 ms",
                format!(
                    "{} (0.2 build: {}; native from JSON: {})",
                    table::time(d.plugin_us),
                    table::time(d.plugin_v02_us),
                    table::time(d.native_json_us)
                ),
                d.plugin_us < 1000.0,
            ));
            for (who, us, speedup) in [
                ("native LinkTable", d.native_us, d.speedup_native),
                ("through the plugin 0.3", d.plugin_us, d.speedup_plugin),
            ] {
                let s = speedup.unwrap_or(0.0);
                out.push(target(
                    &format!("diff 10k table + 1k spec, {who}"),
                    "≥ 50× faster than nested scan and < 1 ms",
                    format!("{s:.0}× faster, {}", table::time(us)),
                    s >= 50.0 && us < 1000.0,
                ));
            }
        }
    }
    if let Some(s) = &r.start {
        let wall = s.cached.wall_us;
        out.push(target(
            "start to first request, cached component",
            "≤ 20 ms",
            table::time(wall),
            wall <= 20_000.0,
        ));
    }
    if let Some(s) = &r.swap {
        out.push(target(
            "swap under load",
            "≤ 50 ms, 0 failed requests",
            format!(
                "median {}, max {}, {} failed of {}",
                table::time(s.swap_median_us),
                table::time(s.swap_max_us),
                s.failed,
                s.requests
            ),
            s.swap_median_us <= 50_000.0 && s.failed == 0,
        ));
    }
    if let Some(m) = r
        .memory
        .as_ref()
        .and_then(|m| m.iter().find(|m| m.links == 100_000))
    {
        out.push(target(
            "plugin linear memory, 100,000 links",
            "< 64 MiB",
            table::mib(m.plugin_linear as f64),
            m.plugin_linear < 64 << 20,
        ));
        let (plugin, native) = (m.plugin_rss_delta as f64, m.native_rss_delta as f64);
        let ratio = if native > 0.0 {
            plugin / native
        } else {
            f64::INFINITY
        };
        out.push(target(
            "host RSS growth for 100,000 links, plugin / native",
            "≤ 2×",
            format!(
                "{ratio:.2}× ({} vs {})",
                table::mib(plugin),
                table::mib(native)
            ),
            ratio <= 2.0,
        ));
    }
    out.extend(crate::lattice_report::targets(
        r.lattice.as_ref(),
        r.catch_up.as_ref(),
    ));
    if let Some(ro) = &r.rollout {
        out.extend(crate::lattice_report::rollout_targets(ro));
    }
    if let Some(p) = &r.poison {
        out.extend(crate::poison::targets(p));
    }
    if let Some(m) = &r.metrics {
        out.extend(crate::metrics_cost::targets(m));
    }
    out
}

fn start_swap_table(s: Option<&start::Start>, w: Option<&swap::Swap>) -> TextTable {
    let mut t = TextTable::new(
        "4. Start and swap (median)",
        &["measure", "value", "detail"],
    )
    .left(2);
    if let Some(s) = s {
        for (label, m) in [
            ("start → first request, no cache", &s.uncached),
            ("start → first request, cached component", &s.cached),
        ] {
            t.row(vec![
                label.into(),
                table::time(m.wall_us),
                format!(
                    "in child: engine {}, load {}, host up {}, served {}",
                    table::time(m.child.engine_us),
                    table::time(m.child.load_us),
                    table::time(m.child.host_us),
                    table::time(m.child.first_us)
                ),
            ]);
        }
        t.row(vec![
            "load_bytes in process, cold (Cranelift)".into(),
            table::time(s.load_cold_us),
            String::new(),
        ]);
        t.row(vec![
            "load_bytes in process, warm ComponentCache".into(),
            table::time(s.load_cached_us),
            String::new(),
        ]);
    }
    if let Some(w) = w {
        t.row(vec![
            format!(
                "swap under load ({} swaps, {} table links)",
                w.swaps, w.table_links
            ),
            table::time(w.swap_median_us),
            format!(
                "max {}; {} failed of {} puts; longest put during a swap {} (median put {})",
                table::time(w.swap_max_us),
                w.failed,
                w.requests,
                table::time(w.put_during_swap_max_us),
                table::time(w.put_median_us)
            ),
        ]);
    }
    t.note("Start: wall time from spawning `spec-bench probe-start` to its answer line (exec and runtime start included).");
    t
}

fn memory_table(rows: &[memory::Row]) -> TextTable {
    let mut t = TextTable::new(
        "5. Memory with the table full",
        &[
            "table links",
            "plugin linear memory",
            "plugin host RSS Δ",
            "native host RSS Δ",
            "plugin host RSS",
            "native host RSS",
        ],
    );
    for r in rows {
        t.row(vec![
            table::count(r.links),
            table::mib(r.plugin_linear as f64),
            table::mib(r.plugin_rss_delta as f64),
            table::mib(r.native_rss_delta as f64),
            table::mib(r.plugin_rss_after as f64),
            table::mib(r.native_rss_after as f64),
        ]);
    }
    t.note("Linear memory: smallest PluginLimits::memory_cap that holds the table (bisection). RSS: VmRSS before/after, each side in its own child process; the plugin host's Δ includes its mirror of the table.");
    t
}

fn targets_table(targets: &[Target]) -> TextTable {
    let mut t = TextTable::new("Targets", &["target", "goal", "measured", "status"])
        .left(1)
        .left(2);
    for g in targets {
        t.row(vec![
            g.name.clone(),
            g.goal.clone(),
            g.measured.clone(),
            table::verdict(g.met),
        ]);
    }
    t
}

/// Every table of the run, in section order.
pub fn tables(r: &Results) -> Vec<TextTable> {
    let mut out = Vec::new();
    if let Some(b) = &r.boundary {
        out.push(boundary::table(b));
    }
    if let Some(e) = &r.e2e {
        out.extend(crate::e2e_table::tables(e));
    }
    if let Some(d) = &r.diff {
        out.push(diff::table(d));
    }
    if r.start.is_some() || r.swap.is_some() {
        out.push(start_swap_table(r.start.as_ref(), r.swap.as_ref()));
    }
    if let Some(m) = &r.memory {
        out.push(memory_table(m));
    }
    out.extend(crate::lattice_report::tables(
        r.lattice.as_ref(),
        r.catch_up.as_ref(),
    ));
    if let Some(ro) = &r.rollout {
        out.push(crate::lattice_report::rollout_table(ro));
    }
    if let Some(p) = &r.poison {
        out.push(crate::poison::table(p));
    }
    if let Some(m) = &r.metrics {
        out.push(crate::metrics_cost::table(m));
    }
    out.push(targets_table(&r.targets));
    out
}

/// Writes the raw numbers as JSON.
pub fn write_json(r: &Results, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(r).context("encoding the results")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Draws the charts whose sections ran into `dir`.
pub fn write_charts(r: &Results, dir: &Path) -> Result<()> {
    if let Some(rows) = &r.diff {
        let mut series = Vec::new();
        for (spec, dashed) in [(1_000, false), (10, true)] {
            let pick = |f: fn(&diff::Row) -> f64| -> Vec<(f64, f64)> {
                rows.iter()
                    .filter(|d| d.spec_links == spec)
                    .map(|d| (d.table_links as f64, f(d)))
                    .collect()
            };
            series.push(Series {
                label: format!("nested scan, spec {spec}"),
                color: "#c0392b",
                dashed,
                points: pick(|d| d.nested_us),
            });
            series.push(Series {
                label: format!("plugin 0.3, spec {spec}"),
                color: "#2471a3",
                dashed,
                points: pick(|d| d.plugin_us),
            });
            series.push(Series {
                label: format!("ours native, spec {spec}"),
                color: "#229954",
                dashed,
                points: pick(|d| d.native_us),
            });
        }
        let svg = chart::log_log(
            "update: diff time vs host table size",
            "links in the host table (log)",
            "time per update (log)",
            "µs",
            &series,
        );
        chart::write(dir, "diff_scaling.svg", &svg)?;
    }
    let mut bars = Vec::new();
    for b in r.boundary.iter().flatten() {
        if let Some(value) = b.ratio {
            let label = if b.links == 0 {
                format!("in-memory {}", b.op)
            } else {
                format!("in-memory {}, {} links", b.op, b.links)
            };
            bars.push(Bar { label, value });
        }
    }
    if let Some(e) = &r.e2e {
        for l in &e.latency {
            for (tag, v) in [("p50", l.ratio_p50), ("p99", l.ratio_p99)] {
                if let Some(v) = v {
                    bars.push(Bar {
                        label: format!("NATS {} {tag}", l.op),
                        value: v,
                    });
                }
            }
        }
    }
    if !bars.is_empty() {
        let svg = chart::ratio_bars("Plugin / native latency", &bars);
        chart::write(dir, "latency_ratios.svg", &svg)?;
    }
    if let Some(l) = &r.lattice {
        let svg = chart::log_log(
            "link.put throughput against clients (one nats-server, 2 cores)",
            "concurrent clients (log)",
            "puts per second (log)",
            "",
            &crate::lattice_report::throughput_series(l),
        );
        chart::write(dir, "lattice_throughput.svg", &svg)?;
    }
    if let Some(c) = &r.catch_up {
        let mut bars: Vec<Bar> = c
            .rows
            .iter()
            .map(|row| Bar {
                label: format!("{} (RSS {:.0} MiB)", row.target.name(), row.rss_mib),
                value: row.seconds,
            })
            .collect();
        bars.push(Bar {
            label: "raw KV watch of the bucket (floor)".into(),
            value: c.floor_s,
        });
        bars.push(Bar {
            label: "the follower's pull consumer alone".into(),
            value: c.pull_s,
        });
        if let Some(l) = &c.listing {
            bars.push(Bar {
                label: format!("spec-host link list ({:.0} MiB peak)", l.peak_rss_mib),
                value: l.seconds,
            });
        }
        let svg = chart::time_bars(
            &format!(
                "{} components, {} links: start to full table, floors, full listing",
                crate::table::count(c.specs),
                crate::table::count(c.links)
            ),
            &bars,
        );
        chart::write(dir, &format!("catch_up_{}.svg", c.specs), &svg)?;
    }
    Ok(())
}
