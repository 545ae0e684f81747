//! The admin HTTP endpoint of a serving host, with wasmCloud v1.9's probe
//! contract: `GET /livez` (200 while the process serves), `GET /readyz`
//! (200 only when connected to NATS with a plugin loaded and the table
//! caught up with the bucket, else 503 and the reason) and `GET /metrics`
//! (Prometheus text). It takes its listener and a shutdown future, so
//! tests and the binary run it the same way.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use super::Metrics;
use crate::serve::Service;

/// Scrapes and probes answered at once; more get 503 at once (each is
/// cheap, but nothing from the network may queue without bound).
const AT_ONCE: usize = 8;

#[derive(Clone)]
struct Admin {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
}

/// Whether a host should get traffic, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Connected, plugin loaded, table caught up.
    Ready,
    /// Not ready, with the reason.
    NotReady(String),
}

/// The readiness of `service` now. A plugin is loaded whenever a
/// [`Service`] exists; the rest is asked of the NATS client and the table.
pub fn readiness(service: &Service) -> Readiness {
    if service.stopping.load(Ordering::Relaxed) {
        return Readiness::NotReady("shutting down".to_string());
    }
    let state = service.lattice.client.connection_state();
    if state != async_nats::connection::State::Connected {
        return Readiness::NotReady(format!("not connected to NATS ({state})"));
    }
    match service.not_caught_up() {
        Some(reason) => Readiness::NotReady(reason),
        None => Readiness::Ready,
    }
}

/// Serves the admin endpoint on `listener` until `shutdown` resolves.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admin = Admin {
        service,
        metrics,
        permits: Arc::new(Semaphore::new(AT_ONCE)),
    };
    let app = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(admin);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn busy() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response()
}

async fn livez(State(admin): State<Admin>) -> Response {
    let Ok(_permit) = admin.permits.try_acquire() else {
        return busy();
    };
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(admin): State<Admin>) -> Response {
    let Ok(_permit) = admin.permits.try_acquire() else {
        return busy();
    };
    match readiness(&admin.service) {
        Readiness::Ready => (StatusCode::OK, "ready\n".to_string()).into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(admin): State<Admin>) -> Response {
    let Ok(_permit) = admin.permits.try_acquire() else {
        return busy();
    };
    match admin.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}
