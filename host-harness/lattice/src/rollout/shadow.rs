//! Shadowing a new build: it runs beside the live one on the live requests
//! and bucket changes, with its writes and deliveries captured instead of
//! performed, and what it would have done is compared with what the live
//! build did:
//!
//! * a `link.put` / `link.del` runs on the live build first, with the store
//!   reads it made noted ([`record_reads`] and [`ReadLog`]); then, off the
//!   request path, the shadow runs the same request on *exactly those
//!   reads* — so another host writing the same spec at the same moment can
//!   never make the two differ — and the bytes each wrote and their replies
//!   are compared;
//! * every change the follower applies to the live table is applied to the
//!   shadow's table too (it started from the live table and the revisions
//!   it held): the links each adds and removes — its deliveries — are
//!   compared.
//!
//! A trap or limit hit in the shadow is a fault of the new build. A build
//! that cannot read the table's snapshot format is refused before anything
//! runs. Comparisons queue at most [`MAX_QUEUED`] deep; past that they are
//! skipped and counted, never waited for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use spec_model::{Link, NotifyError, UpdateReport};
use tokio::sync::Semaphore;

use super::store::{DiffKind, ShadowReport};
use spec_embed::backend::{error_chain, BackendError, Entry, KeyValue, ProviderNotify};
use spec_embed::error::CallError;
use spec_embed::{Handoff, LoadedPlugin, PluginLimits, SpecHost};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A multi-line error (a wasm backtrace) as its first and last lines.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    match lines.next_back() {
        Some(last) => format!("{first} … {last}"),
        None => first,
    }
}

/// What a request read from the store, by key (the last read of each).
pub type Reads = HashMap<String, Option<Entry>>;

tokio::task_local! {
    /// The reads of the live request running in this task, if noted.
    static LIVE_READS: Mutex<Reads>;
    /// The shadow request running in this task: what it must read, and
    /// what it wrote.
    static SHADOW_CALL: ShadowCall;
}

struct ShadowCall {
    reads: Reads,
    writes: Mutex<HashMap<String, Option<Vec<u8>>>>,
}

/// Runs `live` noting every store read made through a [`ReadLog`] in it.
pub async fn record_reads<F: std::future::Future>(live: F) -> (F::Output, Reads) {
    LIVE_READS
        .scope(Mutex::new(Reads::new()), async move {
            let out = live.await;
            let reads = LIVE_READS.with(|r| std::mem::take(&mut *lock(r)));
            (out, reads)
        })
        .await
}

/// The live store, noting reads made inside [`record_reads`] (anything
/// else passes straight through, at the cost of one task-local lookup).
pub struct ReadLog {
    inner: Arc<dyn KeyValue>,
}

impl ReadLog {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn KeyValue>) -> Self {
        ReadLog { inner }
    }
}

#[async_trait]
impl KeyValue for ReadLog {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        let entry = self.inner.get(key).await?;
        let _ = LIVE_READS.try_with(|r| lock(r).insert(key.to_string(), entry.clone()));
        Ok(entry)
    }
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        self.inner.set(key, value).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError> {
        self.inner.compare_and_swap(key, value, expected).await
    }
    async fn delete(&self, key: &str) -> Result<u64, BackendError> {
        self.inner.delete(key).await
    }
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.inner.list_keys(prefix).await
    }
}

/// The shadow's store: in a shadow request, reads what the live request
/// read and keeps its writes to itself; anything else reads the real store
/// (table rebuilds) and writes nothing.
struct CaptureKv {
    real: Arc<dyn KeyValue>,
}

/// A revision for writes that never happened (never compared).
const CAPTURED: u64 = u64::MAX / 2;

impl CaptureKv {
    fn write(&self, key: &str, value: Option<Vec<u8>>) {
        let _ = SHADOW_CALL.try_with(|c| lock(&c.writes).insert(key.to_string(), value));
    }
}

#[async_trait]
impl KeyValue for CaptureKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        let given = SHADOW_CALL
            .try_with(|c| c.reads.get(key).cloned())
            .ok()
            .flatten();
        match given {
            Some(entry) => Ok(entry),
            None => self.real.get(key).await,
        }
    }
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        self.write(key, Some(value));
        Ok(CAPTURED)
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError> {
        // Faithful to the rule (a stale read fails) against what it read.
        let current = self.get(key).await?.map(|e| e.revision);
        if current != expected {
            return Err(BackendError::RevisionMismatch {
                key: key.to_string(),
                expected,
            });
        }
        self.write(key, Some(value));
        Ok(CAPTURED)
    }
    async fn delete(&self, key: &str) -> Result<u64, BackendError> {
        self.write(key, None);
        Ok(CAPTURED)
    }
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.real.list_keys(prefix).await
    }
}

