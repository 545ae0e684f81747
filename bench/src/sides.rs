//! [`Side`]: the plugin path (`SpecHost`, the component in wasmtime) or the
//! native path ([`NativeHost`], the same logic compiled natively) behind one
//! set of methods, so every workload is written once and run on both.

use std::sync::Arc;

use anyhow::{Context, Result};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::backend::{KeyValue, ProviderNotify};
use spec_embed::default_pool_size;
use spec_embed::{LoadedPlugin, PluginLimits, SpecHost};
use spec_model::{
    Applied, ComponentSpecification, DeleteLinkResult, Link, PutLinkResult, UpdateReport, Written,
};

use crate::native::{NativeHost, Placement};

/// Which path a [`Side`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The component through `SpecHost`.
    Plugin,
    /// The logic compiled natively through `NativeHost`, table owner as a
    /// task.
    Native,
    /// The same with the table owner on a dedicated thread.
    NativeThread,
}

/// One of the two paths under test.
#[derive(Clone)]
pub enum Side {
    /// The component through `SpecHost`.
    Plugin(SpecHost),
    /// The logic compiled natively through `NativeHost`.
    Native(NativeHost),
}

impl Side {
    /// Starts `kind` over these backends (the plugin with `limits`).
    pub async fn start(
        kind: Kind,
        plugin: &LoadedPlugin,
        kv: Arc<dyn KeyValue>,
        notify: Arc<dyn ProviderNotify>,
        limits: PluginLimits,
    ) -> Result<Side> {
        Ok(match kind {
            Kind::Plugin => Side::Plugin(
                SpecHost::start(plugin.clone(), kv, notify, limits)
                    .await
                    .context("starting the plugin host")?,
            ),
            Kind::Native => Side::Native(NativeHost::start(
                kv,
                notify,
                Placement::Task,
                default_pool_size(),
            )?),
            Kind::NativeThread => Side::Native(NativeHost::start(
                kv,
                notify,
                Placement::Thread,
                default_pool_size(),
            )?),
        })
    }

    /// Starts `kind` over a fresh in-memory store and a notifier with no
    /// local providers (so updates deliver nothing and nothing piles up).
    pub async fn start_memory(kind: Kind, plugin: &LoadedPlugin) -> Result<Side> {
        let kv: Arc<dyn KeyValue> = Arc::new(MemoryKv::new());
        let notify: Arc<dyn ProviderNotify> =
            Arc::new(RecordingNotifier::new(Vec::<String>::new()));
        Side::start(kind, plugin, kv, notify, PluginLimits::default()).await
    }

    /// A call that does nothing: the plugin's version from a request
    /// instance; the native side's hand-off to its table owner.
    pub async fn version(&self) -> Result<String> {
        Ok(match self {
            Side::Plugin(h) => h.ping().await?,
            Side::Native(h) => h.ping().await?,
        })
    }

    /// Reads a stored spec.
    pub async fn get(&self, id: &str) -> Result<Option<ComponentSpecification>> {
        Ok(match self {
            Side::Plugin(h) => h.get_component_spec(id).await?,
            Side::Native(h) => h.get_component_spec(id).await?,
        })
    }

    /// Stores a spec and updates the table.
    pub async fn store(&self, id: &str, spec: ComponentSpecification) -> Result<Applied<Written>> {
        Ok(match self {
            Side::Plugin(h) => h.store_component_spec(id, spec).await?,
            Side::Native(h) => h.store_component_spec(id, spec).await?,
        })
    }

    /// Stores a spec given as wasmCloud's JSON and updates the table.
    pub async fn store_json(&self, id: &str, value: &[u8]) -> Result<Applied<Written>> {
        Ok(match self {
            Side::Plugin(h) => h.store_spec_json(id, value).await?,
            Side::Native(h) => h.store_spec_json(id, value).await?,
        })
    }

    /// Applies a stored value (wasmCloud's JSON) to the table, as a host
    /// following the bucket does for every change.
    pub async fn apply(&self, id: &str, value: Vec<u8>) -> Result<UpdateReport> {
        Ok(match self {
            Side::Plugin(h) => h.apply_stored_spec(id, value).await?,
            Side::Native(h) => h.apply_stored_spec(id, value).await?,
        })
    }

    /// Applies a spec to the table (no store write).
    pub async fn update(&self, id: &str, spec: ComponentSpecification) -> Result<UpdateReport> {
        Ok(match self {
            Side::Plugin(h) => h.update_host_with_spec(id, spec).await?,
            Side::Native(h) => h.update_host_with_spec(id, spec).await?,
        })
    }

    /// Drops an id from the table (no store write).
    pub async fn remove(&self, id: &str) -> Result<UpdateReport> {
        Ok(match self {
            Side::Plugin(h) => h.remove_host_spec(id).await?,
            Side::Native(h) => h.remove_host_spec(id).await?,
        })
    }

    /// Puts a link.
    pub async fn put_link(&self, link: Link) -> Result<Applied<PutLinkResult>> {
        Ok(match self {
            Side::Plugin(h) => h.put_link(link).await?,
            Side::Native(h) => h.put_link(link).await?,
        })
    }

    /// Deletes the `default`-named link of `source` with this package.
    pub async fn delete_link(
        &self,
        source: &str,
        ns: &str,
        pkg: &str,
    ) -> Result<Applied<DeleteLinkResult>> {
        Ok(match self {
            Side::Plugin(h) => h.delete_link(source, ns, pkg, None).await?,
            Side::Native(h) => h.delete_link(source, ns, pkg, None).await?,
        })
    }
}

/// One batch of calls of a workload, timed call by call.
pub(crate) trait Batch {
    /// Runs one batch on `side`, the `slot`th side of the comparison (for
    /// per-side state such as id prefixes), and returns the time of each
    /// call in microseconds.
    async fn run(&mut self, side: &Side, slot: usize) -> Result<Vec<f64>>;
}

/// Runs a warm-up batch on each side (discarded: first calls pay page
/// faults and lazy initialization), then `rounds` batches on each, the
/// order rotating every round (A/B, B/A for two sides) so that a drift in
/// machine speed hits all sides alike. Returns each side's samples.
pub(crate) async fn interleave<B: Batch>(
    batch: &mut B,
    sides: &[&Side],
    rounds: usize,
) -> Result<Vec<Vec<f64>>> {
    for (slot, side) in sides.iter().enumerate() {
        batch.run(side, slot).await?;
    }
    let mut out = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for i in 0..sides.len() {
            // Two sides: forwards on even rounds, backwards on odd ones.
            let slot = if crate::stats::plugin_first(round) {
                i
            } else {
                sides.len() - 1 - i
            };
            let samples = batch.run(sides[slot], slot).await?;
            out[slot].extend(samples);
        }
    }
    Ok(out)
}
