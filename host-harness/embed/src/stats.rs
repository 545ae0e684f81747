//! What the plugin's calls did, counted where every call ends: faults by
//! class, instances thrown away, and where each export's time went (the
//! plugin's own run, boundary crossings included, against the time in the
//! host's imports: store round trips, deliveries). Operators read these as
//! metrics; a rollout compares builds by faults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::CallError;

/// The ways a plugin call can fault (a misbehaving build, as opposed to an
/// answer with an error or a slow backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultClass {
    /// It trapped.
    Trap,
    /// It ran past its CPU budget.
    Cpu,
    /// It tried to grow its memory past the cap.
    Memory,
    /// It made more import calls than allowed.
    Imports,
    /// It ran past its deadline by its own doing.
    Deadline,
}

impl FaultClass {
    /// Every class, in a fixed order.
    pub const ALL: [FaultClass; 5] = [
        FaultClass::Trap,
        FaultClass::Cpu,
        FaultClass::Memory,
        FaultClass::Imports,
        FaultClass::Deadline,
    ];

    /// Its name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultClass::Trap => "trap",
            FaultClass::Cpu => "cpu_budget",
            FaultClass::Memory => "memory_cap",
            FaultClass::Imports => "import_cap",
            FaultClass::Deadline => "deadline",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of every instance of one [`crate::SpecHost`] (request
/// instances, the table owner, scratch instances), across swaps.
#[derive(Debug, Default)]
pub struct PluginStats {
    faults: [AtomicU64; 5],
    replaced: AtomicU64,
    /// Per export name: a few dozen names at most, so one short lock per
    /// call.
    times: Mutex<BTreeMap<&'static str, CallTimes>>,
}

/// Where the calls of one export spent their time, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallTimes {
    /// Calls that ended (answered, failed or faulted).
    pub calls: u64,
    /// Time the plugin ran: its own code, and lowering and lifting the
    /// call's values across the boundary.
    pub plugin: Duration,
    /// Time in the host's imports (store round trips, deliveries).
    pub imports: Duration,
}

impl PluginStats {
    /// Faults of `class` so far.
    pub fn faults(&self, class: FaultClass) -> u64 {
        self.faults[class.index()].load(Ordering::Relaxed)
    }

    /// Instances thrown away because a call left them unusable (a fault, a
    /// call abandoned half way, a backend that ignored the deadline); each
    /// is replaced by a fresh one when next needed.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Relaxed)
    }

    pub(crate) fn count_replaced(&self) {
        self.replaced.fetch_add(1, Ordering::Relaxed);
    }

    /// Where the calls of each export spent their time, by WIT name.
    pub fn call_times(&self) -> Vec<(&'static str, CallTimes)> {
        let times = self.times.lock().unwrap_or_else(|p| p.into_inner());
        times.iter().map(|(name, t)| (*name, *t)).collect()
    }

    /// Counts a call of `name` that took `total`, `imports` of it in the
    /// host's imports.
    pub(crate) fn count_call(&self, name: &'static str, total: Duration, imports: Duration) {
        let mut times = self.times.lock().unwrap_or_else(|p| p.into_inner());
        let t = times.entry(name).or_default();
        t.calls += 1;
        t.plugin += total.saturating_sub(imports);
        t.imports += imports;
    }

    /// Counts a call that ended with `err`, if it is a fault.
    pub(crate) fn count_fault(&self, err: &CallError) {
        if let Some(class) = err.fault_class() {
            self.faults[class.index()].fetch_add(1, Ordering::Relaxed);
        }
    }
}
