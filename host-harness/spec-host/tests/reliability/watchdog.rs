//! Whether every serving host keeps answering. A watchdog asks the
//! lattice's status every half second; a host that answers nothing (not
//! even "busy") for longer than [`SILENCE_BOUND`] is counted as hung, once
//! per silence, whatever the load's requests saw. The load's own bound
//! cannot tell: the control client gives up after a few seconds and such a
//! request only counts as unacknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use spec_lattice::serve::status::{collect_replies, Reply};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest silence of a serving host that is not a hang: well above a
/// restart after `kill -9` (about 3 s) and a nats-server restart.
pub const SILENCE_BOUND: Duration = Duration::from_secs(15);

const EVERY: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_millis(400);

/// A running watchdog.
pub struct Watchdog {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<String>>,
}

impl Watchdog {
    /// Starts watching `hosts` of `lattice`.
    pub fn start(client: async_nats::Client, lattice: String, hosts: &[&str]) -> Watchdog {
        let (stop, mut stopped) = watch::channel(false);
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last: HashMap<String, Instant> =
                hosts.iter().map(|h| (h.clone(), started)).collect();
            let mut silences = Vec::new();
            loop {
                let replies = collect_replies(&client, &lattice, WAIT)
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                for reply in replies {
                    let id = match reply {
                        Reply::Status(s) => s.host_id,
                        Reply::Busy(b) => b.host_id,
                    };
                    if let Some(seen) = last.get_mut(&id) {
                        let silent = now.duration_since(*seen);
                        if silent > SILENCE_BOUND {
                            silences.push(format!(
                                "{id} answered no status request for {:.1} s (bound {} s)",
                                silent.as_secs_f64(),
                                SILENCE_BOUND.as_secs()
                            ));
                        }
                        *seen = now;
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(EVERY) => {}
                }
            }
            let now = Instant::now();
            for (id, seen) in last {
                let silent = now.duration_since(seen);
                if silent > SILENCE_BOUND {
                    silences.push(format!(
                        "{id} still silent at the end, for {:.1} s (bound {} s)",
                        silent.as_secs_f64(),
                        SILENCE_BOUND.as_secs()
                    ));
                }
            }
            silences
        });
        Watchdog { stop, task }
    }

    /// Stops it; every silence longer than the bound, described.
    pub async fn finish(self) -> Vec<String> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
