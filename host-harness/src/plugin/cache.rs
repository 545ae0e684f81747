//! A cache of compiled plugins: wasmtime's serialized form of a component,
//! keyed by the component's SHA-256 and by the engine's compatibility hash,
//! so that restarts and swaps to a build seen before skip Cranelift (tens to
//! hundreds of milliseconds) and deserialize instead (well under one).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

fn engine_tag(engine: &Engine) -> String {
    // `DefaultHasher::new()` has fixed keys: the same engine configuration
    // gives the same tag in every process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl ComponentCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ComponentCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &Engine, digest: &str) -> PathBuf {
        // The compatibility hash covers the wasmtime version and every
        // setting that changes compiled code.
        self.dir
            .join(format!("{digest}-{}.cwasm", engine_tag(engine)))
    }

    /// The compiled form of the component with this digest, if cached and
    /// loadable. A stale or damaged entry is removed.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(engine, digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts that the file is wasmtime's own
        // serialized output for a compatible engine. Only `store` below
        // writes this directory, the name carries the engine's
        // compatibility hash, and wasmtime checks the
        // header again on load; anyone able to write here could equally
        // replace the plugin itself.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping unusable cached component");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a later recompile.
    pub(crate) fn store(&self, engine: &Engine, digest: &str, component: &Component) {
        let write = || -> std::io::Result<()> {
            let bytes = component
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            std::fs::create_dir_all(&self.dir)?;
            let path = self.path(engine, digest);
            // Write then rename: a reader never sees half a file.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache the compiled plugin");
        }
    }
}
