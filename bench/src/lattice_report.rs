//! Tables, targets and the chart of sections 7 (lattice load), 8
//! (catch-up) and 9 (rollout).

use crate::catchup::CatchUp;
use crate::chart::Series;
use crate::lattice::{LatticeLoad, LoadRow, Target as Who};
use crate::report::{target, Target};
use crate::table::{self, TextTable};

fn ops(v: f64) -> String {
    format!("{v:.0}/s")
}

/// The tables of sections 7 and 8.
pub fn tables(l: Option<&LatticeLoad>, c: Option<&CatchUp>) -> Vec<TextTable> {
    let mut out = Vec::new();
    if let Some(l) = l {
        let mut t = TextTable::new(
            "7. Lattice load: link.put, distinct components, wasmCloud's control client",
            &[
                "clients",
                "target",
                "throughput",
                "p50",
                "p99",
                "failed",
                "puts/round",
            ],
        )
        .left(1);
        for r in &l.load {
            t.row(vec![
                r.clients.to_string(),
                r.target.name().into(),
                ops(r.ops_s),
                table::time(r.p50_us),
                table::time(r.p99_us),
                r.failed.to_string(),
                r.puts.to_string(),
            ]);
        }
        t.note(format!(
            "One nats-server ({}); each host in a process of its own on a lattice of its own; best of interleaved rounds.",
            l.server_version
        ));
        if let Some(why) = &l.wasmcloud_skipped {
            t.note(format!("wasmCloud column skipped: {why}"));
        }
        out.push(t);
        if !l.put_time.is_empty() {
            out.push(crate::put_time::table(&l.put_time));
        }
        let mut t = TextTable::new(
            "7b. link.put under a flood of reads (64 clients, 1,000 specs stored)",
            &[
                "target",
                "flood",
                "puts",
                "failed",
                "p50",
                "p99",
                "flood answers",
            ],
        )
        .left(1)
        .left(2);
        for r in &l.flood {
            t.row(vec![
                r.target.name().into(),
                r.flood.into(),
                r.puts.to_string(),
                r.failed.to_string(),
                table::time(r.p50_us),
                table::time(r.p99_us),
                r.flood_answered.to_string(),
            ]);
        }
        if let Some(s) = &l.stuck {
            t.note(format!(
                "Stuck call (spec-host, test-only plugin build whose put loops over `get`, sent again and again by one client; each cut off by the import cap): 8 clients' put p99 {} normally, {} meanwhile ({:.2}×); {} failed; {} looping calls cut off.",
                table::time(s.normal_p99_us),
                table::time(s.stuck_p99_us),
                s.ratio,
                s.failed,
                s.loops_cut
            ));
        }
        out.push(t);
    }
    if let Some(c) = c {
        let mut t = TextTable::new(
            "8. Catch-up: process start → complete link table",
            &["target", "specs", "time", "RSS then"],
        )
        .left(1);
        for r in &c.rows {
            t.row(vec![
                r.target.name().into(),
                table::count(r.specs),
                table::time(r.seconds * 1e6),
                table::mib(r.rss_mib * f64::from(1u32 << 20)),
            ]);
        }
        t.row(vec![
            "raw KV watch of the bucket (floor, in process)".into(),
            table::count(c.specs),
            table::time(c.floor_s * 1e6),
            "".into(),
        ]);
        t.row(vec![
            "the follower's pull consumer alone (in process)".into(),
            table::count(c.specs),
            table::time(c.pull_s * 1e6),
            "".into(),
        ]);
        t.note(format!(
            "{} components, {} links (a tenth of the components have 20 links, the rest 1). An empty spec-host: RSS {}.",
            table::count(c.specs),
            table::count(c.links),
            table::mib(c.empty_rss_mib * f64::from(1u32 << 20)),
        ));
        if let Some(lag) = &c.lag {
            t.note(format!(
                "Then {:.0} writes/s by other clients (asked {}): {} changes applied, follower lag p50 ≤ {}, p99 ≤ {} (the host's lag histogram, store write → table).",
                lag.achieved,
                lag.rate,
                lag.samples,
                table::time(lag.p50_s * 1e6),
                table::time(lag.p99_s * 1e6),
            ));
        }
        if let Some(got) = &c.link_get {
            t.note(format!(
                "link.get (wasmCloud's control client) on the caught-up host: {got}."
            ));
        }
        if let Some(l) = &c.listing {
            t.note(format!(
                "`spec-host link list` printed all {} links in {} (pages of 1,000 specs), peak RSS {}.",
                table::count(l.links),
                table::time(l.seconds * 1e6),
                table::mib(l.peak_rss_mib * f64::from(1u32 << 20)),
            ));
        }
        if let Some(why) = &c.wasmcloud_skipped {
            t.note(format!("wasmCloud row skipped: {why}"));
        }
        out.push(t);
    }
    out
}

