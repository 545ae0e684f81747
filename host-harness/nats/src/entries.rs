//! The spec bucket read as a stream of [`kv::Entry`] through an ordered
//! *pull* consumer — for the follower and for rebuilding a table.
//!
//! async-nats's own KV watch is a push consumer: the server sends as fast
//! as it can and the client's subscription buffer (65,536 messages) is all
//! that stands between a catch-up of a large bucket and dropped messages
//! ("slow consumer"), which the consumer then repairs by starting over. A
//! pull consumer asks for a batch at a time, so a host that applies more
//! slowly than the server sends only makes the server wait.

use async_nats::jetstream::consumer::{pull, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::kv::{self, Operation};
use futures::{Stream, StreamExt};

use spec_embed::backend::BoxError;

/// Where a read of the bucket starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The newest entry of every key (delete markers included), then every
    /// later write.
    LastPerKey,
    /// Every write after this revision.
    After(u64),
}

/// Entries of `store` from `start`, and how many the server holds for the
/// consumer at its start (0: nothing to catch up with). Each entry's
/// `delta` counts those still to come.
pub async fn entries(
    store: &kv::Store,
    start: Start,
) -> Result<(u64, impl Stream<Item = Result<kv::Entry, BoxError>> + Unpin), BoxError> {
    let deliver_policy = match start {
        Start::LastPerKey => DeliverPolicy::LastPerSubject,
        Start::After(revision) => DeliverPolicy::ByStartSequence {
            start_sequence: revision + 1,
        },
    };
    let consumer = store
        .stream
        .create_consumer(pull::OrderedConfig {
            description: Some("spec-host bucket reader".to_string()),
            filter_subject: format!("{}>", store.prefix),
            replay_policy: ReplayPolicy::Instant,
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let pending = consumer.cached_info().num_pending;
    let prefix = store.prefix.clone();
    let bucket = store.name.clone();
    let messages = consumer.messages().await?;
    let stream = messages.map(move |message| -> Result<kv::Entry, BoxError> {
        let message = message?;
        let info = message.info()?;
        let key = message
            .subject
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| format!("entry on {} outside the bucket", message.subject))?
            .to_string();
        Ok(kv::Entry {
            bucket: bucket.clone(),
            key,
            value: message.payload.clone(),
            revision: info.stream_sequence,
            created: info.published,
            delta: info.pending,
            operation: operation_of(message.message.headers.as_ref()),
            seen_current: info.pending == 0,
        })
    });
    Ok((pending, stream))
}

/// What a stored message is: a put, or a delete or purge marker (set by
/// the writer's `KV-Operation` header, or by the server's marker reason
/// for a key removed by age or purge).
pub(crate) fn operation_of(headers: Option<&async_nats::HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    if let Some(op) = headers.get("KV-Operation") {
        return match op.as_str() {
            "DEL" => Operation::Delete,
            "PURGE" => Operation::Purge,
            _ => Operation::Put,
        };
    }
    match headers.get("Nats-Marker-Reason").map(|r| r.as_str()) {
        Some("Remove") => Operation::Delete,
        Some("MaxAge" | "Purge") => Operation::Purge,
        _ => Operation::Put,
    }
}
