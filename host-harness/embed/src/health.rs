//! Whether the table owner's table is whole.
//!
//! The table is lost when an instance faults and the plugin then refuses
//! the host's copy of it (the mirror). The owner rebuilds it from the
//! store; should that fail as well, the table is *degraded*: the reason is
//! shared with readers (status, `link.get`), the owner tries again with a
//! growing wait, and calls that need the table are refused meanwhile.
//! A degraded table is never used as if it were whole.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

/// The first wait before a rebuild is tried again, doubled after each
/// failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The owner's side: the reason, when degraded, and the next try.
pub(crate) struct Health {
    reason: Arc<RwLock<Option<String>>>,
    due: Option<Instant>,
    wait: Duration,
}

impl Health {
    /// A whole table, and the handle readers look at.
    pub fn new() -> (Self, Arc<RwLock<Option<String>>>) {
        let reason = Arc::new(RwLock::new(None));
        let health = Health {
            reason: Arc::clone(&reason),
            due: None,
            wait: FIRST_RETRY,
        };
        (health, reason)
    }

    /// Why the table is degraded; `None` when it is whole.
    pub fn reason(&self) -> Option<String> {
        read(&self.reason)
    }

    /// The reason, while degraded and the next rebuild is not due yet.
    pub fn not_due(&self) -> Option<String> {
        let due = self.due?;
        if Instant::now() >= due {
            return None;
        }
        self.reason()
    }

    /// When the next rebuild is due, while degraded.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Marks the table degraded; returns the wait before the next try.
    pub fn degrade(&mut self, reason: String) -> Duration {
        *self.reason.write().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        let wait = self.wait;
        self.due = Some(Instant::now() + wait);
        self.wait = (self.wait * 2).min(MAX_RETRY);
        wait
    }

    /// Marks the table whole.
    pub fn whole(&mut self) {
        *self.reason.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.due = None;
        self.wait = FIRST_RETRY;
    }
}

/// The reason in a shared handle (a poisoned lock still holds a whole value).
pub(crate) fn read(reason: &RwLock<Option<String>>) -> Option<String> {
    reason.read().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_degraded_table_is_retried_later_and_later_then_whole() {
        let (mut health, shared) = Health::new();
        assert_eq!(health.reason(), None);
        let first = health.degrade("lost".into());
        assert_eq!(read(&shared).as_deref(), Some("lost"));
        assert_eq!(health.not_due().as_deref(), Some("lost"));
        tokio::time::advance(first).await;
        assert_eq!(health.not_due(), None, "due after the wait");
        let second = health.degrade("still lost".into());
        assert_eq!(second, first * 2);
        for _ in 0..10 {
            health.degrade("lost".into());
        }
        assert_eq!(health.degrade("lost".into()), MAX_RETRY);
        health.whole();
        assert_eq!(read(&shared), None);
        assert_eq!(health.due(), None);
    }
}
