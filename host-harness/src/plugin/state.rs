//! The data each plugin `Store` holds, and the host side of the plugin's
//! imports: `keyvalue` and `provider-notify` forward to the backends, timing
//! how long they take so that I/O never counts against the plugin's CPU
//! budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{wit_kv, wit_notify, wit_types};
use super::convert;
use crate::backend::{KeyValue, ProviderNotify};

/// The plugin grew its memory past the cap (raised as the trap's cause).
#[derive(Debug, thiserror::Error)]
#[error("memory growth to {desired} bytes denied (cap {cap})")]
pub(crate) struct MemoryCapExceeded {
    pub desired: usize,
    pub cap: usize,
}

/// The plugin used up its CPU budget for one call (raised as the trap's cause).
#[derive(Debug, thiserror::Error)]
#[error("CPU budget of {limit:?} for one call used up")]
pub(crate) struct CpuBudgetExceeded {
    pub limit: Duration,
}

/// Caps the plugin's linear memory and tables.
pub(crate) struct Limiter {
    pub memory_cap: usize,
    pub table_cap: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            // An error, not `Ok(false)`: the guest's allocator would turn a
            // refused growth into an anonymous abort, and the host could no
            // longer tell a memory cap from any other trap.
            return Err(MemoryCapExceeded {
                desired,
                cap: self.memory_cap,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_cap)
    }
}

/// Time accounting of the call in progress: wall time minus time spent in
/// host imports is the plugin's own (CPU) time.
pub(crate) struct CallClock {
    started: Instant,
    in_host: Duration,
    pub limit: Duration,
    /// Compare-and-swap writes lost in this call, for the backoff.
    cas_losses: u32,
}

impl CallClock {
    fn new(limit: Duration) -> Self {
        CallClock {
            started: Instant::now(),
            in_host: Duration::ZERO,
            limit,
            cas_losses: 0,
        }
    }

    /// Starts the budget of a new call.
    pub fn start(&mut self) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
        self.cas_losses = 0;
    }

    /// Time the plugin itself has run in this call.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_host)
    }

    fn add_host_time(&mut self, since: Instant) {
        self.in_host += since.elapsed();
    }
}

/// Everything a plugin store holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub clock: CallClock,
    kv: Arc<dyn KeyValue>,
    notify: Arc<dyn ProviderNotify>,
}

impl HostState {
    pub fn new(
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        memory_cap: usize,
        cpu_limit: Duration,
    ) -> Self {
        HostState {
            // Grants nothing: no preopened directory, no environment, no
            // arguments, no network, stdio closed. Rust std imports the
            // wasi:cli interfaces even when it never uses them.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap,
                table_cap: 100_000,
            },
            clock: CallClock::new(cpu_limit),
            kv,
            notify,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// How long a writer that lost a compare-and-swap waits before the plugin
/// retries: a random share of a window that doubles with each loss in the
/// call (1 ms, 2 ms, … capped at 64 ms). Without it, writers on several
/// hosts that lost together retry together and can keep losing.
fn contention_backoff(losses: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let window_us = 1000u64 << losses.min(6);
    // A randomly keyed hasher is a dependency-free source of jitter.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % window_us)
}

impl wit_types::Host for HostState {}

type KvResult<T> = Result<T, wit_types::StoreError>;

impl wit_kv::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<KvResult<Option<wit_kv::Entry>>> {
        let kv = Arc::clone(&self.kv);
        let since = Instant::now();
        let out = kv.get(&key).await;
        self.clock.add_host_time(since);
        Ok(out
            .map(|entry| {
                entry.map(|e| wit_kv::Entry {
                    value: e.value,
                    revision: e.revision,
                })
            })
            .map_err(|e| convert::store_error_to_wit(&e)))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<KvResult<u64>> {
        let kv = Arc::clone(&self.kv);
        let since = Instant::now();
        let out = kv.set(&key, value).await;
        self.clock.add_host_time(since);
        Ok(out.map_err(|e| convert::store_error_to_wit(&e)))
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> wasmtime::Result<KvResult<u64>> {
        let kv = Arc::clone(&self.kv);
        let since = Instant::now();
        let out = kv.compare_and_swap(&key, value, expected).await;
        if matches!(
            out,
            Err(crate::backend::StoreError::RevisionMismatch { .. })
        ) {
            // The plugin has no clock; the pause before its retry is the host's.
            tokio::time::sleep(contention_backoff(self.clock.cas_losses)).await;
            self.clock.cas_losses += 1;
        }
        self.clock.add_host_time(since);
        Ok(out.map_err(|e| convert::store_error_to_wit(&e)))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<KvResult<()>> {
        let kv = Arc::clone(&self.kv);
        let since = Instant::now();
        let out = kv.delete(&key).await;
        self.clock.add_host_time(since);
        Ok(out.map_err(|e| convert::store_error_to_wit(&e)))
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<KvResult<Vec<String>>> {
        let kv = Arc::clone(&self.kv);
        let since = Instant::now();
        let out = kv.list_keys(&prefix).await;
        self.clock.add_host_time(since);
        Ok(out.map_err(|e| convert::store_error_to_wit(&e)))
    }
}

impl wit_notify::Host for HostState {
    async fn local_providers(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.notify.local_providers())
    }

    async fn link_put(
        &mut self,
        provider_id: String,
        link: wit_types::Link,
    ) -> wasmtime::Result<Result<(), wit_types::NotifyError>> {
        let notify = Arc::clone(&self.notify);
        let link = convert::link_from_wit(link);
        let since = Instant::now();
        let out = notify.link_put(&provider_id, &link).await;
        self.clock.add_host_time(since);
        Ok(out.map_err(convert::notify_error_to_wit))
    }

    async fn link_delete(
        &mut self,
        provider_id: String,
        link: wit_types::Link,
    ) -> wasmtime::Result<Result<(), wit_types::NotifyError>> {
        let notify = Arc::clone(&self.notify);
        let link = convert::link_from_wit(link);
        let since = Instant::now();
        let out = notify.link_delete(&provider_id, &link).await;
        self.clock.add_host_time(since);
        Ok(out.map_err(convert::notify_error_to_wit))
    }
}