/// Scale targets of section 8 (spec-host's row against the floor).
fn scale_targets(c: &CatchUp, out: &mut Vec<Target>) {
    let Some(s) = c.rows.iter().find(|r| r.target == Who::SpecHost) else {
        return;
    };
    let per_million = s.seconds * 1e6 / c.specs.max(1) as f64;
    out.push(target(
        &format!("catch-up on {} specs, per million", table::count(c.specs)),
        "≤ 10 s per million specs",
        format!(
            "{per_million:.1} s per million ({}; raw watch floor {}, {:.1}×)",
            table::time(s.seconds * 1e6),
            table::time(c.floor_s * 1e6),
            s.seconds / c.floor_s.max(1e-9)
        ),
        per_million <= 10.0,
    ));
    let per_component = (s.rss_mib - c.empty_rss_mib) * 1024.0 / c.specs.max(1) as f64;
    out.push(target(
        "RSS per component beyond the empty host",
        "≤ 0.6 KB",
        format!(
            "{per_component:.2} KB ({} − {})",
            table::mib(s.rss_mib * f64::from(1u32 << 20)),
            table::mib(c.empty_rss_mib * f64::from(1u32 << 20))
        ),
        per_component <= 0.6,
    ));
    if let Some(lag) = &c.lag {
        out.push(target(
            &format!("follower lag p99 at {} writes/s", lag.rate),
            "< 1 s",
            format!(
                "≤ {} ({:.0} writes/s made, {} changes)",
                table::time(lag.p99_s * 1e6),
                lag.achieved,
                lag.samples
            ),
            lag.p99_s < 1.0,
        ));
    }
}

fn row(l: &LatticeLoad, who: Who, clients: usize) -> Option<&crate::lattice::LoadRow> {
    l.load
        .iter()
        .find(|r| r.target == who && r.clients == clients)
}

/// The targets of sections 7 and 8 that the run measured.
pub fn targets(l: Option<&LatticeLoad>, c: Option<&CatchUp>) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(l) = l {
        let spec32 = row(l, Who::SpecHost, 32);
        let spec1 = row(l, Who::SpecHost, 1);
        // The 0.2 build's figure, beside the target's (before and after).
        let before = |clients: usize, f: fn(&LoadRow, &LoadRow) -> String| match (
            row(l, Who::SpecHostV02, clients),
            row(l, Who::WasmCloud, clients),
        ) {
            (Some(o), Some(w)) => format!("; plugin 0.2: {}", f(o, w)),
            _ => String::new(),
        };
        if let (Some(s), Some(w)) = (spec32, row(l, Who::WasmCloud, 32)) {
            let r = s.ops_s / w.ops_s;
            out.push(target(
                "link.put throughput at 32 clients, spec-host / wasmCloud v1.9 host",
                "≥ 1.5×",
                format!(
                    "{r:.2}× ({} vs {}){}",
                    ops(s.ops_s),
                    ops(w.ops_s),
                    before(32, |o, w| format!("{:.2}×", o.ops_s / w.ops_s))
                ),
                r >= 1.5,
            ));
        }
        if let (Some(s), Some(f)) = (spec32, row(l, Who::Raw, 32)) {
            let r = s.ops_s / f.ops_s;
            out.push(target(
                "link.put throughput at 32 clients, spec-host / raw JetStream floor",
                "≥ 0.5×",
                format!("{r:.2}× ({} vs {})", ops(s.ops_s), ops(f.ops_s)),
                r >= 0.5,
            ));
        }
        if let (Some(s32), Some(s1)) = (spec32, spec1) {
            let r = s32.ops_s / s1.ops_s;
            out.push(target(
                "spec-host link.put throughput, 32 clients / 1 client",
                "≥ 4×",
                format!("{r:.2}×"),
                r >= 4.0,
            ));
        }
        if let (Some(s), Some(w)) = (spec1, row(l, Who::WasmCloud, 1)) {
            out.push(target(
                "link.put p50 at 1 client, spec-host vs wasmCloud v1.9 host",
                "≤ wasmCloud's",
                format!(
                    "{} vs {}{}",
                    table::time(s.p50_us),
                    table::time(w.p50_us),
                    before(1, |o, _| table::time(o.p50_us))
                ),
                s.p50_us <= w.p50_us,
            ));
        }
        for f in l.flood.iter().filter(|f| f.target == Who::SpecHost) {
            out.push(target(
                &format!("link.put under a 64-wide {} flood", f.flood),
                "none fails, p99 < 100 ms",
                format!("{} failed, p99 {}", f.failed, table::time(f.p99_us)),
                f.failed == 0 && f.p99_us < 100_000.0,
            ));
        }
        if let Some(s) = &l.stuck {
            out.push(target(
                "put p99 with calls stuck in a plugin loop / without",
                "< 2×",
                format!("{:.2}×", s.ratio),
                s.ratio < 2.0,
            ));
        }
    }
    if let Some(c) = c {
        let find = |who| c.rows.iter().find(|r| r.target == who);
        if let (Some(s), Some(w)) = (find(Who::SpecHost), find(Who::WasmCloud)) {
            out.push(target(
                &format!(
                    "catch-up on {} specs, spec-host vs wasmCloud v1.9 host",
                    s.specs
                ),
                "no slower",
                format!(
                    "{} vs {} (RSS {} vs {})",
                    table::time(s.seconds * 1e6),
                    table::time(w.seconds * 1e6),
                    table::mib(s.rss_mib * f64::from(1u32 << 20)),
                    table::mib(w.rss_mib * f64::from(1u32 << 20))
                ),
                s.seconds <= w.seconds,
            ));
        }
        scale_targets(c, &mut out);
    }
    out
}

