//! The metrics pushed over OTLP/HTTP (protobuf) to an OpenTelemetry
//! collector, as wasmCloud hosts export theirs: the same request and lag
//! measurements as the Prometheus endpoint, recorded on OpenTelemetry
//! instruments as they happen, and the same [`SCALARS`] observed at each
//! export. The SDK exports from its own thread every interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use opentelemetry::metrics::{
    AsyncInstrumentBuilder, Counter, Histogram, Meter, MeterProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;

use super::snapshot::{
    latency_buckets, Kind, Scalar, Snapshot, BUILD_INFO, CALLS, CALL_DURATION, CALL_TIME, FAULTS,
    FOLLOWER_LAG, REQUESTS, SCALARS,
};
use crate::serve::Service;

/// Where and how often to push.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`);
    /// metrics go to `{endpoint}/v1/metrics`.
    pub endpoint: String,
    /// Between exports.
    pub interval: Duration,
    /// Resource attributes: this host's id and lattice.
    pub host_id: String,
    /// See `host_id`.
    pub lattice: String,
}

/// OpenTelemetry instruments beside the Prometheus registry.
pub struct Mirror {
    provider: SdkMeterProvider,
    meter: Meter,
    requests: Counter<u64>,
    durations: Histogram<f64>,
    lag: Histogram<f64>,
    observing: AtomicBool,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror").finish_non_exhaustive()
    }
}

impl Mirror {
    /// Starts pushing to `config.endpoint`. The HTTP client blocks, so it
    /// is made (and later dropped) off the async runtime.
    pub fn start(config: OtlpConfig) -> anyhow::Result<Mirror> {
        let url = format!("{}/v1/metrics", config.endpoint.trim_end_matches('/'));
        let made = std::thread::spawn(move || -> anyhow::Result<SdkMeterProvider> {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url)
                .with_timeout(Duration::from_secs(5))
                .build()?;
            let reader = PeriodicReader::builder(Reported::new(exporter))
                .with_interval(config.interval)
                .build();
            let resource = Resource::builder()
                .with_service_name("spec-host")
                .with_attributes([
                    KeyValue::new("service.instance.id", config.host_id),
                    KeyValue::new("wasmcloud.lattice", config.lattice),
                    KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                ])
                .build();
            Ok(SdkMeterProvider::builder()
                .with_reader(reader)
                .with_resource(resource)
                .build())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the OTLP exporter's setup panicked"))??;
        let meter = made.meter("spec-host");
        let requests = meter
            .u64_counter(REQUESTS.0)
            .with_description(REQUESTS.1)
            .build();
        let durations = meter
            .f64_histogram(CALL_DURATION.0)
            .with_unit("s")
            .with_description(CALL_DURATION.2)
            .with_boundaries(latency_buckets())
            .build();
        let lag = meter
            .f64_histogram(FOLLOWER_LAG.0)
            .with_unit("s")
            .with_description(FOLLOWER_LAG.1)
            .with_boundaries(latency_buckets())
            .build();
        Ok(Mirror {
            provider: made,
            meter,
            requests,
            durations,
            lag,
            observing: AtomicBool::new(false),
        })
    }

    pub(super) fn request(&self, method: &'static str, outcome: &'static str, took: Duration) {
        let attributes = [
            KeyValue::new("rpc.system", "wasmbus"),
            KeyValue::new("rpc.method", method),
            KeyValue::new("outcome", outcome),
        ];
        self.requests.add(1, &attributes);
        self.durations.record(took.as_secs_f64(), &attributes);
    }

    pub(super) fn follower_lag(&self, lag: Duration) {
        self.lag.record(lag.as_secs_f64(), &[]);
    }

    /// Observes `service`'s [`SCALARS`], faults and build at every export
    /// (once: later calls do nothing).
    pub(super) fn observe(&self, service: Weak<Service>) {
        if self.observing.swap(true, Ordering::Relaxed) {
            return;
        }
        // One reading of the host per export, shared by every callback.
        let reading = Arc::new(Reading {
            service,
            last: Mutex::new(None),
        });
        for m in SCALARS {
            let read = m.read;
            let reading = Arc::clone(&reading);
            let value = move || reading.get().map(|(_, s)| read(&s));
            match m.kind {
                Kind::Counter => {
                    described(self.meter.u64_observable_counter(m.name), m, value).build();
                }
                Kind::Gauge => {
                    described(self.meter.u64_observable_gauge(m.name), m, value).build();
                }
            }
        }
        let by_class = Arc::clone(&reading);
        self.meter
            .u64_observable_counter(FAULTS.0)
            .with_description(FAULTS.1)
            .with_callback(move |o| {
                let Some((_, snapshot)) = by_class.get() else {
                    return;
                };
                for (class, n) in &snapshot.faults {
                    o.observe(*n, &[KeyValue::new("class", class.as_str())]);
                }
            })
            .build();
        let by_call = Arc::clone(&reading);
        self.meter
            .u64_observable_counter(CALLS.0)
            .with_description(CALLS.1)
            .with_callback(move |o| {
                let Some((_, snapshot)) = by_call.get() else {
                    return;
                };
                for (call, t) in &snapshot.call_times {
                    o.observe(t.calls, &[KeyValue::new("call", *call)]);
                }
            })
            .build();
        let by_part = Arc::clone(&reading);
        self.meter
            .f64_observable_counter(CALL_TIME.0)
            .with_unit("s")
            .with_description(CALL_TIME.1)
            .with_callback(move |o| {
                let Some((_, snapshot)) = by_part.get() else {
                    return;
                };
                for (call, t) in &snapshot.call_times {
                    for (part, took) in [("plugin", t.plugin), ("imports", t.imports)] {
                        let labels = [KeyValue::new("call", *call), KeyValue::new("part", part)];
                        o.observe(took.as_secs_f64(), &labels);
                    }
                }
            })
            .build();
        self.meter
            .u64_observable_gauge(BUILD_INFO.0)
            .with_description(BUILD_INFO.1)
            .with_callback(move |o| {
                let Some((service, snapshot)) = reading.get() else {
                    return;
                };
                let labels: Vec<KeyValue> = snapshot
                    .build_labels(&service)
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, v.to_string()))
                    .collect();
                o.observe(1, &labels);
            })
            .build();
    }

    /// Pushes what is recorded now and stops exporting (blocks up to the
    /// export timeout: call it off the async runtime).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "the last OTLP export failed");
        }
    }
}

