//! What is checked besides the load itself: the stored specs read straight
//! from the bucket, the hosts' tables against them, a recovery probe, bad
//! inputs and poison pills sent while the load runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures::TryStreamExt;
use spec_model::json::decode_spec;
use spec_nats::subjects;
use wasmcloud_control_interface::Client as CtlClient;

use super::load::{send, Outcomes, Reply, Rng};
use super::model::{Change, LinkKey, Links, NAMESPACE, PACKAGE};

/// Every stored link by key, read from `LATTICEDATA_{lattice}` directly,
/// plus anything odd found there (undecodable values, foreign links, a
/// link under another id's key, two links of one key with one target).
/// Retried for a while: right after a fault the bucket may still be
/// electing a leader.
pub async fn read_store(
    client: &async_nats::Client,
    lattice: &str,
) -> (BTreeMap<LinkKey, Links>, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match try_read_store(client, lattice).await {
            Ok(found) => return found,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "cannot read the spec bucket: {e}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn try_read_store(
    client: &async_nats::Client,
    lattice: &str,
) -> anyhow::Result<(BTreeMap<LinkKey, Links>, Vec<String>)> {
    let js = jetstream::new(client.clone());
    let kv = js.get_key_value(subjects::spec_bucket(lattice)).await?;
    let keys: Vec<String> = kv.keys().await?.try_collect().await?;
    let mut stored: BTreeMap<LinkKey, Links> = BTreeMap::new();
    let mut odd = Vec::new();
    for k in keys {
        let Some(id) = subjects::component_id(&k) else {
            continue;
        };
        let Some(value) = kv.get(&k).await? else {
            continue;
        };
        let spec = match decode_spec(&value) {
            Ok(s) => s,
            Err(e) => {
                odd.push(format!("{k}: does not decode: {e}"));
                continue;
            }
        };
        for l in spec.links {
            if l.source_id != id || l.wit_namespace != NAMESPACE || l.wit_package != PACKAGE {
                odd.push(format!(
                    "{k}: foreign link {}:{}/{} from {}",
                    l.wit_namespace, l.wit_package, l.name, l.source_id
                ));
                continue;
            }
            let key = LinkKey {
                source: l.source_id,
                name: l.name,
            };
            let links = stored.entry(key.clone()).or_default();
            if links.insert(l.target.clone(), l.interfaces).is_some() {
                odd.push(format!("{key}: two links to {}", l.target));
            }
        }
    }
    Ok((stored, odd))
}

/// The links as `link.get` through the control client lists them, keyed
/// like [`read_store`]'s (other namespaces left out).
pub async fn ctl_view(ctl: &CtlClient) -> Result<BTreeMap<LinkKey, Links>, String> {
    let reply = ctl
        .get_links()
        .await
        .map_err(|e| format!("link.get: {e}"))?;
    if !reply.succeeded() {
        return Err(format!("link.get failed: {}", reply.message()));
    }
    let mut view: BTreeMap<LinkKey, Links> = BTreeMap::new();
    for l in reply.into_data().unwrap_or_default() {
        if l.wit_namespace() != NAMESPACE || l.wit_package() != PACKAGE {
            continue;
        }
        let key = LinkKey {
            source: l.source_id().to_string(),
            name: l.name().to_string(),
        };
        view.entry(key)
            .or_default()
            .insert(l.target().to_string(), l.interfaces().clone());
    }
    Ok(view)
}

/// Asks link.get `asks` times (the queue group spreads them over the hosts)
/// and names every answer that is not the store.
pub async fn ctl_views_match(
    ctl: &CtlClient,
    stored: &BTreeMap<LinkKey, Links>,
    asks: usize,
) -> Vec<String> {
    let stored_links: usize = stored.values().map(|l| l.len()).sum();
    let mut problems = Vec::new();
    for _ in 0..asks {
        match ctl_view(ctl).await {
            Ok(view) if &view == stored => {}
            Ok(view) => problems.push(format!(
                "link.get lists {} links, the bucket holds {stored_links}: {view:?}",
                view.values().map(|l| l.len()).sum::<usize>()
            )),
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// Waits until all `hosts` answer status with a table of exactly
/// `expected` links (their followers caught up with the store). Returns
/// what they last said: (host id, links, ok, failed, swaps), and how long
/// the wait was.
pub async fn hosts_in_sync(
    client: &async_nats::Client,
    lattice: &str,
    hosts: usize,
    expected: usize,
    limit: Duration,
) -> Result<(Vec<(String, usize, u64, u64, u64)>, Duration), String> {
    let started = Instant::now();
    let deadline = started + limit;
    loop {
        let statuses =
            spec_lattice::serve::collect_status(client, lattice, Duration::from_millis(300))
                .await
                .unwrap_or_default();
        let mut seen: Vec<_> = statuses
            .iter()
            .map(|s| {
                (
                    s.host_id.clone(),
                    s.links,
                    s.requests_ok,
                    s.requests_failed,
                    s.swaps,
                )
            })
            .collect();
        seen.sort();
        if seen.len() == hosts && seen.iter().all(|s| s.1 == expected) {
            return Ok((seen, started.elapsed()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "host tables not in sync with the store ({expected} links) within {limit:?}: {seen:?}"
            ));
        }
    }
}

/// After a fault: scripted operations, each retried until acknowledged
/// (bounded), recorded like the load's. Returns how long the first one
/// took to be acknowledged.
pub async fn probe(ctl: &CtlClient, out: &mut Outcomes, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut first = None;
    let key = |n: &str| LinkKey {
        source: "probe".into(),
        name: n.into(),
    };
    let script = [
        (
            key("p1"),
            Change::Put {
                target: "prov-a".into(),
                interfaces: vec!["store".into()],
            },
        ),
        (
            key("p2"),
            Change::Put {
                target: "prov-b".into(),
                interfaces: vec!["store".into()],
            },
        ),
        (key("p1"), Change::Delete),
    ];
    for (key, change) in script {
        let deadline = Instant::now() + limit;
        loop {
            let t = Instant::now();
            let (reply, hung) = send(ctl, &key, &change).await;
            let acked = matches!(reply, Reply::Acked(_));
            out.record(&key, change.clone(), reply, hung, t.elapsed());
            if acked {
                first.get_or_insert(started.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not recover: no acknowledged probe within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    first.unwrap_or_default()
}

/// Malformed or refused link requests: every one must get an error reply.
/// Returns (sent, refused, problems).
pub async fn bad_inputs(
    client: &async_nats::Client,
    lattice: &str,
    count: usize,
    seed: u64,
) -> (usize, usize, Vec<String>) {
    let prefix = subjects::ctl_link_prefix(subjects::DEFAULT_CTL_PREFIX, lattice);
    let mut rng = Rng::new(seed);
    let (mut refused, mut problems) = (0, Vec::new());
    let link = |source: &str, target: &str, interfaces: &str, extra: &str| {
        format!(
            r#"{{"source_id":"{source}","target":"{target}","name":"bad-input","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":{interfaces}{extra}}}"#
        )
    };
    for i in 0..count {
        let (op, payload): (&str, Vec<u8>) = match i % 11 {
            0 => ("put", {
                let mut b: Vec<u8> = (0..1 + rng.below(200)).map(|_| rng.next() as u8).collect();
                b[0] = 0xff;
                b
            }),
            1 => ("put", b"not json".to_vec()),
            2 => ("put", br#"{"source_id":"comp0"}"#.to_vec()),
            3 => {
                let bad = ["..", "a b", "", "x..y", ".lead", "tr/ail.", "comp0\n"][rng.below(7)];
                ("put", link(bad, "prov-a", r#"["store"]"#, "").into_bytes())
            }
            4 => ("put", link("comp0", "prov-a", "[]", "").into_bytes()),
            5 => (
                "put",
                br#"{"source_id":1,"target":[],"wit_namespace":null}"#.to_vec(),
            ),
            6 => ("put", vec![b'['; 100_000]),
            7 => ("del", br#"{"source_id":"comp0","name":"x"}"#.to_vec()),
            8 => (
                "del",
                br#"{"source_id":"bad id","wit_namespace":"wasi","wit_package":"keyvalue"}"#
                    .to_vec(),
            ),
            9 => {
                let extra = format!(r#","target_config":["missing-config-{i}"]"#);
                (
                    "put",
                    link("comp1", "prov-b", r#"["store"]"#, &extra).into_bytes(),
                )
            }
            _ => ("put", link("comp2", "", r#"["store"]"#, "").into_bytes()),
        };
        let request = client.request(format!("{prefix}.{op}"), Bytes::from(payload));
        match tokio::time::timeout(Duration::from_secs(15), request).await {
            Ok(Ok(reply)) => match serde_json::from_slice::<serde_json::Value>(&reply.payload) {
                Ok(body)
                    if body["success"] == false
                        && !body["message"].as_str().unwrap_or_default().is_empty() =>
                {
                    refused += 1
                }
                Ok(body) => problems.push(format!("bad input #{i} ({op}) not refused: {body}")),
                Err(e) => problems.push(format!("bad input #{i}: undecodable reply: {e}")),
            },
            Ok(Err(e)) => problems.push(format!("bad input #{i}: no reply: {e}")),
            Err(_) => problems.push(format!("bad input #{i}: no reply within 15 s (hang)")),
        }
    }
    (count, refused, problems)
}

/// Puts for the source the faulty plugin traps on: every one must get an
/// error reply. Returns (sent, refused with an error reply, problems, the
/// first error reply).
pub async fn poison_pills(
    ctl: &CtlClient,
    count: usize,
) -> (usize, usize, Vec<String>, Option<String>) {
    let (mut refused, mut problems, mut example) = (0, Vec::new(), None);
    for i in 0..count {
        let key = LinkKey {
            source: "poison-pill".into(),
            name: format!("pill{i}"),
        };
        let change = Change::Put {
            target: "prov-a".into(),
            interfaces: vec!["store".into()],
        };
        match send(ctl, &key, &change).await {
            (Reply::Unacked(e), false) if e.starts_with("error reply") => {
                refused += 1;
                example.get_or_insert(e);
            }
            (reply, _) => problems.push(format!("poison pill #{i}: {reply:?}")),
        }
    }
    (count, refused, problems, example)
}

/// A running flood of reads, stopped by [`FloodStop::finish`].
pub struct FloodStop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a flood got back.
#[derive(Default)]
pub struct FloodStats {
    answered: std::sync::atomic::AtomicU64,
    busy: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

/// Starts `width` clients sending `link.get` (even ones) and status
/// requests (odd ones) in a loop.
pub async fn flood(
    urls: &[String],
    lattice: &str,
    width: usize,
) -> (std::sync::Arc<FloodStats>, FloodStop) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stats = std::sync::Arc::new(FloodStats::default());
    let mut tasks = Vec::new();
    for i in 0..width {
        let ctl = super::load::ctl_client(urls, lattice).await;
        let raw = super::fixture::connect(urls).await;
        let (stop, stats, lattice) = (stop.clone(), stats.clone(), lattice.to_string());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let counter = if i % 2 == 0 {
                    match ctl.get_links().await {
                        Ok(r) if r.succeeded() => &stats.answered,
                        Ok(r) if r.message().contains("busy") => &stats.busy,
                        _ => &stats.failed,
                    }
                } else {
                    match spec_lattice::serve::collect_status(
                        &raw,
                        &lattice,
                        std::time::Duration::from_millis(100),
                    )
                    .await
                    {
                        Ok(s) if !s.is_empty() => &stats.answered,
                        Ok(_) => &stats.busy,
                        Err(_) => &stats.failed,
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    (stats.clone(), FloodStop { stop, tasks })
}

impl FloodStop {
    /// Stops the flood; (answered, busy, failed).
    pub async fn finish(self, stats: std::sync::Arc<FloodStats>) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            stats.answered.load(Ordering::Relaxed),
            stats.busy.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed),
        )
    }
}

/// Sends puts that make the faulty build loop over `get`, one after
/// another for `lasting`; (sent, cut off by the import cap, an example
/// reply).
pub async fn import_loops(
    ctl: &CtlClient,
    lasting: std::time::Duration,
) -> (usize, usize, Option<String>) {
    let started = std::time::Instant::now();
    let (mut sent, mut cut, mut example) = (0, 0, None);
    while started.elapsed() < lasting {
        let key = LinkKey {
            source: "poison-loop".into(),
            name: format!("loop{sent}"),
        };
        let change = Change::Put {
            target: "prov-a".into(),
            interfaces: vec!["store".into()],
        };
        sent += 1;
        if let (Reply::Unacked(e), false) = send(ctl, &key, &change).await {
            if e.contains("import calls") {
                cut += 1;
            }
            example.get_or_insert(e);
        }
    }
    (sent, cut, example)
}
