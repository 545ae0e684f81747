//! One reading of a serving host's state for metrics: every gauge and
//! every counter kept elsewhere (plugin, follower, guard, NATS client),
//! read at scrape time without a plugin call or a lock held across an
//! await.

use std::sync::atomic::Ordering;

use spec_embed::FaultClass;

use crate::serve::Service;

/// What a scrape reports besides the request metrics.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Requests being handled, and the most at once.
    pub in_flight: u64,
    /// See `in_flight`.
    pub in_flight_limit: u64,
    /// Requests answered "busy".
    pub refused_busy: u64,
    /// Request instances that may run at once, and those running.
    pub pool_size: u64,
    /// See `pool_size`.
    pub pool_busy: u64,
    /// Instances thrown away after a fault and replaced.
    pub instances_replaced: u64,
    /// Plugin faults by class.
    pub faults: Vec<(FaultClass, u64)>,
    /// Where each export's calls spent their time.
    pub call_times: Vec<(&'static str, spec_embed::CallTimes)>,
    /// Table contents.
    pub components: u64,
    /// See `components`.
    pub links: u64,
    /// The table owner's plugin memory and its cap, bytes.
    pub table_memory: u64,
    /// See `table_memory`.
    pub table_memory_cap: u64,
    /// Whether the table is whole and current (`status`'s `caught_up`).
    pub caught_up: bool,
    /// Whether the table is lost and being rebuilt.
    pub degraded: bool,
    /// Writes the follower has yet to read.
    pub lag_revisions: u64,
    /// Spec changes applied (puts and removals).
    pub changes_applied: u64,
    /// Tries of changes that failed and were tried again.
    pub change_retries: u64,
    /// Changes waiting to be tried again.
    pub changes_pending: u64,
    /// Links put back by the guard, let go as superseded, and events that
    /// nothing corroborated.
    pub guard_restored: u64,
    /// See `guard_restored`.
    pub guard_superseded: u64,
    /// See `guard_restored`.
    pub guard_uncorroborated: u64,
    /// wasmCloud hosts the census sees.
    pub wasmcloud_hosts: u64,
    /// Plugin swaps done and refused.
    pub swaps: u64,
    /// See `swaps`.
    pub swaps_refused: u64,
    /// Whether the NATS connection is up, and reconnects since start.
    pub nats_connected: bool,
    /// See `nats_connected`.
    pub nats_reconnects: u64,
    /// Slow-consumer events.
    pub slow_consumers: u64,
    /// The running build.
    pub plugin_version: String,
    /// See `plugin_version`.
    pub plugin_digest: String,
    /// Rollout phase (`off` when the host takes no part) and target build.
    pub rollout_phase: String,
    /// See `rollout_phase`.
    pub rollout_target: String,
    /// Seconds since start.
    pub uptime_secs: u64,
}

impl Snapshot {
    /// Reads `service` now.
    pub fn of(service: &Service) -> Snapshot {
        let table = service.host.table_stats();
        let stats = service.host.plugin_stats();
        let (pool_size, pool_busy) = service.host.pool_load();
        let follow = service.follow_stats();
        let read = |f: fn(&spec_nats::follow::FollowStats) -> u64| follow.as_deref().map_or(0, f);
        let guard = &service.guard;
        let nats = service.lattice.client.statistics();
        let plugin = service.plugin_info();
        let rollout = service.rollout();
        Snapshot {
            in_flight: service.in_flight() as u64,
            in_flight_limit: service.max_in_flight() as u64,
            refused_busy: service.counters.busy.load(Ordering::Relaxed),
            pool_size: pool_size as u64,
            pool_busy: pool_busy as u64,
            instances_replaced: stats.replaced(),
            faults: FaultClass::ALL
                .iter()
                .map(|c| (*c, stats.faults(*c)))
                .collect(),
            call_times: stats.call_times(),
            components: table.components as u64,
            links: table.links as u64,
            table_memory: table.plugin_memory as u64,
            table_memory_cap: table.memory_cap as u64,
            caught_up: service.not_caught_up().is_none(),
            degraded: service.host.table_degraded().is_some(),
            lag_revisions: read(|f| f.behind.load(Ordering::Relaxed)),
            changes_applied: read(|f| {
                f.applied.load(Ordering::Relaxed) + f.removed.load(Ordering::Relaxed)
            }),
            change_retries: read(|f| f.retried.load(Ordering::Relaxed)),
            changes_pending: read(|f| f.pending.load(Ordering::Relaxed)),
            guard_restored: guard.restored.load(Ordering::Relaxed),
            guard_superseded: guard.superseded.load(Ordering::Relaxed),
            guard_uncorroborated: guard.uncorroborated.load(Ordering::Relaxed),
            wasmcloud_hosts: service.census().wasmcloud_hosts as u64,
            swaps: service.counters.swaps.load(Ordering::Relaxed),
            swaps_refused: service.counters.swaps_refused.load(Ordering::Relaxed),
            nats_connected: service.lattice.client.connection_state()
                == async_nats::connection::State::Connected,
            // The first connect is counted too.
            nats_reconnects: nats.connects.load(Ordering::Relaxed).saturating_sub(1),
            slow_consumers: service.lattice.slow_consumers(),
            plugin_version: plugin.version,
            plugin_digest: plugin.digest,
            rollout_phase: rollout
                .as_ref()
                .and_then(|r| serde_json::to_value(r.phase).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "off".to_string()),
            rollout_target: rollout.and_then(|r| r.target).unwrap_or_default(),
            uptime_secs: service.started.elapsed().as_secs(),
        }
    }
}

