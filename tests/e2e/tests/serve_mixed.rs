//! What a mixed lattice (spec-host beside wasmCloud v1.9 hosts) depends on,
//! checked without a wasmCloud host (the interop suite runs the real one):
//! v1.9's replies, id-addressed `linkdefs.put`/`linkdefs.del` and events
//! for every request answered, no provider told a change twice by one host,
//! the config protocol, and spec deletes that v1.9 hosts also apply. The
//! guard of acknowledged links has its own suite (`serve_guard`).

use std::collections::HashMap;
use std::time::Duration;

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
    // A core subscription to the key's subject sees every write to it in
    // the stream's order, and is registered on the server before the delete
    // (a KV watch subscribes its deliver subject only after creating the
    // consumer, so a write in between can be skipped).
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut writes = watcher
        .subscribe("$KV.LATTICEDATA_del.COMPONENT_gone")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    served
        .service
        .host
        .delete_component_spec("gone")
        .await
        .unwrap();
    // What a v1.9 host's watch sees: a spec without links (it applies that),
    // then the delete marker (it ignores that).
    let seen = drain(&mut writes, Duration::from_millis(500)).await;
    let ops: Vec<(Option<String>, Bytes)> = seen
        .iter()
        .map(|m| {
            let op = m
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .map(|v| v.to_string());
            (op, m.payload.clone())
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            (None, Bytes::from_static(br#"{"url":"","links":[]}"#)),
            (Some("DEL".to_string()), Bytes::new()),
        ]
    );
    served.stop().await.unwrap();
}
