//! What a mixed lattice (spec-host beside wasmCloud v1.9 hosts) depends on,
//! checked without a wasmCloud host (the interop suite runs the real one):
//! v1.9's replies, id-addressed `linkdefs.put`/`linkdefs.del` and events
//! for every request answered, no provider told a change twice by one host,
//! the config protocol, spec deletes that v1.9 hosts also apply, and
//! acknowledged links put back after a blind write.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use spec_e2e::{ctl_client, kv_link, nats, put_link_ok, serve};
use spec_nats::events::CloudEvent;
use wasmcloud_control_interface::Link;

fn link(source: &str, target: &str, target_config: &[&str]) -> Link {
    kv_link(source, target, "default", target_config)
}

/// Every message on `sub` until `quiet` passes without one.
async fn drain(sub: &mut async_nats::Subscriber, quiet: Duration) -> Vec<async_nats::Message> {
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(quiet, sub.next()).await {
        out.push(msg);
    }
    out
}

#[tokio::test]
async fn answers_and_sends_what_a_v1_9_host_does() {
    let n = nats().await;
    let url = n.server.url();
    // "kvredis" runs on this host; "remote-prov" runs elsewhere.
    let served = serve(&url, "mix", &["kvredis"], None).await;
    let client = ctl_client(&url, "mix").await;
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut rpc = watcher.subscribe("wasmbus.rpc.mix.>").await.unwrap();
    let mut evt = watcher.subscribe("wasmbus.evt.mix.>").await.unwrap();
    watcher.flush().await.unwrap();

    // A put to a provider elsewhere: the id-addressed put goes to both ids.
    let reply = client
        .put_link(link("app", "remote-prov", &[]))
        .await
        .unwrap();
    assert!(reply.succeeded());
    assert_eq!(reply.message(), "successfully set link");
    let subjects_seen: Vec<String> = drain(&mut rpc, Duration::from_millis(500))
        .await
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(
        subjects_seen,
        [
            "wasmbus.rpc.mix.app.linkdefs.put",
            "wasmbus.rpc.mix.remote-prov.linkdefs.put"
        ]
    );
    let events = drain(&mut evt, Duration::from_millis(300)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject.as_str(), "wasmbus.evt.mix.linkdef_set");
    let event: CloudEvent = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!(event.kind, "com.wasmcloud.lattice.linkdef_set");
    assert_eq!(event.data["target"], "remote-prov");

    // A put to the local provider: the table delivers it (to its key); the
    // id-addressed put is not sent to it again.
    let reply = client.put_link(link("web", "kvredis", &[])).await.unwrap();
    assert!(reply.succeeded());
    let seen: Vec<String> = drain(&mut rpc, Duration::from_millis(500))
        .await
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(
        seen.iter().filter(|s| s.contains(".kvredis.")).count(),
        1,
        "the local provider hears the put once: {seen:?}"
    );
    assert!(seen.contains(&"wasmbus.rpc.mix.web.linkdefs.put".to_string()));

    // A link naming a secret reference: no id-addressed put (as v1.9).
    served
        .service
        .lattice
        .configs
        .put("SECRET_pw", Bytes::from_static(br#"{"ref":"x"}"#))
        .await
        .unwrap();
    let secret = Link::builder()
        .source_id("vault-user")
        .target("remote-prov")
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["store".to_string()])
        .target_config(vec!["SECRET_pw".to_string()])
        .build()
        .unwrap();
    put_link_ok(&client, secret).await;
    assert!(drain(&mut rpc, Duration::from_millis(400)).await.is_empty());
    drain(&mut evt, Duration::from_millis(100)).await;

    // Deletes: to both ids lattice-wide, except the local provider, which
    // hears it once, from the table.
    let reply = client
        .delete_link("app", "default", "wasi", "keyvalue")
        .await
        .unwrap();
    assert_eq!(reply.message(), "successfully deleted link");
    let seen: Vec<String> = drain(&mut rpc, Duration::from_millis(500))
        .await
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(
        seen,
        [
            "wasmbus.rpc.mix.app.linkdefs.del",
            "wasmbus.rpc.mix.remote-prov.linkdefs.del"
        ]
    );
    client
        .delete_link("web", "default", "wasi", "keyvalue")
        .await
        .unwrap();
    let seen: Vec<String> = drain(&mut rpc, Duration::from_millis(500))
        .await
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(
        seen.iter()
            .filter(|s| s.as_str() == "wasmbus.rpc.mix.kvredis.linkdefs.del")
            .count(),
        1,
        "{seen:?}"
    );
    let events = drain(&mut evt, Duration::from_millis(300)).await;
    assert!(events
        .iter()
        .all(|e| e.subject.as_str() == "wasmbus.evt.mix.linkdef_deleted"));
    assert_eq!(events.len(), 2);
    served.stop().await.unwrap();
}

#[tokio::test]
async fn wash_config_put_get_del_work_on_spec_host_alone() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve(&url, "cfg", &[], None).await;
    let client = ctl_client(&url, "cfg").await;
    let values = HashMap::from([("url".to_string(), "redis://x".to_string())]);
    let reply = client
        .put_config("redis-url", values.clone())
        .await
        .unwrap();
    assert!(reply.succeeded());
    assert_eq!(reply.message(), "successfully put config");
    let got = client.get_config("redis-url").await.unwrap();
    assert!(got.succeeded());
    assert_eq!(got.data(), Some(&values));
    // A link naming it is accepted now; a missing one is not.
    put_link_ok(&client, link("app", "kv", &["redis-url"])).await;
    let missing = client.get_config("nope").await.unwrap();
    assert!(missing.succeeded());
    assert_eq!(missing.message(), "Configuration not found");
    assert_eq!(missing.data(), None);
    // A payload that is not a map of strings, straight on the wire.
    let raw = async_nats::connect(&url).await.unwrap();
    let reply = raw
        .request(
            "wasmbus.ctl.v1.cfg.config.put.bad",
            Bytes::from_static(br#"{"n":1}"#),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply.payload).to_string();
    assert_eq!(
        text,
        r#"{"success":false,"message":"config data should be a map of string -> string"}"#
    );
    let reply = raw
        .request("wasmbus.ctl.v1.cfg.config.get.a.b", Bytes::new())
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reply.payload).contains("unsupported subject"));
    let reply = client.delete_config("redis-url").await.unwrap();
    assert_eq!(reply.message(), "successfully deleted config");
    assert_eq!(client.get_config("redis-url").await.unwrap().data(), None);
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_deleted_spec_is_first_written_without_links() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve(&url, "del", &[], None).await;
    let client = ctl_client(&url, "del").await;
    put_link_ok(&client, link("gone", "kv", &[])).await;
    let specs = served.service.lattice.specs.clone();
    let mut changes = specs.watch("COMPONENT_gone").await.unwrap();
    served
        .service
        .host
        .delete_component_spec("gone")
        .await
        .unwrap();
    // What a v1.9 host's watch sees: a spec without links (it applies that),
    // then the delete marker (it ignores that).
    let first = changes.next().await.unwrap().unwrap();
    assert_eq!(first.operation, async_nats::jetstream::kv::Operation::Put);
    assert_eq!(first.value.as_ref(), br#"{"url":"","links":[]}"#);
    let second = changes.next().await.unwrap().unwrap();
    assert_eq!(
        second.operation,
        async_nats::jetstream::kv::Operation::Delete
    );
    served.stop().await.unwrap();
}

/// Answers `host.ping` as a wasmCloud host does: what tells spec-host that
/// the lattice has hosts that write blindly.
async fn fake_wasmcloud_host(url: &str, lattice: &str) -> tokio::task::JoinHandle<()> {
    let client = async_nats::connect(url).await.unwrap();
    let mut pings = client
        .subscribe(format!("wasmbus.ctl.v1.{lattice}.host.ping"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(msg) = pings.next().await {
            if let Some(reply) = msg.reply {
                let _ = client
                    .publish(
                        reply,
                        Bytes::from_static(br#"{"success":true,"message":""}"#),
                    )
                    .await;
            }
        }
    })
}

/// A second link of `source`, to `kv-b` under the name `other`.
fn other_link(source: &str) -> Link {
    kv_link(source, "kv-b", "other", &[])
}

/// Waits (10 s at most) until `source`'s stored spec mentions `kv-b`
/// again: the guard put the dropped link back.
async fn wait_put_back(specs: &async_nats::jetstream::kv::Store, source: &str) {
    let started = Instant::now();
    loop {
        let now = specs
            .get(format!("COMPONENT_{source}"))
            .await
            .unwrap()
            .unwrap();
        if String::from_utf8_lossy(&now).contains("kv-b") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the dropped link of {source} was not put back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_acknowledged_link_dropped_by_a_blind_write_is_put_back() {
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = fake_wasmcloud_host(&url, "blind").await;
    let served = serve(&url, "blind", &[], None).await;
    // The census has seen the wasmCloud host: the guard is on.
    let started = Instant::now();
    while served.service.census().wasmcloud_hosts == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "no census");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = ctl_client(&url, "blind").await;
    let specs = served.service.lattice.specs.clone();
    put_link_ok(&client, link("app", "kv-a", &[])).await;
    let before = specs.get("COMPONENT_app").await.unwrap().unwrap();
    put_link_ok(&client, other_link("app")).await;
    // A v1.9 host that read the spec before the second put writes it back
    // blindly: the acknowledged link to kv-b is gone from the store.
    specs.put("COMPONENT_app", before.clone()).await.unwrap();
    wait_put_back(&specs, "app").await;
    assert!(
        served
            .service
            .guard
            .restored
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // A link deleted (with its event) and then dropped stays deleted.
    client
        .delete_link("app", "other", "wasi", "keyvalue")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = specs.get("COMPONENT_app").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&now).contains("kv-b"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let now = specs.get("COMPONENT_app").await.unwrap().unwrap();
    assert!(
        !String::from_utf8_lossy(&now).contains("kv-b"),
        "resurrected"
    );
    served.stop().await.unwrap();
}

#[tokio::test]
async fn links_acknowledged_before_the_first_census_are_guarded_too() {
    // The load starts the moment the host serves, before it has taken its
    // first census: its guard must not ignore those acknowledgements.
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = fake_wasmcloud_host(&url, "early").await;
    let client = ctl_client(&url, "early").await;
    let served = serve(&url, "early", &[], None).await;
    put_link_ok(&client, link("early", "kv-a", &[])).await;
    let specs = served.service.lattice.specs.clone();
    let before = specs.get("COMPONENT_early").await.unwrap().unwrap();
    put_link_ok(&client, other_link("early")).await;
    specs.put("COMPONENT_early", before).await.unwrap();
    // (The census takes a few hundred milliseconds: it is not taken yet.)
    eprintln!("census taken: {}", served.service.census().taken);
    wait_put_back(&specs, "early").await;
    served.stop().await.unwrap();
}

#[tokio::test]
async fn without_wasmcloud_hosts_the_guard_stays_out_of_the_way() {
    // A lattice of spec-hosts only: a link dropped by someone writing the
    // bucket directly is not put back (no host writes blindly; acting on
    // absence could bring back a deleted link whose event was lost).
    let n = nats().await;
    let url = n.server.url();
    let served = serve(&url, "pure", &[], None).await;
    let client = ctl_client(&url, "pure").await;
    put_link_ok(&client, link("app", "kv-a", &[])).await;
    let specs = served.service.lattice.specs.clone();
    specs
        .put(
            "COMPONENT_app",
            Bytes::from_static(br#"{"url":"","links":[]}"#),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = specs.get("COMPONENT_app").await.unwrap().unwrap();
    assert_eq!(now.as_ref(), br#"{"url":"","links":[]}"#);
    assert_eq!(served.service.census().wasmcloud_hosts, 0);
    served.stop().await.unwrap();
}
