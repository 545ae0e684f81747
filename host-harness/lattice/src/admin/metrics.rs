//! The metrics of one serving host, in one `prometheus-client` registry:
//! the request metrics and the follower's lag are recorded as they happen;
//! everything else is read from the host at scrape time ([`Snapshot`]).
//! Names follow the OpenTelemetry semantic conventions where one fits
//! (`rpc.server.call.duration`), and `spec_host_*` otherwise.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::otlp::Mirror;
use super::snapshot::{
    latency_buckets, Kind, Snapshot, BUILD_INFO, CALLS, CALL_DURATION, CALL_TIME, FAULTS,
    FOLLOWER_LAG, REQUESTS, SCALARS,
};
use crate::serve::Service;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with success.
    Ok,
    /// Answered with an error.
    Error,
    /// Refused at admission ("busy"), never run.
    Busy,
}

impl Outcome {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Busy => "busy",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    rpc_system: &'static str,
    rpc_method: &'static str,
    outcome: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(latency_buckets())
}

/// A serving host's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    follower_lag: Histogram,
    mirror: Option<Mirror>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("otlp", &self.mirror.is_some())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics read over the admin endpoint; with `mirror`, also pushed
    /// over OTLP.
    pub fn new(mirror: Option<Mirror>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let follower_lag = Histogram::new(latency_buckets());
        registry.register(REQUESTS.0, REQUESTS.1, requests.clone());
        registry.register_with_unit(
            CALL_DURATION.1,
            CALL_DURATION.2,
            Unit::Seconds,
            durations.clone(),
        );
        registry.register_with_unit(
            FOLLOWER_LAG.0,
            FOLLOWER_LAG.1,
            Unit::Seconds,
            follower_lag.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            durations,
            follower_lag,
            mirror,
        }
    }

    /// Reads `service` at every scrape from now on (held weakly: the
    /// service owns these metrics).
    pub fn attach(&self, service: &Arc<Service>) {
        let collector = HostCollector {
            service: Arc::downgrade(service),
        };
        if let Some(mirror) = &self.mirror {
            mirror.observe(Arc::downgrade(service));
        }
        self.registry().register_collector(Box::new(collector));
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Registration and encoding leave the registry whole.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request of `method` and how long it took.
    pub fn request(&self, method: &'static str, outcome: Outcome, took: Duration) {
        let labels = RequestLabels {
            rpc_system: "wasmbus",
            rpc_method: method,
            outcome: outcome.as_str(),
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(mirror) = &self.mirror {
            mirror.request(method, outcome.as_str(), took);
        }
    }

    /// Records how far behind its write a spec change was applied.
    pub fn follower_lag(&self, lag: Duration) {
        self.follower_lag.observe(lag.as_secs_f64());
        if let Some(mirror) = &self.mirror {
            mirror.follower_lag(lag);
        }
    }

    /// Pushes the last OTLP export and stops exporting, if there is an
    /// export (blocks up to its timeout: call it off the async runtime).
    pub fn shutdown_export(&self) {
        if let Some(mirror) = &self.mirror {
            mirror.shutdown();
        }
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    /// The `Content-Type` of [`Metrics::encode`]'s output.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
}

#[derive(Debug)]
struct HostCollector {
    service: Weak<Service>,
}

fn unit_of(unit: Option<&str>) -> Option<Unit> {
    match unit {
        Some("bytes") => Some(Unit::Bytes),
        Some("seconds") => Some(Unit::Seconds),
        Some(other) => Some(Unit::Other(other.to_string())),
        None => None,
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for HostCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(service) = self.service.upgrade() else {
            return Ok(());
        };
        let s = Snapshot::of(&service);
        for m in SCALARS {
            let unit = unit_of(m.unit);
            let value = (m.read)(&s);
            match m.kind {
                Kind::Counter => {
                    let c = ConstCounter::new(value);
                    c.encode(e.encode_descriptor(
                        m.name,
                        m.help,
                        unit.as_ref(),
                        c.metric_type(),
                    )?)?;
                }
                Kind::Gauge => {
                    let g = ConstGauge::new(clamp(value));
                    g.encode(e.encode_descriptor(
                        m.name,
                        m.help,
                        unit.as_ref(),
                        g.metric_type(),
                    )?)?;
                }
            }
        }
        let kind = ConstCounter::new(0u64).metric_type();
        let mut faults = e.encode_descriptor(FAULTS.0, FAULTS.1, None, kind)?;
        for (class, n) in &s.faults {
            let labels = [("class", class.as_str())];
            ConstCounter::new(*n).encode(faults.encode_family(&labels)?)?;
        }
        let mut calls = e.encode_descriptor(CALLS.0, CALLS.1, None, kind)?;
        for (call, t) in &s.call_times {
            ConstCounter::new(t.calls).encode(calls.encode_family(&[("call", *call)])?)?;
        }
        let seconds = Some(&Unit::Seconds);
        let mut time = e.encode_descriptor(CALL_TIME.0, CALL_TIME.1, seconds, kind)?;
        for (call, t) in &s.call_times {
            for (part, took) in [("plugin", t.plugin), ("imports", t.imports)] {
                let labels = [("call", *call), ("part", part)];
                ConstCounter::new(took.as_secs_f64()).encode(time.encode_family(&labels)?)?;
            }
        }
        let info = ConstGauge::new(1i64);
        let mut family =
            e.encode_descriptor(BUILD_INFO.0, BUILD_INFO.1, None, info.metric_type())?;
        info.encode(family.encode_family(&s.build_labels(&service))?)?;
        Ok(())
    }
}

/// Records the follower's lag from `changes` until `stop` changes: for
/// each change applied, the time from the store taking the write to the
/// table handling it (both carried by the change, so this task's own turn
/// is not counted: measured on receipt, a lattice of a million components
/// showed p99s of 0.4–1.6 s that the follower itself never saw). Writes
/// from before this host started are its catch-up, not lag, and are left
/// out. A receiver that falls behind skips samples rather than queueing.
pub async fn record_lag(
    metrics: Arc<Metrics>,
    mut changes: tokio::sync::broadcast::Receiver<spec_nats::SpecChange>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let started = std::time::SystemTime::now();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            change = changes.recv() => match change {
                Ok(change) if change.report.is_some() && change.written >= started => {
                    let lag = change.handled.duration_since(change.written).unwrap_or_default();
                    metrics.follower_lag(lag);
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
        }
    }
}
