//! Pushing a build into the lattice: checked first (it must load, speak a
//! contract this host loads and start), stored by digest with its issuer's
//! signature. Compiled code is not shared: every host compiles the
//! component itself, so no host ever runs native code another wrote.

use std::sync::Arc;

use anyhow::Context;

use super::store::{BuildInfo, Rollouts};
use super::trust::SigningKey;
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::{PluginEngine, PluginLimits, SpecHost};

/// Checks `bytes` and stores them as a build, signed with `key` if given;
/// what was stored.
pub async fn push(
    rollouts: &Rollouts,
    engine: &PluginEngine,
    bytes: &[u8],
    limits: PluginLimits,
    key: Option<&SigningKey>,
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
    let signature = key.map(|k| k.sign_build(&info.digest)).transpose()?;
    rollouts
        .push_build(bytes, &info, signature.as_ref())
        .await?;
    Ok(info)
}
