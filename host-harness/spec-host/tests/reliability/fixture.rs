//! The processes of one scenario: nats-server(s) and two `spec-host serve`
//! processes, each killed when its guard drops (also on panic).
//!
//! Everything listens on loopback on free ports. A scenario's files (nats
//! store directories, spec-host logs, the `--plugin` file) live under
//! `$CARGO_TARGET_TMPDIR/reliability/<scenario>/`, emptied when the scenario
//! starts and left afterwards for a post-mortem; compiled plugins are cached
//! across scenarios and runs in `$CARGO_TARGET_TMPDIR/reliability/cache`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream::StorageType};
use spec_lattice::serve::status::Status;
use spec_nats::server::{free_port, ClusterNode};
use spec_nats::{subjects, LocalNatsServer, ServerOptions};

const BIN: &str = env!("CARGO_BIN_EXE_spec-host");

/// Providers local to host A and host B.
pub const PROVIDERS: [&str; 2] = ["prov-a", "prov-b"];

/// A `spec-host serve` child process.
pub struct HostProc {
    /// Its `--host-id`.
    pub id: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Times it was started.
    pub starts: u32,
}

impl HostProc {
    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("host log opens");
        let child = Command::new(BIN)
            .args(&self.args)
            .env(
                "RUST_LOG",
                "warn,spec_host=info,spec_embed=info,spec_nats=info,spec_lattice=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spec-host starts");
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL, then reaped: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same arguments.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log (stderr, appended across restarts).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, with its log's end, if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited ({status}); its log ends with:\n{}",
                    self.id,
                    tail(&self.log, 30)
                );
            }
        }
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One scenario's lattice: servers, hosts and where their files are.
pub struct Fixture {
    /// The two serving hosts (A, B). Declared first: dropped (killed) before
    /// the servers.
    pub hosts: Vec<HostProc>,
    /// The nats-server node(s).
    pub nats: Vec<LocalNatsServer>,
    /// Node names (cluster) — `n1`… — in `nats` order.
    pub node_names: Vec<String>,
    /// The lattice name.
    pub lattice: String,
    /// The scenario's directory.
    pub dir: PathBuf,
    /// The `--plugin` file the hosts watch, if any.
    pub plugin_file: Option<PathBuf>,
}

fn scenario_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("reliability")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scenario dir");
    dir
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("reliability")
        .join("cache")
}

impl Fixture {
    /// One nats-server and hosts A and B. With `plugin_file`, the hosts
    /// load the plugin from a file of their own, so that it can be swapped.
    pub async fn single(name: &str, plugin_file: bool) -> Fixture {
        Self::single_with(name, plugin_file, 2).await
    }

    /// One nats-server and `hosts` hosts: A and B with a provider each,
    /// then C… with none.
    pub async fn single_with(name: &str, plugin_file: bool, hosts: usize) -> Fixture {
        let dir = scenario_dir(name);
        let server = LocalNatsServer::start(ServerOptions::new(dir.join("nats")))
            .await
            .expect("nats-server starts (nats-server >= 2.10 on PATH or NATS_SERVER_BIN)");
        let mut fx = Fixture {
            hosts: Vec::new(),
            nats: vec![server],
            node_names: vec!["n1".into()],
            lattice: format!("rel-{name}"),
            dir,
            plugin_file: None,
        };
        if plugin_file {
            let path = fx.dir.join("plugin.wasm");
            std::fs::copy(spec_embed::bundled::PLUGIN_PATH, &path).expect("plugin copied");
            fx.plugin_file = Some(path);
        }
        fx.create_buckets(1).await;
        fx.start_hosts(1, hosts).await;
        fx
    }

    /// Three nats-server nodes in one cluster, buckets with 3 replicas.
    pub async fn cluster(name: &str) -> Fixture {
        let dir = scenario_dir(name);
        let route_ports: Vec<u16> = (0..3).map(|_| free_port().expect("free port")).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let mut nats = Vec::new();
        let mut node_names = Vec::new();
        for (i, port) in route_ports.iter().enumerate() {
            let node_name = format!("n{}", i + 1);
            let mut options = ServerOptions::new(dir.join(&node_name));
            options.cluster = Some(ClusterNode {
                cluster_name: format!("rel-{name}"),
                node_name: node_name.clone(),
                route_port: *port,
                routes: routes.clone(),
            });
            nats.push(
                LocalNatsServer::start(options)
                    .await
                    .expect("cluster node starts"),
            );
            node_names.push(node_name);
        }
        let mut fx = Fixture {
            hosts: Vec::new(),
            nats,
            node_names,
            lattice: format!("rel-{name}"),
            dir,
            plugin_file: None,
        };
        fx.create_buckets(3).await;
        fx.start_hosts(3, 2).await;
        fx
    }

