//! `spec-host serve`: a lattice service that answers wasmCloud's link
//! control requests with the plugin, follows the spec bucket, delivers link
//! changes to its local providers, reports its status and swaps its plugin
//! live.
//!
//! [`serve`] takes an open lattice, a running [`SpecHost`] and a shutdown
//! future, so tests drive it exactly as the binary does. On shutdown it
//! stops taking requests, lets the ones in flight finish, stops the
//! follower and returns.

pub mod ctl;
pub mod reload;
pub mod status;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::backend::error_chain;
use crate::nats::{subjects, Lattice};
use crate::plugin::{PluginEngine, SpecHost};
use ctl::LinkOp;
use status::PluginInfo;

/// Requests handled at once; more wait (NATS buffers them).
const MAX_IN_FLIGHT: usize = 256;

/// Request counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful link requests.
    pub ok: AtomicU64,
    /// Failed link requests.
    pub failed: AtomicU64,
    /// Plugin swaps.
    pub swaps: AtomicU64,
}

/// A serving host's shared state.
pub struct Service {
    /// The plugin.
    pub host: SpecHost,
    /// The lattice.
    pub lattice: Lattice,
    /// This host's id (status replies).
    pub host_id: String,
    /// Local provider ids.
    pub providers: Vec<String>,
    /// When it started.
    pub started: Instant,
    /// What it has answered.
    pub counters: Counters,
    plugin: RwLock<PluginInfo>,
}

impl Service {
    /// A service over a running plugin and an open lattice.
    pub fn new(
        host: SpecHost,
        lattice: Lattice,
        host_id: String,
        providers: Vec<String>,
        plugin: PluginInfo,
    ) -> Self {
        Service {
            host,
            lattice,
            host_id,
            providers,
            started: Instant::now(),
            counters: Counters::default(),
            plugin: RwLock::new(plugin),
        }
    }

    /// The plugin running now.
    pub fn plugin_info(&self) -> PluginInfo {
        // Only whole values are ever written: a poisoned lock still holds one.
        self.plugin
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_plugin_info(&self, info: PluginInfo) {
        *self.plugin.write().unwrap_or_else(|p| p.into_inner()) = info;
    }
}

/// Hot swap settings.
pub struct Reload {
    /// The engine to compile new builds with (and its cache).
    pub engine: Arc<PluginEngine>,
    /// The plugin file to watch.
    pub path: PathBuf,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    service: Arc<Service>,
    reload: Option<Reload>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let lattice_name = service.lattice.options.lattice.clone();
    let client = service.lattice.client.clone();
    let link_prefix = subjects::ctl_link_prefix(&lattice_name);
    let mut links = client
        .queue_subscribe(format!("{link_prefix}.*"), link_prefix.clone())
        .await?;
    let mut statuses = client.subscribe(subjects::status(&lattice_name)).await?;
    let mut follower = service.lattice.follower(service.host.clone()).spawn();
    follower.ready().await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let watcher = reload.map(|r| {
        tokio::spawn(reload::watch_plugin(
            Arc::clone(&service),
            r.engine,
            r.path,
            stop_rx,
        ))
    });
    tracing::info!(lattice = %lattice_name, host = %service.host_id, plugin = %service.plugin_info().version, "serving link requests");

    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(msg) = links.next() => {
                let Some(op) = LinkOp::from_subject(&lattice_name, msg.subject.as_str()) else {
                    tracing::warn!(subject = %msg.subject, "not a link request; ignored");
                    continue;
                };
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
                let service = Arc::clone(&service);
                tasks.spawn(async move {
                    let handled = ctl::handle(&service, op, &msg.payload).await;
                    let counter = if handled.success { &service.counters.ok } else { &service.counters.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if handled.success {
                        tracing::info!(op = op.name(), "request served");
                    } else {
                        tracing::warn!(op = op.name(), error = %handled.message, "request failed");
                    }
                    match msg.reply {
                        Some(reply) => {
                            if let Err(e) = service.lattice.client.publish(reply, handled.reply.into()).await {
                                tracing::warn!(error = %error_chain(&e), "cannot send the reply");
                            }
                        }
                        None => tracing::debug!(op = op.name(), "request had no reply subject"),
                    }
                    drop(permit);
                });
            }
            Some(msg) = statuses.next() => {
                let service = Arc::clone(&service);
                tasks.spawn(async move {
                    let status = status::current(&service).await;
                    if let (Some(reply), Ok(body)) = (msg.reply, serde_json::to_vec(&status)) {
                        let _ = service.lattice.client.publish(reply, body.into()).await;
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tracing::info!(
        in_flight = tasks.len(),
        "shutting down: no new requests; finishing those in flight"
    );
    // Stop taking requests: unsubscribed, the queue group sends new ones to
    // the other hosts of the lattice.
    let _ = links.unsubscribe().await;
    let _ = statuses.unsubscribe().await;
    while tasks.join_next().await.is_some() {}
    let _ = stop_tx.send(true);
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    follower.stop().await;
    let _ = client.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// Asks every serving host of `lattice` for its status, collecting replies
/// for `wait`.
pub async fn collect_status(
    client: &async_nats::Client,
    lattice: &str,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<status::Status>> {
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
        match serde_json::from_slice(&msg.payload) {
            Ok(status) => found.push(status),
            Err(e) => tracing::warn!(error = %e, "undecodable status reply"),
        }
    }
    Ok(found)
}
