//! [`KeyValue`] on a JetStream KV bucket: one JetStream call per method.
//!
//! | trait method              | JetStream                |
//! |---------------------------|--------------------------|
//! | `get`                     | the last message of the key's subject, from the stream leader (tombstone → absent) |
//! | `set`                     | `put`                    |
//! | `compare_and_swap(Some r)`| `update(key, value, r)`  |
//! | `compare_and_swap(None)`  | `create` (absent or deleted only) |
//! | `delete`                  | a `KV-Operation: DEL` marker (as `delete` writes), returning its sequence |
//! | `list_keys`               | `keys`, filtered by prefix |
//! | `scan`                    | one ordered pull consumer, last entry per key ([`crate::entries`]) |
//!
//! Every call is bounded by the operation timeout. A timeout is reported as
//! [`BackendError::Timeout`] while the client is connected and as
//! [`BackendError::ConnectionLost`] while it is not: either way the write may
//! still be applied later (the client buffers it), so callers re-read before
//! retrying a compare-and-swap, as the plugin does.
//!
//! Transient failures are tried again here first, with a doubling backoff
//! and jitter, for at most twice the operation timeout (and never past the
//! deadline of the plugin call that made them, which drops the attempt);
//! the attempts that may be repeated get a growing slice of the operation
//! timeout each, starting at an eighth:
//! a JetStream leader election, no responders, a cluster not available, or
//! a timeout. Only where a repeat cannot become a second write:
//! reads (`get`, `keys`) and compare-and-swap writes on any of those (if
//! the first attempt was applied after all, the repeat meets a revision
//! mismatch and the caller re-reads, finding its own write); plain puts
//! and delete markers only when the server said no stream answered, so
//! nothing was written.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, PutErrorKind, UpdateErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::entries::operation_of;
use spec_embed::backend::{BackendError, BoxError, Entry, KeyValue};

/// The `LATTICEDATA` bucket as a [`KeyValue`].
#[derive(Clone)]
pub struct JetStreamKv {
    store: kv::Store,
    js: jetstream::Context,
    client: async_nats::Client,
    /// `$JS.{domain}.API.` when the bucket is reached through a domain.
    api_prefix: Option<String>,
    timeout: Duration,
    /// Transient failures tried again (all clones share it).
    retries: Arc<AtomicU64>,
}

/// Which failures of an operation may be tried again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads and compare-and-swap writes: any transient failure.
    Safe,
    /// Plain writes: only when nothing can have been written.
    NothingWritten,
}

/// The first wait before trying again, doubled each time up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// A random fraction in [0.5, 1.5) of `wait` (retries of many clients
/// after one election do not arrive together).
fn jittered(wait: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (n % 1000) as f64 / 1000.0;
    wait.mul_f64(fraction)
}

/// Whether `err` is worth trying again under `repeat`.
fn transient(err: &BackendError, repeat: Repeat) -> bool {
    // Refused by the server's permissions or limits: no repeat changes that.
    let text = spec_embed::backend::error_chain(err).to_ascii_lowercase();
    if ["permission", "authorization", "exceeds", "maximum"]
        .iter()
        .any(|word| text.contains(word))
    {
        return false;
    }
    let nothing_written = match err {
        BackendError::Other { source, .. } => no_stream_answered(source.as_ref()),
        _ => false,
    };
    match repeat {
        Repeat::NothingWritten => nothing_written,
        Repeat::Safe => {
            nothing_written
                || matches!(
                    err,
                    BackendError::Timeout { .. }
                        | BackendError::ConnectionLost { .. }
                        | BackendError::Other { .. }
                )
        }
    }
}

