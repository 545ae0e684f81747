//! The interop suite: spec-host beside the real wasmCloud v1.9 host
//! (`wasmcloud-host` 0.27.1, built by `scripts/wasmcloud-host.sh`) on one
//! nats-server, driven by wasmCloud's own control client, providers
//! simulated by NATS subscribers on their subjects.
//!
//! Needs the wasmCloud host binary, so every test is ignored in a plain
//! `cargo test`; `./run.sh interop` builds the host once and runs them.
//!
//! Most tests use a lattice where only the wasmCloud host answers the
//! control subjects, and spec-host follows the bucket; requests "answered by
//! spec-host" are handed straight to its control handler (the code `serve`
//! runs), so which host answers is never left to the queue group. The last
//! test has both serve, as in a lattice mid-migration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use spec_e2e::wasmcloud::{self, WasmCloud};
use spec_e2e::{ctl_client, kv_link, nats, plugin, put_link_ok, serve, Nats};
use spec_embed::{PluginLimits, SpecHost};
use spec_lattice::serve::ctl::{self, LinkOp};
use spec_lattice::serve::{status::PluginInfo, Service};
use spec_nats::{Lattice, LatticeOptions, LocalProvider};
use wasmcloud_control_interface::{Client as CtlClient, Link};

async fn start_wasmcloud(url: &str, lattice: &str) -> WasmCloud {
    wasmcloud::start(url, lattice, &[]).await
}

fn link(source: &str, target: &str, name: &str) -> Link {
    kv_link(source, target, name, &[])
}

/// A lattice served by the wasmCloud host, with spec-host following it (a
/// `Service` whose control handler the tests call directly).
struct Mixed {
    _nats: Nats,
    url: String,
    lattice: String,
    _wasmcloud: WasmCloud,
    service: Arc<Service>,
    _follower: spec_nats::FollowerHandle,
    client: CtlClient,
}

async fn mixed(lattice: &str, spec_host_providers: &[&str]) -> Mixed {
    let n = nats().await;
    let url = n.server.url();
    let wasmcloud = start_wasmcloud(&url, lattice).await;
    let opened = Lattice::open(LatticeOptions::new(&url, lattice))
        .await
        .unwrap();
    let providers: Vec<LocalProvider> = spec_host_providers
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let host = SpecHost::start(
        plugin(),
        Arc::new(opened.key_value()),
        Arc::new(opened.notifier(providers)),
        PluginLimits::default(),
    )
    .await
    .unwrap();
    let mut follower = opened.follower(host.clone()).spawn();
    follower.ready().await;
    let service = Arc::new(Service::new(
        host,
        opened,
        "spec-host-interop".into(),
        spec_host_providers.iter().map(|p| p.to_string()).collect(),
        PluginInfo::default(),
    ));
    let client = ctl_client(&url, lattice).await;
    Mixed {
        _nats: n,
        url,
        lattice: lattice.to_string(),
        _wasmcloud: wasmcloud,
        service,
        _follower: follower,
        client,
    }
}

impl Mixed {
    /// A request answered by spec-host's control handler: success and
    /// the message its reply carries (what wash would print).
    async fn spec_host(&self, op: LinkOp, payload: &serde_json::Value) -> (bool, String) {
        let bytes = serde_json::to_vec(payload).unwrap();
        let handled = ctl::handle(&self.service, op, &bytes).await;
        let reply: serde_json::Value = serde_json::from_slice(&handled.reply).unwrap();
        let message = reply["message"].as_str().unwrap_or_default().to_string();
        (handled.success, message)
    }

    /// The wasmCloud host's own link table (it alone answers link.get here).
    async fn wasmcloud_links(&self) -> Vec<Link> {
        let reply = self.client.get_links().await.unwrap();
        assert!(reply.succeeded(), "{}", reply.message());
        reply.data().cloned().unwrap_or_default()
    }

    /// A link put answered by the wasmCloud host (it alone serves the
    /// control subjects here), which must succeed; its reply message.
    async fn put_by_wasmcloud(&self, link: Link) -> String {
        put_link_ok(&self.client, link).await
    }

    /// Waits until spec-host's table holds `n` links of `id`.
    async fn spec_host_holds(&self, id: &str, n: usize) {
        within(
            &format!("spec-host's table holds {n} link(s) of {id}"),
            WAIT,
            async || (self.service.host.links_of(id).len() == n).then_some(()),
        )
        .await
    }

    /// Waits until both hosts' tables hold `n` links of `id`.
    async fn both_hold(&self, id: &str, n: usize) {
        within(
            &format!("both tables hold {n} link(s) of {id}"),
            WAIT,
            async || {
                let wasmcloud = self.wasmcloud_links().await;
                let theirs = wasmcloud.iter().filter(|l| l.source_id() == id).count();
                (self.service.host.links_of(id).len() == n && theirs == n).then_some(())
            },
        )
        .await
    }

    async fn stored(&self, id: &str) -> Option<Bytes> {
        self.service
            .lattice
            .specs
            .get(format!("COMPONENT_{id}"))
            .await
            .unwrap()
    }

