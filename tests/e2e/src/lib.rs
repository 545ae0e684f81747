//! Support for the end-to-end tests: paths of the built guests, hosts
//! started over in-memory backends or a nats-server, wasmCloud's control
//! client, ([`secure`]) secured nats-servers and ([`wasmcloud`]) the real
//! wasmCloud v1.9 host as a child process.

pub mod secure;
pub mod wasmcloud;

use std::sync::{Arc, OnceLock};

use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::{LoadedPlugin, PluginEngine, PluginLimits, SpecHost};

/// The plugin as built for `spec-host` (the bundled one).
pub const PLUGIN_WASM: &str = spec_embed::bundled::PLUGIN_PATH;
pub use test_artifacts::{
    PLUGIN_ALT_WASM, PLUGIN_FAULTY_WASM, PLUGIN_FOREIGN_WASM, PLUGIN_V0_2_WASM, TRAP_GUEST_WASM,
    WRONG_WIT_GUEST_WASM,
};

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
    pub server: spec_nats::LocalNatsServer,
    /// Its store; removed when the fixture drops.
    pub dir: tempfile::TempDir,
}

/// Starts a test's own nats-server.
pub async fn nats() -> Nats {
    nats_with_max_payload(None).await
}

/// Starts a test's own nats-server that takes messages of at most
/// `max_payload` bytes (`None`: the server's default, 1 MiB).
pub async fn nats_with_max_payload(max_payload: Option<usize>) -> Nats {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("temp dir: {e}"),
    };
    let mut options = spec_nats::ServerOptions::new(dir.path().join("store"));
    options.max_payload = max_payload;
    match spec_nats::LocalNatsServer::start(options).await {
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
    pub lattice: spec_nats::Lattice,
    /// The follower (stopped on drop of the runtime).
    pub follower: spec_nats::FollowerHandle,
}

/// Opens `lattice` on `url` and starts a following host with these local
/// providers; returns once the follower's watch is up.
pub async fn nats_host(url: &str, lattice: &str, providers: &[&str]) -> NatsHost {
    use spec_nats::{Lattice, LatticeOptions, LocalProvider};
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
    let mut follower = lattice.follower(host.clone()).spawn();
    follower.ready().await;
    NatsHost {
        host,
        lattice,
        follower,
    }
}

/// A `serve` loop of a test's own, stopped by [`Served::stop`].
pub struct Served {
    /// Its shared state.
    pub service: Arc<spec_lattice::serve::Service>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Asks it to stop and waits for `serve` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// How [`serve_with`] sets up a service.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Local providers.
    pub providers: Vec<String>,
    /// The plugin comes from this file (and is swapped when it changes);
    /// `None`: the bundled build.
    pub plugin_file: Option<std::path::PathBuf>,
    /// Limits of every plugin call (`None`: the defaults).
    pub limits: Option<PluginLimits>,
    /// Requests handled at once (`None`: the default).
    pub max_in_flight: Option<usize>,
    /// How to reach the lattice (credentials, TLS, domain, control
    /// prefix); `None`: plain NATS at the given URL.
    pub connection: Option<spec_nats::LatticeOptions>,
    /// Take part in lattice rollouts, trusting these signatures.
    pub rollouts: Option<spec_lattice::rollout::Trust>,
    /// This host's id (default: one per process).
    pub host_id: Option<String>,
}

/// Serves `lattice` on `url` with these local providers; with
/// `plugin_file`, the plugin comes from that file and is swapped when it
/// changes. Returns once the service subscribed.
pub async fn serve(
    url: &str,
    lattice: &str,
    providers: &[&str],
    plugin_file: Option<std::path::PathBuf>,
) -> Served {
    let options = ServeOptions {
        providers: providers.iter().map(|p| p.to_string()).collect(),
        plugin_file,
        ..ServeOptions::default()
    };
    serve_with(url, lattice, options).await
}

/// Serves `lattice` on `url` as host `id`, taking part in lattice
/// rollouts signed by an issuer `trust` names.
pub async fn serve_trusting(
    url: &str,
    lattice: &str,
    id: &str,
    trust: spec_lattice::rollout::Trust,
) -> Served {
    let options = ServeOptions {
        rollouts: Some(trust),
        host_id: Some(id.into()),
        ..ServeOptions::default()
    };
    serve_with(url, lattice, options).await
}