/// True when the chain says no stream (leader) took the request: no
/// responders, the stream not found for the subject, or a cluster or
/// leader not available (an election under way).
fn no_stream_answered(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            let code = js.error_code();
            if code == ErrorCode::CLUSTER_NOT_AVAILABLE
                || code == ErrorCode::CLUSTER_NOT_LEADER
                || code == ErrorCode::STREAM_NOT_FOUND
            {
                return true;
            }
        }
        if let Some(p) = e.downcast_ref::<jetstream::context::PublishError>() {
            if p.kind() == jetstream::context::PublishErrorKind::StreamNotFound {
                return true;
            }
        }
        if let Some(r) = e.downcast_ref::<async_nats::RequestError>() {
            if r.kind() == async_nats::RequestErrorKind::NoResponders {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("no responders") || text.contains("does not exist") {
            return true;
        }
        cause = e.source();
    }
    false
}

#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct Elapsed(Duration);

/// True when a JetStream error in `err`'s chain says the expected last
/// sequence did not match: 10071 ("wrong last sequence: N"), or 10164, the
/// form a clustered stream answers while another write to the key is in
/// flight (the client reports that one as a generic error).
fn is_wrong_last_sequence(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            let code = js.error_code();
            return code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                || code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT;
        }
        cause = e.source();
    }
    false
}

