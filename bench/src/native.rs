//! [`NativeHost`]: the plugin's logic compiled natively, in the same shape
//! as `SpecHost`'s engine, over the same async backends.
//!
//! As in `SpecHost`:
//! * store work (`spec_plugin::specs`) runs on the caller's task, up to a
//!   pool's worth at once, one writer per component key;
//! * the table (`spec_plugin::host_table::HostTable`) has one owner that
//!   applies what was written, at its revision, one change at a time,
//!   skipping revisions it already holds.
//!
//! The logic is synchronous (`spec_plugin::backend::KeyValue` and `ProviderNotify`
//! are blocking traits), so each backend call is bridged to the same
//! `Arc<dyn KeyValue>` / `Arc<dyn ProviderNotify>` the plugin path uses:
//! the backend's future is polled once, and only if it is not ready at once
//! (real I/O, e.g. JetStream) does the call block on it with
//! `Handle::block_on` inside `block_in_place`. Where the table owner runs
//! is a [`Placement`]:
//!
//! * [`Placement::Task`]: a task on the runtime, like `SpecHost`'s owner;
//! * [`Placement::Thread`]: a dedicated OS thread; every table call crosses
//!   threads twice but a pending I/O only parks that thread.
//!
//! Neither is free, and which costs less depends on the workload, so the
//! NATS section measures both and compares the plugin with the faster.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use spec_embed::backend::{BackendError, KeyValue, ProviderNotify};
use spec_embed::keylock::KeyLocks;
use spec_model::Entry;
use spec_model::{
    Applied, ComponentSpecification, DeleteLinkResult, Link, NotifyError, PutLinkResult, SpecError,
    StoreError, UpdateReport, Written,
};
// The plugin's synchronous traits beside the host's async ones of the same names.
use spec_plugin::backend::{KeyValue as SyncKeyValue, ProviderNotify as SyncProviderNotify};
use spec_plugin::host_table::HostTable;
use spec_plugin::specs;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Runs a backend future to completion from the synchronous logic: one
/// poll (the in-memory backends are always ready), else block on it.
fn wait<F: Future>(rt: &Handle, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    // The backends use tokio's timers and I/O, which need the runtime's
    // context even for one poll (the dedicated thread has none of its own).
    let first = {
        let _context = rt.enter();
        fut.as_mut().poll(&mut cx)
    };
    if let Poll::Ready(out) = first {
        return out;
    }
    // The noop waker of the first poll is replaced by block_on's own on the
    // next poll, so no wake-up is lost. Off the runtime's threads (the
    // dedicated worker thread) `block_in_place` just runs the closure.
    tokio::task::block_in_place(|| rt.block_on(fut))
}

/// `spec_plugin::backend::KeyValue` over a host `KeyValue`.
struct KvBridge {
    kv: Arc<dyn KeyValue>,
    rt: Handle,
    /// Compare-and-swap losses in the current call, for the backoff.
    cas_losses: u32,
}

/// The pause after a lost compare-and-swap, as the host gives the plugin
/// (a random share of a window doubling per loss, capped at 64 ms): without
/// it the native side would retry faster under contention and the
/// comparison would not be of the same logic.
fn contention_backoff(losses: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let window_us = 1000u64 << losses.min(6);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % window_us)
}

fn model_error(e: &BackendError) -> StoreError {
    e.into()
}

impl SyncKeyValue for KvBridge {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        let out = wait(&self.rt, self.kv.get(key));
        out.map(|e| {
            e.map(|e| Entry {
                value: e.value,
                revision: e.revision,
            })
        })
        .map_err(|e| model_error(&e))
    }

    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        wait(&self.rt, self.kv.set(key, value)).map_err(|e| model_error(&e))
    }

    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let out = wait(&self.rt, self.kv.compare_and_swap(key, value, expected));
        if matches!(out, Err(BackendError::RevisionMismatch { .. })) {
            let pause = contention_backoff(self.cas_losses);
            wait(&self.rt, tokio::time::sleep(pause));
            self.cas_losses += 1;
        }
        out.map_err(|e| model_error(&e))
    }

    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        wait(&self.rt, self.kv.delete(key)).map_err(|e| model_error(&e))
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        wait(&self.rt, self.kv.list_keys(prefix)).map_err(|e| model_error(&e))
    }
}

