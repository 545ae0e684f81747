//! What keeps the page's [`View`] current — no polling of the store:
//!
//! * specs: a [`Follower`](spec_nats::Follower) applies every change of
//!   `LATTICEDATA_{lattice}` to this process's own plugin table (so the
//!   page's import-link tables are the plugin's) and hands each change on;
//!   should the page fall more than a few thousand changes behind, every
//!   spec is read again once;
//! * configs: a watch of `CONFIGDATA_{lattice}` from its history;
//! * deliveries: the id-addressed link messages providers receive
//!   (`wasmbus.rpc.{lattice}.*.linkdefs.put|del`);
//! * hosts: a status request every [`HOSTS_EVERY`] (status is pushed by
//!   nobody, so this one thing is asked for);
//! * the NATS connection: its state, checked twice a second.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use super::view::View;
use spec_embed::backend::error_chain;
use spec_embed::SpecHost;
use spec_nats::{subjects, InterfaceLinkDefinition, Lattice};

/// How often the hosts' status is asked for.
pub const HOSTS_EVERY: Duration = Duration::from_secs(2);

/// Starts every watcher; they run until `stop` changes.
pub async fn start(
    lattice: &Lattice,
    host: SpecHost,
    view: Arc<View>,
    stop: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(specs(
        lattice.clone(),
        host,
        Arc::clone(&view),
        stop.clone(),
    ));
    tasks.spawn(configs(lattice.clone(), Arc::clone(&view), stop.clone()));
    tasks.spawn(deliveries(lattice.clone(), Arc::clone(&view), stop.clone()));
    tasks.spawn(hosts(lattice.clone(), Arc::clone(&view), stop.clone()));
    tasks.spawn(connection(lattice.clone(), view, stop));
    tasks
}

async fn specs(lattice: Lattice, host: SpecHost, view: Arc<View>, mut stop: watch::Receiver<bool>) {
    let follower = lattice.follower(host).spawn();
    let mut changes = follower.changes();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            change = changes.recv() => match change {
                Ok(c) => match &c.value {
                    Some(value) => view.spec_written(&c.id, value),
                    None => view.spec_deleted(&c.id),
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the page fell behind the spec bucket; reading it again");
                    match read_all(&lattice).await {
                        Ok(all) => view.specs_reloaded(all),
                        Err(e) => tracing::warn!(error = %e, "cannot read the spec bucket"),
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    follower.stop().await;
}

/// Every stored spec value, by id.
async fn read_all(lattice: &Lattice) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let keys: Vec<String> = lattice.specs.keys().await?.try_collect().await?;
    let mut out = Vec::new();
    for key in keys {
        let Some(id) = subjects::component_id(&key) else {
            continue;
        };
        if let Some(value) = lattice.specs.get(&key).await? {
            out.push((id.to_string(), value.to_vec()));
        }
    }
    Ok(out)
}

async fn configs(lattice: Lattice, view: Arc<View>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    // Resumes after the last revision seen when the watch breaks.
    let mut position = 0;
    loop {
        let watch = if position == 0 {
            lattice.configs.watch_with_history(">").await
        } else {
            lattice.configs.watch_all_from_revision(position + 1).await
        };
        match watch {
            Ok(mut entries) => {
                backoff = Duration::from_millis(200);
                loop {
                    let next = tokio::select! {
                        _ = stop.changed() => return,
                        next = entries.next() => next,
                    };
                    match next {
                        Some(Ok(entry)) => {
                            position = position.max(entry.revision);
                            match entry.operation {
                                Operation::Put => view.config_written(&entry.key, &entry.value),
                                Operation::Delete | Operation::Purge => {
                                    view.config_deleted(&entry.key)
                                }
                            }
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %error_chain(&e), "config watch hiccup")
                        }
                        None => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot watch the config bucket; retrying")
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The link a delivery carries, described (or the payload's size).
fn delivery_text(payload: &[u8]) -> String {
    match InterfaceLinkDefinition::decode(payload) {
        Ok(def) => def.link().to_string(),
        Err(_) => format!("({} bytes that are not a link)", payload.len()),
    }
}

async fn deliveries(lattice: Lattice, view: Arc<View>, mut stop: watch::Receiver<bool>) {
    let name = &lattice.options.lattice;
    let subject = format!("wasmbus.rpc.{name}.*.linkdefs.*");
    let mut messages = match lattice.client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot follow deliveries");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => return,
            msg = messages.next() => msg,
        };
        let Some(msg) = msg else {
            return;
        };
        // wasmbus.rpc.{lattice}.{provider}.linkdefs.{put|del}
        let parts: Vec<&str> = msg.subject.as_str().rsplitn(3, '.').collect();
        let [op, _, rest] = parts[..] else {
            continue;
        };
        let provider = rest.rsplit('.').next().unwrap_or_default();
        view.delivered(provider, op == "put", delivery_text(&msg.payload));
    }
}

async fn hosts(lattice: Lattice, view: Arc<View>, mut stop: watch::Receiver<bool>) {
    loop {
        let found = crate::serve::collect_status(
            &lattice.client,
            &lattice.options.lattice,
            Duration::from_millis(300),
        )
        .await;
        match found {
            Ok(mut hosts) => {
                hosts.sort_by(|a, b| a.host_id.cmp(&b.host_id));
                view.hosts(hosts);
            }
            Err(e) => tracing::debug!(error = %error_chain(e.as_ref()), "status request failed"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(HOSTS_EVERY) => {}
        }
    }
}

async fn connection(lattice: Lattice, view: Arc<View>, mut stop: watch::Receiver<bool>) {
    loop {
        let up = matches!(
            lattice.client.connection_state(),
            async_nats::connection::State::Connected
        );
        view.connected(up);
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
