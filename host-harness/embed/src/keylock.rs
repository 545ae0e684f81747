//! One writer per spec key at a time, within this host.
//!
//! Writes of different components run at once; writes of the same one wait
//! for each other here, instead of racing each other's compare-and-swap in
//! the store (N concurrent writers of one key on one host would otherwise
//! lose most of their tries to each other). Races with other hosts are
//! still settled by compare-and-swap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The per-key locks; an entry lives only while someone holds or waits
/// for it, so the map is bounded by the requests in flight.
#[derive(Default)]
pub struct KeyLocks {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Held while writing one key; released on drop.
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Entries are whole values: a poisoned lock still holds a valid map.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until this host writes `id` alone.
    pub async fn lock(&self, id: &str) -> KeyGuard<'_> {
        let slot = Arc::clone(self.slots().entry(id.to_string()).or_default());
        let guard = slot.lock_owned().await;
        KeyGuard {
            locks: self,
            id: id.to_string(),
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut slots = self.locks.slots();
        // Nobody else holds or waits for it: forget the key.
        if slots
            .get(&self.id)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            slots.remove(&self.id);
        }
    }
}
