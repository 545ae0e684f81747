//! Hot swap: a new plugin build replaces the running one without a restart.
//!
//! The `--plugin` file is watched (size and modification time, checked twice
//! a second) and SIGHUP asks for a check at once. A changed file is read and
//! compiled on a blocking thread, off the request path (or taken from the
//! compiled-component cache), then handed to [`SpecHost::swap`], which
//! instantiates it, restores the link table into it and only then switches;
//! requests queued before the switch finish on the old instance. A build that
//! fails to compile, link, instantiate or restore is refused with its reason
//! logged, and the old one keeps serving.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::status::PluginInfo;
use super::Service;
use spec_embed::backend::error_chain;
use spec_embed::PluginEngine;

/// How often the plugin file is checked for changes.
const POLL: Duration = Duration::from_millis(500);

fn fingerprint(path: &PathBuf) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Outcome of one reload attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// Swapped to this plugin.
    Swapped(PluginInfo),
    /// The file holds the plugin already running.
    Unchanged,
}

/// Reads, compiles and swaps in the plugin at `path` if it differs from the
/// running one.
pub async fn reload_once(
    service: &Service,
    engine: &Arc<PluginEngine>,
    path: &PathBuf,
) -> anyhow::Result<Reloaded> {
    let bytes = tokio::fs::read(path).await?;
    let digest = spec_embed::digest_of(&bytes);
    if digest == service.plugin_info().digest {
        return Ok(Reloaded::Unchanged);
    }
    let compile_engine = Arc::clone(engine);
    let loaded = tokio::task::spawn_blocking(move || compile_engine.load_bytes(&bytes)).await??;
    let version = service.host.swap(loaded).await?;
    let info = PluginInfo {
        version,
        digest,
        path: Some(path.display().to_string()),
    };
    service.set_plugin_info(info.clone());
    service.counters.swaps.fetch_add(1, Ordering::Relaxed);
    Ok(Reloaded::Swapped(info))
}

async fn attempt(service: &Service, engine: &Arc<PluginEngine>, path: &PathBuf) {
    let before = service.plugin_info();
    match reload_once(service, engine, path).await {
        Ok(Reloaded::Swapped(info)) => tracing::info!(
            from = %before.version, from_digest = %before.digest,
            to = %info.version, to_digest = %info.digest,
            "plugin swapped"
        ),
        Ok(Reloaded::Unchanged) => tracing::debug!("plugin file unchanged"),
        Err(e) => {
            service
                .counters
                .swaps_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                path = %path.display(),
                error = %error_chain(e.as_ref()),
                running = %before.version,
                "new plugin refused; the running one keeps serving"
            )
        }
    }
}

/// Watches `path` (and SIGHUP) until `stop` turns true.
pub async fn watch_plugin(
    service: Arc<Service>,
    engine: Arc<PluginEngine>,
    path: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = fingerprint(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup => {
                tracing::info!("SIGHUP: checking the plugin file");
                seen = fingerprint(&path);
                attempt(&service, &engine, &path).await;
            }
            _ = tokio::time::sleep(POLL) => {
                let now = fingerprint(&path);
                if now != seen && now.is_some() {
                    // Let a writer that is still copying the file finish.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    seen = fingerprint(&path);
                    attempt(&service, &engine, &path).await;
                }
            }
        }
    }
}
