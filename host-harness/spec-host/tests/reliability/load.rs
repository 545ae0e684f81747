//! The load: N clients, each a wasmCloud control client
//! (`wasmcloud-control-interface` over async-nats 0.39), sending link puts
//! and deletes through `wasmbus.ctl.v1.{lattice}.link.*` one after another.
//!
//! Client `c` owns the keys `(comp{k}, c{c}-l{j})` for k < 4, j < 5: the
//! sources overlap across clients, the names do not, so operations of two
//! clients never conflict and their order does not matter; the model of
//! each key is exact. Each reply feeds the model: success or conflict is
//! acknowledged, anything else (timeout, error reply, client error) is not.
//!
//! Clients run at least `ops` operations each; while a fault is being
//! injected (the [`Gate`] is open) they keep going, paced, and after it
//! ends each does at least `ops / 4` more, so every fault happens under
//! load and is followed by load.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats_039 as nats039;
use tokio::sync::watch;
use wasmcloud_control_interface::{Client as CtlClient, ClientBuilder, Link};

use super::model::{Change, KeyModel, LinkKey, Outcome, CONFLICT, NAMESPACE, PACKAGE};

/// Reply timeout of the control client.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one operation, beyond the client's own timeout: longer is a hang.
pub const HANG_BOUND: Duration = Duration::from_secs(30);
/// Sources shared by all clients.
pub const SOURCES: usize = 4;
/// Names per client.
pub const NAMES: usize = 5;
const TARGETS: [&str; 3] = ["prov-a", "prov-b", "prov-x"];
const INTERFACES: [&[&str]; 3] = [&["store"], &["atomics"], &["store", "atomics"]];

/// Deterministic pseudo-random numbers (SplitMix64).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How a reply was classified.
#[derive(Debug)]
pub enum Reply {
    /// Acknowledged.
    Acked(Outcome),
    /// Not acknowledged, with the error.
    Unacked(String),
}

/// A control client on an async-nats 0.39 connection to any of `urls`.
pub async fn ctl_client(urls: &[String], lattice: &str) -> CtlClient {
    let nc = nats039::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .reconnect_delay_callback(|attempts| Duration::from_millis((50 * attempts as u64).min(500)))
        .connect(urls)
        .await
        .expect("0.39 client connects");
    ClientBuilder::new(nc)
        .lattice(lattice)
        .timeout(REPLY_TIMEOUT)
        .build()
}

/// A link of the suite.
pub fn link(key: &LinkKey, target: &str, interfaces: &[String]) -> Link {
    Link::builder()
        .source_id(&key.source)
        .target(target)
        .name(&key.name)
        .wit_namespace(NAMESPACE)
        .wit_package(PACKAGE)
        .interfaces(interfaces.to_vec())
        .build()
        .expect("a complete link")
}

/// Sends one operation and classifies the reply; never waits longer than
/// [`HANG_BOUND`] (`hung` tells).
pub async fn send(ctl: &CtlClient, key: &LinkKey, change: &Change) -> (Reply, bool) {
    let request = async {
        match change {
            Change::Put { target, interfaces } => ctl.put_link(link(key, target, interfaces)).await,
            Change::Delete => {
                ctl.delete_link(&key.source, &key.name, NAMESPACE, PACKAGE)
                    .await
            }
        }
    };
    match tokio::time::timeout(HANG_BOUND, request).await {
        Err(_) => (
            Reply::Unacked(format!("no answer within {HANG_BOUND:?}")),
            true,
        ),
        Ok(Err(e)) => (Reply::Unacked(format!("client error: {e}")), false),
        Ok(Ok(r)) if r.succeeded() => (Reply::Acked(Outcome::Ok), false),
        Ok(Ok(r)) if r.message().contains(CONFLICT) => (Reply::Acked(Outcome::Conflict), false),
        Ok(Ok(r)) => (
            Reply::Unacked(format!("error reply: {}", r.message())),
            false,
        ),
    }
}

