//! What a scenario did and found, printed for `--nocapture`, and the
//! assertions on it.
//!
//! Besides the readable block, each scenario prints one `RELIABILITY …`
//! line of `key=value` pairs that `scripts/reliability.sh` collects.

use std::collections::BTreeMap;
use std::time::Duration;

use super::load::{Outcomes, Plan, HANG_BOUND};
use super::model::Findings;
use super::watchdog::SILENCE_BOUND;

/// One scenario's figures.
pub struct Report {
    /// Short name.
    pub scenario: &'static str,
    /// What ran: servers and hosts.
    pub topology: String,
    /// The load asked for.
    pub plan: Plan,
    /// The load's and the probe's outcomes.
    pub out: Outcomes,
    /// How long the load ran.
    pub load_time: Duration,
    /// Faults injected, one line each.
    pub faults: Vec<String>,
    /// Bad inputs sent / refused with an error reply.
    pub bad_inputs: (usize, usize),
    /// Poison pills sent / refused with an error reply.
    pub poison: (usize, usize),
    /// Problems outside the model: bad inputs or poison pills not refused,
    /// odd stored values, host tables out of sync.
    pub problems: Vec<String>,
    /// Store against model.
    pub findings: Findings,
    /// Links stored at the end.
    pub stored_links: usize,
    /// Provider deliveries received.
    pub deliveries: u64,
    /// Provider resets (host restarts).
    pub resets: u64,
    /// Links each provider holds at the end.
    pub held: BTreeMap<String, usize>,
    /// Provider mismatches.
    pub provider_mismatches: Vec<String>,
    /// Of those, how many the provider's host had handed to NATS (its log
    /// shows the final put or delete as delivered): lost after that.
    pub published_then_lost: usize,
    /// Provider deliveries missing when the check began (late or lost).
    pub late: Vec<String>,
    /// Whether a nats-server process crashed in this scenario: a delivery
    /// published just before is gone (core NATS delivers at most once, and
    /// nothing re-sends it), so provider mismatches are reported, not
    /// failed on.
    pub nats_crashed: bool,
    /// Final host statuses: (id, links, ok, failed, swaps).
    pub hosts: Vec<(String, usize, u64, u64, u64)>,
    /// Wait, after the load, until both host tables matched the store.
    pub sync_time: Duration,
    /// Wait, after that, until provider deliveries matched the store.
    pub settle_time: Duration,
    /// Hosts silent for longer than the watchdog's bound (hung), one line
    /// per silence.
    pub silent: Vec<String>,
    /// Whether the scenario froze a host on purpose: then the watchdog
    /// must have seen it.
    pub expect_silent: bool,
    /// Hosts that rolled back or rejected a good build.
    pub wrongly_rolled_back: usize,
    /// Whole scenario, setup included.
    pub wall: Duration,
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Report {
    /// Whether nothing is wrong.
    pub fn clean(&self) -> bool {
        self.findings.lost == 0
            && self.findings.resurrected == 0
            && self.findings.other == 0
            && self.findings.wrong_replies == 0
            && self.out.hung == 0
            && self.silent.is_empty() != self.expect_silent
            && self.wrongly_rolled_back == 0
            && self.problems.is_empty()
            && (self.provider_mismatches.is_empty() || self.nats_crashed)
    }

    /// Prints the block and the summary line.
    pub fn print(&self) {
        let o = &self.out;
        let f = &self.findings;
        println!();
        println!("== reliability: {} — {} ==", self.scenario, self.topology);
        println!(
            "load      : {} clients x {} ops (seed {}; paced ops go on while a fault lasts); {} ops sent in {}",
            self.plan.clients,
            self.plan.ops,
            self.plan.seed,
            o.ops,
            secs(self.load_time)
        );
        println!(
            "replies   : {} ok, {} conflict (refused by the rules, as the model predicted), {} unacknowledged, {} hung (bound {}); slowest {}",
            o.ok,
            o.conflict,
            o.unacked,
            o.hung,
            secs(HANG_BOUND),
            secs(o.slowest)
        );
        for (kind, n) in &o.errors {
            println!("  {n:>5} x {kind}");
        }
        println!(
            "hosts hung: {} (a serving host silent to status for longer than {} s){}",
            self.silent.len(),
            SILENCE_BOUND.as_secs(),
            if self.expect_silent {
                "; this scenario froze one on purpose, so it passes only if that is seen"
            } else {
                ""
            }
        );
        for line in &self.silent {
            println!("  ~ {line}");
        }
        if self.wrongly_rolled_back > 0 {
            println!(
                "rollouts  : {} host(s) rolled back or rejected a good build",
                self.wrongly_rolled_back
            );
        }
        if self.faults.is_empty() {
            println!("faults    : none");
        }
        for fault in &self.faults {
            println!("fault     : {fault}");
        }
        if self.bad_inputs.0 > 0 {
            println!(
                "bad input : {} sent, {} refused with an error reply",
                self.bad_inputs.0, self.bad_inputs.1
            );
        }
        if self.poison.0 > 0 {
            println!(
                "poison    : {} puts on poison-pill, {} refused with an error reply",
                self.poison.0, self.poison.1
            );
        }
        println!(
            "store     : {} keys compared, {} links stored, {} keys had unacknowledged ops (either outcome accepted)",
            f.keys, self.stored_links, f.uncertain_keys
        );
        println!(
            "found     : lost = {}, resurrected = {}, other mismatches = {}, wrong replies = {}",
            f.lost, f.resurrected, f.other, f.wrong_replies
        );
        println!(
            "providers : {} deliveries, {} resets; holding {:?}; mismatches = {}{}",
            self.deliveries,
            self.resets,
            self.held,
            self.provider_mismatches.len(),
            if self.provider_mismatches.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} of them published by the host, then lost with the server: core NATS delivers at most once and nothing re-sends; {})",
                    self.published_then_lost,
                    if self.nats_crashed {
                        "reported, not failed on, when a nats-server crashed"
                    } else {
                        "no nats-server crashed: a failure"
                    }
                )
            }
        );
        println!(
            "settled   : host tables = store {} after the probe, providers {} later",
            secs(self.sync_time),
            secs(self.settle_time)
        );
        for m in &self.late {
            println!("  late or lost delivery (missing when the provider check began): {m}");
        }
        for (id, links, ok, failed, swaps) in &self.hosts {
            println!(
                "host      : {id}: table {links} links (= store), {ok} requests ok, {failed} failed, {swaps} swaps"
            );
        }
        for line in f
            .details
            .iter()
            .chain(&self.problems)
            .chain(&self.provider_mismatches)
            .take(40)
        {
            println!("  ! {line}");
        }
        println!(
            "result    : {} in {}",
            if self.clean() { "PASS" } else { "FAIL" },
            secs(self.wall)
        );
        println!(
            "RELIABILITY scenario={} clients={} ops_per_client={} ops={} ok={} conflict={} unacked={} hung={} hosts_hung={} wrongly_rolled_back={} faults={} bad_inputs={} poison_pills={} lost={} resurrected={} mismatches={} provider_mismatches={} published_then_lost={} nats_crash={} secs={:.1}",
            self.scenario,
            self.plan.clients,
            self.plan.ops,
            o.ops,
            o.ok,
            o.conflict,
            o.unacked,
            o.hung,
            self.silent.len(),
            self.wrongly_rolled_back,
            self.faults.len(),
            self.bad_inputs.0,
            self.poison.0,
            f.lost,
            f.resurrected,
            f.other + f.wrong_replies,
            self.provider_mismatches.len(),
            self.published_then_lost,
            self.nats_crashed,
            self.wall.as_secs_f64()
        );
    }

    /// Fails the test when anything is wrong.
    pub fn assert_clean(&self) {
        assert!(
            self.clean(),
            "{}: lost {}, resurrected {}, other {}, wrong replies {}, hung {}, hosts hung {:?} (expected: {}), problems {:?}, provider mismatches {:?}",
            self.scenario,
            self.findings.lost,
            self.findings.resurrected,
            self.findings.other,
            self.findings.wrong_replies,
            self.out.hung,
            self.silent,
            self.expect_silent,
            self.problems,
            self.provider_mismatches
        );
    }
}
