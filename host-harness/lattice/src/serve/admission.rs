//! Bounded admission: how many requests a host handles at once, and how
//! many of those read the whole table.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::{ctl, Service};

/// A request's places: one among all requests, one more among the reads.
pub(crate) struct Admitted {
    _request: OwnedSemaphorePermit,
    _read: Option<OwnedSemaphorePermit>,
}

impl Service {
    /// A place among the requests handled now, or `None` when full.
    pub(crate) fn admit(&self) -> Option<Admitted> {
        self.admit_as(false)
    }

    /// A place for a read of the whole table, or `None` when full.
    pub(crate) fn admit_read(&self) -> Option<Admitted> {
        self.admit_as(true)
    }

    fn admit_as(&self, read: bool) -> Option<Admitted> {
        let request = Arc::clone(&self.admission).try_acquire_owned().ok();
        let read = match read {
            true => Arc::clone(&self.reads).try_acquire_owned().ok().map(Some),
            false => Some(None),
        };
        match (request, read) {
            (Some(request), Some(read)) => Some(Admitted {
                _request: request,
                _read: read,
            }),
            _ => {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// The reply to a request that found admission full.
pub(crate) fn busy_reply(service: &Service) -> bytes::Bytes {
    ctl::Handled::from(ctl::failure(format!(
        "spec-host {} is busy ({} requests in flight); try again",
        service.host_id,
        service.max_in_flight()
    )))
    .reply
}
