//! What `spec-host status` shows: one JSON document per serving host.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use futures::StreamExt;

use super::Service;
use spec_nats::subjects;

/// The running plugin.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its `plugin-version` string.
    pub version: String,
    /// SHA-256 of its component bytes.
    pub digest: String,
    /// The file it came from; `None` for the bundled build.
    pub path: Option<String>,
}

/// A serving host's status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// This host's id.
    pub host_id: String,
    /// Lattice served.
    pub lattice: String,
    /// Spec bucket.
    pub bucket: String,
    /// The plugin running now.
    pub plugin: PluginInfo,
    /// Local provider ids.
    pub providers: Vec<String>,
    /// Links in the host table.
    pub links: usize,
    /// Ids in the host table.
    pub components: usize,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Link requests answered with success.
    pub requests_ok: u64,
    /// Link requests answered with an error.
    pub requests_failed: u64,
    /// Plugin swaps done.
    pub swaps: u64,
    /// New builds refused at a swap (the running one kept serving).
    #[serde(default)]
    pub swaps_refused: u64,
    /// Requests answered "busy" because admission was full.
    #[serde(default)]
    pub busy: u64,
    /// Requests being handled now.
    #[serde(default)]
    pub in_flight: usize,
    /// Plugin instances serving requests: how many may run at once.
    #[serde(default)]
    pub pool_size: usize,
    /// Spec changes whose apply failed with a plugin fault and wait to be
    /// tried again.
    #[serde(default)]
    pub pending_changes: u64,
    /// Whether the table is whole and current: it holds every spec of the
    /// bucket up to the revision followed (never lost and left partial), and
    /// no change waits to be tried again.
    #[serde(default)]
    pub caught_up: bool,
    /// Why `caught_up` is false: degraded (with the reason), catching up,
    /// or changes waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_caught_up: Option<String>,
    /// The table owner's plugin memory, bytes, and the most it may grow to
    /// now (room for the table plus one call's worth; wasm32 allows 4 GiB).
    #[serde(default)]
    pub table_memory: usize,
    /// See `table_memory`.
    #[serde(default)]
    pub table_memory_cap: usize,
    /// Messages NATS dropped because this host read a subscription too
    /// slowly (slow-consumer events); 0 in a healthy host.
    #[serde(default)]
    pub slow_consumers: u64,
    /// Acknowledged links put back after a blind write (a v1.9 host's)
    /// dropped them.
    #[serde(default)]
    pub links_restored: u64,
    /// wasmCloud hosts the last census saw (answering `host.ping`): while
    /// there are any, the guard of acknowledged links acts.
    #[serde(default)]
    pub wasmcloud_hosts: usize,
    /// Plugin faults (traps, limit hits) in requests and table changes.
    #[serde(default)]
    pub faults: u64,
    /// Where this host stands in a lattice rollout, when it takes part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::HostRollout>,
}

/// What a host answers a status request with when it is too busy to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Busy {
    /// This host's id.
    pub host_id: String,
    /// Always true.
    pub busy: bool,
}

impl Busy {
    /// The busy answer of `service`.
    pub fn of(service: &Service) -> Busy {
        Busy {
            host_id: service.host_id.clone(),
            busy: true,
        }
    }
}

/// A status reply: a status, or "busy".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// Too busy to answer.
    Busy(Busy),
    /// The status.
    Status(Box<Status>),
}

/// The current status of `service`, from counters and the table's mirror
/// (no plugin call, nothing that waits).
pub fn current(service: &Service) -> Status {
    let table = service.host.table_stats();
    let follow = service.follow_stats();
    let pending = follow
        .as_ref()
        .map_or(0, |s| s.pending.load(Ordering::Relaxed));
    // Caught up: the table is whole, the first read of the bucket is
    // through, and no change waits to be tried again.
    let not_caught_up = service.not_caught_up();
    Status {
        host_id: service.host_id.clone(),
        lattice: service.lattice.options.lattice.clone(),
        bucket: subjects::spec_bucket(&service.lattice.options.lattice),
        plugin: service.plugin_info(),
        providers: service.providers.clone(),
        links: table.links,
        components: table.components,
        uptime_secs: service.started.elapsed().as_secs(),
        requests_ok: service.counters.ok.load(Ordering::Relaxed),
        requests_failed: service.counters.failed.load(Ordering::Relaxed),
        swaps: service.counters.swaps.load(Ordering::Relaxed),
        swaps_refused: service.counters.swaps_refused.load(Ordering::Relaxed),
        busy: service.counters.busy.load(Ordering::Relaxed),
        in_flight: service.in_flight(),
        pool_size: service.host.pool_load().0,
        pending_changes: pending,
        caught_up: not_caught_up.is_none(),
        not_caught_up,
        table_memory: table.plugin_memory,
        table_memory_cap: table.memory_cap,
        slow_consumers: service.lattice.slow_consumers(),
        links_restored: service.guard.restored.load(Ordering::Relaxed),
        wasmcloud_hosts: service.census().wasmcloud_hosts,
        faults: service.faults(),
        rollout: service.rollout().map(|mut r| {
            // The live shadow's findings, not the last recorded ones.
            if let Some(shadow) = service.shadow() {
                r.shadow = Some(shadow.report());
            }
            r
        }),
    }
}

/// Asks every serving host of `lattice` for its status, collecting replies
/// for `wait`; a host too busy to report is logged and left out.
pub async fn collect_status(
    client: &async_nats::Client,
    lattice: &str,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<Status>> {
    let replies = collect_replies(client, lattice, wait).await?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            Reply::Status(status) => Some(*status),
            Reply::Busy(busy) => {
                tracing::warn!(host = %busy.host_id, "host too busy to report its status");
                None
            }
        })
        .collect())
}

/// Every reply to a status request within `wait`: statuses, and "busy"
/// from hosts too loaded to report (they are there all the same).
pub async fn collect_replies(
    client: &async_nats::Client,
    lattice: &str,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<Reply>> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subjects::status(lattice), inbox, bytes::Bytes::new())
        .await?;
    client.flush().await?;
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        // A status message ("no responders") is the server's, not a host's.
        if msg.status.is_some() {
            continue;
        }
        match serde_json::from_slice::<Reply>(&msg.payload) {
            Ok(reply) => found.push(reply),
            Err(e) => tracing::warn!(error = %e, "undecodable status reply"),
        }
    }
    Ok(found)
}
