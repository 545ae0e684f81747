//! Choosing and opening the backends for a command: in memory, or a NATS
//! lattice — a given `--nats` URL, or a local nats-server that `spec-host`
//! starts itself (data kept under the state directory between runs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Cli, StoreKind};
use crate::backend::memory::{MemoryKv, RecordingNotifier};
use crate::backend::{KeyValue, ProviderNotify};
use crate::nats::{Lattice, LatticeOptions, LocalNatsServer, LocalProvider, ServerOptions};

/// The backends of one run, and what must be stopped after it.
pub(crate) struct Backends {
    pub kv: Arc<dyn KeyValue>,
    pub notify: Arc<dyn ProviderNotify>,
    /// The lattice, when the store is NATS.
    pub lattice: Option<Lattice>,
    /// The in-memory deliveries, when the store is memory.
    pub recorder: Option<RecordingNotifier>,
    /// A nats-server this run started, stopped at the end.
    server: Option<LocalNatsServer>,
    record: Option<PathBuf>,
}

impl Backends {
    /// Stops what this run started (the local server keeps its data).
    pub async fn shutdown(mut self) {
        if let Some(lattice) = self.lattice.take() {
            // Send what is buffered and close the connection before the
            // server goes, so that no reconnect attempt is logged.
            let drain = lattice.client.drain();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        }
        if let Some(mut server) = self.server.take() {
            server.stop().await;
        }
        if let Some(record) = self.record.take() {
            let _ = std::fs::remove_file(record);
        }
    }
}

/// Where `spec-host` keeps its own nats-server's data by default.
pub(crate) fn default_state_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("spec-host")
}

/// The running local server of an earlier `spec-host` (e.g. a `follow` in
/// another terminal) that this run can share instead of starting a second
/// server on the same store.
#[derive(Serialize, Deserialize)]
struct ServerRecord {
    url: String,
    pid: u32,
}

fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join("nats-server.json")
}

fn running_record(state_dir: &Path) -> Option<ServerRecord> {
    let text = std::fs::read_to_string(record_path(state_dir)).ok()?;
    let record: ServerRecord = serde_json::from_str(&text).ok()?;
    // Alive if its process exists (Linux); otherwise the record is stale.
    Path::new(&format!("/proc/{}", record.pid))
        .exists()
        .then_some(record)
}

pub(crate) async fn open(cli: &Cli) -> anyhow::Result<Backends> {
    if cli.store == StoreKind::Memory {
        let recorder = RecordingNotifier::new(cli.providers.iter().map(|p| p.id.clone()));
        return Ok(Backends {
            kv: Arc::new(MemoryKv::new()),
            notify: Arc::new(recorder.clone()),
            lattice: None,
            recorder: Some(recorder),
            server: None,
            record: None,
        });
    }
    let (url, server, record) = match &cli.nats {
        Some(url) => (url.clone(), None, None),
        None => {
            let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
            match running_record(&state_dir) {
                Some(existing) => (existing.url, None, None),
                None => {
                    let store_dir = state_dir.join("nats");
                    let server = LocalNatsServer::start(ServerOptions::new(&store_dir))
                        .await
                        .context("starting a local nats-server (use --nats URL to connect to one instead)")?;
                    let record = record_path(&state_dir);
                    let pid = server.pid().unwrap_or_default();
                    let text = serde_json::to_string(&ServerRecord {
                        url: server.url(),
                        pid,
                    })?;
                    std::fs::write(&record, text)
                        .with_context(|| format!("writing {}", record.display()))?;
                    tracing::info!(url = %server.url(), store = %store_dir.display(), "started a local nats-server");
                    (server.url(), Some(server), Some(record))
                }
            }
        }
    };
    let mut options = LatticeOptions::new(url, cli.lattice.clone());
    options.replicas = cli.replicas;
    let lattice = match Lattice::open(options).await {
        Ok(lattice) => lattice,
        Err(e) => {
            let unopened = Backends {
                kv: Arc::new(MemoryKv::new()),
                notify: Arc::new(RecordingNotifier::default()),
                lattice: None,
                recorder: None,
                server,
                record,
            };
            unopened.shutdown().await;
            return Err(e).context("opening the lattice");
        }
    };
    let providers: Vec<LocalProvider> = cli.providers.clone();
    Ok(Backends {
        kv: Arc::new(lattice.key_value()),
        notify: Arc::new(lattice.notifier(providers)),
        lattice: Some(lattice),
        recorder: None,
        server,
        record,
    })
}