impl JetStreamKv {
    /// Wraps an open bucket, reached through `js` (the lattice's context,
    /// with its JetStream domain if it has one).
    pub fn new(
        store: kv::Store,
        client: async_nats::Client,
        js: jetstream::Context,
        js_domain: Option<&str>,
        timeout: Duration,
    ) -> Self {
        JetStreamKv {
            store,
            js,
            client,
            api_prefix: js_domain.map(|d| format!("$JS.{d}.API.")),
            timeout,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Transient failures tried again so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// [`KeyValue::get`] with a direct get (a bucket of one replica).
    async fn direct_get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        use async_nats::jetstream::stream::DirectGetErrorKind as Kind;
        self.retrying("get", key, Repeat::Safe, || async {
            spec_embed::backend::check_key(key)?;
            let subject = format!("{}{}", self.store.prefix, key);
            match self.store.stream.direct_get_last_for_subject(subject).await {
                Ok(message) => Ok(put_entry(&message)),
                Err(e) => match e.kind() {
                    Kind::NotFound => Ok(None),
                    Kind::InvalidSubject => Err(Self::invalid_key(key, e)),
                    Kind::TimedOut => Err(self.unanswered("get", key, Some(Box::new(e)))),
                    _ => Err(BackendError::Other {
                        op: "get",
                        source: Box::new(e),
                    }),
                },
            }
        })
        .await
    }

    /// Runs `call` (each attempt under [`JetStreamKv::bounded`]) and tries
    /// again after transient failures, as the module header says.
    async fn retrying<T, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        repeat: Repeat,
        mut call: F,
    ) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let budget = tokio::time::Instant::now() + 2 * self.timeout;
        let mut wait = FIRST_BACKOFF;
        // Where a timeout may be repeated, the first attempts get a slice of
        // the operation timeout, growing: a request sent while a leader is
        // being elected is never answered, and waiting out the whole
        // timeout for it kept the first write after a node loss waiting
        // 5 s in every run (reliability suite, cluster-node-kill; 0.4-6.6 s
        // with the slices).
        // A plain write, which is not repeated on a timeout, gets it whole.
        let mut attempt_limit = match repeat {
            Repeat::Safe => (self.timeout / 8).max(Duration::from_millis(100)),
            Repeat::NothingWritten => self.timeout + Duration::from_millis(500),
        };
        loop {
            let limit = attempt_limit.min(self.timeout + Duration::from_millis(500));
            attempt_limit = attempt_limit * 5 / 4;
            let err = match self.bounded(op, key, Some(limit), call()).await {
                Ok(out) => return Ok(out),
                Err(err) => err,
            };
            let pause = jittered(wait);
            if !transient(&err, repeat) || tokio::time::Instant::now() + pause >= budget {
                return Err(err);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(op, key, error = %spec_embed::backend::error_chain(&err), retry_in = ?pause, "transient store failure; trying again");
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    /// The subject a write of `key` is published to: through the domain's
    /// API prefix when the bucket lives in another domain (plain `$KV.`
    /// subjects do not cross a leaf connection), as async-nats' own puts.
    fn subject(&self, key: &str) -> String {
        let prefix = self.store.put_prefix.as_ref().unwrap_or(&self.store.prefix);
        match (&self.api_prefix, self.store.use_jetstream_prefix) {
            (Some(api), true) => format!("{api}{prefix}{key}"),
            _ => format!("{prefix}{key}"),
        }
    }

    /// The underlying bucket (for watchers).
    pub fn bucket(&self) -> &kv::Store {
        &self.store
    }

    fn unanswered(&self, op: &'static str, key: &str, source: Option<BoxError>) -> BackendError {
        if self.client.connection_state() == State::Connected {
            BackendError::Timeout {
                op,
                key: key.to_string(),
                source,
            }
        } else {
            BackendError::ConnectionLost {
                op,
                source: source.unwrap_or_else(|| Box::new(Elapsed(self.timeout))),
            }
        }
    }

    /// Runs one call under `limit`, or the operation timeout (the client's
    /// own timeouts cover most calls; this also bounds the key listing's
    /// stream).
    async fn bounded<T>(
        &self,
        op: &'static str,
        key: &str,
        limit: Option<Duration>,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        // A little slack so that the client's own, more precise, timeout
        // error wins when it fires.
        let limit = limit.unwrap_or(self.timeout + Duration::from_millis(500));
        match tokio::time::timeout(limit, call).await {
            Ok(out) => out,
            Err(_) => Err(self.unanswered(op, key, Some(Box::new(Elapsed(limit))))),
        }
    }

    fn invalid_key(key: &str, source: impl std::error::Error) -> BackendError {
        BackendError::InvalidKey {
            key: key.to_string(),
            reason: source.to_string(),
        }
    }
}

#[async_trait]
impl KeyValue for JetStreamKv {
    /// Read from the stream's leader (`STREAM.MSG.GET`), not with a direct
    /// get: the bucket allows direct gets, which any replica answers, and a
    /// replica that lags after a leader election answers with an older
    /// value. A request that decides from a read without writing (a link
    /// already stored: "unchanged"; another target: "conflict") must not
    /// decide from a stale one.
    ///
    /// A bucket of one replica has no replica to lag behind: there the read
    /// is a direct get, which the stream answers on its own subscription
    /// without the JetStream API's queue (about half the round trip; every
    /// link put reads once).
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;
        let config = &self.store.stream.cached_info().config;
        if config.allow_direct && config.num_replicas <= 1 {
            return self.direct_get(key).await;
        }
        self.retrying("get", key, Repeat::Safe, || async {
            spec_embed::backend::check_key(key)?;
            let subject = format!("{}{}", self.store.prefix, key);
            match self
                .store
                .stream
                .get_last_raw_message_by_subject(&subject)
                .await
            {
                Ok(message) => Ok(put_entry(&message)),
                Err(e) => match e.kind() {
                    Kind::NoMessageFound => Ok(None),
                    Kind::InvalidSubject => Err(Self::invalid_key(key, e)),
                    Kind::Other | Kind::JetStream(_) => Err(BackendError::Other {
                        op: "get",
                        source: Box::new(e),
                    }),
                },
            }
        })
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        let value = Bytes::from(value);
        self.retrying("put", key, Repeat::NothingWritten, || async {
            self.store
                .put(key, value.clone())
                .await
                .map_err(|e| match e.kind() {
                    PutErrorKind::InvalidKey => Self::invalid_key(key, e),
                    PutErrorKind::Ack => self.unanswered("put", key, Some(Box::new(e))),
                    PutErrorKind::Publish => BackendError::Other {
                        op: "put",
                        source: Box::new(e),
                    },
                })
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError> {
        let mismatch = || BackendError::RevisionMismatch {
            key: key.to_string(),
            expected,
        };
        let value = Bytes::from(value);
        self.retrying("update", key, Repeat::Safe, || async {
            match expected {
                Some(revision) => self
                    .store
                    .update(key, value.clone(), revision)
                    .await
                    .map_err(|e| match e.kind() {
                        UpdateErrorKind::WrongLastRevision => mismatch(),
                        _ if is_wrong_last_sequence(&e) => mismatch(),
                        UpdateErrorKind::InvalidKey => Self::invalid_key(key, e),
                        UpdateErrorKind::TimedOut => {
                            self.unanswered("update", key, Some(Box::new(e)))
                        }
                        UpdateErrorKind::Other => BackendError::Other {
                            op: "update",
                            source: Box::new(e),
                        },
                    }),
                // `create` rather than `update(key, v, 0)`: the latter fails
                // on a deleted key, which must count as absent.
                None => self
                    .store
                    .create(key, value.clone())
                    .await
                    .map_err(|e| match e.kind() {
                        CreateErrorKind::AlreadyExists => mismatch(),
                        _ if is_wrong_last_sequence(&e) => mismatch(),
                        CreateErrorKind::InvalidKey => Self::invalid_key(key, e),
                        CreateErrorKind::Publish => {
                            self.unanswered("create", key, Some(Box::new(e)))
                        }
                        _ => BackendError::Other {
                            op: "create",
                            source: Box::new(e),
                        },
                    }),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<u64, BackendError> {
        spec_embed::backend::check_key(key)?;
        // `kv::Store::delete` writes the same marker but drops the ack; its
        // sequence is the delete's revision, which the host needs to order
        // the delete against other writes of the key.
        self.retrying("delete", key, Repeat::NothingWritten, || async {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("KV-Operation", "DEL");
            let failed = |source: BoxError| BackendError::Other {
                op: "delete",
                source,
            };
            let ack = self
                .js
                .publish_with_headers(self.subject(key), headers, Bytes::new())
                .await
                .map_err(|e| failed(Box::new(e)))?
                .await
                .map_err(|e| match e.kind() {
                    jetstream::context::PublishErrorKind::TimedOut => {
                        self.unanswered("delete", key, Some(Box::new(e)))
                    }
                    _ => failed(Box::new(e)),
                })?;
            Ok(ack.sequence)
        })
        .await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.retrying("keys", prefix, Repeat::Safe, || async {
            let keys = self.store.keys().await.map_err(|e| BackendError::Other {
                op: "keys",
                source: Box::new(e),
            })?;
            let all: Vec<String> = keys.try_collect().await.map_err(|e| BackendError::Other {
                op: "keys",
                source: Box::new(e),
            })?;
            Ok(all.into_iter().filter(|k| k.starts_with(prefix)).collect())
        })
        .await
    }

    /// Streams the bucket's newest entry per key, each step under the
    /// operation timeout (a bucket of any size is read this way, never
    /// under one deadline), until the consumer has nothing more pending.
    async fn scan(
        &self,
        prefix: &str,
        out: tokio::sync::mpsc::Sender<(String, Entry)>,
    ) -> Result<(), BackendError> {
        let failed = |source: BoxError| BackendError::Other { op: "scan", source };
        let (pending, mut entries) = self
            .bounded("scan", prefix, None, async {
                crate::entries::entries(&self.store, crate::entries::Start::LastPerKey)
                    .await
                    .map_err(failed)
            })
            .await?;
        if pending == 0 {
            return Ok(());
        }
        loop {
            let next = self
                .bounded("scan", prefix, None, async { Ok(entries.next().await) })
                .await?;
            let entry = match next {
                Some(entry) => entry.map_err(failed)?,
                None => return Err(failed("the bucket's consumer ended early".into())),
            };
            let last = entry.delta == 0;
            if entry.operation == Operation::Put && entry.key.starts_with(prefix) {
                let value = Entry {
                    value: entry.value.to_vec(),
                    revision: entry.revision,
                };
                if out.send((entry.key, value)).await.is_err() {
                    return Ok(());
                }
            }
            if last {
                return Ok(());
            }
        }
    }
}

/// The entry a stream message holds: `None` for a delete or purge marker.
fn put_entry(message: &async_nats::jetstream::message::StreamMessage) -> Option<Entry> {
    (operation_of(Some(&message.headers)) == Operation::Put).then(|| Entry {
        value: message.payload.to_vec(),
        revision: message.sequence,
    })
}