    /// URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nats.iter().map(LocalNatsServer::url).collect()
    }

    /// Creates both buckets with `replicas` before any host runs (in a
    /// cluster JetStream needs a few seconds to elect its leaders: bounded
    /// retries), and checks the replica count.
    async fn create_buckets(&self, replicas: usize) {
        let client = connect(&self.urls()).await;
        let js = jetstream::new(client);
        for bucket in [
            subjects::spec_bucket(&self.lattice),
            subjects::config_bucket(&self.lattice),
        ] {
            let config = kv::Config {
                bucket: bucket.clone(),
                history: 1,
                storage: StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match js.create_key_value(config.clone()).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "cannot create {bucket}: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
            let mut stream = js
                .get_stream(format!("KV_{bucket}"))
                .await
                .expect("bucket stream");
            let info = stream.info().await.expect("stream info");
            assert_eq!(info.config.num_replicas, replicas, "{bucket} replicas");
        }
    }

    async fn start_hosts(&mut self, replicas: usize, count: usize) {
        let urls = self.urls().join(",");
        let ids: Vec<String> = (0..count)
            .map(|i| format!("host-{}", char::from(b'a' + i as u8)))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let mut args = vec![
                "--nats".to_string(),
                urls.clone(),
                "--lattice".into(),
                self.lattice.clone(),
                "--state-dir".into(),
                cache_dir().display().to_string(),
                "--replicas".into(),
                replicas.to_string(),
                "serve".into(),
                "--host-id".into(),
                id.clone(),
            ];
            if let Some(provider) = PROVIDERS.get(i) {
                args.push("--provider".into());
                args.push(provider.to_string());
            }
            if let Some(path) = &self.plugin_file {
                args.push("--plugin".into());
                args.push(path.display().to_string());
            }
            // Hosts run only builds and rollouts the scenario's issuer
            // signed, as in production.
            args.push("--trusted-issuer".into());
            args.push(self.issuer());
            let mut host = HostProc {
                id: id.clone(),
                args,
                log: self.dir.join(format!("{id}.log")),
                child: None,
                starts: 0,
            };
            host.spawn();
            self.hosts.push(host);
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.wait_hosts(&ids, Duration::from_secs(180)).await;
    }

    /// The scenario's signing key (made on first use); its public key.
    pub fn issuer(&self) -> String {
        let path = self.dir.join("issuer.nk");
        let key = match path.exists() {
            true => spec_lattice::rollout::SigningKey::load(&path),
            false => spec_lattice::rollout::SigningKey::generate(&path),
        };
        key.expect("the scenario's signing key").public_key()
    }

    /// Runs the `spec-host` command line against this lattice.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command().run(args).await
    }

    /// The `spec-host` command line for this lattice, to run elsewhere.
    pub fn cli_command(&self) -> CliCommand {
        self.issuer();
        CliCommand {
            urls: self.urls().join(","),
            lattice: self.lattice.clone(),
            signing_key: self.dir.join("issuer.nk"),
        }
    }

    /// Waits until each of `ids` answers status (bounded by `limit`);
    /// returns all statuses of the last round.
    pub async fn wait_hosts(&mut self, ids: &[&str], limit: Duration) -> Vec<Status> {
        let client = connect(&self.urls()).await;
        let deadline = Instant::now() + limit;
        loop {
            for host in &mut self.hosts {
                host.assert_running();
            }
            let statuses = spec_lattice::serve::collect_status(
                &client,
                &self.lattice,
                Duration::from_millis(300),
            )
            .await
            .unwrap_or_default();
            if ids
                .iter()
                .all(|id| statuses.iter().any(|s| s.host_id == *id))
            {
                return statuses;
            }
            assert!(
                Instant::now() < deadline,
                "hosts {ids:?} did not answer status within {limit:?}; logs under {}",
                self.dir.display()
            );
        }
    }

    /// Replaces the watched plugin file atomically (write, then rename).
    pub fn swap_plugin_file(&self, from: &str) {
        let path = self
            .plugin_file
            .as_ref()
            .expect("hosts watch a plugin file");
        let tmp = path.with_extension("wasm.tmp");
        std::fs::copy(from, &tmp).expect("plugin copied");
        std::fs::rename(&tmp, path).expect("plugin renamed into place");
    }
}

/// The `spec-host` command line pointed at a lattice.
pub struct CliCommand {
    urls: String,
    lattice: String,
    /// Plugin pushes, rollouts and cancels are signed with it.
    signing_key: PathBuf,
}

impl CliCommand {
    /// Runs it with `args`; its output.
    pub async fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::process::Output {
        tokio::process::Command::new(BIN)
            .arg("--nats")
            .arg(&self.urls)
            .arg("--lattice")
            .arg(&self.lattice)
            .arg("--state-dir")
            .arg(cache_dir())
            .args(args)
            .env("RUST_LOG", "warn")
            .env("SPEC_HOST_SIGNING_KEY", &self.signing_key)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("spec-host runs")
    }
}

/// A test-side NATS connection (async-nats 0.51) to any of `urls`,
/// reconnecting quickly.
pub async fn connect(urls: &[String]) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .name("reliability")
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(Duration::from_secs(10)))
        .reconnect_delay_callback(|attempts| Duration::from_millis((50 * attempts as u64).min(500)))
        .connect(urls)
        .await
        .expect("test client connects")
}