/// Whether a scalar only grows, or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (a Prometheus counter, an OpenTelemetry observable
    /// counter).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One number of the [`Snapshot`] as a metric: the one list both the
/// Prometheus endpoint and the OTLP export read.
#[derive(Clone, Copy, Debug)]
pub struct Scalar {
    /// Its name (Prometheus adds `_total` to counters, and the unit).
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// `bytes` or `seconds`, if any.
    pub unit: Option<&'static str>,
    /// Counter or gauge.
    pub kind: Kind,
    /// Its value in a snapshot.
    pub read: fn(&Snapshot) -> u64,
}

const fn scalar(
    name: &'static str,
    kind: Kind,
    unit: Option<&'static str>,
    help: &'static str,
    read: fn(&Snapshot) -> u64,
) -> Scalar {
    Scalar {
        name,
        help,
        unit,
        kind,
        read,
    }
}

use Kind::{Counter, Gauge};

/// Every scalar metric read at scrape time.
pub const SCALARS: &[Scalar] = &[
    scalar(
        "spec_host_admission_in_flight",
        Gauge,
        None,
        "Requests being handled now",
        |s| s.in_flight,
    ),
    scalar(
        "spec_host_admission_limit",
        Gauge,
        None,
        "Requests handled at once, at most; more are answered busy",
        |s| s.in_flight_limit,
    ),
    scalar(
        "spec_host_admission_refused",
        Counter,
        None,
        "Requests answered busy because admission was full",
        |s| s.refused_busy,
    ),
    scalar(
        "spec_host_plugin_pool_instances",
        Gauge,
        None,
        "Plugin request instances that may run at once",
        |s| s.pool_size,
    ),
    scalar(
        "spec_host_plugin_pool_busy",
        Gauge,
        None,
        "Plugin request instances running a call now",
        |s| s.pool_busy,
    ),
    scalar(
        "spec_host_plugin_instances_replaced",
        Counter,
        None,
        "Plugin instances thrown away after a fault (or an abandoned call) and replaced",
        |s| s.instances_replaced,
    ),
    scalar(
        "spec_host_table_components",
        Gauge,
        None,
        "Components with links in this host's table",
        |s| s.components,
    ),
    scalar(
        "spec_host_table_links",
        Gauge,
        None,
        "Links in this host's table",
        |s| s.links,
    ),
    scalar(
        "spec_host_table_memory",
        Gauge,
        Some("bytes"),
        "The table owner's plugin memory",
        |s| s.table_memory,
    ),
    scalar(
        "spec_host_table_memory_limit",
        Gauge,
        Some("bytes"),
        "The most the table owner's memory may grow to now",
        |s| s.table_memory_cap,
    ),
    scalar(
        "spec_host_table_caught_up",
        Gauge,
        None,
        "1 when the table is whole and current with the bucket (what /readyz needs)",
        |s| u64::from(s.caught_up),
    ),
    scalar(
        "spec_host_table_degraded",
        Gauge,
        None,
        "1 while the table is lost and being rebuilt from the store",
        |s| u64::from(s.degraded),
    ),
    scalar(
        "spec_host_follower_lag_revisions",
        Gauge,
        None,
        "Writes to the spec bucket this host had yet to read at its last read",
        |s| s.lag_revisions,
    ),
    scalar(
        "spec_host_follower_changes_applied",
        Counter,
        None,
        "Spec changes applied to the table (puts and removals)",
        |s| s.changes_applied,
    ),
    scalar(
        "spec_host_follower_retries",
        Counter,
        None,
        "Tries of spec changes that failed and were tried again",
        |s| s.change_retries,
    ),
    scalar(
        "spec_host_follower_changes_pending",
        Gauge,
        None,
        "Spec changes waiting to be tried again",
        |s| s.changes_pending,
    ),
    scalar(
        "spec_host_guard_repairs",
        Counter,
        None,
        "Acknowledged links put back after a blind write dropped them",
        |s| s.guard_restored,
    ),
    scalar(
        "spec_host_guard_superseded",
        Counter,
        None,
        "Acknowledged links let go because the link rules refuse them now",
        |s| s.guard_superseded,
    ),
    scalar(
        "spec_host_guard_uncorroborated",
        Counter,
        None,
        "linkdef_set events that nothing backed: ignored",
        |s| s.guard_uncorroborated,
    ),
    scalar(
        "spec_host_wasmcloud_hosts",
        Gauge,
        None,
        "wasmCloud hosts the last census saw",
        |s| s.wasmcloud_hosts,
    ),
    scalar(
        "spec_host_plugin_swaps",
        Counter,
        None,
        "Plugin swaps done",
        |s| s.swaps,
    ),
    scalar(
        "spec_host_plugin_swaps_refused",
        Counter,
        None,
        "New builds refused at a swap",
        |s| s.swaps_refused,
    ),
    scalar(
        "spec_host_nats_connected",
        Gauge,
        None,
        "1 while the NATS connection is up",
        |s| u64::from(s.nats_connected),
    ),
    scalar(
        "spec_host_nats_reconnects",
        Counter,
        None,
        "NATS reconnects since start",
        |s| s.nats_reconnects,
    ),
    scalar(
        "spec_host_nats_slow_consumers",
        Counter,
        None,
        "Messages NATS dropped because this host read too slowly",
        |s| s.slow_consumers,
    ),
    scalar(
        "spec_host_uptime",
        Gauge,
        Some("seconds"),
        "Time since this host started",
        |s| s.uptime_secs,
    ),
];

