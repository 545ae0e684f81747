//! Keeping acknowledged links stored while wasmCloud v1.9 hosts still
//! write.
//!
//! A v1.9 host writes a spec with a plain get + put, no compare-and-swap
//! (wasmCloud #3260): when two `link.put`s on one component run at once on
//! different hosts, the later write can drop the link the earlier one just
//! stored, after its client was told "successfully set link". spec-host's
//! own writes cannot prevent that — the v1.9 host overwrites blindly.
//!
//! Every host that answers a link request announces it: `linkdef_set`
//! after a stored put, `linkdef_deleted` after a delete (v1.9 and
//! spec-host alike). The guard of each `spec-host serve` listens to those
//! (every request of the lattice, whoever answered) and to the spec bucket,
//! and keeps, per acknowledged link, whether it is stored:
//!
//! * a link acknowledged and not deleted since, missing from its source's
//!   spec, is put back through the plugin (compare-and-swap, the same put
//!   rules: if they refuse it now — another put took its name — it is let
//!   go);
//! * a `linkdef_deleted` for its source, namespace, package and name, or
//!   its source's spec deleted, ends the watch over it;
//! * once it has been stored for [`SETTLED`] (longer than any in-flight
//!   read-modify-write of a v1.9 host can take) it is let go too.
//!
//! The map is bounded ([`MAX_WATCHED`]); checks run on every change of a
//! watched spec and on a tick. Several guards in one lattice may put the
//! same link back; the second finds it stored (nothing written).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use futures::StreamExt;
use spec_model::{Link, PutOutcome, SpecError};
use tokio::sync::watch;

use super::Service;
use crate::backend::error_chain;
use crate::error::CallError;
use crate::nats::events::{self, CloudEvent};
use crate::nats::subjects;

/// How long a link must have been stored to be let go.
pub const SETTLED: Duration = Duration::from_secs(10);

/// How long after its acknowledgement a link may be missing from the table
/// before it counts as dropped (the follower's lag).
const GRACE: Duration = Duration::from_millis(300);

/// Links watched at most; past it the oldest are let go (logged).
pub const MAX_WATCHED: usize = 100_000;

/// Tries to put one link back before giving up on it.
const MAX_REPAIRS: u32 = 20;

/// What the guard did.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Acknowledged links seen.
    pub acknowledged: AtomicU64,
    /// Links put back after a blind write dropped them.
    pub restored: AtomicU64,
    /// Links let go because the put rules refuse them now.
    pub superseded: AtomicU64,
}

/// One acknowledged link.
struct Watched {
    link: Link,
    acknowledged: Instant,
    stored_since: Option<Instant>,
    next_check: Instant,
    repairs: u32,
}

type Key = (String, String, String, String, String);

fn key(link: &Link) -> Key {
    (
        link.source_id.clone(),
        link.wit_namespace.clone(),
        link.wit_package.clone(),
        link.name.clone(),
        link.target.clone(),
    )
}

/// Runs the guard of `service` until `stop` changes.
pub async fn run(service: Arc<Service>, stats: Arc<GuardStats>, mut stop: watch::Receiver<bool>) {
    let lattice = service.lattice.options.lattice.clone();
    let client = service.lattice.client.clone();
    let subscribe = |name: &str| client.subscribe(subjects::event(&lattice, name));
    let (mut sets, mut dels) = match (
        subscribe(events::LINKDEF_SET).await,
        subscribe(events::LINKDEF_DELETED).await,
    ) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %error_chain(&e), "cannot follow link events; acknowledged links are not guarded");
            return;
        }
    };
    let mut specs = match service.lattice.specs.watch_all().await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot watch the spec bucket; the guard checks on its tick only");
            None
        }
    };
    let mut watched: HashMap<Key, Watched> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let spec_change = async {
            match specs.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            Some(msg) = sets.next() => {
                let Some(link) = event_link(&msg.payload) else { continue };
                stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                // A newer put of the same name and an overlapping interface
                // to another target replaces the older one (the rules allow
                // only one).
                watched.retain(|_, w| !(w.link.source_id == link.source_id
                    && w.link.wit_namespace == link.wit_namespace
                    && w.link.wit_package == link.wit_package
                    && w.link.name == link.name
                    && w.link.target != link.target
                    && w.link.interfaces_overlap(&link)));
                let now = Instant::now();
                watched.insert(key(&link), Watched {
                    link,
                    acknowledged: now,
                    stored_since: None,
                    next_check: now + GRACE,
                    repairs: 0,
                });
                if watched.len() > MAX_WATCHED {
                    forget_oldest(&mut watched);
                }
            }
            Some(msg) = dels.next() => {
                if let Some((source, ns, pkg, name)) = event_deleted(&msg.payload) {
                    watched.retain(|(s, n, p, nm, _), _| !(s == &source && n == &ns && p == &pkg && nm == &name));
                }
            }
            Some(entry) = spec_change => {
                let Ok(entry) = entry else { continue };
                let Some(id) = subjects::component_id(&entry.key) else { continue };
                if matches!(entry.operation, Operation::Delete | Operation::Purge) {
                    // The spec is gone, links and all: nothing to keep.
                    watched.retain(|(s, ..), _| s != id);
                } else {
                    // Check this source's links as soon as the table has the
                    // change.
                    let soon = Instant::now() + Duration::from_millis(20);
                    for w in watched.values_mut().filter(|w| w.link.source_id == id) {
                        w.next_check = w.next_check.min(soon).max(w.acknowledged + GRACE);
                    }
                }
            }
            _ = tick.tick() => {}
        }
        check(&service, &stats, &mut watched).await;
    }
}

