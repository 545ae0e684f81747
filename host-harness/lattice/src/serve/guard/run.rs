//! The guard's task: its subscriptions, the checks on each tick, and the
//! repairs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use spec_model::{Link, PutOutcome, SpecError};
use tokio::sync::{broadcast, watch};

use super::book::{replaces, Book, Requests, GRACE, MAX_REPAIRS, MISSING_FOR, SETTLED};
use crate::serve::Service;
use spec_embed::backend::error_chain;
use spec_embed::error::CallError;
use spec_nats::events::{self, CloudEvent};
use spec_nats::{subjects, SpecChange};

/// What the guard did.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Acknowledged links seen.
    pub acknowledged: AtomicU64,
    /// Links put back after a blind write dropped them.
    pub restored: AtomicU64,
    /// Links let go because the put rules refuse them now.
    pub superseded: AtomicU64,
    /// Acknowledgements that no request or stored value backed (forged
    /// or lost events): let go, never written.
    pub uncorroborated: AtomicU64,
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
    let options = &service.lattice.options;
    let client = service.lattice.client.clone();
    // One subscription for both events: a put and the delete that followed
    // it arrive in that order (two subscriptions would be read in either).
    let events = client
        .subscribe(subjects::event(&options.lattice, "*"))
        .await;
    let puts = format!(
        "{}.put",
        subjects::ctl_link_prefix(&options.ctl_prefix, &options.lattice)
    );
    match (events, client.subscribe(puts).await) {
        (Ok(events), Ok(requests)) => {
            tokio::spawn(run(service, stats, events, requests, changes, stop))
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %error_chain(&e), "cannot follow link events; acknowledged links are not guarded");
            tokio::spawn(async {})
        }
    }
}

async fn run(
    service: Arc<Service>,
    stats: Arc<GuardStats>,
    mut events: async_nats::Subscriber,
    mut requests: async_nats::Subscriber,
    mut changes: broadcast::Receiver<SpecChange>,
    mut stop: watch::Receiver<bool>,
) {
    let mut book = Book::default();
    let mut asked = Requests::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_prune = Instant::now();
    let set_subject = subjects::event(&service.lattice.options.lattice, events::LINKDEF_SET);
    let deleted_subject =
        subjects::event(&service.lattice.options.lattice, events::LINKDEF_DELETED);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            Some(msg) = requests.next() => {
                if !guarding(&service) {
                    continue;
                }
                if let Ok(link) = serde_json::from_slice::<Link>(&msg.payload) {
                    book.corroborate(&link);
                    asked.seen(link);
                }
            }
            Some(msg) = events.next() => {
                if msg.subject.as_str() == set_subject {
                    if !guarding(&service) {
                        continue;
                    }
                    if let Some(link) = event_link(&msg.payload) {
                        stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                        let corroborated = asked.was_requested(&link)
                            || service.host.links_of(&link.source_id).contains(&link);
                        book.acknowledge(link, corroborated);
                    }
                } else if msg.subject.as_str() == deleted_subject {
                    if let Some((source, ns, pkg, name)) = event_deleted(&msg.payload) {
                        book.retain_source(&source, |w| {
                            !(w.link.wit_namespace == ns && w.link.wit_package == pkg && w.link.name == name)
                        });
                    }
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
                if last_prune.elapsed() >= Duration::from_secs(1) {
                    asked.prune();
                    last_prune = Instant::now();
                }
                let census = service.census();
                if !census.taken {
                    continue;
                }
                if census.wasmcloud_hosts == 0 {
                    book = Book::default();
                    asked = Requests::default();
                    continue;
                }
                check(&service, &stats, &mut book).await
            }
        }
    }
}

/// Whether acknowledgements are booked now: while wasmCloud hosts are
/// seen, and before the first census (a v1.9 host may be dropping links
/// already).
fn guarding(service: &Service) -> bool {
    let census = service.census();
    !census.taken || census.wasmcloud_hosts > 0
}

/// Checks the links due: stored ones age towards [`SETTLED`]; missing ones
/// are put back once they were missing for [`MISSING_FOR`].
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
                w.corroborated = true;
                w.missing_since = None;
                let since = *w.stored_since.get_or_insert(now);
                if now.duration_since(since) >= SETTLED {
                    settled.push(i);
                } else {
                    // A change of its source brings the check forward.
                    w.next_check = since + SETTLED;
                }
                continue;
            }
            if !w.corroborated {
                // Only an event says so: wait for its request or its stored
                // value, and never write it on the event's word alone.
                if now.duration_since(w.acknowledged) >= SETTLED {
                    stats.uncorroborated.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(source = %w.link.source_id, target = %w.link.target, name = %w.link.name, "a linkdef_set event that no request or stored value backs; ignored");
                    w.repairs = MAX_REPAIRS + 1;
                } else {
                    w.next_check = now + GRACE;
                }
                continue;
            }
            if stored.iter().any(|s| replaces(s, &w.link)) {
                // Replaced (same target, or an overlapping interface), not
                // dropped: the later write wins.
                w.repairs = MAX_REPAIRS + 1;
                continue;
            }
            w.stored_since = None;
            let missing_since = *w.missing_since.get_or_insert(now);
            if now.duration_since(missing_since) < MISSING_FOR {
                // Perhaps deleted on purpose: give its event time to come.
                w.next_check = missing_since + MISSING_FOR;
                continue;
            }
            w.missing_since = None;
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
