//! Following other hosts through the spec bucket.
//!
//! A [`Follower`] watches `LATTICEDATA_{lattice}` and applies every
//! `COMPONENT_` change to the plugin's host table: a put through
//! `apply-stored-spec` (the plugin decodes wasmCloud's JSON), a delete *and
//! a purge* through `remove-host-spec` (wasmCloud v1.9 ignored purges, so
//! specs deleted by its own `delete_component_spec` lingered on other
//! hosts). The watch starts with the last value of every key and then
//! follows new writes in one consumer, so nothing written between "read the
//! existing keys" and "start watching" can be missed (wasmCloud issue #940
//! was that race). A value that does not decode is logged with its key and
//! skipped.
//!
//! Entries the consumer already holds go to the table owner together, up
//! to [`BATCH`] at a time, applied in order in one turn of the owner
//! ([`SpecHost::apply_store_changes`]): a catch-up spent most of its time in
//! the hop to the owner and back, once per change.
//!
//! The host keeps each id's newest applied revision
//! ([`SpecHost::apply_store_change`]): a revision is applied at most once and
//! never after a newer one — also when this host wrote it itself, or when
//! the watch is re-created after a server restart and replays from its last
//! position.
//!
//! A change whose apply failed with a plugin fault (a trap, a limit), that
//! the owner dropped unanswered, or that met a table being rebuilt, is not
//! lost: it waits, per id, and is tried again with a doubling backoff
//! (0.1 s … 5 s) — or on a new build after a swap — until it applies. A
//! newer change of the same id replaces it. Only then is it counted as
//! applied, and until then the host does not report itself caught up.
//! Each try runs first on a scratch instance, off this loop
//! ([`SpecHost::probe_change`]), and reaches the table owner only if the
//! plugin did not fault there: one bad stored value costs the owner its
//! first fault, not a stall of every change behind it at each try. A
//! change that keeps failing on one build is tried there a few times, then
//! once a minute, and at once after a swap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::entries::{entries, Start};
use super::subjects;
use spec_embed::backend::error_chain;
use spec_embed::error::{CallError, SpecError};
use spec_embed::{SpecHost, StoreChange};
use spec_model::UpdateReport;

/// Counters of what a follower did.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Spec puts applied.
    pub applied: AtomicU64,
    /// Deletes and purges applied.
    pub removed: AtomicU64,
    /// Entries skipped: already applied, or not a spec.
    pub skipped: AtomicU64,
    /// Values that did not decode (or that the plugin refused): logged with
    /// their key, never retried.
    pub failed: AtomicU64,
    /// Applies that failed (a plugin fault, a stalled backend, a call
    /// dropped) and were tried again later.
    pub retried: AtomicU64,
    /// Of those, the plugin's faults (trap, CPU budget, memory cap, import
    /// cap, its own deadline): what a rollout holds against a build.
    pub faults: AtomicU64,
    /// Changes waiting to be tried again now (one per id at most).
    pub pending: AtomicU64,
    /// Times the watch was (re)established.
    pub watches: AtomicU64,
    /// Writes the consumer still had to deliver when it delivered the last
    /// one (0 when the follower is at the head of the bucket).
    pub behind: AtomicU64,
    /// Whether the first watch has delivered every value the bucket held
    /// when it started (the table is complete).
    pub caught_up: std::sync::atomic::AtomicBool,
}

/// A spec change the follower saw, for whoever else watches the lattice
/// (the guard of acknowledged links, a shadow build) without a second
/// consumer of the bucket. Sent after the table handled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecChange {
    /// The component id.
    pub id: String,
    /// A delete or purge (else a put).
    pub deleted: bool,
    /// Its store revision.
    pub revision: u64,
    /// When the store took the write (the server's clock): what the
    /// follower's lag is measured from.
    pub written: std::time::SystemTime,
    /// When the table had handled it (this host's clock): what the lag is
    /// measured to — not when a listener got round to it.
    pub handled: std::time::SystemTime,
    /// The stored value (`None` for a delete or purge).
    pub value: Option<Arc<[u8]>>,
    /// What applying it did to the table; `None` when it was not applied
    /// now (already held, refused, or waiting to be tried again).
    pub report: Option<Arc<UpdateReport>>,
}

