//! The local providers, played by the test: every delivery to
//! `wasmbus.rpc.{lattice}.{provider}.linkdefs.put|del` is recorded, and the
//! last one per provider and link key is compared with the final store.
//!
//! One wildcard subscription receives every provider's puts and deletes, so
//! they are seen in the order each host published them. A provider whose
//! host was killed and restarted is reset (in wasmCloud a provider is a
//! child of its host and restarts with it): a marker message through the
//! same subscription cuts its record at the right place in the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use spec_nats::InterfaceLinkDefinition;

use super::model::{LinkKey, Links, NAMESPACE, PACKAGE};

/// A provider's last delivery for one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Last {
    /// A put, with its interfaces.
    Put {
        /// The link's interfaces.
        interfaces: Vec<String>,
    },
    /// A delete.
    Del,
}

/// A provider whose last delivery disagrees with the store.
#[derive(Clone, Debug)]
pub enum Mismatch {
    /// About one link (target = the provider).
    Link {
        /// The provider.
        provider: String,
        /// The link key.
        key: LinkKey,
        /// The stored link's interfaces, `None` when not stored.
        stored: Option<Vec<String>>,
        /// The provider's last delivery for it.
        last: Option<Last>,
    },
    /// A delivery that did not decode or was not the suite's.
    Odd(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Link {
                provider,
                key,
                stored,
                last,
            } => write!(
                f,
                "{provider}: link {key} -> {provider} stored {stored:?}, last delivery {last:?}"
            ),
            Mismatch::Odd(text) => f.write_str(text),
        }
    }
}

impl Mismatch {
    /// Whether `host_log` (the provider's host's log) shows the host
    /// handing the delivery the store calls for to NATS last: then the
    /// host did its part and the message was lost on the way.
    pub fn published_by_host(&self, host_log: &str) -> bool {
        let Mismatch::Link {
            provider,
            key,
            stored,
            ..
        } = self
        else {
            return false;
        };
        let fields = format!(
            "provider=\"{provider}\" source={} target={provider} name={}",
            key.source, key.name
        );
        let last = host_log
            .lines()
            .rev()
            .map(strip_ansi)
            .filter(|l| l.ends_with(&fields))
            .filter_map(|l| {
                if l.contains("link put delivered") {
                    Some(true)
                } else if l.contains("link delete delivered") {
                    Some(false)
                } else {
                    None
                }
            })
            .next();
        last == Some(stored.is_some())
    }
}

/// A log line without its colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Default)]
struct Record {
    /// (provider, key, target) → last delivery.
    last: HashMap<(String, LinkKey, String), Last>,
    /// Deliveries per provider.
    count: BTreeMap<String, u64>,
    /// Deliveries that did not decode or named a foreign namespace.
    odd: Vec<String>,
    resets: u64,
}

const RESET: &str = "reliability-reset";

