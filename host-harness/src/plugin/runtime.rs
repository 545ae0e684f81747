//! The wasm engine and loaded plugins.
//!
//! One [`PluginEngine`] per process: the `Engine` (with epoch interruption),
//! the `Linker` that grants the plugin its imports, and a ticker thread that
//! advances the epoch so a plugin that loops is stopped. Each
//! [`LoadedPlugin`] is a compiled component already type-checked against the
//! linker (`InstancePre`), so making a fresh instance after a trap costs
//! microseconds, not a compile.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine};

use super::bindings::{SpecPlugin, SpecPluginPre};
use super::cache::ComponentCache;
use super::state::HostState;
use crate::error::LoadError;

/// How often the epoch advances: the granularity of the CPU budget, and how
/// often a long-running plugin yields to the async runtime.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every plugin call.
#[derive(Clone, Copy, Debug)]
pub struct PluginLimits {
    /// Largest linear memory the plugin may grow to, in bytes.
    pub memory_cap: usize,
    /// Plugin time (excluding time spent in host imports) one call may use.
    pub cpu_budget: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_cap: 256 << 20,
            cpu_budget: Duration::from_secs(2),
        }
    }
}

/// The engine, linker and epoch ticker shared by every plugin loaded.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    stop_ticker: Arc<AtomicBool>,
    cache: Option<ComponentCache>,
}

/// Marker for linking the `wasi:io` interfaces against the store's resource
/// table.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

fn table(state: &mut HostState) -> &mut ResourceTable {
    wasmtime_wasi::WasiView::ctx(state).table
}

/// Links exactly the WASI interfaces that Rust std makes a wasm32-wasip2
/// component import (`wasi:cli` environment, exit, stdio and terminals, and
/// the `wasi:io` streams they use) and nothing more: no filesystem, sockets,
/// clocks or random. The `WasiCtx` behind them grants nothing.
fn add_minimal_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::cli;
    use wasmtime_wasi::p2::bindings::io;

    io::error::add_to_linker::<HostState, HasIo>(linker, table)?;
    io::poll::add_to_linker::<HostState, HasIo>(linker, table)?;
    io::streams::add_to_linker::<HostState, HasIo>(linker, table)?;
    let cli_view = <HostState as WasiCliView>::cli;
    cli::environment::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(linker, cli_view)?;
    Ok(())
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
        SpecPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_error)?;
        add_minimal_wasi(&mut linker).map_err(engine_error)?;

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

    /// Compiles and links a plugin from its bytes.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
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

    fn link(&self, component: Component, digest: String) -> Result<LoadedPlugin, LoadError> {
        let link_error = |e: wasmtime::Error| LoadError::Link {
            source: e.into_boxed_dyn_error(),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let pre = SpecPluginPre::new(pre).map_err(link_error)?;
        Ok(LoadedPlugin {
            pre: Arc::new(pre),
            engine: self.engine.clone(),
            digest,
        })
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A compiled plugin, linked and ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(crate) pre: Arc<SpecPluginPre<HostState>>,
    pub(crate) engine: Engine,
    digest: String,
}

impl LoadedPlugin {
    /// Hex SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The names of the interfaces the component imports, sorted.
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        let mut names: Vec<String> = component
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
