//! [`KeyValue`] on a JetStream KV bucket: one JetStream call per method.
//!
//! | trait method              | JetStream                |
//! |---------------------------|--------------------------|
//! | `get`                     | `entry` (tombstone → absent) |
//! | `set`                     | `put`                    |
//! | `compare_and_swap(Some r)`| `update(key, value, r)`  |
//! | `compare_and_swap(None)`  | `create` (absent or deleted only) |
//! | `delete`                  | a `KV-Operation: DEL` marker (as `delete` writes), returning its sequence |
//! | `list_keys`               | `keys`, filtered by prefix |
//!
//! Every call is bounded by the operation timeout. A timeout is reported as
//! [`BackendError::Timeout`] while the client is connected and as
//! [`BackendError::ConnectionLost`] while it is not: either way the write may
//! still be applied later (the client buffers it), so callers re-read before
//! retrying a compare-and-swap, as the plugin does.

use std::future::Future;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::kv::{
    self, CreateErrorKind, EntryErrorKind, Operation, PutErrorKind, UpdateErrorKind,
};
use async_nats::jetstream::{self, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;

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

    /// Runs one call under the operation timeout (the client's own timeouts
    /// cover most calls; this also bounds the key listing's stream).
    async fn bounded<T>(
        &self,
        op: &'static str,
        key: &str,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        // A little slack so that the client's own, more precise, timeout
        // error wins when it fires.
        let limit = self.timeout + Duration::from_millis(500);
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
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        self.bounded("get", key, async {
            match self.store.entry(key).await {
                Ok(Some(e)) if e.operation == Operation::Put => Ok(Some(Entry {
                    value: e.value.to_vec(),
                    revision: e.revision,
                })),
                Ok(_) => Ok(None),
                Err(e) => Err(match e.kind() {
                    EntryErrorKind::InvalidKey => Self::invalid_key(key, e),
                    EntryErrorKind::TimedOut => self.unanswered("get", key, Some(Box::new(e))),
                    EntryErrorKind::Other => BackendError::Other {
                        op: "get",
                        source: Box::new(e),
                    },
                }),
            }
        })
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        self.bounded("put", key, async {
            self.store
                .put(key, Bytes::from(value))
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
        self.bounded("update", key, async {
            match expected {
                Some(revision) => self
                    .store
                    .update(key, Bytes::from(value), revision)
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
                    .create(key, Bytes::from(value))
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
        self.bounded("delete", key, async {
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
        self.bounded("keys", prefix, async {
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
}
