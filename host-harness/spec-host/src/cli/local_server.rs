//! The local nats-server that `spec-host` runs when no `--nats` is given,
//! shared by every `spec-host` process on one state directory.
//!
//! An exclusive lock on `<state-dir>/nats-server.lock` decides who owns the
//! server: the owner starts it and stops it on exit. A long-running owner
//! (`serve`, `follow`) writes its URL and pid to `nats-server.json` and any
//! other process connects to it; a one-shot command keeps its server to
//! itself for the second it runs, and others wait for the lock, so nobody
//! is left connected to a server that a one-shot command is about to stop. A server left running by an owner that was
//! killed (the OS releases its lock) is adopted, not started twice on the
//! same store.
//!
//! The server is private: it admits one nkey user, whose seed is generated
//! on first use into `<state-dir>/nats-user.nk` (mode 0600, like the record
//! file). Every `spec-host` command on that state directory connects with
//! it; any other client is refused.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use spec_nats::{LocalNatsServer, ServerOptions};

/// Where the local server's user seed is kept.
pub(crate) fn user_seed_path(state_dir: &Path) -> PathBuf {
    state_dir.join("nats-user.nk")
}

/// The public key of the state directory's user, generating the seed the
/// first time. A seed file readable by others is refused rather than used.
fn local_user(state_dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = user_seed_path(state_dir);
    if let Ok(meta) = std::fs::metadata(&path) {
        if meta.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "{} is readable by other users; make it private (chmod 600) or delete it",
                path.display()
            );
        }
        let seed = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let key = nkeys::KeyPair::from_seed(seed.trim())
            .map_err(|_| anyhow::anyhow!("{} does not hold an nkey seed", path.display()))?;
        return Ok(key.public_key());
    }
    let key = nkeys::KeyPair::new_user();
    let seed = key
        .seed()
        .map_err(|e| anyhow::anyhow!("making a user seed: {e}"))?;
    spec_nats::server::write_private(&path, &format!("{seed}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key.public_key())
}

#[derive(Serialize, Deserialize)]
struct ServerRecord {
    url: String,
    pid: u32,
}

/// A server this process started, and the lock that makes it the owner.
pub(crate) struct OwnedServer {
    server: LocalNatsServer,
    record: PathBuf,
    // Held for as long as the server runs; the OS releases it on exit.
    _lock: File,
}

impl OwnedServer {
    /// Stops the server (its data stays) and withdraws the record.
    pub async fn stop(mut self) {
        let _ = std::fs::remove_file(&self.record);
        self.server.stop().await;
    }
}

fn live_record(path: &Path) -> Option<ServerRecord> {
    let text = std::fs::read_to_string(path).ok()?;
    let record: ServerRecord = serde_json::from_str(&text).ok()?;
    let port = record.url.rsplit(':').next()?.parse::<u16>().ok()?;
    let alive = Path::new(&format!("/proc/{}", record.pid)).exists()
        && std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], port).into(),
            Duration::from_millis(200),
        )
        .is_ok();
    alive.then_some(record)
}

/// The URL of the state directory's server, starting it if nobody runs it.
pub(crate) async fn local_server(
    state_dir: &Path,
    shared: bool,
) -> anyhow::Result<(String, Option<OwnedServer>)> {
    if !state_dir.exists() {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        // Only its owner may read the server's data and keys.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", state_dir.display()))?;
    }
    let lock_path = state_dir.join("nats-server.lock");
    let record_path = state_dir.join("nats-server.json");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lock.try_lock() {
            Ok(()) => {
                if let Some(orphan) = live_record(&record_path) {
                    tracing::info!(url = %orphan.url, pid = orphan.pid, "reusing a nats-server left running by an earlier spec-host");
                    return Ok((orphan.url, None));
                }
                let store_dir = state_dir.join("nats");
                let mut options = ServerOptions::new(&store_dir);
                options.nkey_users = vec![local_user(state_dir)?];
                let server = LocalNatsServer::start(options).await.context(
                    "starting a local nats-server (use --nats URL to connect to one instead)",
                )?;
                let record = ServerRecord {
                    url: server.url(),
                    pid: server.pid().unwrap_or_default(),
                };
                if shared {
                    spec_nats::server::write_private(
                        &record_path,
                        &serde_json::to_string(&record)?,
                    )
                    .with_context(|| format!("writing {}", record_path.display()))?;
                }
                tracing::info!(url = %record.url, store = %store_dir.display(), "started a local nats-server");
                let owned = OwnedServer {
                    server,
                    record: record_path,
                    _lock: lock,
                };
                return Ok((record.url, Some(owned)));
            }
            Err(TryLockError::WouldBlock) => {
                // Another spec-host owns the server: it is starting it, or a
                // one-shot command is using it and will release the lock.
                if let Some(record) = live_record(&record_path) {
                    return Ok((record.url, None));
                }
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "another spec-host has held {} for a minute without sharing its nats-server",
                lock_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
