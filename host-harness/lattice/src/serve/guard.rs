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
//!   spec — no link of its source, namespace, package and name is stored —
//!   is put back through the plugin (compare-and-swap, the same put rules:
//!   if they refuse it now, it is let go). A link of that name stored with
//!   other interfaces or configs was replaced, not dropped: let go too;
//! * a `linkdef_deleted` for its source, namespace, package and name, or
//!   its source's spec deleted, ends the watch over it;
//! * once it has been stored for [`SETTLED`] (longer than any in-flight
//!   read-modify-write of a v1.9 host can take) it is let go too.
//!
//! The guard acts only while the lattice has wasmCloud hosts (the census
//! sees them answer `host.ping`): spec-hosts write with compare-and-swap
//! and never drop a link, and a guard that acted on a missed
//! `linkdef_deleted` would bring back a deleted link. Until the first
//! census is taken (a few hundred milliseconds after start) it books the
//! acknowledged links without acting, so a load that starts with the host
//! is guarded too.
//!
//! Spec changes come from this host's follower (no second consumer of the
//! bucket); links are checked against this host's table, on a tick, sooner
//! after a change of their source. The map is bounded ([`MAX_WATCHED`]).
//! Several guards in one lattice may put the same link back; the second
//! finds it stored (nothing written).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use spec_model::{Link, PutOutcome, SpecError};
use tokio::sync::{broadcast, watch};

use super::Service;
use spec_embed::backend::error_chain;
use spec_embed::error::CallError;
use spec_nats::events::{self, CloudEvent};
use spec_nats::{subjects, SpecChange};

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

/// The acknowledged links, by source id (every event, change and check
/// concerns one source, so nothing scans the whole map but the tick).
#[derive(Default)]
struct Book {
    by_source: HashMap<String, Vec<Watched>>,
    count: usize,
}

impl Book {
    fn retain_source(&mut self, source: &str, keep: impl FnMut(&Watched) -> bool) {
        if let Some(list) = self.by_source.get_mut(source) {
            let before = list.len();
            list.retain(keep);
            self.count -= before - list.len();
            if list.is_empty() {
                self.by_source.remove(source);
            }
        }
    }

    /// Starts watching `link`, acknowledged now; a link it supersedes (same
    /// name, another target, an overlapping interface — the rules allow only
    /// one) or an earlier put of it is let go.
    fn acknowledge(&mut self, link: Link) {
        self.retain_source(&link.source_id, |w| {
            let same_name = w.link.wit_namespace == link.wit_namespace
                && w.link.wit_package == link.wit_package
                && w.link.name == link.name;
            let superseded = w.link.target != link.target && w.link.interfaces_overlap(&link);
            !(same_name && (w.link.target == link.target || superseded))
        });
        let now = Instant::now();
        self.by_source
            .entry(link.source_id.clone())
            .or_default()
            .push(Watched {
                link,
                acknowledged: now,
                stored_since: None,
                next_check: now + GRACE,
                repairs: 0,
            });
        self.count += 1;
        if self.count > MAX_WATCHED {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        let oldest = self
            .by_source
            .iter()
            .flat_map(|(s, list)| list.iter().map(move |w| (w.acknowledged, s)))
            .min()
            .map(|(at, s)| (at, s.clone()));
        if let Some((at, source)) = oldest {
            tracing::warn!(%source, "too many links watched; the oldest is no longer guarded");
            self.retain_source(&source, |w| w.acknowledged != at);
        }
    }

    /// Checks `source`'s links at the next tick (its spec changed).
    fn soon(&mut self, source: &str) {
        let now = Instant::now();
        for w in self.by_source.get_mut(source).into_iter().flatten() {
            w.next_check = w.next_check.min(now).max(w.acknowledged + GRACE);
        }
    }
}

/// Starts the guard of `service`, until `stop` changes; `changes` come from
/// its follower. It is listening to the link events when this returns, so
/// a host that starts it before answering requests misses none of its own.
pub async fn start(
    service: Arc<Service>,
    stats: Arc<GuardStats>,
    changes: broadcast::Receiver<SpecChange>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let lattice = service.lattice.options.lattice.clone();
    let client = service.lattice.client.clone();
    let subscribe = |name: &str| client.subscribe(subjects::event(&lattice, name));
    match (
        subscribe(events::LINKDEF_SET).await,
        subscribe(events::LINKDEF_DELETED).await,
    ) {
        (Ok(sets), Ok(dels)) => tokio::spawn(run(service, stats, sets, dels, changes, stop)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %error_chain(&e), "cannot follow link events; acknowledged links are not guarded");
            tokio::spawn(async {})
        }
    }
}

