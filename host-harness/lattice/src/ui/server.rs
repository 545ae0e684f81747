//! The HTTP server of the view: routes, embedded assets, and the Host check.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::api::{self, Ui};
use super::view::View;
use super::watch;
use spec_embed::SpecHost;
use spec_nats::Lattice;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

fn asset(ui: &Ui, headers: &HeaderMap, body: &'static str, kind: &'static str) -> Response {
    if let Some(r) = ui.refuse_host(headers) {
        return r;
    }
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The `Host` values a server on `addr` answers to: its loopback names, or
/// any when it listens elsewhere (then the operator chose who reaches it).
fn allowed_hosts(addr: SocketAddr) -> Option<Vec<String>> {
    if !addr.ip().is_loopback() {
        return None;
    }
    let port = addr.port();
    Some(vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ])
}

/// The routes, over shared state.
pub fn router(ui: Ui) -> Router {
    Router::new()
        .route(
            "/",
            get(|s: axum::extract::State<Ui>, h: HeaderMap| async move {
                asset(&s, &h, INDEX_HTML, "text/html; charset=utf-8")
            }),
        )
        .route(
            "/app.js",
            get(|s: axum::extract::State<Ui>, h: HeaderMap| async move {
                asset(&s, &h, APP_JS, "text/javascript; charset=utf-8")
            }),
        )
        .route(
            "/app.css",
            get(|s: axum::extract::State<Ui>, h: HeaderMap| async move {
                asset(&s, &h, APP_CSS, "text/css; charset=utf-8")
            }),
        )
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/components/{*id}", get(api::component))
        .route("/api/events", get(api::events))
        .route("/api/links", post(api::put_link))
        .route("/api/links/delete", post(api::delete_link))
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .with_state(ui)
}

/// A token for a server that listens beyond loopback: 32 random bytes as
/// hex, from the kernel.
pub fn generate_token() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serves the page on `listener` until `shutdown` resolves: follows the
/// lattice with `host` (a plugin host with no providers of its own: its
/// table gives the page the plugin's import links). Every API request must
/// carry `token` when one is given; off loopback one is required.
pub async fn serve(
    lattice: Lattice,
    host: SpecHost,
    listener: tokio::net::TcpListener,
    token: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && token.is_none() {
        anyhow::bail!("listening on {addr}, beyond this machine, needs a token");
    }
    let view = Arc::new(View::new(&lattice.options.lattice));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut watchers = watch::start(&lattice, host.clone(), Arc::clone(&view), stop.clone()).await;
    let ui = Ui {
        view,
        host,
        client: lattice.client.clone(),
        link_prefix: spec_nats::subjects::ctl_link_prefix(
            &lattice.options.ctl_prefix,
            &lattice.options.lattice,
        ),
        hosts: allowed_hosts(addr),
        stop: stop.clone(),
        token,
    };
    tracing::info!(url = %format!("http://{addr}/"), lattice = %lattice.options.lattice, "serving the lattice view");
    let served = axum::serve(listener, router(ui))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Open event streams end too, or the shutdown would wait on them.
            let _ = stop_tx.send(true);
        })
        .await;
    while watchers.join_next().await.is_some() {}
    served?;
    Ok(())
}
