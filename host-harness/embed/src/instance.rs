//! One plugin instance in its own `Store`, and the limits every call on it
//! runs under.
//!
//! [`Instance::call`] starts a call's budget (CPU time, wall-clock deadline,
//! import calls), runs one export and sorts out the answer. A call that
//! traps, runs past a limit, or is abandoned half way (its future dropped)
//! leaves the instance *poisoned*: its owner drops it and makes a fresh one
//! rather than reuse a store that stopped in the middle of a call.

use std::sync::Arc;
use std::time::Duration;

use spec_model::SpecError;
use tracing::Instrument;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

use super::embed::{CallLimit, CallLimits, SpecCtx};
use super::exports::{Answer, Plugin};
use super::runtime::LoadedPlugin;
use crate::backend::{KeyValue, ProviderNotify};
use crate::error::CallError;
use crate::stats::PluginStats;

/// Limits applied to every plugin call.
#[derive(Clone, Copy, Debug)]
pub struct PluginLimits {
    /// Largest linear memory a request instance may grow to, in bytes. The
    /// table owner may grow beyond it by room for the table it holds (see
    /// [`crate::TableStats::memory_cap`]): this cap guards one call, it
    /// does not bound the lattice.
    pub memory_cap: usize,
    /// Plugin time (excluding time spent in host imports) one call may use.
    pub cpu_budget: Duration,
    /// Wall-clock time one call may take, waiting on NATS included.
    pub deadline: Duration,
    /// Import calls one call may make (plus one per key a listing returned).
    pub max_imports: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        let calls = CallLimits::default();
        PluginLimits {
            memory_cap: 256 << 20,
            cpu_budget: Duration::from_secs(2),
            deadline: calls.deadline,
            max_imports: calls.max_imports,
        }
    }
}

impl PluginLimits {
    fn call_limits(&self) -> CallLimits {
        CallLimits {
            deadline: self.deadline,
            max_imports: self.max_imports,
        }
    }
}

/// A plugin call this long is logged as a warning with its name and where
/// its time went.
const SLOW_CALL: Duration = Duration::from_millis(200);

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

/// Caps the plugin's linear memory and tables, and remembers how large
/// the memory has grown.
pub(crate) struct Limiter {
    memory_cap: usize,
    table_cap: usize,
    /// The linear memory's size after its last growth, in bytes.
    memory_size: usize,
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
        self.memory_size = desired;
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

/// Everything a plugin store holds.
pub(crate) struct HostState {
    pub spec: SpecCtx,
    limiter: Limiter,
    cpu_budget: Duration,
}

/// What every new instance is made with.
pub(crate) struct Factory {
    pub kv: Arc<dyn KeyValue>,
    pub notify: Arc<dyn ProviderNotify>,
    pub limits: PluginLimits,
    /// Shared by every instance it makes.
    pub stats: Arc<PluginStats>,
}

impl Factory {
    /// A fresh instance of `plugin`.
    pub async fn instantiate(&self, plugin: &LoadedPlugin) -> Result<Instance, CallError> {
        let state = HostState {
            spec: SpecCtx::new(Arc::clone(&self.kv), Arc::clone(&self.notify))
                .with_limits(self.limits.call_limits()),
            limiter: Limiter {
                memory_cap: self.limits.memory_cap,
                table_cap: 100_000,
                memory_size: 0,
            },
            cpu_budget: self.limits.cpu_budget,
        };
        let mut store = Store::new(&plugin.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.spec.guest_time() > state.cpu_budget {
                return Err(CpuBudgetExceeded {
                    limit: state.cpu_budget,
                }
                .into());
            }
            if let Some(limit) = state.spec.limit_exceeded() {
                return Err(limit.into());
            }
            // Give the executor a turn while a long call runs.
            Ok(UpdateDeadline::Yield(1))
        });
        store.data_mut().spec.begin_call();
        store.set_epoch_deadline(1);
        let plugin_instance = Plugin::from_pre(&mut store, &plugin.pre)
            .await
            .map_err(|e| CallError::Instantiate {
                source: e.into_boxed_dyn_error(),
            })?;
        Ok(Instance {
            store,
            plugin: plugin_instance,
            poisoned: false,
            limits: self.limits,
            stats: Arc::clone(&self.stats),
        })
    }
}

/// A live instance and its store.
pub(crate) struct Instance {
    store: Store<HostState>,
    plugin: Plugin,
    poisoned: bool,
    limits: PluginLimits,
    stats: Arc<PluginStats>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A poisoned instance is only ever dropped to be replaced.
        if self.poisoned {
            self.stats.count_replaced();
        }
    }
}

impl Instance {
    /// Whether a call failed in a way that leaves the store unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Sets the largest linear memory this instance may grow to: the table
    /// owner's cap follows the size of the table it holds.
    pub fn set_memory_cap(&mut self, cap: usize) {
        self.store.data_mut().limiter.memory_cap = cap;
    }

    /// Sends this instance's deliveries to `notify` from now on.
    pub fn set_notify(&mut self, notify: Arc<dyn ProviderNotify>) {
        self.store.data_mut().spec.set_notify(notify);
    }

