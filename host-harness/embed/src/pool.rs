//! Request instances: a bounded pool of instances of one build, each with
//! its own `Store`, made from the one `InstancePre`. Calls of the `specs`
//! interface (no table, no state between calls) run on any of them, so as
//! many run at once as the pool has instances; the rest wait for one.
//!
//! Instances are made on first need and kept while healthy; one that a call
//! poisoned (trap, limit, abandoned mid-call) is dropped and the next
//! request makes a fresh one.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::instance::{Factory, Instance};
use super::runtime::LoadedPlugin;
use crate::error::CallError;

/// A pool of instances of one build.
pub(crate) struct Pool {
    plugin: LoadedPlugin,
    factory: Arc<Factory>,
    idle: Mutex<Vec<Instance>>,
    permits: Semaphore,
    size: usize,
}

impl Pool {
    /// A pool of up to `size` instances of `plugin` (at least one).
    pub fn new(plugin: LoadedPlugin, factory: Arc<Factory>, size: usize) -> Self {
        let size = size.max(1);
        Pool {
            plugin,
            factory,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            size,
        }
    }

    /// How many instances may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Calls running now.
    pub fn busy(&self) -> usize {
        self.size - self.permits.available_permits()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // Only whole instances are pushed and popped: a poisoned lock still
        // holds a consistent list.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An instance for one call, waiting while all are busy.
    pub async fn acquire(&self) -> Result<Pooled<'_>, CallError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Stopped)?;
        let ready = self.idle().pop();
        let instance = match ready {
            Some(instance) => instance,
            None => self.factory.instantiate(&self.plugin).await?,
        };
        Ok(Pooled {
            pool: self,
            instance: ManuallyDrop::new(instance),
            _permit: permit,
        })
    }

    /// Makes one instance ready, proving the build instantiates.
    pub async fn warm(&self) -> Result<(), CallError> {
        let instance = self.factory.instantiate(&self.plugin).await?;
        self.idle().push(instance);
        Ok(())
    }
}

/// An instance taken from the pool; back in it when dropped, unless a call
/// poisoned it.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    instance: ManuallyDrop<Instance>,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Pooled<'_> {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.instance
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Instance {
        &mut self.instance
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        // SAFETY: `instance` is taken exactly once, here, and never used
        // after.
        let instance = unsafe { ManuallyDrop::take(&mut self.instance) };
        if !instance.is_poisoned() {
            self.pool.idle().push(instance);
        }
    }
}
