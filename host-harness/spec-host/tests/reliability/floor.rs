//! The floor under a node kill: raw JetStream KV puts into the same bucket,
//! from as many clients as the load, during the same fault.
//!
//! Their keys are outside `COMPONENT_` (hosts skip them), so they meet the
//! same stream and the same leader election as spec-host's writes, with
//! nothing of spec-host in the path. The longest gap between their
//! acknowledgements is what any client of that stream meets; the scenario
//! prints spec-host's beside it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fixture::connect;
use super::load::Progress;

/// Each put's bound, as spec-host's store calls have (2 s).
const PUT_TIMEOUT: Duration = Duration::from_secs(2);

/// Raw writers running.
pub struct Floor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// What they got acknowledged, and the gaps.
    pub progress: Arc<Progress>,
}

/// Starts `clients` raw writers into `LATTICEDATA_{lattice}`, each on its
/// own connection to every node.
pub async fn start(urls: &[String], lattice: &str, clients: usize) -> Floor {
    let (stop, stopped) = watch::channel(false);
    let progress = Arc::new(Progress {
        began: Some(Instant::now()),
        ..Progress::default()
    });
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = connect(urls).await;
        let bucket = async_nats::jetstream::new(client)
            .get_key_value(format!("LATTICEDATA_{lattice}"))
            .await
            .expect("the spec bucket exists");
        let (progress, mut stopped) = (Arc::clone(&progress), stopped.clone());
        tasks.push(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            for j in 0u64.. {
                if *stopped.borrow_and_update() {
                    return;
                }
                let started = Instant::now();
                let put = bucket.put(format!("FLOOR_{c}_{}", j % 64), j.to_string().into());
                match tokio::time::timeout(PUT_TIMEOUT, put).await {
                    Ok(Ok(_)) => {
                        progress.acked_op(started);
                        backoff = Duration::from_millis(50);
                    }
                    _ => {
                        progress.unacked.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }));
    }
    Floor {
        stop,
        tasks,
        progress,
    }
}

impl Floor {
    /// Stops the writers.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
