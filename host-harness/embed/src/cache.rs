//! A cache of compiled plugins: wasmtime's serialized form of a component,
//! keyed by the component's SHA-256 and by the engine's compatibility hash,
//! so that restarts and swaps to a build seen before skip Cranelift (tens to
//! hundreds of milliseconds) and deserialize instead (well under one).
//!
//! A cached entry is native code the process will run, so it is trusted
//! only when
//! * the directory is private to this user (owned by them, no access for
//!   group or others; created so), and
//! * the entry's bytes hash to the SHA-256 recorded beside it when it was
//!   written (catching truncation, corruption and edits).
//!
//! Anything else is compiled anew from the component, with a log line that
//! says why, and the entry is rewritten.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

use super::runtime::digest_of;

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// A stable tag of the engine's compiled-code compatibility (wasmtime
/// version and every setting that changes compiled code).
pub fn engine_tag(engine: &Engine) -> String {
    // `DefaultHasher::new()` has fixed keys: the same engine configuration
    // gives the same tag in every process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// What [`ComponentCache::lookup`] found.
pub enum Lookup {
    /// A trusted entry.
    Hit(Box<Component>),
    /// No entry.
    Miss,
    /// An entry that is not used, and why (it is removed, unless the
    /// directory itself is the problem).
    Refused(String),
}

/// Why a cached entry was not used.
#[derive(Debug, thiserror::Error)]
enum Untrusted {
    #[error("cache directory {0} is not private to this user ({1})")]
    Directory(PathBuf, String),
    #[error("no digest recorded beside the entry")]
    NoDigest,
    #[error("entry bytes hash to {found}, not the {recorded} recorded when it was written")]
    Mismatch { found: String, recorded: String },
    #[error("wasmtime refused it: {0}")]
    Refused(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ComponentCache {
    /// A cache in `dir` (created, private, on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ComponentCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &Engine, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", engine_tag(engine)))
    }

    /// What the cache holds for this digest: a trusted entry, nothing, or
    /// an entry it will not use (and why).
    pub fn lookup(&self, engine: &Engine, digest: &str) -> Lookup {
        let path = self.path(engine, digest);
        if !path.is_file() {
            return Lookup::Miss;
        }
        match self.read_trusted(engine, &path) {
            Ok(component) => Lookup::Hit(Box::new(component)),
            Err(why) => {
                if !matches!(why, Untrusted::Directory(..)) {
                    let _ = std::fs::remove_file(&path);
                }
                Lookup::Refused(why.to_string())
            }
        }
    }

    /// The compiled form of the component with this digest, if cached and
    /// trusted; otherwise `None`, with the reason logged.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        match self.lookup(engine, digest) {
            Lookup::Hit(component) => Some(*component),
            Lookup::Miss => None,
            Lookup::Refused(why) => {
                tracing::warn!(dir = %self.dir.display(), digest, reason = %why, "cached compiled plugin not used; compiling it anew");
                None
            }
        }
    }

    fn read_trusted(&self, engine: &Engine, path: &Path) -> Result<Component, Untrusted> {
        check_private(&self.dir)?;
        let recorded = std::fs::read_to_string(sidecar(path))
            .map_err(|_| Untrusted::NoDigest)?
            .trim()
            .to_string();
        let bytes = std::fs::read(path)?;
        let found = digest_of(&bytes);
        if found != recorded {
            return Err(Untrusted::Mismatch { found, recorded });
        }
        // SAFETY: `deserialize` runs the bytes as native code; they are
        // wasmtime's own output (written by `store` below into a directory
        // only this user can write, and unchanged since: their SHA-256 is
        // the one recorded then), for an engine with the same compatibility
        // hash (in the file name; wasmtime checks its header again).
        unsafe { Component::deserialize(engine, &bytes) }
            .map_err(|e| Untrusted::Refused(e.to_string()))
    }

    /// Stores a compiled component; failures only cost a later recompile.
    pub(crate) fn store(&self, engine: &Engine, digest: &str, component: &Component) {
        let write = || -> std::io::Result<()> {
            let bytes = component
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            create_private(&self.dir)?;
            let path = self.path(engine, digest);
            // Write then rename: a reader never sees half a file. The digest
            // goes first, so an entry is never there without one.
            let pid = std::process::id();
            let tmp_digest = sidecar(&path).with_extension(format!("tmp{pid}"));
            std::fs::write(&tmp_digest, digest_of(&bytes))?;
            std::fs::rename(&tmp_digest, sidecar(&path))?;
            let tmp = path.with_extension(format!("tmp{pid}"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache the compiled plugin");
        }
    }
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

#[cfg(unix)]
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // A directory made earlier (or by someone else's umask) is tightened.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Untrusted::Directory(
            dir.to_path_buf(),
            format!("owned by uid {}, this process runs as {me}", meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Untrusted::Directory(
            dir.to_path_buf(),
            format!("mode {:o} lets others in", meta.mode() & 0o777),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<(), Untrusted> {
    Ok(())
}
