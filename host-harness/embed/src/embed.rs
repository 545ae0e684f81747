//! The host side of the `lattice:spec` contract, for any wasmtime embedder.
//!
//! An embedder keeps a [`SpecCtx`] (its backends, the keys the plugin may
//! touch, optional per-call limits) in its own store data, and adds the
//! contract's imports to its own `Linker<T>` with [`add_to_linker`], giving a
//! function that borrows a [`SpecView`] out of its `T` — the shape of
//! wasmtime's own `wasi-keyvalue`. [`super::exports::Plugin`] then calls
//! the plugin's exports with [`spec_model`] types.
//!
//! ```no_run
//! use std::sync::Arc;
//! use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
//! use spec_embed::embed::{self, SpecCtx, SpecView};
//! use spec_embed::exports::Plugin;
//! use wasmtime::component::{Component, Linker};
//! use wasmtime::{Config, Engine, Store};
//!
//! struct MyState {
//!     spec: SpecCtx,
//! }
//!
//! # async fn run() -> wasmtime::Result<()> {
//! let engine = Engine::new(&Config::new())?;
//! let mut linker = Linker::<MyState>::new(&engine);
//! embed::add_to_linker(&mut linker, |s: &mut MyState| SpecView::new(&mut s.spec))?;
//! let state = MyState {
//!     spec: SpecCtx::new(Arc::new(MemoryKv::new()), Arc::new(RecordingNotifier::new(["kvredis"]))),
//! };
//! let mut store = Store::new(&engine, state);
//! let component = Component::from_file(&engine, "spec_plugin.wasm")?;
//! let plugin = Plugin::instantiate_async(&mut store, &component, &linker).await?;
//! let link = spec_embed::Link::new("echo", "kvredis", "wasi", "keyvalue", &["store"]);
//! let put = plugin.put_link(&mut store, &link).await?.expect("stored");
//! let report = plugin
//!     .apply_stored_spec(&mut store, "echo", put.value.as_deref().unwrap_or_default())
//!     .await?
//!     .expect("applied");
//! assert_eq!(report.added, vec![link]);
//! # Ok(())
//! # }
//! ```
//!
//! What the imports guarantee, whoever embeds them:
//! * `keyvalue` reaches only keys under the spec prefix (`COMPONENT_`, by
//!   default): any other key is refused with `access-denied`, a typed error
//!   the plugin sees, so `CLAIMS_…` or `REFMAP_…` in the same bucket are out
//!   of its reach.
//! * With [`CallLimits`], each export call gets a wall-clock deadline (every
//!   store and delivery call is bounded by what is left of it) and a cap on
//!   import calls (raised by the number of keys a `list-keys` returned, so
//!   listing a large store is not cut short). Past either, the import traps
//!   with [`CallLimit`]: the call fails and the instance must be dropped.
//! * A compare-and-swap that lost is answered after a short randomized,
//!   doubling pause (the plugin has no clock), so writers that collided do
//!   not retry in lockstep.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spec_model::keys::COMPONENT_KEY_PREFIX;
use spec_model::{Link, NotifyError};
use wasmtime::component::{HasData, Linker};

use super::bindings::v0_2::SpecPlugin;
use super::bindings::{wit_kv, wit_notify, wit_types};
use super::convert;
use crate::backend::{BackendError, KeyValue, ProviderNotify};

/// Per-call limits enforced by the imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Wall-clock time one export call may take, I/O included.
    pub deadline: Duration,
    /// Import calls one export call may make, before any raise from
    /// `list-keys`.
    pub max_imports: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            deadline: Duration::from_secs(5),
            max_imports: 1_000,
        }
    }
}

/// Why an import call trapped: the export call went past a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallLimit {
    /// The call ran past its wall-clock deadline.
    #[error("call ran past its deadline of {0:?}")]
    Deadline(Duration),
    /// The call made more import calls than allowed.
    #[error("call made more than {0} import calls")]
    Imports(u32),
}