/// Applies bucket changes to a [`SpecHost`]. It reads the bucket through
/// an ordered pull consumer ([`crate::entries`]), so a catch-up of any
/// size makes the server wait rather than overflow the client.
pub struct Follower {
    bucket: kv::Store,
    host: SpecHost,
    reconnects: Option<watch::Receiver<u64>>,
    changes: tokio::sync::broadcast::Sender<SpecChange>,
}

/// A running follower: stop it, or wait until its watch is up.
pub struct FollowerHandle {
    stop: watch::Sender<bool>,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
    /// What it has done so far.
    pub stats: Arc<FollowStats>,
    changes: tokio::sync::broadcast::Sender<SpecChange>,
}

impl FollowerHandle {
    /// Every spec change seen from now on (a receiver that falls behind by
    /// more than 4,096 changes is told it lagged).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<SpecChange> {
        self.changes.subscribe()
    }

    /// Resolves once the first watch is established: from then on every
    /// write to the bucket reaches the host.
    pub async fn ready(&mut self) {
        // An error means the task ended: nothing more to wait for.
        let _ = self.ready.wait_for(|r| *r).await;
    }

    /// Stops following and waits for the task to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Follower {
    /// A follower of `bucket` for `host`.
    pub fn new(bucket: kv::Store, host: SpecHost) -> Self {
        Follower {
            bucket,
            host,
            reconnects: None,
            changes: tokio::sync::broadcast::channel(4096).0,
        }
    }

    /// Re-creates the watch (from the last position) whenever `reconnects`
    /// changes, i.e. when the NATS connection is back after an outage.
    pub fn with_reconnects(mut self, reconnects: watch::Receiver<u64>) -> Self {
        self.reconnects = Some(reconnects);
        self
    }

    /// Starts following in a task.
    pub fn spawn(self) -> FollowerHandle {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let stats = Arc::new(FollowStats::default());
        let changes = self.changes.clone();
        let task = tokio::spawn(self.run(stop_rx, ready_tx, Arc::clone(&stats)));
        FollowerHandle {
            stop,
            ready,
            task,
            stats,
            changes,
        }
    }

    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        ready: watch::Sender<bool>,
        stats: Arc<FollowStats>,
    ) {
        let mut reconnects = self.reconnects.take();
        // Highest stream revision handled: a new watch resumes after it.
        let mut position: u64 = 0;
        let mut backoff = Duration::from_millis(100);
        let mut parked = Parked::default();
        // Probes of parked changes: at most PROBES at once, their outcomes
        // back to this loop.
        let probes = Arc::new(tokio::sync::Semaphore::new(PROBES));
        // Batches with the owner, oldest first (kept across a new watch).
        let mut applying = futures::stream::FuturesOrdered::<Applying>::new();
        let (probed_tx, mut probed) = tokio::sync::mpsc::channel(PROBES);
        loop {
            let start = match position {
                0 => Start::LastPerKey,
                p => Start::After(p),
            };
            let mut entries = match entries(&self.bucket, start).await {
                Ok((pending, entries)) => {
                    // Nothing to catch up with.
                    if pending == 0 {
                        stats.caught_up.store(true, Ordering::Relaxed);
                    }
                    entries
                }
                Err(e) => {
                    tracing::warn!(error = %error_chain(e.as_ref()), "cannot watch the spec bucket; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            stats.watches.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(true);
            // When the consumer last delivered (or was made), to notice one
            // that went silent while the bucket moved on.
            let mut progressed = tokio::time::Instant::now();
            let mut held = None;
            let mut stall_check = tokio::time::interval(STALL_CHECK);
            // Seen behind at the last check too (a write just made is not
            // a stall).
            let mut behind = false;
            loop {
                let reconnected = async {
                    match reconnects.as_mut() {
                        Some(r) => r.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                let retry_due = parked.next_due();
                let retry = async {
                    match retry_due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                // What the last batch read past its end (an error, the
                // consumer's end) comes first; else whatever is next.
                let next = match held.take() {
                    Some(next) => next,
                    None => tokio::select! {
                    _ = stop.changed() => return,
                    true = reconnected => {
                        tracing::info!(position, "NATS connection is back; resuming the watch");
                        break;
                    }
                    _ = stall_check.tick() => {
                        let was_behind = behind;
                        // While a batch is with the owner nothing is read:
                        // that is not the consumer's silence.
                        behind = applying.is_empty()
                            && progressed.elapsed() >= STALLED
                            && self.bucket_ahead_of(position).await;
                        if behind && was_behind {
                            tracing::warn!(position, silent = ?progressed.elapsed(), "the bucket moved on but its consumer delivered nothing (its server may be gone); re-creating it");
                            break;
                        }
                        continue;
                    }
                    () = retry => {
                        // Tried first on a scratch instance, off this loop:
                        // a value that faults again costs the owner nothing.
                        for change in parked.take_due(&self.host.plugin_version()) {
                            parked.probing(&change.id);
                            let host = self.host.clone();
                            let results = probed_tx.clone();
                            let permits = Arc::clone(&probes);
                            tokio::spawn(async move {
                                let Ok(_permit) = permits.acquire_owned().await else { return };
                                let out = host.probe_change(&change.id, change.value.as_deref()).await;
                                let _ = results.send((change, out)).await;
                            });
                        }
                        continue;
                    }
                    Some((change, out)) = probed.recv() => {
                        if !parked.holds(&change) {
                            // Settled or replaced by a newer change meanwhile.
                            continue;
                        }
                        match out {
                            Ok(()) => {
                                // Told to the others only if applied now.
                                let (batch, outcomes) = self.submit(vec![change], false, &stats, &parked).await;
                                self.finish(batch, outcomes, false, &stats, &mut parked);
                            }
                            Err(e) => self.not_applied(change, &e, &stats, &mut parked),
                        }
                        stats.pending.store(parked.len(), Ordering::Relaxed);
                        continue;
                    }
                    Some((batch, outcomes)) = applying.next(), if !applying.is_empty() => {
                        let caught_up = batch.caught_up;
                        self.finish(batch, outcomes, true, &stats, &mut parked);
                        stats.pending.store(parked.len(), Ordering::Relaxed);
                        if caught_up {
                            stats.caught_up.store(true, Ordering::Relaxed);
                        }
                        progressed = tokio::time::Instant::now();
                        continue;
                    }
                    next = entries.next(), if applying.len() < IN_FLIGHT => next,
                    },
                };
                match next {
                    // The consumer ended: make a new one from our position.
                    None => break,
                    // The watcher recovers by itself (e.g. a missed heartbeat
                    // while the server restarts): keep reading.
                    Some(Err(e)) => {
                        tracing::warn!(error = %error_chain(e.as_ref()), "spec bucket watch hiccup")
                    }
                    Some(Ok(entry)) => {
                        // Every entry the consumer already holds goes to the
                        // table in one turn of its owner (bounded).
                        let mut batch = vec![entry];
                        let mut bytes = 0;
                        while batch.len() < BATCH && bytes < BATCH_BYTES {
                            match entries.next().now_or_never() {
                                Some(Some(Ok(entry))) => {
                                    bytes += entry.value.len();
                                    batch.push(entry);
                                }
                                Some(other) => {
                                    held = Some(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                        let mut changes = Vec::with_capacity(batch.len());
                        let mut caught_up = false;
                        for entry in batch {
                            position = position.max(entry.revision);
                            // `delta` counts what the consumer has yet to
                            // deliver: zero once the history is through.
                            caught_up |= entry.delta == 0;
                            stats.behind.store(entry.delta, Ordering::Relaxed);
                            changes.extend(Change::of(entry, &stats));
                        }
                        // Settled (and told to the others) in stream order
                        // when the owner is done; meanwhile this loop still
                        // answers a stop, a reconnect and parked changes.
                        applying.push_back(self.submit(changes, caught_up, &stats, &parked));
                        progressed = tokio::time::Instant::now();
                    }
                }
            }
        }
    }

    /// Whether the bucket holds revisions past `position` (bounded: an
    /// unanswered question is a no).
    async fn bucket_ahead_of(&self, position: u64) -> bool {
        // Asked of the server: the bucket's `status()` is the info cached
        // when it was opened.
        let info = tokio::time::timeout(STALL_CHECK, self.bucket.stream.get_info()).await;
        matches!(info, Ok(Ok(i)) if i.state.last_sequence > position)
    }

    /// Hands changes to the table owner, to be applied in order in one
    /// turn; the future resolves with one outcome per change handed over
    /// (one superseded by a change waiting to be tried again is not).
    fn submit(
        &self,
        changes: Vec<Change>,
        caught_up: bool,
        stats: &FollowStats,
        parked: &Parked,
    ) -> Applying {
        let mut store = Vec::with_capacity(changes.len());
        let mut todo = Vec::with_capacity(changes.len());
        for change in changes {
            let superseded = parked.is_superseded(&change);
            if superseded {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                store.push(StoreChange {
                    id: change.id.clone(),
                    revision: change.revision,
                    value: change.value.clone(),
                });
            }
            todo.push((change, !superseded));
        }
        let host = self.host.clone();
        Box::pin(async move {
            let outcomes = match store.is_empty() {
                true => Vec::new(),
                false => host.apply_store_changes(store).await,
            };
            (Batch { todo, caught_up }, outcomes)
        })
    }

    /// Settles a batch the owner answered, in order, and tells the
    /// others each change (with `all`, also those not applied now).
    fn finish(
        &self,
        batch: Batch,
        outcomes: Vec<Result<Option<UpdateReport>, CallError>>,
        all: bool,
        stats: &FollowStats,
        parked: &mut Parked,
    ) {
        let mut outcomes = outcomes.into_iter();
        for (change, handed) in batch.todo {
            let mut seen = change.seen();
            if handed {
                // The owner answers every change it is given; a missing
                // answer is one not applied.
                let outcome = outcomes.next().unwrap_or(Err(CallError::Stopped));
                seen.report = self.settle(change, outcome, stats, parked).map(Arc::new);
            }
            seen.handled = std::time::SystemTime::now();
            if all || seen.report.is_some() {
                // Nobody listening is fine.
                let _ = self.changes.send(seen);
            }
        }
    }

    /// Counts and logs what applying `change` came to; keeps it to be
    /// tried again when it was not applied.
    fn settle(
        &self,
        change: Change,
        outcome: Result<Option<UpdateReport>, CallError>,
        stats: &FollowStats,
        parked: &mut Parked,
    ) -> Option<UpdateReport> {
        match outcome {
            Ok(None) => {
                parked.settled(&change);
                stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(report)) => {
                parked.settled(&change);
                match change.value {
                    Some(_) => stats.applied.fetch_add(1, Ordering::Relaxed),
                    None => stats.removed.fetch_add(1, Ordering::Relaxed),
                };
                for f in &report.failures {
                    tracing::warn!(id = %change.id, provider = %f.provider_id, error = %f.error, "delivery failed");
                }
                tracing::debug!(
                    id = %change.id,
                    revision = change.revision,
                    added = report.added.len(),
                    removed = report.removed.len(),
                    "applied spec change"
                );
                return Some(report);
            }
            Err(CallError::Spec(SpecError::Decode { message, .. })) => {
                parked.settled(&change);
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key = %change.key(), revision = change.revision, error = %message, "stored spec does not decode; skipped");
            }
            Err(CallError::Spec(e)) => {
                parked.settled(&change);
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key = %change.key(), revision = change.revision, error = %e, "the plugin refused the spec change; skipped");
            }
            // The owner dropped the call without an answer, or the table
            // is being rebuilt: not applied, so it waits like a fault
            // rather than being lost.
            Err(e) => self.not_applied(change, &e, stats, parked),
        }
        None
    }
}

impl Follower {
    /// Keeps a change that was not applied (a fault, or the table being
    /// rebuilt), to be tried again.
    fn not_applied(&self, change: Change, e: &CallError, stats: &FollowStats, parked: &mut Parked) {
        stats.retried.fetch_add(1, Ordering::Relaxed);
        if e.is_plugin_fault() {
            stats.faults.fetch_add(1, Ordering::Relaxed);
        }
        let (key, revision) = (change.key(), change.revision);
        let wait = parked.park(change, self.host.plugin_version());
        if matches!(e, CallError::NotReady { .. }) {
            // Said once by the owner, not once per change.
            tracing::debug!(%key, revision, error = %e, retry_in = ?wait, "spec change waits for the table's rebuild");
        } else {
            tracing::warn!(%key, revision, error = %error_chain(e), retry_in = ?wait, "spec change not applied; will try again");
        }
    }
}

/// How often the follower checks that its consumer still delivers, and how
/// long a consumer may stay silent while the bucket moves on. An ordered
/// consumer lives on one server; if that server dies, async-nats notices
/// only after two missed heartbeats (about 30 s for a pull consumer).
const STALL_CHECK: Duration = Duration::from_secs(1);
const STALLED: Duration = Duration::from_secs(3);

/// Changes handed to the table owner and read past, waiting for its answer.
struct Batch {
    /// Each change, and whether it was handed over (else superseded).
    todo: Vec<(Change, bool)>,
    /// Whether its last entry was the head of the bucket.
    caught_up: bool,
}

type Applying = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (Batch, Vec<Result<Option<UpdateReport>, CallError>>)>
            + Send,
    >,
>;

/// Batches handed to the owner at once, at most. One: reading the next
/// batch while the owner applies this one was slower on two cores (a
/// catch-up of 300,000 specs: 4.6 s with two, 4.2 s with one), the owner
/// being the busy side. The follower still answers a stop, a stall
/// check or a parked change meanwhile.
const IN_FLIGHT: usize = 1;

/// Entries already at hand that go to the table owner in one turn, at
/// most, and their value bytes (one stored value may be far larger).
const BATCH: usize = 256;
const BATCH_BYTES: usize = 1 << 20;

/// Parked changes probed at once, at most.
const PROBES: usize = 2;

/// How long a parked change being probed is left alone (a probe ends within
/// the call's limits, long before).
const PROBE_WAIT: Duration = Duration::from_secs(60);

/// One change of a spec seen in the bucket.
#[derive(Clone, Debug)]
struct Change {
    id: String,
    revision: u64,
    /// When the store took the write (the server's clock).
    written: std::time::SystemTime,
    /// The value; `None` for a delete or purge.
    value: Option<Arc<[u8]>>,
}

impl Change {
    /// The spec change an entry is, or `None` (counted as skipped) for a
    /// key that is not a spec.
    fn of(entry: kv::Entry, stats: &FollowStats) -> Option<Change> {
        let Some(id) = subjects::component_id(&entry.key) else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        Some(Change {
            id: id.to_string(),
            revision: entry.revision,
            written: entry.created.into(),
            value: match entry.operation {
                Operation::Put => Some(Arc::from(&entry.value[..])),
                Operation::Delete | Operation::Purge => None,
            },
        })
    }

    fn key(&self) -> String {
        subjects::component_key(&self.id)
    }

    /// The change as told to others, before it is applied.
    fn seen(&self) -> SpecChange {
        SpecChange {
            id: self.id.clone(),
            deleted: self.value.is_none(),
            revision: self.revision,
            written: self.written,
            handled: self.written,
            value: self.value.clone(),
            report: None,
        }
    }
}

/// Tries of one change on one build before it waits for another build (a
/// fault repeats on the same input and build; a deadline may not).
const TRIES_PER_BUILD: u32 = 4;

/// Between tries of a change that used up [`TRIES_PER_BUILD`] on the
/// running build: checked without a plugin call every [`MAX_BACKOFF`],
/// tried again at once after a swap, and on the same build this often.
const SAME_BUILD_AGAIN: Duration = Duration::from_secs(60);

/// The longest wait between two looks at a parked change.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One change waiting to be tried again.
struct Waiting {
    change: Change,
    /// Tries so far (for the backoff).
    tries: u32,
    due: tokio::time::Instant,
    /// The build it last failed on, and how often on it.
    build: String,
    tries_on_build: u32,
    last_try: tokio::time::Instant,
}

/// Changes waiting to be tried again: at most one per id (the newest), with
/// when and how often. Each try runs on the follower's loop and holds up
/// the changes behind it for as long as it takes (at most the call's
/// deadline), so a change that keeps failing on one build is tried there
/// [`TRIES_PER_BUILD`] times, then once per [`SAME_BUILD_AGAIN`], and again
/// at once when another build runs.
#[derive(Default)]
struct Parked {
    waiting: HashMap<String, Waiting>,
}

impl Parked {
    fn len(&self) -> u64 {
        self.waiting.len() as u64
    }

    /// A change older than one already waiting for its id is moot.
    fn is_superseded(&self, change: &Change) -> bool {
        self.waiting
            .get(&change.id)
            .is_some_and(|w| w.change.revision > change.revision)
    }

    /// Whether `change` itself is the one waiting for its id.
    fn holds(&self, change: &Change) -> bool {
        self.waiting
            .get(&change.id)
            .is_some_and(|w| w.change.revision == change.revision)
    }

    /// Leaves `id` alone while a probe of it runs.
    fn probing(&mut self, id: &str) {
        if let Some(w) = self.waiting.get_mut(id) {
            w.due = tokio::time::Instant::now() + PROBE_WAIT;
        }
    }

    /// The change (or a newer one of its id) is done with.
    fn settled(&mut self, change: &Change) {
        if self
            .waiting
            .get(&change.id)
            .is_some_and(|w| w.change.revision <= change.revision)
        {
            self.waiting.remove(&change.id);
        }
    }

    /// Keeps `change`, which failed on `build`; returns the wait before the
    /// next look at it.
    fn park(&mut self, change: Change, build: String) -> Duration {
        let (tries, tries_on_build) = match self.waiting.get(&change.id) {
            Some(w) if w.build == build => (w.tries + 1, w.tries_on_build + 1),
            Some(w) => (w.tries + 1, 1),
            None => (0, 1),
        };
        let wait = Duration::from_millis(100 << tries.min(6)).min(MAX_BACKOFF);
        let now = tokio::time::Instant::now();
        self.waiting.insert(
            change.id.clone(),
            Waiting {
                change,
                tries,
                due: now + wait,
                build,
                tries_on_build,
                last_try: now,
            },
        );
        wait
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.waiting.values().map(|w| w.due).min()
    }

    /// The changes to try now on `build`, oldest revision first. They stay
    /// parked (with their try counts) until they settle. One that used up
    /// its tries on `build` is looked at again later, without a try.
    fn take_due(&mut self, build: &str) -> Vec<Change> {
        let now = tokio::time::Instant::now();
        let mut due = Vec::new();
        for w in self.waiting.values_mut() {
            if w.due > now {
                continue;
            }
            let used_up = w.build == build && w.tries_on_build >= TRIES_PER_BUILD;
            if used_up && now.duration_since(w.last_try) < SAME_BUILD_AGAIN {
                w.due = now + MAX_BACKOFF;
                continue;
            }
            due.push(w.change.clone());
        }
        due.sort_by_key(|c| c.revision);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, revision: u64) -> Change {
        Change {
            id: id.into(),
            revision,
            written: std::time::SystemTime::UNIX_EPOCH,
            value: Some(Arc::from(&b"{}"[..])),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_failing_on_one_build_is_tried_there_a_few_times_then_waits_for_another() {
        let mut parked = Parked::default();
        let mut tries_on_a = 0;
        // Ten minutes of looking at it on build A.
        for _ in 0..600 {
            tokio::time::advance(Duration::from_secs(1)).await;
            for c in parked.take_due("A") {
                tries_on_a += 1;
                parked.park(c, "A".into());
            }
            if parked.len() == 0 {
                parked.park(change("poison", 7), "A".into());
                tries_on_a += 1;
            }
        }
        // Four tries, then one a minute.
        assert!(
            tries_on_a <= TRIES_PER_BUILD + 11,
            "{tries_on_a} tries on one build"
        );
        assert!(tries_on_a >= TRIES_PER_BUILD, "{tries_on_a}");
        // Another build: tried within the longest backoff.
        tokio::time::advance(MAX_BACKOFF).await;
        assert_eq!(parked.take_due("B").len(), 1);
    }
}