    /// The linear memory's size now, in bytes.
    pub fn memory_size(&self) -> usize {
        self.store.data().limiter.memory_size
    }

    /// Runs one export call under the limits. `name` is the WIT name, for
    /// errors.
    pub async fn call<R>(
        &mut self,
        name: &'static str,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> Answer<R>,
    ) -> Result<R, CallError> {
        self.call_with_grant(name, 0, f).await
    }

    /// Like [`Instance::call`], allowing `grant` import calls beyond the
    /// cap (work that grows with the input, e.g. deliveries).
    pub async fn call_with_grant<R>(
        &mut self,
        name: &'static str,
        grant: u32,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> Answer<R>,
    ) -> Result<R, CallError> {
        self.call_sized(name, grant, Duration::ZERO, f).await
    }

    /// Like [`Instance::call_with_grant`], also allowing `time` beyond the
    /// CPU budget and the deadline: for a call whose work grows with the
    /// whole table (a restore, a snapshot), which the per-call limits must
    /// not turn into a bound on the lattice's size.
    pub async fn call_sized<R>(
        &mut self,
        name: &'static str,
        grant: u32,
        time: Duration,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> Answer<R>,
    ) -> Result<R, CallError> {
        if self.poisoned {
            return Err(CallError::Trap {
                call: name,
                source: "instance was poisoned by an earlier call".into(),
            });
        }
        let state = self.store.data_mut();
        state.spec.begin_call();
        state.spec.grant_imports(grant);
        state.spec.grant_time(time);
        state.cpu_budget = self.limits.cpu_budget + time;
        self.store.set_epoch_deadline(1);
        // Poisoned until the call returns: if this future is dropped half
        // way (its caller gone), the store is left mid-call and must go.
        self.poisoned = true;
        // The deadline is enforced inside (epoch callback, every import);
        // this outer bound only catches a host backend that ignores it.
        let grace = self.limits.deadline + time + Duration::from_secs(1);
        // Nested in the caller's span (a request's id and method), so a
        // plugin call's log lines say which request they belong to.
        let span = tracing::info_span!("plugin_call", call = name);
        let started = std::time::Instant::now();
        let out = tokio::time::timeout(grace, f(&self.plugin, &mut self.store))
            .instrument(span.clone())
            .await;
        let took = started.elapsed();
        self.stats
            .count_call(name, took, self.store.data().spec.host_time());
        span.in_scope(|| {
            if took >= SLOW_CALL {
                // Everything queued behind this instance waited as long.
                tracing::warn!(
                    call = name,
                    took_ms = took.as_millis() as u64,
                    in_imports_ms = self.store.data().spec.host_time().as_millis() as u64,
                    ok = matches!(out, Ok(Ok(_))),
                    "slow plugin call"
                )
            } else {
                tracing::debug!(
                    took_us = took.as_micros() as u64,
                    ok = matches!(out, Ok(Ok(_))),
                    "plugin call returned"
                )
            }
        });
        let err = match out {
            // Only a backend that ignores the deadline gets here.
            Err(_) => CallError::Deadline {
                call: name,
                limit: self.limits.deadline,
                stalled: Some(grace),
            },
            Ok(Err(trap)) => {
                let state = self.store.data();
                let stalled = state.spec.stalled_backend_call();
                let limits = PluginLimits {
                    memory_cap: state.limiter.memory_cap,
                    cpu_budget: state.cpu_budget,
                    deadline: self.limits.deadline + time,
                    ..self.limits
                };
                classify(&limits, name, trap, stalled)
            }
            Ok(Ok(answer)) => {
                self.poisoned = false;
                return answer.map_err(CallError::Spec);
            }
        };
        self.stats.count_fault(&err);
        Err(err)
    }

    /// Like [`Instance::call`] for an export that cannot answer with an
    /// error.
    pub async fn call_infallible<R>(
        &mut self,
        name: &'static str,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.call(name, async |p: &Plugin, s: &mut Store<HostState>| {
            f(p, s).await.map(Ok::<R, SpecError>)
        })
        .await
    }
}

/// Turns a wasmtime error out of a call into the matching [`CallError`].
fn classify(
    limits: &PluginLimits,
    call: &'static str,
    err: wasmtime::Error,
    stalled: Option<Duration>,
) -> CallError {
    if err.downcast_ref::<CpuBudgetExceeded>().is_some() {
        CallError::CpuLimit {
            call,
            limit: limits.cpu_budget,
        }
    } else if err.downcast_ref::<MemoryCapExceeded>().is_some() {
        CallError::MemoryLimit {
            call,
            cap: limits.memory_cap,
        }
    } else if let Some(limit) = err.downcast_ref::<CallLimit>() {
        match limit {
            CallLimit::Deadline(limit) => CallError::Deadline {
                call,
                limit: *limit,
                stalled,
            },
            CallLimit::Imports(cap) => CallError::ImportLimit { call, cap: *cap },
        }
    } else {
        CallError::Trap {
            call,
            source: err.into_boxed_dyn_error(),
        }
    }
}