/// The request counter (labelled by method and outcome).
pub const REQUESTS: (&str, &str) = (
    "spec_host_requests",
    "Control requests answered (link, config, status), by method and outcome",
);

/// The request latency histogram: OpenTelemetry's
/// `rpc.server.call.duration`, which Prometheus spells with underscores.
pub const CALL_DURATION: (&str, &str, &str) = (
    "rpc.server.call.duration",
    "rpc_server_call_duration",
    "Time from a control request's arrival to its reply being sent",
);

/// The follower's lag histogram.
pub const FOLLOWER_LAG: (&str, &str) = (
    "spec_host_follower_lag",
    "Time from a spec write (the store's clock) to this host's table applying it",
);

/// Bucket bounds of both latency histograms, seconds: 100 µs to ~13 s,
/// doubling.
pub fn latency_buckets() -> Vec<f64> {
    (0..18).map(|i| 0.0001 * f64::from(1u32 << i)).collect()
}

/// The plugin faults metric (labelled by class).
pub const FAULTS: (&str, &str) = (
    "spec_host_plugin_faults",
    "Plugin calls that faulted (requests and table changes), by class",
);

/// Plugin call time by export (`call`) and `part`: the plugin's own run
/// (boundary crossings included) or the host's imports.
pub const CALL_TIME: (&str, &str) = (
    "spec_host_plugin_call",
    "Time plugin calls took, by export and part: plugin (its own run, crossing the boundary included) or imports (store round trips, deliveries)",
);

/// Plugin calls that ended, by export (`call`).
pub const CALLS: (&str, &str) = (
    "spec_host_plugin_calls",
    "Plugin calls that ended (answered, failed or faulted), by export",
);

/// The build and rollout info metric (always 1, the facts in labels).
pub const BUILD_INFO: (&str, &str) = (
    "spec_host_build_info",
    "The running plugin build and where this host stands in a lattice rollout (always 1)",
);

impl Snapshot {
    /// The labels of [`BUILD_INFO`].
    pub fn build_labels<'a>(&'a self, service: &'a Service) -> [(&'static str, &'a str); 6] {
        [
            ("host_id", service.host_id.as_str()),
            ("lattice", service.lattice.options.lattice.as_str()),
            ("plugin_version", self.plugin_version.as_str()),
            ("plugin_digest", self.plugin_digest.as_str()),
            ("rollout_phase", self.rollout_phase.as_str()),
            ("rollout_target", self.rollout_target.as_str()),
        ]
    }
}