/// Serves `lattice` on `url` as `options` say. Returns once the service
/// subscribed.
pub async fn serve_with(url: &str, lattice: &str, options: ServeOptions) -> Served {
    let ServeOptions {
        providers,
        plugin_file,
        limits,
        max_in_flight,
        connection,
        rollouts,
        host_id,
    } = options;
    use spec_lattice::serve::{status::PluginInfo, Service, Swaps};
    use spec_nats::{Lattice, LatticeOptions, LocalProvider};
    let options = connection.unwrap_or_else(|| LatticeOptions::new(url, lattice));
    let lattice = match Lattice::open(options).await {
        Ok(l) => l,
        Err(e) => panic!("opening the lattice: {e:?}"),
    };
    // `ID` or `ID=KEY`, as on spec-host's command line.
    let local: Vec<LocalProvider> = providers
        .iter()
        .map(|p| match p.parse() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        })
        .collect();
    let ids: Vec<String> = local.iter().map(|p| p.id.clone()).collect();
    let engine = Arc::new(match PluginEngine::new() {
        Ok(e) => e,
        Err(e) => panic!("engine: {e}"),
    });
    let plugin = match &plugin_file {
        Some(path) => match engine.load_file(path) {
            Ok(p) => p,
            Err(e) => panic!("loading {}: {e:?}", path.display()),
        },
        None => plugin(),
    };
    let digest = plugin.digest().to_string();
    let host = match SpecHost::start(
        plugin,
        Arc::new(spec_lattice::rollout::shadow::ReadLog::new(Arc::new(
            lattice.key_value(),
        ))),
        Arc::new(lattice.notifier(local)),
        limits.unwrap_or_default(),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => panic!("starting the plugin: {e:?}"),
    };
    let version = host.plugin_version();
    let info = PluginInfo {
        version,
        digest,
        path: plugin_file.as_ref().map(|p| p.display().to_string()),
    };
    let mut service = Service::new(
        host,
        lattice,
        host_id.unwrap_or_else(|| format!("test-{}", std::process::id())),
        ids,
        info,
    );
    if let Some(n) = max_in_flight {
        service = service.with_max_in_flight(n);
    }
    let service = Arc::new(service);
    let swaps = (plugin_file.is_some() || rollouts.is_some()).then(|| Swaps {
        engine,
        watch: plugin_file,
        rollouts,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(spec_lattice::serve::serve(
        Arc::clone(&service),
        swaps,
        async move {
            let _ = stopped.await;
        },
    ));
    // Subscribed once a status request gets an answer from it.
    for _ in 0..100 {
        let found = spec_lattice::serve::collect_status(
            &service.lattice.client,
            &service.lattice.options.lattice,
            std::time::Duration::from_millis(100),
        )
        .await;
        if matches!(found, Ok(ref f) if !f.is_empty()) {
            break;
        }
    }
    Served {
        service,
        stop: Some(stop),
        task,
    }
}

/// wasmCloud's own control client (`wasmcloud-control-interface` 2.4 on
/// its async-nats 0.39) for `lattice` at `url`, as `wash` drives a lattice.
/// Its timeout is generous: a test that waits for a reply fails on the
/// reply, not on a slow machine.
pub async fn ctl_client(url: &str, lattice: &str) -> wasmcloud_control_interface::Client {
    let nc = async_nats_039::connect(url)
        .await
        .expect("0.39 client connects");
    wasmcloud_control_interface::ClientBuilder::new(nc)
        .lattice(lattice)
        .timeout(std::time::Duration::from_secs(20))
        .build()
}

/// Sends `link` through wasmCloud's control client; whoever answers must
/// take it. The reply's message.
pub async fn put_link_ok(
    client: &wasmcloud_control_interface::Client,
    link: wasmcloud_control_interface::Link,
) -> String {
    let reply = client.put_link(link).await.expect("link.put answered");
    assert!(reply.succeeded(), "link.put refused: {}", reply.message());
    reply.message().to_string()
}

/// A `wasi:keyvalue/store` link as wasmCloud's control client sends it.
pub fn kv_link(
    source: &str,
    target: &str,
    name: &str,
    target_config: &[&str],
) -> wasmcloud_control_interface::Link {
    wasmcloud_control_interface::Link::builder()
        .source_id(source)
        .target(target)
        .name(name)
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["store".to_string()])
        .target_config(target_config.iter().map(|s| s.to_string()).collect())
        .build()
        .expect("a complete link")
}

/// Answers `host.ping` on `lattice` as a wasmCloud v1.9 host does, until
/// the task is aborted: what tells a `spec-host serve` that the lattice has
/// hosts that write blindly (its guard of acknowledged links then acts).
pub async fn wasmcloud_presence(url: &str, lattice: &str) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    let client = async_nats::connect(url).await.expect("connects");
    let mut pings = client
        .subscribe(format!("wasmbus.ctl.v1.{lattice}.host.ping"))
        .await
        .expect("subscribes");
    client.flush().await.expect("flushes");
    tokio::spawn(async move {
        while let Some(msg) = pings.next().await {
            if let Some(reply) = msg.reply {
                let body = bytes::Bytes::from_static(br#"{"success":true,"message":""}"#);
                let _ = client.publish(reply, body).await;
            }
        }
    })
}

/// Runs `spec-host --nats URL --lattice LATTICE COMMAND` in this process (a
/// fresh state directory of its own; `command` split at spaces), as a user
/// would from a shell beside the test's hosts; its error, if it fails.
pub async fn spec_host_cli(url: &str, lattice: &str, command: &str) -> anyhow::Result<()> {
    let state = tempfile::tempdir()?;
    let state_dir = state.path().display().to_string();
    let mut all = vec![
        "spec-host",
        "--nats",
        url,
        "--lattice",
        lattice,
        "--state-dir",
        &state_dir,
    ];
    all.extend(command.split_whitespace());
    let cli = <spec_host::cli::Cli as clap::Parser>::try_parse_from(all)?;
    spec_host::cli::run(cli).await
}

/// Stores `n` specs of one link each, `{prefix}-{i}` → `kvredis`, straight
/// into `lattice`'s bucket (as other hosts would have written them), 256
/// writes in flight.
pub async fn fill_specs(lattice: &spec_nats::Lattice, prefix: &str, n: usize) {
    use futures::StreamExt;
    let failed = futures::stream::iter(0..n)
        .map(|i| {
            let kv = lattice.specs.clone();
            async move {
                let source = format!("{prefix}-{i}");
                let spec = test_support::spec(
                    &format!("file:///{source}.wasm"),
                    vec![test_support::store_link(&source, "kvredis")],
                );
                let key = spec_nats::subjects::component_key(&source);
                kv.put(key, spec_model::json::encode_spec(&spec).into())
                    .await
                    .err()
            }
        })
        .buffer_unordered(256)
        .filter_map(|e| async move { e })
        .collect::<Vec<_>>()
        .await;
    assert!(failed.is_empty(), "storing specs: {:?}", failed.first());
}
