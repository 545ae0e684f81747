//! [`NativeHost`]: the plugin's logic (`spec_plugin::ops::Plugin`) compiled
//! natively, in the same shape as `SpecHost`, over the same async backends.
//!
//! As in `SpecHost`, one worker owns the `Plugin` and runs calls one at a
//! time in arrival order, fed by a bounded channel. The logic is
//! synchronous (`spec_plugin::backend::Store` and `Notifier` are blocking
//! traits), so each backend call is bridged to the same
//! `Arc<dyn KeyValue>` / `Arc<dyn ProviderNotify>` the plugin path uses:
//! the backend's future is polled once, and only if it is not ready at once
//! (real I/O, e.g. JetStream) does the worker block on it with
//! `Handle::block_on`. Where the worker runs is a [`Placement`]:
//!
//! * [`Placement::Task`]: a task on the runtime, like `SpecHost`'s worker; a
//!   pending backend call blocks inside `block_in_place`, which first hands
//!   the thread's other tasks to another thread. No thread hop per call
//!   (the in-memory backends never block), one hand-off per pending I/O.
//! * [`Placement::Thread`]: a dedicated OS thread; every call crosses
//!   threads twice (caller → worker → caller, an OS wake-up each way) but a
//!   pending I/O only parks that thread.
//!
//! Neither is free, and which costs less depends on the workload, so the
//! NATS section measures both and compares the plugin with the faster.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use spec_host::backend::{KeyValue, ProviderNotify, StoreError as HostStoreError};
use spec_host::model as h;
use spec_plugin::backend::{Entry, Notifier, Store};
use spec_plugin::error::{NotifyError, StoreError};
use spec_plugin::model::Link;
use spec_plugin::ops::Plugin;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::convert;

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

/// `spec_plugin::backend::Store` over a host `KeyValue`.
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

impl Store for KvBridge {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        let out = wait(&self.rt, self.kv.get(key));
        out.map(|e| {
            e.map(|e| Entry {
                value: e.value,
                revision: e.revision,
            })
        })
        .map_err(|e| convert::store_error_to_native(&e))
    }

    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        let out = wait(&self.rt, self.kv.set(key, value));
        out.map_err(|e| convert::store_error_to_native(&e))
    }

    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let out = wait(&self.rt, self.kv.compare_and_swap(key, value, expected));
        if matches!(out, Err(HostStoreError::RevisionMismatch { .. })) {
            let pause = contention_backoff(self.cas_losses);
            wait(&self.rt, tokio::time::sleep(pause));
            self.cas_losses += 1;
        }
        out.map_err(|e| convert::store_error_to_native(&e))
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        let out = wait(&self.rt, self.kv.delete(key));
        out.map_err(|e| convert::store_error_to_native(&e))
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let out = wait(&self.rt, self.kv.list_keys(prefix));
        out.map_err(|e| convert::store_error_to_native(&e))
    }
}

/// `spec_plugin::backend::Notifier` over a host `ProviderNotify`.
struct NotifyBridge {
    notify: Arc<dyn ProviderNotify>,
    rt: Handle,
}

impl Notifier for NotifyBridge {
    fn local_providers(&mut self) -> Vec<String> {
        self.notify.local_providers()
    }

    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        // The plugin path converts the WIT link to a host link here too.
        let link = convert::link_from_native(link.clone());
        let out = wait(&self.rt, self.notify.link_put(provider, &link));
        out.map_err(convert::notify_error_to_native)
    }

    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        let link = convert::link_from_native(link.clone());
        let out = wait(&self.rt, self.notify.link_delete(provider, &link));
        out.map_err(convert::notify_error_to_native)
    }
}

/// What the worker thread owns.
struct Worker {
    plugin: Plugin,
    kv: KvBridge,
    notify: NotifyBridge,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;
type Answer<T> = Result<T, spec_plugin::error::SpecError>;

/// Where a [`NativeHost`]'s worker runs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A task on the tokio runtime; pending I/O blocks in `block_in_place`.
    Task,
    /// A dedicated OS thread; pending I/O blocks that thread.
    Thread,
}

/// The native twin of `SpecHost`. Cheap to clone; every clone drives the
/// same worker, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct NativeHost {
    jobs: mpsc::Sender<Job>,
}