/// `spec_plugin::backend::ProviderNotify` over a host `ProviderNotify`.
struct NotifyBridge {
    notify: Arc<dyn ProviderNotify>,
    rt: Handle,
}

impl SyncProviderNotify for NotifyBridge {
    fn local_providers(&mut self) -> Vec<String> {
        self.notify.local_providers()
    }

    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        wait(&self.rt, self.notify.link_put(provider, link))
    }

    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        wait(&self.rt, self.notify.link_delete(provider, link))
    }
}

/// What the table owner holds.
struct Owner {
    table: HostTable,
    notify: NotifyBridge,
    /// Per id, the newest revision in the table.
    applied: HashMap<String, u64>,
}

type Job = Box<dyn FnOnce(&mut Owner) + Send>;

/// Where a [`NativeHost`]'s table owner runs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A task on the tokio runtime; pending I/O blocks in `block_in_place`.
    Task,
    /// A dedicated OS thread; pending I/O blocks that thread.
    Thread,
}

struct Inner {
    kv: Arc<dyn KeyValue>,
    rt: Handle,
    permits: Semaphore,
    writers: KeyLocks,
    owner: mpsc::Sender<Job>,
}

/// The native twin of `SpecHost`. Cheap to clone; the owner stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct NativeHost {
    inner: Arc<Inner>,
}

impl NativeHost {
    /// Starts over these backends with `pool` store calls at once. Must be
    /// called within a multi-threaded tokio runtime.
    pub fn start(
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        placement: Placement,
        pool: usize,
    ) -> Result<Self> {
        let rt = Handle::current();
        let mut owner = Owner {
            table: HostTable::new(),
            notify: NotifyBridge {
                notify,
                rt: rt.clone(),
            },
            applied: HashMap::new(),
        };
        // Same queue bound as SpecHost's owner.
        let (jobs, mut queue) = mpsc::channel::<Job>(1024);
        match placement {
            Placement::Task => {
                tokio::spawn(async move {
                    while let Some(job) = queue.recv().await {
                        job(&mut owner);
                    }
                });
            }
            Placement::Thread => {
                std::thread::Builder::new()
                    .name("native-owner".into())
                    .spawn(move || {
                        while let Some(job) = queue.blocking_recv() {
                            job(&mut owner);
                        }
                    })
                    .context("starting the native owner thread")?;
            }
        }
        Ok(NativeHost {
            inner: Arc::new(Inner {
                kv,
                rt,
                permits: Semaphore::new(pool.max(1)),
                writers: KeyLocks::default(),
                owner: jobs,
            }),
        })
    }