/// Knows the live host's providers; delivers nothing.
struct CaptureNotify {
    providers: Vec<String>,
}

#[async_trait]
impl ProviderNotify for CaptureNotify {
    fn local_providers(&self) -> Vec<String> {
        self.providers.clone()
    }
    async fn link_put(&self, _: &str, _: &Link) -> Result<(), NotifyError> {
        Ok(())
    }
    async fn link_delete(&self, _: &str, _: &Link) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// What one request did (or would have done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOutcome {
    /// `Ok(())` or the error message.
    pub reply: Result<(), String>,
    /// What it wrote to its source's key (`None`: nothing).
    pub written: Option<Vec<u8>>,
}

/// A request the shadow can repeat.
#[derive(Clone, Debug)]
pub enum Request {
    /// `link.put`
    Put(Link),
    /// `link.del`: source, namespace, package, name.
    Del(String, String, String, String),
}

impl Request {
    fn source(&self) -> &str {
        match self {
            Request::Put(link) => &link.source_id,
            Request::Del(source, ..) => source,
        }
    }

    fn describe(&self) -> String {
        match self {
            Request::Put(l) => format!(
                "link.put {} -[{}:{}/{}]-> {}",
                l.source_id, l.wit_namespace, l.wit_package, l.name, l.target
            ),
            Request::Del(s, ns, pkg, name) => format!("link.del {s} {ns}:{pkg}/{name}"),
        }
    }
}

/// A new build running beside the live one.
pub struct Shadow {
    host: SpecHost,
    expect: Vec<DiffKind>,
    report: Mutex<ShadowReport>,
    queue: Arc<Semaphore>,
}

/// Examples kept in a report.
const EXAMPLES: usize = 5;

/// Comparisons waiting or running at once, at most.
pub const MAX_QUEUED: usize = 256;

/// The longest a shadow call may take (it never holds up a live request,
/// but a build that hangs must not pile up comparisons).
pub const SHADOW_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// Request instances of a shadow build.
const SHADOW_POOL: usize = 4;

impl Shadow {
    /// Starts `plugin` over the live store (read-only) and the live
    /// providers' ids, with the live table handed over to it. Refused (with
    /// the reason) when the build cannot take over the table.
    pub async fn start(
        plugin: LoadedPlugin,
        real: Arc<dyn KeyValue>,
        providers: Vec<String>,
        limits: PluginLimits,
        table: Handoff,
        expect: Vec<DiffKind>,
    ) -> Result<Shadow, CallError> {
        let limits = PluginLimits {
            deadline: limits.deadline.min(SHADOW_DEADLINE),
            ..limits
        };
        let host = SpecHost::start_with_pool(
            plugin,
            Arc::new(CaptureKv { real }),
            Arc::new(CaptureNotify { providers }),
            limits,
            SHADOW_POOL,
        )
        .await?;
        // Its writes are captured, never stored: its table follows the
        // store's changes as the live one does, not its own writes.
        host.followed_by_bucket_watch(true);
        // A build that does not read the table's format refuses here.
        host.take_over(table).await?;
        Ok(Shadow {
            host,
            expect,
            report: Mutex::new(ShadowReport::default()),
            queue: Arc::new(Semaphore::new(MAX_QUEUED)),
        })
    }

    /// What was found so far.
    pub fn report(&self) -> ShadowReport {
        lock(&self.report).clone()
    }

    fn fault(&self, what: &str, e: &CallError) {
        let mut r = lock(&self.report);
        r.faults += 1;
        if r.examples.len() < EXAMPLES {
            r.examples
                .push(format!("fault in {what}: {}", one_line(&error_chain(e))));
        }
    }

    fn differs(&self, kind: DiffKind, example: String) {
        let mut r = lock(&self.report);
        *r.differences.entry(kind.name().to_string()).or_default() += 1;
        if !self.expect.contains(&kind) {
            r.unexpected += 1;
            if r.examples.len() < EXAMPLES {
                r.examples.push(example);
            }
        }
    }