/// Accounting of the export call in progress.
#[derive(Debug)]
struct CallState {
    started: Instant,
    deadline: Option<Instant>,
    imports: u32,
    /// Extra import calls granted by the largest `list-keys` answer.
    listed: u32,
    /// Extra import calls granted by the caller for this call's input.
    granted: u32,
    in_host: Duration,
    cas_losses: u32,
    /// How long the backend call the deadline cut off had waited.
    stalled: Option<Duration>,
}

impl CallState {
    fn new(limits: Option<&CallLimits>) -> Self {
        let started = Instant::now();
        CallState {
            started,
            deadline: limits.map(|l| started + l.deadline),
            imports: 0,
            listed: 0,
            granted: 0,
            in_host: Duration::ZERO,
            cas_losses: 0,
            stalled: None,
        }
    }
}

/// What the contract's imports are backed by, kept in the embedder's store
/// data.
pub struct SpecCtx {
    kv: Arc<dyn KeyValue>,
    notify: Arc<dyn ProviderNotify>,
    key_prefix: String,
    limits: Option<CallLimits>,
    call: CallState,
}

impl SpecCtx {
    /// Imports over these backends, confined to `COMPONENT_` keys, with no
    /// per-call limits.
    pub fn new(kv: Arc<dyn KeyValue>, notify: Arc<dyn ProviderNotify>) -> Self {
        SpecCtx {
            kv,
            notify,
            key_prefix: COMPONENT_KEY_PREFIX.to_string(),
            limits: None,
            call: CallState::new(None),
        }
    }

    /// Enforces `limits` on every call started with [`SpecCtx::begin_call`].
    pub fn with_limits(mut self, limits: CallLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Lets the plugin reach keys under `prefix` instead (`""`: every key).
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Replaces the notifier the plugin's deliveries go to (a host rebuilding
    /// its table gives the plugin a silent one, then the real one back).
    pub fn set_notify(&mut self, notify: Arc<dyn ProviderNotify>) {
        self.notify = notify;
    }

    /// Starts the accounting of a new export call: its deadline, import
    /// count and host time.
    pub fn begin_call(&mut self) {
        self.call = CallState::new(self.limits.as_ref());
    }

    /// Allows the current call `extra` more import calls: for work that
    /// grows with the input, such as the deliveries of a large spec.
    pub fn grant_imports(&mut self, extra: u32) {
        self.call.granted = self.call.granted.saturating_add(extra);
    }

    /// Allows the current call `extra` wall-clock time beyond its deadline:
    /// for work that grows with the input, such as restoring a whole table.
    pub fn grant_time(&mut self, extra: Duration) {
        if let Some(deadline) = self.call.deadline.as_mut() {
            *deadline += extra;
        }
    }

    /// Time the current call has spent in the host's imports.
    pub fn host_time(&self) -> Duration {
        self.call.in_host
    }

    /// Time the plugin itself has run in the current call.
    pub fn guest_time(&self) -> Duration {
        self.call
            .started
            .elapsed()
            .saturating_sub(self.call.in_host)
    }

    /// When the current call's deadline cut off a backend call: how long
    /// that call had waited.
    pub fn stalled_backend_call(&self) -> Option<Duration> {
        self.call.stalled
    }

    /// Import calls made in the current call.
    pub fn imports_made(&self) -> u32 {
        self.call.imports
    }

    /// The limit the current call has run past, if any (for an embedder's
    /// epoch callback, so that a plugin looping without imports is cut off
    /// at the deadline too).
    pub fn limit_exceeded(&self) -> Option<CallLimit> {
        let limits = self.limits.as_ref()?;
        match self.call.deadline {
            Some(deadline) if Instant::now() >= deadline => {
                Some(CallLimit::Deadline(limits.deadline))
            }
            _ => None,
        }
    }

    /// Counts one import call and checks the limits before it does any
    /// work; returns how long it may take.
    fn enter(&mut self) -> Result<Option<Duration>, CallLimit> {
        self.call.imports = self.call.imports.saturating_add(1);
        let Some(limits) = &self.limits else {
            return Ok(None);
        };
        let allowed = limits
            .max_imports
            .saturating_add(self.call.listed)
            .saturating_add(self.call.granted);
        if self.call.imports > allowed {
            return Err(CallLimit::Imports(allowed));
        }
        match self.call.deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(CallLimit::Deadline(limits.deadline)),
            },
            None => Ok(None),
        }
    }

    /// Runs one backend call within what is left of the deadline, counting
    /// its time as the host's.
    async fn io<T>(
        &mut self,
        left: Option<Duration>,
        work: impl Future<Output = T>,
    ) -> Result<T, CallLimit> {
        let since = Instant::now();
        let out = match left {
            Some(left) => tokio::time::timeout(left, work).await.map_err(|_| {
                self.call.stalled = Some(since.elapsed());
                CallLimit::Deadline(self.limits.map(|l| l.deadline).unwrap_or(left))
            }),
            None => Ok(work.await),
        };
        self.call.in_host += since.elapsed();
        out
    }

    fn check_key(&self, key: &str) -> Result<(), BackendError> {
        if key.starts_with(&self.key_prefix) {
            return Ok(());
        }
        Err(BackendError::AccessDenied {
            key: key.to_string(),
            allowed: format!("keys starting with {:?}", self.key_prefix),
        })
    }
}

