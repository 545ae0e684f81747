//! `spec-host serve`: its flags, and a serving host put together from the
//! plugin, the lattice, the admin endpoint and the OTLP export.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use spec_embed::{PluginEngine, SpecHost};
use spec_lattice::admin::{Metrics, Mirror, OtlpConfig};

use super::{backends, follow, Cli};

/// The flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// This host's id in status replies (default: random).
    #[arg(long)]
    pub host_id: Option<String>,
    /// Do not take part in lattice rollouts (`spec-host plugin
    /// rollout`): this host runs its own --plugin build only.
    #[arg(long)]
    pub no_rollouts: bool,
    /// Public key (nkey) of an issuer whose signed builds and rollout
    /// records this host runs. Repeatable. With none, lattice rollouts
    /// are off unless --allow-unsigned-builds is given.
    #[arg(
        long = "trusted-issuer",
        env = "SPEC_HOST_TRUSTED_ISSUERS",
        value_delimiter = ',',
        value_name = "PUBKEY"
    )]
    pub trusted_issuers: Vec<String>,
    /// With no --trusted-issuer: run builds and rollout records nobody
    /// signed (demos and local tests; anyone who can write the lattice's
    /// buckets then chooses what this host runs).
    #[arg(long)]
    pub allow_unsigned_builds: bool,
    /// Serve GET /livez, /readyz and /metrics (Prometheus text) on this
    /// address, e.g. 127.0.0.1:9090. Off by default; it has no
    /// authentication, so keep it on loopback or a private network.
    #[arg(
        help_heading = "Operations",
        long,
        env = "SPEC_HOST_ADMIN_LISTEN",
        value_name = "ADDR"
    )]
    pub admin_listen: Option<SocketAddr>,
    /// Push metrics over OTLP/HTTP (protobuf) to this OpenTelemetry
    /// collector, e.g. http://127.0.0.1:4318 (sent to {URL}/v1/metrics).
    #[arg(
        help_heading = "Operations",
        long,
        env = "SPEC_HOST_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub otlp_endpoint: Option<String>,
    /// Between OTLP exports.
    #[arg(help_heading = "Operations", long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub otlp_interval: Duration,
}

/// What `serve` checks and takes before it connects to anything: a bad
/// flag or a taken address fails at once, without touching the lattice.
pub(super) struct Prepared {
    admin: Option<std::net::TcpListener>,
}

/// Binds the admin address and checks the OTLP endpoint.
pub(super) fn prepare(args: &ServeArgs) -> anyhow::Result<Prepared> {
    if let Some(endpoint) = &args.otlp_endpoint {
        // The exporter speaks plain HTTP: a collector on this machine or in
        // this pod forwards over TLS where it must.
        let Some(rest) = endpoint.strip_prefix("http://") else {
            anyhow::bail!(
                "--otlp-endpoint {endpoint}: expected an http:// URL of an OTLP/HTTP collector (TLS is not built in; run a local collector to forward over TLS)"
            );
        };
        // Export errors name the URL: credentials in it would reach the log
        // (and this message does not repeat it).
        if rest
            .split('/')
            .next()
            .is_some_and(|authority| authority.contains('@'))
        {
            anyhow::bail!(
                "--otlp-endpoint holds credentials, which export errors would log; give them as headers (OTEL_EXPORTER_OTLP_HEADERS) instead"
            );
        }
    }
    let admin = match args.admin_listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} for the admin endpoint"))?;
            listener.set_nonblocking(true)?;
            Some(listener)
        }
        None => None,
    };
    Ok(Prepared { admin })
}

/// Serves until SIGINT/SIGTERM.
pub(super) async fn run(
    cli: &Cli,
    args: &ServeArgs,
    prepared: Prepared,
    engine: &Arc<PluginEngine>,
    host: SpecHost,
    backends: &backends::Backends,
    digest: String,
) -> anyhow::Result<()> {
    let trust =
        spec_lattice::rollout::Trust::new(args.trusted_issuers.clone(), args.allow_unsigned_builds)
            .map_err(anyhow::Error::msg)?;
    let lattice = backends
        .lattice
        .clone()
        .context("serve needs a NATS lattice (not --store memory)")?;
    let info = spec_lattice::serve::status::PluginInfo {
        version: host.plugin_version(),
        digest,
        path: cli.plugin.as_ref().map(|p| p.display().to_string()),
    };
    let host_id = args.host_id.clone().unwrap_or_else(super::random_host_id);
    crate::logs::set_identity(&cli.lattice, &host_id);
    let providers = cli.providers.iter().map(|p| p.id.clone()).collect();
    let mut service =
        spec_lattice::serve::Service::new(host, lattice, host_id.clone(), providers, info);
    let metrics = metrics(args, &cli.lattice, &host_id)?;
    if let Some(metrics) = &metrics {
        service = service.with_metrics(Arc::clone(metrics));
    }
    let service = Arc::new(service);
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = match (prepared.admin, metrics) {
        (Some(listener), Some(metrics)) => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let bound = listener.local_addr()?;
            if !bound.ip().is_loopback() {
                tracing::warn!(%bound, "the admin endpoint is not on loopback; it has no authentication");
            }
            tracing::info!(%bound, "admin endpoint: /livez /readyz /metrics");
            Some(tokio::spawn(spec_lattice::admin::serve_admin(
                listener,
                Arc::clone(&service),
                metrics,
                async {
                    let _ = admin_stopped.await;
                },
            )))
        }
        _ => None,
    };
    let swaps = spec_lattice::serve::Swaps {
        engine: Arc::clone(engine),
        watch: cli.plugin.clone(),
        rollouts: (!args.no_rollouts).then_some(trust),
    };
    let served = spec_lattice::serve::serve(service, Some(swaps), follow::shutdown_signal()).await;
    // Probes answer until the host has stopped (readiness said "shutting
    // down" meanwhile).
    let _ = stop_admin.send(());
    if let Some(admin) = admin {
        let _ = tokio::time::timeout(Duration::from_secs(2), admin).await;
    }
    served
}

/// The metrics to record: with an admin endpoint or an OTLP export, else
/// none (nothing is recorded).
fn metrics(args: &ServeArgs, lattice: &str, host_id: &str) -> anyhow::Result<Option<Arc<Metrics>>> {
    let mirror = match &args.otlp_endpoint {
        Some(endpoint) => Some(
            Mirror::start(OtlpConfig {
                endpoint: endpoint.clone(),
                interval: args.otlp_interval,
                host_id: host_id.to_string(),
                lattice: lattice.to_string(),
            })
            .context("starting the OTLP metrics export")?,
        ),
        None => None,
    };
    if args.admin_listen.is_none() && mirror.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(Metrics::new(mirror))))
}