impl NativeHost {
    /// Starts the worker over these backends. Must be called within a
    /// multi-threaded tokio runtime (whose handle the bridge blocks on).
    pub fn start(
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        placement: Placement,
    ) -> Result<Self> {
        let rt = Handle::current();
        let mut worker = Worker {
            plugin: Plugin::new(),
            kv: KvBridge {
                kv,
                rt: rt.clone(),
                cas_losses: 0,
            },
            notify: NotifyBridge { notify, rt },
        };
        // Same queue bound as SpecHost's.
        let (jobs, mut queue) = mpsc::channel::<Job>(1024);
        match placement {
            Placement::Task => {
                tokio::spawn(async move {
                    while let Some(job) = queue.recv().await {
                        worker.kv.cas_losses = 0;
                        job(&mut worker);
                    }
                });
            }
            Placement::Thread => {
                std::thread::Builder::new()
                    .name("native-worker".into())
                    .spawn(move || {
                        while let Some(job) = queue.blocking_recv() {
                            worker.kv.cas_losses = 0;
                            job(&mut worker);
                        }
                    })
                    .context("starting the native worker thread")?;
            }
        }
        Ok(NativeHost { jobs })
    }

    /// Runs `f` on the worker and waits for its answer.
    async fn on_worker<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker) -> Answer<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |w| {
            // The caller may have gone away; the work is done either way.
            let _ = reply.send(f(w));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow!("the native worker has stopped"))?;
        let out = answer
            .await
            .map_err(|_| anyhow!("the native worker dropped a call"))?;
        out.map_err(|e| anyhow::Error::new(convert::spec_error_from_native(e)))
    }

    /// The logic's version string: a call that does nothing, so its time is
    /// the worker hand-off alone.
    pub async fn plugin_version(&self) -> Result<String> {
        self.on_worker(|_| Ok(spec_plugin::PLUGIN_VERSION.to_string()))
            .await
    }

    /// One backend read of `key` on the worker, through the same bridge as
    /// the logic's reads but with no logic: what the bridge itself costs.
    pub async fn bridged_get(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.on_worker(move |w| Ok(w.kv.get(&key)?.is_some())).await
    }

    /// The spec stored under `id`, if any.
    pub async fn get_component_spec(&self, id: &str) -> Result<Option<h::ComponentSpecification>> {
        let id = id.to_string();
        self.on_worker(move |w| {
            let spec = w.plugin.get_component_spec(&mut w.kv, &id)?;
            Ok(spec.map(convert::spec_from_native))
        })
        .await
    }

    /// Validates and stores a spec, then updates the table.
    pub async fn store_component_spec(
        &self,
        id: &str,
        spec: h::ComponentSpecification,
    ) -> Result<h::StoreResult> {
        let id = id.to_string();
        self.on_worker(move |w| {
            let spec = convert::spec_to_native(spec);
            let out = w
                .plugin
                .store_component_spec(&mut w.kv, &mut w.notify, &id, spec)?;
            Ok(convert::store_result_from_native(out))
        })
        .await
    }

    /// Applies a spec to the table (no store write).
    pub async fn update_host_with_spec(
        &self,
        id: &str,
        spec: h::ComponentSpecification,
    ) -> Result<h::UpdateReport> {
        let id = id.to_string();
        self.on_worker(move |w| {
            let spec = convert::spec_to_native(spec);
            let out = w.plugin.update_host_with_spec(&mut w.notify, &id, spec)?;
            Ok(convert::report_from_native(out))
        })
        .await
    }

    /// Applies a spec's deletion to the table (no store write).
    pub async fn remove_host_spec(&self, id: &str) -> Result<h::UpdateReport> {
        let id = id.to_string();
        self.on_worker(move |w| {
            let out = w.plugin.remove_host_spec(&mut w.notify, &id)?;
            Ok(convert::report_from_native(out))
        })
        .await
    }

    /// Puts a link into its source's spec, then updates the table.
    pub async fn put_link(&self, link: h::Link) -> Result<h::PutLinkResult> {
        self.on_worker(move |w| {
            let link = convert::link_to_native(link);
            let out = w.plugin.put_link(&mut w.kv, &mut w.notify, link)?;
            Ok(convert::put_result_from_native(out))
        })
        .await
    }

    /// Removes a link (name `None`: `default`).
    pub async fn delete_link(
        &self,
        source_id: &str,
        wit_namespace: &str,
        wit_package: &str,
        name: Option<&str>,
    ) -> Result<h::DeleteLinkResult> {
        let (source, ns, pkg) = (
            source_id.to_string(),
            wit_namespace.to_string(),
            wit_package.to_string(),
        );
        let name = name.map(str::to_string);
        self.on_worker(move |w| {
            let out = w.plugin.delete_link(
                &mut w.kv,
                &mut w.notify,
                &source,
                &ns,
                &pkg,
                name.as_deref(),
            )?;
            Ok(convert::delete_link_result_from_native(out))
        })
        .await
    }
}
