//! Support for the end-to-end tests: paths of the built guests and hosts
//! started over in-memory backends.

use std::sync::{Arc, OnceLock};

use spec_host::backend::memory::{MemoryKv, RecordingNotifier};
use spec_host::{LoadedPlugin, PluginEngine, PluginLimits, SpecHost};

/// The plugin as built for `spec-host` (the bundled one).
pub const PLUGIN_WASM: &str = spec_host::bundled::PLUGIN_PATH;
/// The plugin built with feature `alt-version`.
pub const PLUGIN_ALT_WASM: &str = env!("SPEC_PLUGIN_ALT_WASM");
/// The misbehaving test guest.
pub const TRAP_GUEST_WASM: &str = env!("TRAP_GUEST_WASM");

/// One engine for every test in a binary: compiling a component takes
/// tens of milliseconds, an engine's ticker thread is per engine.
pub fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| match PluginEngine::new() {
        Ok(engine) => engine,
        Err(e) => panic!("wasm engine: {e}"),
    })
}

/// Loads a component file.
pub fn load(path: &str) -> LoadedPlugin {
    match engine().load_file(std::path::Path::new(path)) {
        Ok(plugin) => plugin,
        Err(e) => panic!("loading {path}: {e:?}"),
    }
}

/// The regular plugin, compiled once per test binary.
pub fn plugin() -> LoadedPlugin {
    static PLUGIN: OnceLock<LoadedPlugin> = OnceLock::new();
    PLUGIN.get_or_init(|| load(PLUGIN_WASM)).clone()
}

/// A host over in-memory backends, with handles on both.
pub struct MemoryHost {
    /// The running plugin.
    pub host: SpecHost,
    /// Its store.
    pub kv: MemoryKv,
    /// Its provider deliveries.
    pub notifier: RecordingNotifier,
}

/// Starts `plugin` over a fresh in-memory store, with these local providers.
pub async fn start_with(
    plugin: LoadedPlugin,
    providers: &[&str],
    limits: PluginLimits,
) -> MemoryHost {
    let kv = MemoryKv::new();
    let notifier = RecordingNotifier::new(providers.iter().copied());
    let host = match SpecHost::start(
        plugin,
        Arc::new(kv.clone()),
        Arc::new(notifier.clone()),
        limits,
    )
    .await
    {
        Ok(host) => host,
        Err(e) => panic!("starting the plugin: {e:?}"),
    };
    MemoryHost { host, kv, notifier }
}

/// Starts the regular plugin with default limits.
pub async fn start(providers: &[&str]) -> MemoryHost {
    start_with(plugin(), providers, PluginLimits::default()).await
}

/// A nats-server of a test's own: free loopback port, JetStream, a fresh
/// temporary store (`NATS_SERVER_BIN` picks the binary).
pub struct Nats {
    /// The running server.
    pub server: spec_host::nats::LocalNatsServer,
    /// Its store; removed when the fixture drops.
    pub dir: tempfile::TempDir,
}

/// Starts a test's own nats-server.
pub async fn nats() -> Nats {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("temp dir: {e}"),
    };
    let options = spec_host::nats::ServerOptions::new(dir.path().join("store"));
    match spec_host::nats::LocalNatsServer::start(options).await {
        Ok(server) => Nats { server, dir },
        Err(e) => panic!("starting nats-server: {e}"),
    }
}

/// A harness on a NATS lattice: plugin, JetStream KV, NATS deliveries for
/// `providers`, and a follower of the bucket.
pub struct NatsHost {
    /// The running plugin.
    pub host: SpecHost,
    /// The lattice it uses.
    pub lattice: spec_host::nats::Lattice,
    /// The follower (stopped on drop of the runtime).
    pub follower: spec_host::nats::FollowerHandle,
}

/// Opens `lattice` on `url` and starts a following host with these local
/// providers; returns once the follower's watch is up.
pub async fn nats_host(url: &str, lattice: &str, providers: &[&str]) -> NatsHost {
    use spec_host::nats::{Follower, Lattice, LatticeOptions, LocalProvider};
    let lattice = match Lattice::open(LatticeOptions::new(url, lattice)).await {
        Ok(l) => l,
        Err(e) => panic!("opening the lattice: {e:?}"),
    };
    let providers: Vec<LocalProvider> = providers
        .iter()
        .map(|p| match p.parse() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        })
        .collect();
    let host = match SpecHost::start(
        plugin(),
        Arc::new(lattice.key_value()),
        Arc::new(lattice.notifier(providers)),
        PluginLimits::default(),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => panic!("starting the plugin: {e:?}"),
    };
    let mut follower = Follower::new(lattice.specs.clone(), host.clone()).spawn();
    follower.ready().await;
    NatsHost {
        host,
        lattice,
        follower,
    }
}