/// The host read for the observable instruments: one [`Snapshot`] serves
/// every callback of an export (they run one after another).
struct Reading {
    service: Weak<Service>,
    last: Mutex<Option<(std::time::Instant, Arc<Snapshot>)>>,
}

impl Reading {
    /// The service and a snapshot at most a second old; `None` once the
    /// service is gone.
    fn get(&self) -> Option<(Arc<Service>, Arc<Snapshot>)> {
        let service = self.service.upgrade()?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = match &*last {
            Some((at, s)) if at.elapsed() < Duration::from_secs(1) => Arc::clone(s),
            _ => {
                let s = Arc::new(Snapshot::of(&service));
                *last = Some((std::time::Instant::now(), Arc::clone(&s)));
                s
            }
        };
        Some((service, snapshot))
    }
}

/// An observable instrument of `m`, reporting `value()` at each export.
fn described<'a, I>(
    builder: AsyncInstrumentBuilder<'a, I, u64>,
    m: &Scalar,
    value: impl Fn() -> Option<u64> + Send + Sync + 'static,
) -> AsyncInstrumentBuilder<'a, I, u64> {
    let builder = builder.with_description(m.help);
    let builder = match m.unit {
        Some(unit) => builder.with_unit(unit_symbol(unit)),
        None => builder,
    };
    builder.with_callback(move |o| {
        if let Some(v) = value() {
            o.observe(v, &[]);
        }
    })
}

/// The OTLP exporter, with its failures said at WARN (the SDK logs them at
/// debug only): the first failure, then at most one line a minute while
/// they go on, and one line when exports work again.
struct Reported<E> {
    inner: E,
    failing: Mutex<Option<std::time::Instant>>,
}

impl<E> Reported<E> {
    fn new(inner: E) -> Self {
        Reported {
            inner,
            failing: Mutex::new(None),
        }
    }

    fn note(&self, result: &opentelemetry_sdk::error::OTelSdkResult) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match (result, *failing) {
            (Ok(()), Some(_)) => {
                *failing = None;
                tracing::info!("OTLP metrics export works again");
            }
            (Err(e), None) => {
                *failing = Some(std::time::Instant::now());
                tracing::warn!(error = %e, "OTLP metrics export failed; will keep trying");
            }
            (Err(e), Some(since)) if since.elapsed() >= Duration::from_secs(60) => {
                *failing = Some(std::time::Instant::now());
                tracing::warn!(error = %e, "OTLP metrics export still failing");
            }
            _ => {}
        }
    }
}

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for Reported<E>
{
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.note(&result);
        result
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}

fn unit_symbol(unit: &str) -> &'static str {
    match unit {
        "bytes" => "By",
        "seconds" => "s",
        _ => "1",
    }
}
