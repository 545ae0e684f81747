//! Reliability suite: `spec-host serve` under load and faults, with nothing
//! lost.
//!
//! Every scenario runs two real `spec-host serve` processes (this package's
//! binary) with one local provider each, on one nats-server or on a 3-node
//! JetStream cluster, and drives them with N wasmCloud control clients × M
//! mixed link puts and deletes on overlapping sources. Then it checks:
//!
//! * the stored specs equal the state the acknowledged replies promise
//!   (`model`): lost = 0, resurrected = 0; unacknowledged operations may
//!   have applied or not, and are counted;
//! * no operation hung: each got a reply or a clear error within bounds,
//!   and no serving host went silent: a watchdog asks status every half
//!   second, and a host that answers nothing for longer than its bound is
//!   counted as hung (`watchdog`);
//! * both hosts' tables equal the store, and each provider's last
//!   delivery for every link matches the final store (`providers`);
//! * the service recovered from the fault by itself (a probe succeeds).
//!
//! Scenarios: plain load with bad inputs; `kill -9` of the nats-server;
//! `kill -9` of a spec-host; `kill -9` of the bucket leader in a 3-node
//! cluster; a swap of both hosts to a plugin that traps on one id, with
//! poison pills, and back; a 64-wide flood of `link.get` and status
//! requests; calls that loop over the plugin's imports; on three hosts,
//! lattice rollouts (`spec-host plugin rollout`) of a good build, of one
//! caught in shadow, of one rolled back by itself and of one that cannot
//! take over the table (`reliability/rollout.rs`); and a host frozen with
//! SIGSTOP past the watchdog's bound, which must be reported hung (the
//! measure shown able to fail) while nothing is lost.
//!
//! Sizes: a short run by default (CI: `cargo test`); `RELIABILITY_FULL=1`
//! for 8 clients × 250 ops per scenario (`scripts/reliability.sh`).
//! `RELIABILITY_CLIENTS`, `RELIABILITY_OPS`, `RELIABILITY_SEED` override.
//! Scenarios run one at a time (a lock), each printing what it did and
//! found; run with `--nocapture` to see it.

mod checks;
mod fixture;
mod floor;
mod load;
mod model;
mod providers;
mod report;
mod rollout;
mod scenario;
mod watchdog;

use std::sync::Mutex;

use scenario::{Config, Fault};

/// Scenarios start processes and load the machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn config() -> Config {
    let full = matches!(
        std::env::var("RELIABILITY_FULL").as_deref(),
        Ok("1" | "true" | "yes")
    );
    let seed = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    Config {
        plan: load::Plan {
            clients: env_usize("RELIABILITY_CLIENTS").unwrap_or(if full { 8 } else { 4 }),
            ops: env_usize("RELIABILITY_OPS").unwrap_or(if full { 250 } else { 60 }),
            seed,
        },
        bad_inputs: if full { 220 } else { 22 },
        poison: if full { 40 } else { 5 },
    }
}

fn run(name: &'static str, fault: Fault) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(scenario::run(name, fault, config()));
    report.print();
    report.assert_clean();
}

#[test]
fn load_on_two_hosts_loses_nothing() {
    run("load", Fault::None);
}

#[test]
fn nats_server_kill_mid_load_loses_nothing() {
    run("nats-kill", Fault::NatsKill);
}

#[test]
fn spec_host_kill_mid_load_loses_nothing() {
    run("host-kill", Fault::HostKill);
}

#[test]
fn cluster_node_kill_mid_load_loses_nothing() {
    run("cluster-node-kill", Fault::ClusterNodeKill);
}

#[test]
fn plugin_swap_and_poison_pill_under_load() {
    run("plugin-faults", Fault::PluginSwap);
}

#[test]
fn a_flood_of_reads_fails_no_write() {
    run("read-flood", Fault::Flood);
}

#[test]
fn calls_looping_over_imports_fail_alone() {
    run("import-loop", Fault::ImportLoop);
}

#[test]
fn lattice_rollouts_fail_no_request() {
    run("rollout", Fault::Rollout);
}

#[test]
fn a_frozen_host_is_reported_hung_and_loses_nothing() {
    run("frozen-host", Fault::FrozenHost);
}
