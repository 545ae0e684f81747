//! `spec-host ui`: the lattice in the browser (see [`spec_lattice::ui`]).

use std::net::SocketAddr;

use anyhow::Context;

use super::follow::shutdown_signal;
use spec_embed::SpecHost;
use spec_nats::Lattice;

/// Serves the page on `listen` until interrupted.
pub(crate) async fn run(
    host: &SpecHost,
    lattice: &Lattice,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    // The line a user (or a script) looks for.
    println!(
        "spec-host ui: http://{addr}/ (lattice {})",
        lattice.options.lattice
    );
    spec_lattice::ui::serve(lattice.clone(), host.clone(), listener, shutdown_signal()).await
}