/// A borrowed [`SpecCtx`]: what the generated import traits are implemented
/// on.
pub struct SpecView<'a> {
    ctx: &'a mut SpecCtx,
}

impl<'a> SpecView<'a> {
    /// A view of `ctx`.
    pub fn new(ctx: &'a mut SpecCtx) -> Self {
        SpecView { ctx }
    }
}

struct HasSpec;

impl HasData for HasSpec {
    type Data<'a> = SpecView<'a>;
}

/// Adds the contract's imports (`keyvalue`, `provider-notify`, `types`) to
/// `linker`; `view` finds the [`SpecCtx`] in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SpecView<'_>,
) -> wasmtime::Result<()> {
    SpecPlugin::add_to_linker::<T, HasSpec>(linker, view)
}

/// A `store-error` for the plugin, or a trap.
#[derive(Debug)]
pub struct StoreFault(Fault<spec_model::StoreError>);

/// A `notify-error` for the plugin, or a trap.
#[derive(Debug)]
pub struct NotifyFault(Fault<NotifyError>);

#[derive(Debug)]
enum Fault<E> {
    Answer(E),
    Trap(CallLimit),
}

impl From<CallLimit> for StoreFault {
    fn from(limit: CallLimit) -> Self {
        StoreFault(Fault::Trap(limit))
    }
}

impl From<BackendError> for StoreFault {
    fn from(e: BackendError) -> Self {
        StoreFault(Fault::Answer((&e).into()))
    }
}

impl From<CallLimit> for NotifyFault {
    fn from(limit: CallLimit) -> Self {
        NotifyFault(Fault::Trap(limit))
    }
}

impl From<NotifyError> for NotifyFault {
    fn from(e: NotifyError) -> Self {
        NotifyFault(Fault::Answer(e))
    }
}

impl wit_types::Host for SpecView<'_> {
    fn convert_store_error(&mut self, err: StoreFault) -> wasmtime::Result<wit_types::StoreError> {
        match err.0 {
            Fault::Answer(e) => Ok(convert::store_error_to_wit(e)),
            Fault::Trap(limit) => Err(limit.into()),
        }
    }

    fn convert_notify_error(
        &mut self,
        err: NotifyFault,
    ) -> wasmtime::Result<wit_types::NotifyError> {
        match err.0 {
            Fault::Answer(e) => Ok(convert::notify_error_to_wit(e)),
            Fault::Trap(limit) => Err(limit.into()),
        }
    }
}

