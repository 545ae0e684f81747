//! `spec-host follow`: keep this host's table in step with the lattice until
//! SIGINT or SIGTERM.

use spec_embed::SpecHost;
use spec_nats::Lattice;

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the host");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub(crate) async fn run(host: &SpecHost, lattice: &Lattice, json: bool) -> anyhow::Result<()> {
    let mut handle = lattice.follower(host.clone()).spawn();
    handle.ready().await;
    let version = host.plugin_version();
    tracing::info!(lattice = %lattice.options.lattice, plugin = %version, "following the lattice");
    if !json {
        eprintln!(
            "following lattice {} with {version}; Ctrl-C to stop",
            lattice.options.lattice
        );
    }
    shutdown_signal().await;
    let stats = std::sync::Arc::clone(&handle.stats);
    handle.stop().await;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let summary = serde_json::json!({
        "applied": get(&stats.applied),
        "removed": get(&stats.removed),
        "skipped": get(&stats.skipped),
        "failed": get(&stats.failed),
    });
    if json {
        println!("{summary}");
    } else {
        eprintln!("stopped: {summary}");
    }
    Ok(())
}
