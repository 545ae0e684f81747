//! `spec-host ui`: the lattice in the browser (see [`spec_lattice::ui`]).

use std::net::SocketAddr;

use anyhow::Context;

use super::follow::shutdown_signal;
use spec_embed::SpecHost;
use spec_nats::Lattice;

/// Serves the page on `listen` until interrupted. Off loopback without a
/// `token`, one is generated and printed once, in the URL to open.
pub(crate) async fn run(
    host: &SpecHost,
    lattice: &Lattice,
    listen: SocketAddr,
    token: Option<String>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let (token, shown) = match token {
        Some(t) => (Some(t), String::new()),
        None if !addr.ip().is_loopback() => {
            let t = spec_lattice::ui::generate_token()?;
            // Printed this once, on stdout only (never logged).
            let shown = format!("?token={t}");
            (Some(t), shown)
        }
        None => (None, String::new()),
    };
    // The line a user (or a script) looks for.
    println!(
        "spec-host ui: http://{addr}/{shown} (lattice {})",
        lattice.options.lattice
    );
    spec_lattice::ui::serve(
        lattice.clone(),
        host.clone(),
        listener,
        token,
        shutdown_signal(),
    )
    .await
}