/// How long a writer that lost a compare-and-swap waits before the plugin
/// retries: a random share of a window that doubles with each loss in the
/// call (1 ms, 2 ms, … capped at 64 ms).
fn contention_backoff(losses: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let window_us = 1000u64 << losses.min(6);
    // A randomly keyed hasher is a dependency-free source of jitter.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % window_us)
}

impl wit_kv::Host for SpecView<'_> {
    async fn get(&mut self, key: String) -> Result<Option<wit_kv::Entry>, StoreFault> {
        let left = self.ctx.enter()?;
        self.ctx.check_key(&key)?;
        let kv = Arc::clone(&self.ctx.kv);
        let entry = self.ctx.io(left, kv.get(&key)).await??;
        Ok(entry.map(|e| wit_kv::Entry {
            value: e.value,
            revision: e.revision,
        }))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<u64, StoreFault> {
        let left = self.ctx.enter()?;
        self.ctx.check_key(&key)?;
        let kv = Arc::clone(&self.ctx.kv);
        Ok(self.ctx.io(left, kv.set(&key, value)).await??)
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreFault> {
        let left = self.ctx.enter()?;
        self.ctx.check_key(&key)?;
        let kv = Arc::clone(&self.ctx.kv);
        let losses = self.ctx.call.cas_losses;
        let out = self
            .ctx
            .io(left, async {
                let out = kv.compare_and_swap(&key, value, expected).await;
                if matches!(out, Err(BackendError::RevisionMismatch { .. })) {
                    tokio::time::sleep(contention_backoff(losses)).await;
                }
                out
            })
            .await?;
        if matches!(out, Err(BackendError::RevisionMismatch { .. })) {
            self.ctx.call.cas_losses += 1;
        }
        Ok(out?)
    }

    async fn delete(&mut self, key: String) -> Result<u64, StoreFault> {
        let left = self.ctx.enter()?;
        self.ctx.check_key(&key)?;
        let kv = Arc::clone(&self.ctx.kv);
        Ok(self.ctx.io(left, kv.delete(&key)).await??)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, StoreFault> {
        let left = self.ctx.enter()?;
        // Listing a prefix wider than the allowed one lists only the allowed
        // keys; a prefix outside it is refused.
        let scope = if prefix.starts_with(&self.ctx.key_prefix) {
            prefix
        } else if self.ctx.key_prefix.starts_with(&prefix) {
            self.ctx.key_prefix.clone()
        } else {
            self.ctx.check_key(&prefix)?;
            prefix
        };
        let kv = Arc::clone(&self.ctx.kv);
        let keys = self.ctx.io(left, kv.list_keys(&scope)).await??;
        // Each key listed may be read once more.
        let listed = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        self.ctx.call.listed = self.ctx.call.listed.max(listed);
        Ok(keys)
    }
}

impl SpecView<'_> {
    async fn deliver(
        &mut self,
        provider_id: String,
        link: wit_types::Link,
        put: bool,
    ) -> Result<(), NotifyFault> {
        let left = self.ctx.enter()?;
        let notify = Arc::clone(&self.ctx.notify);
        let link: Link = convert::link_from_wit(link);
        let out = self
            .ctx
            .io(left, async {
                if put {
                    notify.link_put(&provider_id, &link).await
                } else {
                    notify.link_delete(&provider_id, &link).await
                }
            })
            .await?;
        Ok(out?)
    }
}

impl wit_notify::Host for SpecView<'_> {
    async fn local_providers(&mut self) -> wasmtime::Result<Vec<String>> {
        self.ctx.enter()?;
        Ok(self.ctx.notify.local_providers())
    }

    async fn link_put(
        &mut self,
        provider_id: String,
        link: wit_types::Link,
    ) -> Result<(), NotifyFault> {
        self.deliver(provider_id, link, true).await
    }

    async fn link_delete(
        &mut self,
        provider_id: String,
        link: wit_types::Link,
    ) -> Result<(), NotifyFault> {
        self.deliver(provider_id, link, false).await
    }
}
