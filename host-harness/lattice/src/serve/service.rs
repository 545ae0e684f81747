//! The service: shared state of one `serve`, and its main loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::ctl::LinkOp;
use super::status::PluginInfo;
use super::{admission, census, config, ctl, guard, reload, status};
use crate::admin::{Metrics, Outcome};
use crate::rollout::{HostRollout, Shadow};
use spec_embed::backend::error_chain;
use spec_embed::{PluginEngine, SpecHost};
use spec_nats::{subjects, Lattice};

/// How long stopping may take once asked: the requests in flight finish
/// (each is bounded by the plugin's deadline and the store's timeouts) and
/// the background tasks end; past it the process stops anyway.
pub const STOP_LIMIT: Duration = Duration::from_secs(15);

/// How long one NATS step of stopping (an unsubscribe, the last flush) may
/// wait.
const NATS_STOP_STEP: Duration = Duration::from_secs(1);

/// Requests handled at once by default; more are answered "busy".
pub const MAX_IN_FLIGHT: usize = 256;

/// Of those, reads of the whole table (`link.get`, status) at once: a
/// `link.get` reply on a large lattice is hundreds of kilobytes, and a flood
/// of them must not starve the writes.
pub const READS_IN_FLIGHT: usize = 16;

/// Request counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful link requests.
    pub ok: AtomicU64,
    /// Failed link requests.
    pub failed: AtomicU64,
    /// Plugin swaps.
    pub swaps: AtomicU64,
    /// New builds refused at a swap (the running one kept serving).
    pub swaps_refused: AtomicU64,
    /// Requests answered "busy" (admission full).
    pub busy: AtomicU64,
    /// Link requests the plugin failed with a fault (a trap, a limit hit):
    /// what a rollout compares between builds.
    pub faults: AtomicU64,
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
    pub(super) admission: Arc<Semaphore>,
    pub(super) reads: Arc<Semaphore>,
    max_in_flight: usize,
    follow: RwLock<Option<Arc<spec_nats::follow::FollowStats>>>,
    /// What the guard of acknowledged links did.
    pub guard: Arc<guard::GuardStats>,
    link_get: std::sync::Mutex<Option<(u64, ctl::Handled)>>,
    census: RwLock<census::Census>,
    rollout: RwLock<Option<HostRollout>>,
    shadow: RwLock<Option<Arc<Shadow>>>,
    metrics: Option<Arc<Metrics>>,
    requests: AtomicU64,
    /// Set once shutdown begins (readiness turns false).
    pub stopping: AtomicBool,
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
            admission: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            reads: Arc::new(Semaphore::new(READS_IN_FLIGHT)),
            max_in_flight: MAX_IN_FLIGHT,
            follow: RwLock::new(None),
            guard: Arc::new(guard::GuardStats::default()),
            link_get: std::sync::Mutex::new(None),
            census: RwLock::new(census::Census::default()),
            rollout: RwLock::new(None),
            shadow: RwLock::new(None),
            metrics: None,
            requests: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Records request and follower metrics into `metrics` (without it,
    /// nothing is recorded).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics recorded, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Counts one request of `method` that arrived at `arrived`.
    pub(crate) fn record(&self, method: &'static str, outcome: Outcome, arrived: Instant) {
        if let Some(metrics) = &self.metrics {
            metrics.request(method, outcome, arrived.elapsed());
        }
    }

    /// The log span of one request: its id (this host's id and a count,
    /// unique in the lattice) and method, carried into the plugin calls it
    /// makes.
    fn request_span(&self, method: &'static str) -> tracing::Span {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::info_span!("request", request_id = %format_args!("{}-{n}", self.host_id), method)
    }

    /// The last census of the lattice.
    pub fn census(&self) -> census::Census {
        self.census
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_census(&self, census: census::Census) {
        *self.census.write().unwrap_or_else(|p| p.into_inner()) = census;
    }

    /// Whether `id` is a provider some spec-host (this one included)
    /// delivers link changes to from its table.
    pub fn served_by_a_spec_host(&self, id: &str) -> bool {
        self.providers.iter().any(|p| p == id)
            || self
                .census
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .spec_host_providers
                .contains(id)
    }

    /// The `link.get` reply made for table version `version`, if kept.
    pub(crate) fn cached_link_get(&self, version: u64) -> Option<ctl::Handled> {
        let cached = self.link_get.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, h)| h.clone())
    }

    /// Keeps the `link.get` reply of table version `version`.
    pub(crate) fn cache_link_get(&self, version: u64, reply: ctl::Handled) {
        *self.link_get.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, reply));
    }

    /// Handles at most `n` requests at once (default [`MAX_IN_FLIGHT`]).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        let n = n.max(1);
        self.admission = Arc::new(Semaphore::new(n));
        self.max_in_flight = n;
        self
    }

    /// Requests handled at once, at most.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.admission.available_permits()
    }

    /// The largest message the NATS server takes (a reply over it would be
    /// refused).
    pub fn max_payload(&self) -> usize {
        self.lattice.client.server_info().max_payload
    }

    /// Publishes lattice event `name` as this host.
    pub(crate) async fn event(
        &self,
        name: &str,
        data: std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        spec_nats::events::publish(
            &self.lattice.client,
            &self.lattice.options.lattice,
            &self.host_id,
            name,
            data,
        )
        .await;
    }

    /// What the follower has done, once it runs.
    pub fn follow_stats(&self) -> Option<Arc<spec_nats::follow::FollowStats>> {
        self.follow
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why this host's table is not whole and current, when it is not:
    /// lost and not yet rebuilt (degraded), still catching up with the
    /// bucket, or with changes waiting to be tried again. `None`: caught up.
    pub fn not_caught_up(&self) -> Option<String> {
        if let Some(reason) = self.host.table_degraded() {
            return Some(format!("degraded: {reason}"));
        }
        let Some(follow) = self.follow_stats() else {
            return Some("not following the spec bucket".to_string());
        };
        if !follow.caught_up.load(Ordering::Relaxed) {
            return Some("catching up with the spec bucket".to_string());
        }
        match follow.pending.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!(
                "{n} spec changes wait to be tried again (see the log)"
            )),
        }
    }

    /// Why the table must not answer reads now, after waiting up to `wait`
    /// for a catch-up in progress: it is degraded, or has not yet read the
    /// whole bucket. A change waiting to be tried again does not stop
    /// reads (the rest of the table is current; status names it).
    pub async fn table_unready(&self, wait: std::time::Duration) -> Option<String> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let reason = match self.host.table_degraded() {
                Some(reason) => {
                    return Some(format!(
                        "this host's link table is degraded ({reason}); it is being rebuilt"
                    ))
                }
                None => match self.follow_stats() {
                    Some(f) if !f.caught_up.load(Ordering::Relaxed) => {
                        "this host is still reading the spec bucket into its link table".to_string()
                    }
                    _ => return None,
                },
            };
            if tokio::time::Instant::now() >= until {
                return Some(reason);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
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

    pub(crate) fn set_plugin_info(&self, info: PluginInfo) {
        *self.plugin.write().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// Where this host stands in a lattice rollout, once its agent runs.
    pub fn rollout(&self) -> Option<HostRollout> {
        self.rollout
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_rollout(&self, state: Option<HostRollout>) {
        *self.rollout.write().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The build being shadowed, if any.
    pub fn shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_shadow(&self, shadow: Option<Arc<Shadow>>) {
        *self.shadow.write().unwrap_or_else(|p| p.into_inner()) = shadow;
    }

    /// Plugin faults so far, in requests and in table changes (each try of
    /// a change counts).
    pub fn faults(&self) -> u64 {
        // Plugin faults only: a deadline spent waiting on NATS, or a retry
        // after one, is the backend's, not the build's.
        let follower = self
            .follow_stats()
            .map_or(0, |s| s.faults.load(Ordering::Relaxed));
        self.counters.faults.load(Ordering::Relaxed) + follower
    }
}

/// How a serving host changes builds.
pub struct Swaps {
    /// The engine to compile new builds with (and its cache).
    pub engine: Arc<PluginEngine>,
    /// A plugin file to watch (hot swap on this host).
    pub watch: Option<PathBuf>,
    /// Lattice rollouts (`spec-host plugin rollout`): whose signatures this
    /// host accepts; `None`: it takes no part.
    pub rollouts: Option<crate::rollout::Trust>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    service: Arc<Service>,
    swaps: Option<Swaps>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let lattice_name = service.lattice.options.lattice.clone();
    let client = service.lattice.client.clone();
    let ctl = service.lattice.options.ctl_prefix.clone();
    let link_prefix = subjects::ctl_link_prefix(&ctl, &lattice_name);
    let mut links = client
        .queue_subscribe(format!("{link_prefix}.*"), link_prefix.clone())
        .await?;
    let config_prefix = subjects::ctl_config_prefix(&ctl, &lattice_name);
    let mut configs = client
        .queue_subscribe(format!("{config_prefix}.>"), config_prefix.clone())
        .await?;
    let mut statuses = client.subscribe(subjects::status(&lattice_name)).await?;
    let mut follower = service.lattice.follower(service.host.clone()).spawn();
    // The follower brings this host's own writes to the table too: requests
    // return once stored, and the table is written once per change.
    service.host.followed_by_bucket_watch(true);
    *service.follow.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&follower.stats));
    follower.ready().await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();
    if let Some(metrics) = service.metrics() {
        metrics.attach(&service);
        background.spawn(crate::admin::metrics::record_lag(
            Arc::clone(metrics),
            follower.changes(),
            stop_rx.clone(),
        ));
    }
    let counting = tokio::spawn(census::run(Arc::clone(&service), stop_rx.clone()));
    let guarding = guard::start(
        Arc::clone(&service),
        Arc::clone(&service.guard),
        follower.changes(),
        stop_rx.clone(),
    )
    .await;
    if let Some(swaps) = swaps {
        if let Some(path) = swaps.watch {
            background.spawn(reload::watch_plugin(
                Arc::clone(&service),
                Arc::clone(&swaps.engine),
                path,
                stop_rx.clone(),
            ));
        }
        if let Some(trust) = swaps.rollouts {
            background.spawn(crate::rollout::run(
                Arc::clone(&service),
                swaps.engine,
                trust,
                follower.changes(),
                stop_rx.clone(),
            ));
        }
    }
    tracing::info!(lattice = %lattice_name, host = %service.host_id, plugin = %service.plugin_info().version, "serving link requests");

    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(msg) = links.next() => {
                let arrived = Instant::now();
                let Some(op) = LinkOp::from_subject(&link_prefix, msg.subject.as_str()) else {
                    tracing::warn!(subject = %msg.subject, "not a link request; ignored");
                    continue;
                };
                let admitted = if op == LinkOp::Get { service.admit_read() } else { service.admit() };
                let Some(permit) = admitted else {
                    reply(&service, msg.reply, admission::busy_reply(&service)).await;
                    service.record(op.name(), Outcome::Busy, arrived);
                    continue;
                };
                let service = Arc::clone(&service);
                let span = service.request_span(op.name());
                tasks.spawn(async move {
                    let handled = ctl::handle(&service, op, &msg.payload).await;
                    drop(permit);
                    let counter = if handled.success { &service.counters.ok } else { &service.counters.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if handled.success {
                        tracing::debug!(op = op.name(), "request served");
                    } else {
                        tracing::warn!(op = op.name(), error = %handled.message, "request failed");
                    }
                    reply(&service, msg.reply, handled.reply).await;
                    let outcome = if handled.success { Outcome::Ok } else { Outcome::Error };
                    service.record(op.name(), outcome, arrived);
                }.instrument(span));
            }
            Some(msg) = configs.next() => {
                let arrived = Instant::now();
                let op = config::ConfigOp::from_subject(&config_prefix, msg.subject.as_str());
                let method = op.as_ref().map_or("config.other", config::ConfigOp::method);
                let Some(permit) = service.admit() else {
                    reply(&service, msg.reply, admission::busy_reply(&service)).await;
                    service.record(method, Outcome::Busy, arrived);
                    continue;
                };
                let service = Arc::clone(&service);
                let span = service.request_span(method);
                tasks.spawn(async move {
                    let handled = match op {
                        Some(op) => config::handle(&service, op, &msg.payload).await,
                        None => config::unsupported(),
                    };
                    drop(permit);
                    if !handled.success {
                        tracing::warn!(subject = %msg.subject, error = %handled.message, "config request failed");
                    }
                    reply(&service, msg.reply, handled.reply).await;
                    let outcome = if handled.success { Outcome::Ok } else { Outcome::Error };
                    service.record(method, outcome, arrived);
                }.instrument(span));
            }
            Some(msg) = statuses.next() => {
                let arrived = Instant::now();
                let Some(permit) = service.admit_read() else {
                    let body = serde_json::to_vec(&status::Busy::of(&service)).unwrap_or_default();
                    reply(&service, msg.reply, body).await;
                    service.record("status", Outcome::Busy, arrived);
                    continue;
                };
                let service = Arc::clone(&service);
                tasks.spawn(async move {
                    let body = serde_json::to_vec(&status::current(&service));
                    drop(permit);
                    let outcome = match body {
                        Ok(body) => {
                            reply(&service, msg.reply, body).await;
                            Outcome::Ok
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot encode the status");
                            Outcome::Error
                        }
                    };
                    service.record("status", outcome, arrived);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    service.stopping.store(true, Ordering::Relaxed);
    tracing::info!(
        in_flight = tasks.len(),
        "shutting down: no new requests; finishing those in flight"
    );
    let stopping = async {
        // Stop taking requests: unsubscribed, the queue group sends new ones
        // to the other hosts of the lattice. Each NATS step is bounded on
        // its own: with the server gone it would wait for a reconnect.
        let _ = tokio::time::timeout(NATS_STOP_STEP, links.unsubscribe()).await;
        let _ = tokio::time::timeout(NATS_STOP_STEP, configs.unsubscribe()).await;
        let _ = tokio::time::timeout(NATS_STOP_STEP, statuses.unsubscribe()).await;
        while tasks.join_next().await.is_some() {}
        let _ = stop_tx.send(true);
        while background.join_next().await.is_some() {}
        let _ = guarding.await;
        let _ = counting.await;
        follower.stop().await;
        let _ = tokio::time::timeout(NATS_STOP_STEP, client.flush()).await;
        if let Some(metrics) = service.metrics().cloned() {
            // The last export blocks up to its own timeout (5 s).
            let _ = tokio::task::spawn_blocking(move || metrics.shutdown_export()).await;
        }
    };
    // With the NATS server gone, unsubscribing and flushing wait for a
    // reconnect that may never come: stopping is bounded all the same.
    if tokio::time::timeout(STOP_LIMIT, stopping).await.is_err() {
        tracing::warn!(
            limit = ?STOP_LIMIT,
            "could not stop cleanly in time (NATS unreachable?); stopping anyway"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Sends a reply, if the request asked for one.
async fn reply(service: &Service, to: Option<async_nats::Subject>, body: impl Into<bytes::Bytes>) {
    let Some(to) = to else {
        tracing::debug!("request had no reply subject");
        return;
    };
    if let Err(e) = service.lattice.client.publish(to, body.into()).await {
        tracing::warn!(error = %error_chain(&e), "cannot send the reply");
    }
}
