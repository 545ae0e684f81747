//! The wasm engine and loaded plugins.
//!
//! One [`PluginEngine`] per process: the `Engine` (with epoch interruption),
//! the `Linker` that grants the plugin its imports — the contract's and
//! nothing else — and a ticker thread that advances the epoch so a plugin
//! that loops is stopped. Each [`LoadedPlugin`] is a compiled component,
//! checked to speak a contract version this host loads and type-checked
//! against the linker (`InstancePre`), so making a fresh instance costs
//! microseconds, not a compile.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{types::ComponentItem, Component, Linker};
use wasmtime::{Config, Engine};

use super::cache::ComponentCache;
use super::embed::{self, SpecView};
use super::exports::PluginPre;
use super::instance::HostState;
use crate::error::LoadError;

/// How often the epoch advances: the granularity of the CPU budget and the
/// deadline, and how often a long-running plugin yields to the runtime.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The contract package this host speaks.
pub const CONTRACT_PACKAGE: &str = "lattice:spec";

/// The contract versions this host loads (`major.minor`; any patch).
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.2", "0.3"];

/// The interfaces a plugin must export, without version.
const REQUIRED_EXPORTS: [&str; 2] = ["specs", "host-table"];

/// The engine, linker and epoch ticker shared by every plugin loaded.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    stop_ticker: Arc<AtomicBool>,
    cache: Option<ComponentCache>,
}

impl PluginEngine {
    /// Sets up the engine and linker and starts the epoch ticker.
    pub fn new() -> Result<Self, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine {
            source: e.into_boxed_dyn_error(),
        };
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Epoch checks are a load and a compare per loop back-edge: far
        // cheaper than fuel, and enough to stop a plugin that never returns.
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        // The contract's imports and nothing else (0.2's, which 0.3 imports
        // unchanged): a plugin of either version imports no WASI at all, so there is no filesystem, clock, random or socket a
        // plugin could even ask for.
        embed::add_to_linker(&mut linker, |s: &mut HostState| SpecView::new(&mut s.spec))
            .map_err(engine_error)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = Arc::clone(&stop_ticker);
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine {
                source: Box::new(e),
            })?;

        Ok(PluginEngine {
            engine,
            linker,
            stop_ticker,
            cache: None,
        })
    }

    /// Keeps compiled plugins in `cache`, so that loading a build seen before
    /// skips compilation.
    pub fn with_cache(mut self, cache: ComponentCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The wasmtime engine (to compile elsewhere, e.g. a lattice build store).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles and links a plugin from its bytes.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
        check_header(bytes)?;
        let digest = digest_of(bytes);
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, &digest));
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::from_binary(&self.engine, bytes).map_err(|e| {
                    LoadError::Compile {
                        source: e.into_boxed_dyn_error(),
                    }
                })?;
                if let Some(cache) = &self.cache {
                    cache.store(&self.engine, &digest, &component);
                }
                component
            }
        };
        self.link(component, digest)
    }

    /// Reads, compiles and links a plugin file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&bytes)
    }

    /// Links an already compiled component (e.g. deserialized from a store
    /// of compiled builds) under its source digest.
    pub fn load_component(
        &self,
        component: Component,
        digest: String,
    ) -> Result<LoadedPlugin, LoadError> {
        self.link(component, digest)
    }

    fn link(&self, component: Component, digest: String) -> Result<LoadedPlugin, LoadError> {
        let contract = contract_version(&self.engine, &component)?;
        let link_error = |e: wasmtime::Error| LoadError::Link {
            source: e.into_boxed_dyn_error(),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let pre = PluginPre::new(&contract, pre).map_err(link_error)?;
        Ok(LoadedPlugin {
            pre: Arc::new(pre),
            engine: self.engine.clone(),
            component,
            digest,
            contract,
        })
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The contract version a component's exports speak, checked against
/// [`SUPPORTED_CONTRACTS`] before anything else, so a build of another
/// contract version is refused by name rather than by a missing function.
pub(crate) fn contract_version(
    engine: &Engine,
    component: &Component,
) -> Result<String, LoadError> {
    let ty = component.component_type();
    let mut found: Vec<(String, String)> = Vec::new();
    for (name, item) in ty.exports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        let Some(rest) = name
            .strip_prefix(CONTRACT_PACKAGE)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        found.push((iface.to_string(), version.to_string()));
    }
    let supported = |v: &str| {
        SUPPORTED_CONTRACTS
            .iter()
            .any(|s| v == *s || v.starts_with(&format!("{s}.")))
    };
    let versions: std::collections::BTreeSet<&str> =
        found.iter().map(|(_, v)| v.as_str()).collect();
    if let Some(other) = versions.iter().find(|v| !supported(v)) {
        return Err(LoadError::Contract {
            found: format!("{CONTRACT_PACKAGE}@{other}"),
            supported: SUPPORTED_CONTRACTS.join(", "),
        });
    }
    for required in REQUIRED_EXPORTS {
        if !found.iter().any(|(i, _)| i == required) {
            return Err(LoadError::Contract {
                found: if found.is_empty() {
                    "no lattice:spec exports".to_string()
                } else {
                    format!("no {CONTRACT_PACKAGE}/{required} export")
                },
                supported: SUPPORTED_CONTRACTS.join(", "),
            });
        }
    }
    let version = versions.into_iter().next().unwrap_or_default().to_string();
    Ok(version)
}

/// A compiled plugin, linked and ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(crate) pre: Arc<PluginPre<HostState>>,
    pub(crate) engine: Engine,
    component: Component,
    digest: String,
    contract: String,
}

impl LoadedPlugin {
    /// Hex SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The contract version its exports speak, e.g. `0.3.0`.
    pub fn contract(&self) -> &str {
        &self.contract
    }

    /// The compiled component (e.g. to serialize it for other hosts).
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// The names of the interfaces the component imports, sorted.
    pub fn imports(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        names.sort();
        names
    }
}

/// Hex SHA-256 of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses bytes that are not a component before the compiler sees them,
/// saying what they are instead (the compiler's own message lists the
/// expected header byte by byte).
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    let not = |what: String| Err(LoadError::NotAComponent(what));
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return not(format!(
            "it does not start with the wasm header \\0asm (it starts with [{}])",
            head.join(" ")
        ));
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        COMPONENT => Ok(()),
        [1, 0, 0, 0] => not("it is a core WebAssembly module; build the plugin as a component (wasm32-wasip2, or `wasm-tools component new`)".into()),
        [a, b, c, d] => not(format!("unknown wasm version/layer {a:02x} {b:02x} {c:02x} {d:02x}")),
    }
}