/// Progress shared between the clients and the fault injector.
#[derive(Default)]
pub struct Progress {
    /// Operations started per client.
    pub per_client: Vec<AtomicUsize>,
    /// Acknowledged operations, all clients.
    pub acked: AtomicU64,
    /// Unacknowledged operations, all clients.
    pub unacked: AtomicU64,
    /// Latest start, in ms since the load began, of an acknowledged
    /// operation: once past a moment, an operation sent after it succeeded.
    pub acked_start_ms: AtomicU64,
    /// When, in ms since the load began, the latest acknowledgement came.
    pub last_ack_ms: AtomicU64,
    /// Longest time, in ms, between two acknowledgements (any clients).
    pub longest_gap_ms: AtomicU64,
    /// When the load began.
    pub began: Option<Instant>,
}

impl Progress {
    /// Counts an operation started at `started` as acknowledged now, and
    /// the gap since the acknowledgement before it.
    pub fn acked_op(&self, started: Instant) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        self.acked_start_ms
            .fetch_max(self.ms(started), Ordering::Relaxed);
        let now = self.ms(Instant::now());
        let before = self.last_ack_ms.fetch_max(now, Ordering::Relaxed);
        if now > before {
            self.longest_gap_ms
                .fetch_max(now - before, Ordering::Relaxed);
        }
    }

    /// Fewest operations any client has started.
    pub fn min(&self) -> usize {
        self.per_client
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
    /// `t` in ms since the load began.
    pub fn ms(&self, t: Instant) -> u64 {
        self.began
            .map(|b| t.saturating_duration_since(b).as_millis() as u64)
            .unwrap_or_default()
    }

    /// Waits until an operation sent after `t` is acknowledged (bounded);
    /// returns how long after `t` that was.
    pub async fn first_ack_sent_after(&self, t: Instant, limit: Duration) -> Duration {
        let mark = self.ms(t);
        while self.acked_start_ms.load(Ordering::Relaxed) <= mark {
            assert!(
                t.elapsed() < limit,
                "no operation sent after the fault was acknowledged within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t.elapsed()
    }

    /// Operations started, all clients.
    pub fn total(&self) -> usize {
        self.per_client
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Open while a fault is injected; clients wait for it to close before
/// finishing.
pub struct Gate {
    tx: watch::Sender<bool>,
}

impl Gate {
    /// Closes it: the fault and the recovery are over.
    pub fn close(&self) {
        let _ = self.tx.send(true);
    }
}

/// What the load did and what the model expects.
#[derive(Default)]
pub struct Outcomes {
    /// Operations sent.
    pub ops: usize,
    /// Success replies.
    pub ok: usize,
    /// Conflict replies (refused by the rules, as the model predicted).
    pub conflict: usize,
    /// Unacknowledged operations.
    pub unacked: usize,
    /// Operations that hit [`HANG_BOUND`].
    pub hung: usize,
    /// Unacknowledged errors by kind.
    pub errors: BTreeMap<String, usize>,
    /// Replies that fit no possible state.
    pub wrong_replies: Vec<String>,
    /// Slowest reply.
    pub slowest: Duration,
    /// Per key, the possible states.
    pub model: BTreeMap<LinkKey, KeyModel>,
}

impl Outcomes {
    /// Records one reply.
    pub fn record(
        &mut self,
        key: &LinkKey,
        change: Change,
        reply: Reply,
        hung: bool,
        took: Duration,
    ) {
        self.ops += 1;
        self.slowest = self.slowest.max(took);
        self.hung += usize::from(hung);
        let model = self.model.entry(key.clone()).or_default();
        match reply {
            Reply::Acked(outcome) => {
                match outcome {
                    Outcome::Ok => self.ok += 1,
                    Outcome::Conflict => self.conflict += 1,
                }
                if let Err(e) = model.acked(&change, outcome) {
                    self.wrong_replies.push(format!("{key}: {e}"));
                }
            }
            Reply::Unacked(error) => {
                self.unacked += 1;
                *self.errors.entry(error_kind(&error)).or_default() += 1;
                model.unacked(change);
            }
        }
    }

    /// Adds another client's outcomes (disjoint keys).
    pub fn merge(&mut self, other: Outcomes) {
        self.ops += other.ops;
        self.ok += other.ok;
        self.conflict += other.conflict;
        self.unacked += other.unacked;
        self.hung += other.hung;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.wrong_replies.extend(other.wrong_replies);
        self.slowest = self.slowest.max(other.slowest);
        self.model.extend(other.model);
    }
}

/// An error message with ids and numbers blurred, to count kinds.
pub fn error_kind(error: &str) -> String {
    let blurred: String = error
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    let mut kind: String = blurred.chars().take(110).collect();
    if blurred.chars().count() > 110 {
        kind.push('…');
    }
    kind
}

/// The load's shape.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Clients.
    pub clients: usize,
    /// Operations per client (at least).
    pub ops: usize,
    /// Seed of the operation mix.
    pub seed: u64,
}

/// A running load.
pub struct Load {
    /// Shared progress.
    pub progress: Arc<Progress>,
    tasks: Vec<tokio::task::JoinHandle<Outcomes>>,
    started: Instant,
}

/// Starts the load; the returned gate is open until [`Gate::close`].
pub async fn start(urls: &[String], lattice: &str, plan: Plan, fault: bool) -> (Load, Gate) {
    let (tx, rx) = watch::channel(!fault);
    let progress = Arc::new(Progress {
        per_client: (0..plan.clients).map(|_| AtomicUsize::new(0)).collect(),
        began: Some(Instant::now()),
        ..Progress::default()
    });
    let mut tasks = Vec::new();
    for c in 0..plan.clients {
        let ctl = ctl_client(urls, lattice).await;
        let progress = Arc::clone(&progress);
        let done = rx.clone();
        let rng = Rng::new(plan.seed ^ (c as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(client(c, ctl, rng, plan.ops, progress, done)));
    }
    let load = Load {
        progress,
        tasks,
        started: Instant::now(),
    };
    (load, Gate { tx })
}

async fn client(
    c: usize,
    ctl: CtlClient,
    mut rng: Rng,
    ops: usize,
    progress: Arc<Progress>,
    done: watch::Receiver<bool>,
) -> Outcomes {
    let mut out = Outcomes::default();
    let (mut j, mut after) = (0usize, 0usize);
    let mut backoff = Duration::from_millis(50);
    // Bounded whatever happens: the injector's steps are bounded too.
    let cap = ops.saturating_mul(40).max(400);
    while j < cap {
        let fault_over = *done.borrow();
        if fault_over && j >= ops && after >= ops / 4 {
            break;
        }
        if !fault_over && j >= ops {
            // Keep the load on while the fault lasts, without flooding.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let key = LinkKey {
            source: format!("comp{}", rng.below(SOURCES)),
            name: format!("c{c}-l{}", rng.below(NAMES)),
        };
        let change = if rng.below(100) < 65 {
            Change::Put {
                target: TARGETS[rng.below(TARGETS.len())].to_string(),
                interfaces: INTERFACES[rng.below(INTERFACES.len())]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }
        } else {
            Change::Delete
        };
        let started = Instant::now();
        let (reply, hung) = send(&ctl, &key, &change).await;
        let acked = matches!(reply, Reply::Acked(_));
        out.record(&key, change, reply, hung, started.elapsed());
        j += 1;
        if fault_over {
            after += 1;
        }
        progress.per_client[c].store(j, Ordering::Relaxed);
        if acked {
            progress.acked_op(started);
            backoff = Duration::from_millis(50);
        } else {
            progress.unacked.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
    out
}

impl Load {
    /// Waits until every client has started `n` operations (bounded).
    pub async fn reached(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.progress.min() < n {
            assert!(
                Instant::now() < deadline,
                "load stalled: clients at {} of {n} ops after {limit:?}",
                self.progress.min()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for every client (bounded) and merges their outcomes.
    pub async fn join(self, limit: Duration) -> (Outcomes, Duration) {
        let mut all = Outcomes::default();
        let deadline = tokio::time::Instant::now() + limit;
        for task in self.tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(out)) => all.merge(out),
                Ok(Err(e)) => panic!("load client failed: {e}"),
                Err(_) => {
                    abort.abort();
                    panic!("load did not finish within {limit:?}: a hang");
                }
            }
        }
        (all, self.started.elapsed())
    }
}