/// Throughput against clients, one line per target (linear axes).
pub fn throughput_series(l: &LatticeLoad) -> Vec<Series> {
    [
        (Who::SpecHost, "#2471a3"),
        (Who::SpecHostV02, "#85c1e9"),
        (Who::WasmCloud, "#c0392b"),
        (Who::Raw, "#7f8c8d"),
    ]
    .into_iter()
    .filter_map(|(who, color)| {
        let points: Vec<(f64, f64)> = l
            .load
            .iter()
            .filter(|r| r.target == who)
            .map(|r| (r.clients as f64, r.ops_s))
            .collect();
        (!points.is_empty()).then(|| Series {
            label: who.name().to_string(),
            color,
            dashed: who == Who::Raw,
            points,
        })
    })
    .collect()
}

/// The table of section 9.
pub fn rollout_table(r: &crate::rollout::RolloutBench) -> TextTable {
    let mut t = TextTable::new(
        "9. Lattice rollout, 3 spec-host serve processes",
        &["measure", "value", "detail"],
    )
    .left(0)
    .left(2);
    for (i, round) in r.rounds.iter().enumerate() {
        t.row(vec![
            format!(
                "round {}: 8 clients, {}",
                i + 1,
                if round.shadowing {
                    "every host shadowing"
                } else {
                    "no rollout"
                }
            ),
            ops(round.ops_s),
            format!(
                "p50 {}, p99 {}, {} failed",
                table::time(round.p50_us),
                table::time(round.p99_us),
                round.failed
            ),
        ]);
    }
    t.row(vec![
        "shadow overhead on link.put latency".into(),
        format!("p50 {:.2}×", r.p50_ratio),
        format!(
            "p99 {:.2}× (medians, shadowing / not); {} requests and table changes compared, {} differed",
            r.p99_ratio, r.compared, r.differences
        ),
    ]);
    for ro in &r.rollouts {
        t.row(vec![
            format!(
                "rollout to 3 hosts, {}",
                if ro.batch == 1 {
                    "one at a time".to_string()
                } else {
                    format!("{} at once", ro.batch)
                }
            ),
            format!("{:.1} s", ro.seconds),
            format!(
                "windows it was told to wait {:.0} s, so {:.1} s of fetching, shadow start, switching and polling; {} failed of {} puts meanwhile",
                ro.windows_s,
                (ro.seconds - ro.windows_s).max(0.0),
                ro.failed,
                ro.puts
            ),
        ]);
    }
    t.row(vec![
        "compiling the build, once per host".into(),
        format!("{:.0} ms", r.compile_ms),
        "each host compiles the signed component itself before it shadows it (compiled code never travels between hosts); median of 3, no cache".into(),
    ]);
    t.note("The new build differs from the running one in its version string only. A shadowed request is repeated off the request path, on the reads the live request made. Builds and rollout records are signed; hosts trust the issuer.");
    t
}

/// The targets of section 9.
pub fn rollout_targets(r: &crate::rollout::RolloutBench) -> Vec<Target> {
    let failed: u64 = r.rollouts.iter().map(|x| x.failed).sum::<u64>()
        + r.rounds.iter().map(|x| x.failed).sum::<u64>();
    let puts: u64 = r.rollouts.iter().map(|x| x.puts).sum();
    vec![target(
        "link.put during rollouts and shadowing",
        "0 failed",
        format!("{failed} failed ({puts} puts during rollouts)"),
        failed == 0,
    )]
}
