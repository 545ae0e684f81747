//! The tables of section 2 (end to end on NATS).

use crate::e2e::{E2e, Pct};
use crate::table::{self, TextTable};

fn pct_cells(p: &Pct) -> [String; 2] {
    [table::time(p.p50_us), table::time(p.p99_us)]
}

/// Latency and throughput tables.
pub fn tables(e: &E2e) -> [TextTable; 2] {
    let mut lat = TextTable::new(
        format!(
            "2a. End-to-end sequential latency on NATS ({})",
            e.server_version
        ),
        &[
            "operation",
            "plugin p50",
            "native task p50",
            "native thread p50",
            "ratio p50",
            "plugin p99",
            "native task p99",
            "native thread p99",
            "ratio p99",
        ],
    );
    for r in &e.latency {
        let [p50, p99] = pct_cells(&r.plugin);
        let [n50, n99] = pct_cells(&r.native_task);
        let [t50, t99] = pct_cells(&r.native_thread);
        lat.row(vec![
            r.op.to_string(),
            p50,
            n50,
            t50,
            table::ratio(r.ratio_p50),
            p99,
            n99,
            t99,
            table::ratio(r.ratio_p99),
        ]);
    }
    let [r50, r99] = pct_cells(&e.raw_get);
    lat.row(vec![
        "KV get awaited directly (floor)".into(),
        r50,
        String::new(),
        String::new(),
        String::new(),
        r99,
    ]);
    let [n50, n99] = pct_cells(&e.bridged_get_task);
    let [t50, t99] = pct_cells(&e.bridged_get_thread);
    lat.row(vec![
        "KV get via native worker, no logic".into(),
        String::new(),
        n50,
        t50,
        String::new(),
        String::new(),
        n99,
        t99,
    ]);
    if let Some(r) = e.latency.first() {
        lat.note(format!(
            "{} calls per side per operation; JetStream KV (file storage) + NATS publish/flush to one local provider. Ratio: plugin / the faster native.",
            r.samples
        ));
    }
    let mut tp = TextTable::new(
        "2b. put-link throughput on distinct ids, NATS (median)",
        &[
            "clients",
            "plugin",
            "native task",
            "native thread",
            "plugin/best native",
        ],
    );
    let rate = |r: f64| format!("{r:.0}/s");
    for r in &e.throughput {
        tp.row(vec![
            r.clients.to_string(),
            rate(r.plugin_ops_s),
            rate(r.native_task_ops_s),
            rate(r.native_thread_ops_s),
            table::ratio(r.ratio),
        ]);
    }
    tp.note("Both sides run store work concurrently (a pool of instances / calls on the caller's task, one writer per key) and apply the table in one owner; every put creates a new source.");
    [lat, tp]
}