/// Checks the links due: stored ones age towards [`SETTLED`]; missing ones
/// are put back.
async fn check(service: &Service, stats: &GuardStats, watched: &mut HashMap<Key, Watched>) {
    let now = Instant::now();
    let due: Vec<Key> = watched
        .iter()
        .filter(|(_, w)| w.next_check <= now)
        .map(|(k, _)| k.clone())
        .collect();
    let mut tables: HashMap<String, Vec<Link>> = HashMap::new();
    for k in due {
        let Some(w) = watched.get_mut(&k) else {
            continue;
        };
        let links = tables
            .entry(w.link.source_id.clone())
            .or_insert_with(|| service.host.links_of(&w.link.source_id));
        if links.contains(&w.link) {
            let since = *w.stored_since.get_or_insert(now);
            if now.duration_since(since) >= SETTLED {
                watched.remove(&k);
            } else {
                w.next_check = now + Duration::from_secs(1);
            }
            continue;
        }
        w.stored_since = None;
        w.repairs += 1;
        w.next_check = now + GRACE;
        if w.repairs > MAX_REPAIRS {
            tracing::error!(source = %w.link.source_id, target = %w.link.target, name = %w.link.name, "cannot keep an acknowledged link stored; giving up on it");
            watched.remove(&k);
            continue;
        }
        match service.host.put_link(w.link.clone()).await {
            Ok(put) if put.outcome != PutOutcome::Unchanged => {
                stats.restored.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %w.link.source_id, target = %w.link.target, name = %w.link.name, "put back an acknowledged link that a blind write dropped");
                tables.remove(&w.link.source_id);
            }
            Ok(_) => {}
            Err(CallError::Spec(SpecError::Conflict(_))) => {
                stats.superseded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(source = %w.link.source_id, target = %w.link.target, name = %w.link.name, "an acknowledged link was superseded; let go");
                watched.remove(&k);
            }
            Err(e) => {
                tracing::warn!(source = %w.link.source_id, error = %error_chain(&e), "cannot put an acknowledged link back yet");
            }
        }
    }
}

fn forget_oldest(watched: &mut HashMap<Key, Watched>) {
    if let Some(oldest) = watched
        .iter()
        .min_by_key(|(_, w)| w.acknowledged)
        .map(|(k, _)| k.clone())
    {
        tracing::warn!(source = %oldest.0, "too many links watched; the oldest is no longer guarded");
        watched.remove(&oldest);
    }
}

fn event_link(payload: &[u8]) -> Option<Link> {
    let event: CloudEvent = serde_json::from_slice(payload).ok()?;
    events::link_of(&event.data)
}

fn event_deleted(payload: &[u8]) -> Option<(String, String, String, String)> {
    let event: CloudEvent = serde_json::from_slice(payload).ok()?;
    let text = |k: &str| Some(event.data.get(k)?.as_str()?.to_string());
    Some((
        text("source_id")?,
        text("wit_namespace")?,
        text("wit_package")?,
        text("name")?,
    ))
}