/// Records provider deliveries until dropped.
pub struct Recorder {
    client: async_nats::Client,
    lattice: String,
    record: Arc<Mutex<Record>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    /// Subscribes on `client`.
    pub async fn start(client: async_nats::Client, lattice: &str) -> Recorder {
        let mut sub = client
            .subscribe(format!("wasmbus.rpc.{lattice}.*.linkdefs.*"))
            .await
            .expect("provider subscription");
        client.flush().await.expect("flush");
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = Arc::clone(&record);
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let parts: Vec<&str> = msg.subject.as_str().split('.').collect();
                let (Some(provider), Some(op)) = (parts.get(3), parts.get(5)) else {
                    continue;
                };
                let mut r = lock(&rec);
                if *op == RESET {
                    r.last.retain(|(p, _, _), _| p != provider);
                    r.resets += 1;
                    continue;
                }
                *r.count.entry(provider.to_string()).or_default() += 1;
                let def = match InterfaceLinkDefinition::decode(&msg.payload) {
                    Ok(d) => d.link(),
                    Err(e) => {
                        r.odd
                            .push(format!("{}: undecodable delivery: {e}", msg.subject));
                        continue;
                    }
                };
                if def.wit_namespace != NAMESPACE || def.wit_package != PACKAGE {
                    r.odd.push(format!("{}: foreign link {def:?}", msg.subject));
                    continue;
                }
                let key = LinkKey {
                    source: def.source_id,
                    name: def.name,
                };
                let last = match *op {
                    "put" => Last::Put {
                        interfaces: def.interfaces,
                    },
                    "del" => Last::Del,
                    other => {
                        r.odd.push(format!("unknown delivery kind {other}"));
                        continue;
                    }
                };
                r.last.insert((provider.to_string(), key, def.target), last);
            }
        });
        Recorder {
            client,
            lattice: lattice.to_string(),
            record,
            task,
        }
    }

    /// Forgets what `provider` received so far (its host restarts). Call
    /// after the old host is dead and its last messages had time to arrive.
    pub async fn reset(&self, provider: &str) {
        let subject = format!("wasmbus.rpc.{}.{provider}.linkdefs.{RESET}", self.lattice);
        self.client
            .publish(subject, bytes::Bytes::new())
            .await
            .expect("reset marker");
        self.client.flush().await.expect("flush");
    }

    /// Deliveries received (all providers).
    pub fn deliveries(&self) -> u64 {
        lock(&self.record).count.values().sum()
    }

    /// Mismatches between each provider's last deliveries and `stored`:
    /// a stored link whose target is a local provider must have a put with
    /// its interfaces as that provider's last delivery for it; any other
    /// link the provider heard of must have a delete last.
    fn mismatches(&self, providers: &[&str], stored: &BTreeMap<LinkKey, Links>) -> Vec<Mismatch> {
        let r = lock(&self.record);
        let mut out: Vec<Mismatch> = r.odd.iter().cloned().map(Mismatch::Odd).collect();
        let mut seen = BTreeSet::new();
        for (key, links) in stored {
            for (target, interfaces) in links {
                if !providers.contains(&target.as_str()) {
                    continue;
                }
                let id = (target.clone(), key.clone(), target.clone());
                seen.insert(id.clone());
                let want = Last::Put {
                    interfaces: interfaces.clone(),
                };
                match r.last.get(&id) {
                    Some(last) if *last == want => {}
                    got => out.push(Mismatch::Link {
                        provider: target.clone(),
                        key: key.clone(),
                        stored: Some(interfaces.clone()),
                        last: got.cloned(),
                    }),
                }
            }
        }
        // Ids that are no running provider (sources, a provider on no host)
        // also get v1.9's id-addressed copies of every put and delete; they
        // are counted, not checked: nobody runs there, and copies from
        // different hosts carry no order.
        for ((provider, key, _), last) in &r.last {
            if providers.contains(&provider.as_str())
                && !seen.contains(&(provider.clone(), key.clone(), provider.clone()))
                && *last != Last::Del
            {
                out.push(Mismatch::Link {
                    provider: provider.clone(),
                    key: key.clone(),
                    stored: None,
                    last: Some(last.clone()),
                });
            }
        }
        out
    }

    /// [`mismatches`](Self::mismatches), waiting up to `settle` for
    /// deliveries in flight; also how long it waited, and what was
    /// missing at first (late deliveries).
    pub async fn check(
        &self,
        providers: &[&str],
        stored: &BTreeMap<LinkKey, Links>,
        settle: Duration,
    ) -> (Vec<Mismatch>, Duration, Vec<Mismatch>) {
        let started = Instant::now();
        let mut first = None;
        loop {
            let found = self.mismatches(providers, stored);
            let first = first.get_or_insert_with(|| found.clone());
            if found.is_empty() || started.elapsed() >= settle {
                return (found, started.elapsed(), first.clone());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Links each provider holds as last delivered (puts).
    pub fn held(&self) -> BTreeMap<String, usize> {
        let r = lock(&self.record);
        let mut held = BTreeMap::new();
        for ((p, _, _), last) in &r.last {
            if matches!(last, Last::Put { .. }) {
                *held.entry(p.clone()).or_default() += 1;
            }
        }
        held
    }

    /// Provider resets done.
    pub fn resets(&self) -> u64 {
        lock(&self.record).resets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, name: &str) -> String {
        let e = '\u{1b}';
        format!(
            "{e}[2m2026-11-28T07:10:29.526349Z{e}[0m {e}[32m INFO{e}[0m {e}[2mspec_nats::notify{e}[0m{e}[2m:{e}[0m link {kind} delivered {e}[3mprovider{e}[0m{e}[2m={e}[0m\"prov-a\" {e}[3msource{e}[0m{e}[2m={e}[0mcomp2 {e}[3mtarget{e}[0m{e}[2m={e}[0mprov-a {e}[3mname{e}[0m{e}[2m={e}[0m{name}"
        )
    }

    #[test]
    fn a_host_log_tells_what_it_published_last() {
        let log = [
            line("put", "c0-l2"),
            line("delete", "c0-l2"),
            line("put", "c0-l22"),
        ]
        .join("\n");
        let missing = |stored: Option<Vec<String>>| Mismatch::Link {
            provider: "prov-a".into(),
            key: LinkKey {
                source: "comp2".into(),
                name: "c0-l2".into(),
            },
            stored,
            last: None,
        };
        assert!(missing(None).published_by_host(&log));
        assert!(!missing(Some(vec!["store".into()])).published_by_host(&log));
        assert!(!missing(None).published_by_host(""));
    }
}