    /// Repeats a live request on the shadow, in the background, given the
    /// reads the live one made, and compares the outcomes.
    pub fn compare(self: &Arc<Self>, request: Request, reads: Reads, live: RequestOutcome) {
        let Ok(permit) = Arc::clone(&self.queue).try_acquire_owned() else {
            lock(&self.report).skipped += 1;
            return;
        };
        let shadow = Arc::clone(self);
        tokio::spawn(async move {
            let call = ShadowCall {
                reads,
                writes: Mutex::new(HashMap::new()),
            };
            let (out, writes) = SHADOW_CALL
                .scope(call, async {
                    let out = shadow.run(&request).await;
                    let writes = SHADOW_CALL.with(|c| std::mem::take(&mut *lock(&c.writes)));
                    (out, writes)
                })
                .await;
            drop(permit);
            let reply = match out {
                Ok(()) => Ok(()),
                Err(e) if e.is_plugin_fault() => {
                    shadow.fault(&request.describe(), &e);
                    return;
                }
                Err(e) => Err(error_chain(&e)),
            };
            let key = spec_model::keys::component_key(request.source());
            let outcome = RequestOutcome {
                reply,
                written: writes.get(&key).cloned().flatten(),
            };
            shadow.compare_request(&request.describe(), &outcome, &live);
        });
    }

    async fn run(&self, request: &Request) -> Result<(), CallError> {
        match request {
            Request::Put(link) => self.host.put_link(link.clone()).await.map(|_| ()),
            Request::Del(source, ns, pkg, name) => self
                .host
                .delete_link(source, ns, pkg, Some(name))
                .await
                .map(|_| ()),
        }
    }

    fn compare_request(&self, what: &str, shadow: &RequestOutcome, live: &RequestOutcome) {
        lock(&self.report).compared += 1;
        if shadow.reply != live.reply {
            self.differs(
                DiffKind::Replies,
                format!(
                    "{what}: reply {:?} on the new build, {:?} on the live one",
                    shadow.reply, live.reply
                ),
            );
        }
        if shadow.written != live.written {
            let show = |w: &Option<Vec<u8>>| {
                w.as_ref()
                    .map(|b| {
                        String::from_utf8_lossy(b)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    })
                    .unwrap_or_else(|| "nothing".into())
            };
            self.differs(
                DiffKind::Stored,
                format!(
                    "{what}: the new build writes {}; the live one wrote {}",
                    show(&shadow.written),
                    show(&live.written)
                ),
            );
        }
    }

    /// Applies a change the live table saw, and compares what each table
    /// added and removed when both applied it now (`None` live report: the
    /// live table held it already, refused it or will try again).
    pub async fn follow(
        &self,
        id: &str,
        revision: u64,
        value: Option<Vec<u8>>,
        live: Option<&UpdateReport>,
    ) {
        let shadow = match self.host.apply_store_change(id, revision, value).await {
            Ok(Some(report)) => report,
            Ok(None) => return,
            Err(e) if e.is_plugin_fault() => {
                self.fault(&format!("applying {id}@{revision}"), &e);
                return;
            }
            Err(e) => {
                if live.is_some() {
                    lock(&self.report).compared += 1;
                    self.differs(
                        DiffKind::Deliveries,
                        format!(
                            "{id}@{revision}: the new build refuses the change ({}); the live one applied it",
                            error_chain(&e)
                        ),
                    );
                }
                return;
            }
        };
        let Some(live) = live else {
            return;
        };
        lock(&self.report).compared += 1;
        let sorted = |links: &[Link]| {
            let mut v = links.to_vec();
            v.sort();
            v
        };
        if sorted(&shadow.added) != sorted(&live.added)
            || sorted(&shadow.removed) != sorted(&live.removed)
        {
            self.differs(
                DiffKind::Deliveries,
                format!(
                    "{id}@{revision}: the new build adds {} and removes {} link(s); the live one added {} and removed {}",
                    shadow.added.len(),
                    shadow.removed.len(),
                    live.added.len(),
                    live.removed.len()
                ),
            );
        }
    }

    /// Waits (at most `limit`) for the comparisons under way to finish.
    pub async fn drain(&self, limit: std::time::Duration) {
        let all = u32::try_from(MAX_QUEUED).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(limit, self.queue.acquire_many(all)).await;
    }

    /// Counts comparisons that could not be made.
    pub fn skipped(&self, n: u64) {
        lock(&self.report).skipped += n;
    }

    /// The stream of live changes dropped `n` of them before the shadow
    /// saw them: its table is no longer the live one's, and every later
    /// comparison of deliveries would differ for that alone. It takes the
    /// live table over again (`live`'s, at one point among its changes;
    /// changes up to there are then skipped by revision). A build that
    /// cannot take it is a fault.
    pub async fn lagged(&self, n: u64, live: &SpecHost) {
        self.skipped(n);
        let resynced = match live.handoff().await {
            Ok(table) => self.host.take_over(table).await,
            Err(e) => Err(e),
        };
        match resynced {
            Ok(()) => lock(&self.report).resynced += 1,
            Err(e) if e.is_plugin_fault() => self.fault("taking over the live table again", &e),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "shadow: cannot take over the live table again")
            }
        }
    }
}
