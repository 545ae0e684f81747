//! What `spec-host status` shows: one JSON document per serving host.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::Service;
use crate::nats::subjects;

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
}

/// The current status of `service`.
pub async fn current(service: &Service) -> Status {
    // The table's size comes from the plugin; if it cannot answer right now
    // the status still goes out, with zeros.
    let table = service.host.snapshot_table().await.unwrap_or_default();
    Status {
        host_id: service.host_id.clone(),
        lattice: service.lattice.options.lattice.clone(),
        bucket: subjects::spec_bucket(&service.lattice.options.lattice),
        plugin: service.plugin_info(),
        providers: service.providers.clone(),
        links: table.iter().map(|e| e.links.len()).sum(),
        components: table.len(),
        uptime_secs: service.started.elapsed().as_secs(),
        requests_ok: service.counters.ok.load(Ordering::Relaxed),
        requests_failed: service.counters.failed.load(Ordering::Relaxed),
        swaps: service.counters.swaps.load(Ordering::Relaxed),
    }
}