    /// Runs store work on the caller's task, one of the pool's places.
    async fn store_call<T>(
        &self,
        f: impl FnOnce(&mut KvBridge) -> Result<T, SpecError>,
    ) -> Result<T> {
        let _place = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| anyhow!("the native host has stopped"))?;
        let mut kv = KvBridge {
            kv: Arc::clone(&self.inner.kv),
            rt: self.inner.rt.clone(),
            cas_losses: 0,
        };
        f(&mut kv).map_err(anyhow::Error::new)
    }

    /// Runs `f` on the table owner and waits for its answer.
    async fn on_owner<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Owner) -> Result<T, SpecError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |o| {
            // The caller may have gone away; the work is done either way.
            let _ = reply.send(f(o));
        });
        self.inner
            .owner
            .send(job)
            .await
            .map_err(|_| anyhow!("the native owner has stopped"))?;
        let out = answer
            .await
            .map_err(|_| anyhow!("the native owner dropped a call"))?;
        out.map_err(anyhow::Error::new)
    }

    /// Applies what a call wrote, at its revision, unless already held.
    async fn apply(&self, id: &str, written: Option<Written>) -> Result<Option<UpdateReport>> {
        let Some(written) = written else {
            return Ok(None);
        };
        let id = id.to_string();
        self.on_owner(move |o| {
            if o.applied.get(&id).is_some_and(|&r| r >= written.revision) {
                return Ok(None);
            }
            let report = o
                .table
                .apply_stored_spec(&mut o.notify, &id, &written.value)?;
            o.applied.insert(id, written.revision);
            Ok(Some(report))
        })
        .await
    }

    /// A call that does nothing on the owner: the hand-off alone.
    pub async fn ping(&self) -> Result<String> {
        self.on_owner(|_| Ok(spec_plugin::PLUGIN_VERSION.to_string()))
            .await
    }

    /// One backend read of `key` through the bridge with no logic: what the
    /// bridge itself costs.
    pub async fn bridged_get(&self, key: &str) -> Result<bool> {
        self.store_call(|kv| Ok(kv.get(key)?.is_some())).await
    }

    /// The spec stored under `id`, if any.
    pub async fn get_component_spec(&self, id: &str) -> Result<Option<ComponentSpecification>> {
        self.store_call(|kv| specs::get_component_spec(kv, id))
            .await
    }

    /// Validates and stores a spec, then applies it to the table.
    pub async fn store_component_spec(
        &self,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<Applied<Written>> {
        let _writing = self.inner.writers.lock(id).await;
        let written = self
            .store_call(|kv| specs::store_component_spec(kv, id, &spec))
            .await?;
        let update = self.apply(id, Some(written.clone())).await?;
        Ok(Applied {
            result: written,
            update,
        })
    }

    /// Decodes, validates and stores a spec given as JSON, then applies it
    /// to the table.
    pub async fn store_spec_json(&self, id: &str, value: &[u8]) -> Result<Applied<Written>> {
        let _writing = self.inner.writers.lock(id).await;
        let written = self
            .store_call(|kv| specs::store_spec_json(kv, id, value))
            .await?;
        let update = self.apply(id, Some(written.clone())).await?;
        Ok(Applied {
            result: written,
            update,
        })
    }

    /// Applies a stored value (JSON) to the table (no store write).
    pub async fn apply_stored_spec(&self, id: &str, value: Vec<u8>) -> Result<UpdateReport> {
        let id = id.to_string();
        self.on_owner(move |o| o.table.apply_stored_spec(&mut o.notify, &id, &value))
            .await
    }

    /// Applies a spec to the table (no store write).
    pub async fn update_host_with_spec(
        &self,
        id: &str,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport> {
        let id = id.to_string();
        self.on_owner(move |o| o.table.update_host_with_spec(&mut o.notify, &id, &spec))
            .await
    }

    /// Applies a spec's deletion to the table (no store write).
    pub async fn remove_host_spec(&self, id: &str) -> Result<UpdateReport> {
        let id = id.to_string();
        self.on_owner(move |o| o.table.remove_host_spec(&mut o.notify, &id))
            .await
    }

    /// Puts a link into its source's spec, then applies it to the table.
    pub async fn put_link(&self, link: Link) -> Result<Applied<PutLinkResult>> {
        let _writing = self.inner.writers.lock(&link.source_id).await;
        let put = self.store_call(|kv| specs::put_link(kv, &link)).await?;
        let update = self.apply(&link.source_id, put.written()).await?;
        Ok(Applied {
            result: put,
            update,
        })
    }

    /// Removes a link (name `None`: `default`), then applies the spec.
    pub async fn delete_link(
        &self,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<Applied<DeleteLinkResult>> {
        let _writing = self.inner.writers.lock(source_id).await;
        let deleted = self
            .store_call(|kv| specs::delete_link(kv, source_id, wit_namespace, wit_package, name))
            .await?;
        let update = self.apply(source_id, deleted.written.clone()).await?;
        Ok(Applied {
            result: deleted,
            update,
        })
    }
}