    async fn subscribe(&self, subject: String) -> async_nats::Subscriber {
        let watcher = async_nats::connect(&self.url).await.unwrap();
        let sub = watcher.subscribe(subject).await.unwrap();
        watcher.flush().await.unwrap();
        // The connection must outlive the subscription.
        std::mem::forget(watcher);
        sub
    }
}

/// How long a change may take to reach the other host.
const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn put_payload(source: &str, target: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "source_id": source, "target": target, "name": name,
        "wit_namespace": "wasi", "wit_package": "keyvalue", "interfaces": ["store"]
    })
}

fn del_payload(source: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "source_id": source, "name": name, "wit_namespace": "wasi", "wit_package": "keyvalue"
    })
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_link_the_wasmcloud_host_stored_is_applied_and_delivered_by_spec_host() {
    let m = mixed("i1", &["prov-sh"]).await;
    let mut puts = m
        .subscribe(format!("wasmbus.rpc.{}.prov-sh.linkdefs.put", m.lattice))
        .await;
    let message = m.put_by_wasmcloud(link("app", "prov-sh", "default")).await;
    assert_eq!(message, "successfully set link");
    m.spec_host_holds("app", 1).await;
    // Delivered to spec-host's local provider (and the wasmCloud host's
    // id-addressed put reaches the same subject: two messages, one link).
    let msg = tokio::time::timeout(WAIT, puts.next())
        .await
        .expect("delivered")
        .unwrap();
    assert!(String::from_utf8_lossy(&msg.payload).contains("\"app\""));
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_link_spec_host_stored_appears_in_the_wasmcloud_host_s_link_get() {
    let m = mixed("i2", &[]).await;
    let (ok, message) = m
        .spec_host(LinkOp::Put, &put_payload("app", "kv", "default"))
        .await;
    assert!(ok, "{message}");
    assert_eq!(message, "successfully set link");
    let links = within("the wasmCloud host has it", WAIT, async || {
        let links = m.wasmcloud_links().await;
        (!links.is_empty()).then_some(links)
    })
    .await;
    assert_eq!(links, vec![link("app", "kv", "default")]);
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn the_stored_bytes_are_the_same_whichever_host_wrote_them() {
    let m = mixed("i3", &[]).await;
    m.put_by_wasmcloud(link("same", "kv", "default")).await;
    let by_wasmcloud = m.stored("same").await.unwrap();
    m.service
        .lattice
        .specs
        .purge("COMPONENT_same")
        .await
        .unwrap();
    let (ok, message) = m
        .spec_host(LinkOp::Put, &put_payload("same", "kv", "default"))
        .await;
    assert!(ok, "{message}");
    let by_spec_host = m.stored("same").await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&by_spec_host),
        String::from_utf8_lossy(&by_wasmcloud)
    );
    // A second link appended, by each in turn: still the same bytes.
    m.put_by_wasmcloud(link("same", "kv2", "second")).await;
    let appended_by_wasmcloud = m.stored("same").await.unwrap();
    m.service
        .lattice
        .specs
        .put("COMPONENT_same", by_spec_host)
        .await
        .unwrap();
    let (ok, _) = m
        .spec_host(LinkOp::Put, &put_payload("same", "kv2", "second"))
        .await;
    assert!(ok);
    assert_eq!(m.stored("same").await.unwrap(), appended_by_wasmcloud);
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_delete_answered_by_either_reaches_a_provider_on_the_other() {
    let m = mixed("i4", &["prov-sh"]).await;
    // Answered by the wasmCloud host; the provider runs on spec-host.
    m.put_by_wasmcloud(link("a", "prov-sh", "default")).await;
    m.spec_host_holds("a", 1).await;
    let mut sh_dels = m
        .subscribe(format!("wasmbus.rpc.{}.prov-sh.linkdefs.del", m.lattice))
        .await;
    let reply = m
        .client
        .delete_link("a", "default", "wasi", "keyvalue")
        .await
        .unwrap();
    assert_eq!(reply.message(), "successfully deleted link");
    let msg = tokio::time::timeout(WAIT, sh_dels.next())
        .await
        .expect("the provider on spec-host hears the delete")
        .unwrap();
    assert!(String::from_utf8_lossy(&msg.payload).contains("\"a\""));

    // Answered by spec-host; the provider runs on the wasmCloud host (its
    // deletes come on its id subject, whoever sends them).
    m.put_by_wasmcloud(link("b", "prov-wc", "default")).await;
    m.spec_host_holds("b", 1).await;
    let mut wc_dels = m
        .subscribe(format!("wasmbus.rpc.{}.prov-wc.linkdefs.del", m.lattice))
        .await;
    let (ok, message) = m.spec_host(LinkOp::Del, &del_payload("b", "default")).await;
    assert!(ok, "{message}");
    assert_eq!(message, "successfully deleted link");
    let msg = tokio::time::timeout(WAIT, wc_dels.next())
        .await
        .expect("the provider on the wasmCloud host hears the delete")
        .unwrap();
    assert!(String::from_utf8_lossy(&msg.payload).contains("\"b\""));
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_spec_deleted_by_spec_host_leaves_both_tables_without_its_links() {
    let m = mixed("i5", &[]).await;
    m.put_by_wasmcloud(link("gone", "kv", "default")).await;
    m.both_hold("gone", 1).await;
    m.service.host.delete_component_spec("gone").await.unwrap();
    m.both_hold("gone", 0).await;
    assert!(m.stored("gone").await.is_none());
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_purge_written_by_other_tools_is_applied_by_spec_host_and_ignored_by_v1_9() {
    // wasmCloud v1.9 never deletes a spec itself; a purge written by other
    // tooling is applied by spec-host, while v1.9 keeps the links in its
    // table until it restarts (its watch ignores purges): recorded here so
    // README states it from what was seen.
    let m = mixed("i6", &[]).await;
    m.put_by_wasmcloud(link("old", "kv", "default")).await;
    m.both_hold("old", 1).await;
    m.service
        .lattice
        .specs
        .purge("COMPONENT_old")
        .await
        .unwrap();
    m.spec_host_holds("old", 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kept = m.wasmcloud_links().await;
    eprintln!(
        "INTEROP purge: spec-host table 0 links, wasmCloud v1.9 table {} link(s)",
        kept.len()
    );
    // What README states: v1.9 keeps the purged spec's links.
    assert_eq!(kept, vec![link("old", "kv", "default")]);
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_config_written_through_either_is_used_by_the_other() {
    let m = mixed("i7", &[]).await;
    // Written through spec-host (its config handler's code), used by the
    // wasmCloud host's link put.
    spec_nats::configs::put(&m.service.lattice.configs, "from-sh", br#"{"k":"v"}"#)
        .await
        .unwrap();
    let with_config = kv_link("c1", "kv", "default", &["from-sh"]);
    m.put_by_wasmcloud(with_config).await;
    // Written through the wasmCloud host, used by spec-host's link put.
    let reply = m
        .client
        .put_config(
            "from-wc",
            HashMap::from([("k".to_string(), "v".to_string())]),
        )
        .await
        .unwrap();
    assert!(reply.succeeded());
    let mut payload = put_payload("c2", "kv", "default");
    payload["target_config"] = serde_json::json!(["from-wc"]);
    let (ok, message) = m.spec_host(LinkOp::Put, &payload).await;
    assert!(ok, "{message}");
    // Both hosts refuse a missing one, with the same message.
    let missing = kv_link("c3", "kv", "default", &["nope"]);
    let wasmcloud_says = m.client.put_link(missing).await.unwrap();
    let mut payload = put_payload("c3", "kv", "default");
    payload["target_config"] = serde_json::json!(["nope"]);
    let (ok, spec_host_says) = m.spec_host(LinkOp::Put, &payload).await;
    assert!(!ok && !wasmcloud_says.succeeded());
    assert_eq!(spec_host_says, wasmcloud_says.message());
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn concurrent_mixed_puts_on_one_component_lose_nothing() {
    // Both serve the lattice: every request goes to one of them. Five
    // rounds of 40 concurrent puts of distinct links on one component each.
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = start_wasmcloud(&url, "i8").await;
    let served = serve(&url, "i8", &[], None).await;
    let specs = served.service.lattice.specs.clone();
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(Arc::new(ctl_client(&url, "i8").await));
    }
    for round in 0..5 {
        let component = format!("shared{round}");
        let mut tasks = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let client = Arc::clone(client);
            let l = link(&component, &format!("t{i}"), &format!("n{i}"));
            tasks.push(tokio::spawn(async move { (i, client.put_link(l).await) }));
        }
        let mut acknowledged = Vec::new();
        for t in tasks {
            let (i, reply) = t.await.unwrap();
            if matches!(reply, Ok(ref r) if r.succeeded()) {
                acknowledged.push(format!("n{i}"));
            }
        }
        let stored_names = async || -> Vec<String> {
            let Some(bytes) = specs.get(format!("COMPONENT_{component}")).await.unwrap() else {
                return Vec::new();
            };
            let spec = spec_model::json::decode_spec(&bytes).unwrap();
            spec.links.into_iter().map(|l| l.name).collect()
        };
        let started = Instant::now();
        let first = stored_names().await;
        let mut stored = first.clone();
        while !acknowledged.iter().all(|a| stored.contains(a))
            && started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stored = stored_names().await;
        }
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|a| !stored.contains(a))
            .collect();
        eprintln!(
            "INTEROP concurrent puts round {round}: 40 sent, {} acknowledged, {} stored right after the load, {} stored after {:?}, lost {}; put back by the guard so far: {}",
            acknowledged.len(),
            first.len(),
            stored.len(),
            started.elapsed(),
            lost.len(),
            served.service.guard.restored.load(std::sync::atomic::Ordering::Relaxed)
        );
        assert_eq!(acknowledged.len(), 40, "every put acknowledged");
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    }
    served.stop().await.unwrap();
}