async fn run(
    service: Arc<Service>,
    stats: Arc<GuardStats>,
    mut sets: async_nats::Subscriber,
    mut dels: async_nats::Subscriber,
    mut changes: broadcast::Receiver<SpecChange>,
    mut stop: watch::Receiver<bool>,
) {
    let mut book = Book::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            Some(msg) = sets.next() => {
                // Before the first census, links are booked (a v1.9 host
                // may be dropping them already) but not acted on.
                let census = service.census();
                if census.taken && census.wasmcloud_hosts == 0 {
                    continue;
                }
                if let Some(link) = event_link(&msg.payload) {
                    stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                    book.acknowledge(link);
                }
            }
            Some(msg) = dels.next() => {
                if let Some((source, ns, pkg, name)) = event_deleted(&msg.payload) {
                    book.retain_source(&source, |w| {
                        !(w.link.wit_namespace == ns && w.link.wit_package == pkg && w.link.name == name)
                    });
                }
            }
            change = changes.recv() => match change {
                // The spec is gone, links and all: nothing to keep.
                Ok(SpecChange { id, deleted: true, .. }) => book.retain_source(&id, |_| false),
                Ok(SpecChange { id, deleted: false, .. }) => book.soon(&id),
                // Fell behind: check everything at the next tick.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let sources: Vec<String> = book.by_source.keys().cloned().collect();
                    for s in sources {
                        book.soon(&s);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let census = service.census();
                if !census.taken {
                    continue;
                }
                if census.wasmcloud_hosts == 0 {
                    book = Book::default();
                    continue;
                }
                check(&service, &stats, &mut book).await
            }
        }
    }
}

/// Checks the links due: stored ones age towards [`SETTLED`]; missing ones
/// are put back.
async fn check(service: &Service, stats: &GuardStats, book: &mut Book) {
    let now = Instant::now();
    let due: Vec<String> = book
        .by_source
        .iter()
        .filter(|(_, list)| list.iter().any(|w| w.next_check <= now))
        .map(|(s, _)| s.clone())
        .collect();
    for source in due {
        let stored = service.host.links_of(&source);
        let mut repair = Vec::new();
        let mut settled = Vec::new();
        for (i, w) in book
            .by_source
            .get_mut(&source)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if w.next_check > now {
                continue;
            }
            if stored.contains(&w.link) {
                let since = *w.stored_since.get_or_insert(now);
                if now.duration_since(since) >= SETTLED {
                    settled.push(i);
                } else {
                    // A change of its source brings the check forward.
                    w.next_check = since + SETTLED;
                }
                continue;
            }
            let same_name = |s: &Link| {
                s.wit_namespace == w.link.wit_namespace
                    && s.wit_package == w.link.wit_package
                    && s.name == w.link.name
            };
            if stored.iter().any(same_name) {
                // Replaced (other interfaces, configs or target), not
                // dropped: the later write wins.
                w.repairs = MAX_REPAIRS + 1;
                continue;
            }
            w.stored_since = None;
            w.repairs += 1;
            w.next_check = now + GRACE;
            repair.push(w.link.clone());
        }
        let mut gone: Vec<Link> = Vec::new();
        for link in repair {
            match restore(service, stats, &link).await {
                Restore::Keep => {}
                Restore::LetGo => gone.push(link),
            }
        }
        let list = book.by_source.get(&source);
        let settled_links: Vec<Link> = settled
            .iter()
            .filter_map(|&i| list.and_then(|l| l.get(i)).map(|w| w.link.clone()))
            .collect();
        book.retain_source(&source, |w| {
            !gone.contains(&w.link) && !settled_links.contains(&w.link) && w.repairs <= MAX_REPAIRS
        });
    }
}

enum Restore {
    Keep,
    LetGo,
}

/// Puts one missing link back.
async fn restore(service: &Service, stats: &GuardStats, link: &Link) -> Restore {
    match service.host.put_link(link.clone()).await {
        Ok(put) if put.outcome != PutOutcome::Unchanged => {
            stats.restored.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %link.source_id, target = %link.target, name = %link.name, "put back an acknowledged link that a blind write dropped");
            Restore::Keep
        }
        Ok(_) => Restore::Keep,
        Err(CallError::Spec(SpecError::Conflict(_))) => {
            stats.superseded.fetch_add(1, Ordering::Relaxed);
            tracing::info!(source = %link.source_id, target = %link.target, name = %link.name, "an acknowledged link was superseded; let go");
            Restore::LetGo
        }
        Err(e) => {
            tracing::warn!(source = %link.source_id, error = %error_chain(&e), "cannot put an acknowledged link back yet");
            Restore::Keep
        }
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
