//! Pushing a build into the lattice: checked first (it must load, speak a
//! contract this host loads and start), stored by digest with its compiled
//! code for this engine, so hosts of the same engine never compile it.

use std::sync::Arc;

use anyhow::Context;

use super::store::{BuildInfo, Rollouts};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::{PluginEngine, PluginLimits, SpecHost};

/// Checks `bytes` and stores them as a build; what was stored.
pub async fn push(
    rollouts: &Rollouts,
    engine: &PluginEngine,
    bytes: &[u8],
    limits: PluginLimits,
) -> anyhow::Result<BuildInfo> {
    let loaded = engine
        .load_bytes(bytes)
        .context("not a plugin this host can load")?;
    // Instantiated once, alone, to prove it runs and to read its version.
    let trial = SpecHost::start_with_pool(
        loaded.clone(),
        Arc::new(MemoryKv::new()),
        Arc::new(RecordingNotifier::new(Vec::<String>::new())),
        limits,
        1,
    )
    .await
    .context("the build does not start")?;
    let info = BuildInfo {
        digest: loaded.digest().to_string(),
        contract: loaded.contract().to_string(),
        version: trial.plugin_version(),
        size: bytes.len(),
    };
    rollouts.push_build(bytes, &info).await?;
    match loaded.component().serialize() {
        Ok(compiled) => {
            let tag = spec_embed::cache::engine_tag(engine.engine());
            rollouts
                .push_compiled(&info.digest, &tag, &compiled)
                .await?;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize the compiled build; hosts will compile it")
        }
    }
    Ok(info)
}
