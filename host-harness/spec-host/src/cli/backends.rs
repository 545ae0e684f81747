//! Choosing and opening the backends for a command: in memory, or a NATS
//! lattice — a given `--nats` URL, or a local nats-server that `spec-host`
//! starts itself (data kept under the state directory between runs).

use std::path::PathBuf;
use std::sync::Arc;

use super::local_server::{local_server, OwnedServer};
use super::{Cli, Command, StoreKind};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::backend::{KeyValue, ProviderNotify};
use spec_nats::{Lattice, LatticeOptions, LocalProvider};

/// The backends of one run, and what must be stopped after it.
pub(crate) struct Backends {
    pub kv: Arc<dyn KeyValue>,
    pub notify: Arc<dyn ProviderNotify>,
    /// The lattice, when the store is NATS.
    pub lattice: Option<Lattice>,
    /// The in-memory deliveries, when the store is memory.
    pub recorder: Option<RecordingNotifier>,
    /// A nats-server this run started, stopped at the end.
    server: Option<OwnedServer>,
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
        if let Some(server) = self.server.take() {
            server.stop().await;
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

pub(crate) async fn open(cli: &Cli) -> anyhow::Result<Backends> {
    if cli.store == StoreKind::Memory {
        let recorder = RecordingNotifier::new(cli.providers.iter().map(|p| p.id.clone()));
        return Ok(Backends {
            kv: Arc::new(MemoryKv::new()),
            notify: Arc::new(recorder.clone()),
            lattice: None,
            recorder: Some(recorder),
            server: None,
        });
    }
    let (url, server, local_key) = match &cli.nats {
        Some(url) => (url.clone(), None, None),
        None => {
            let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
            let long_running = matches!(cli.command, Command::Serve(_) | Command::Follow);
            let (url, server) = local_server(&state_dir, long_running).await?;
            (
                url,
                server,
                Some(super::local_server::user_seed_path(&state_dir)),
            )
        }
    };
    let mut options = LatticeOptions::new(url, cli.lattice.clone());
    options.replicas = cli.replicas;
    if let Err(e) = cli.connection.apply(&mut options) {
        if let Some(server) = server {
            server.stop().await;
        }
        return Err(e);
    }
    // The local server admits only the user whose seed it keeps in the
    // state directory.
    if let Some(seed) = local_key {
        options.auth = spec_nats::Auth::NkeyFile(seed);
    }
    let lattice = match Lattice::open(options).await {
        Ok(lattice) => lattice,
        Err(e) => {
            let unopened = Backends {
                kv: Arc::new(MemoryKv::new()),
                notify: Arc::new(RecordingNotifier::default()),
                lattice: None,
                recorder: None,
                server,
            };
            unopened.shutdown().await;
            return Err(e.into());
        }
    };
    let providers: Vec<LocalProvider> = cli.providers.clone();
    Ok(Backends {
        kv: Arc::new(lattice.key_value()),
        notify: Arc::new(lattice.notifier(providers)),
        lattice: Some(lattice),
        recorder: None,
        server,
    })
}
