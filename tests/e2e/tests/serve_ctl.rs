//! `spec-host serve` driven by wasmCloud's own control client
//! (`wasmcloud-control-interface` 2.4 on async-nats 0.39), with providers
//! decoding deliveries as wasmCloud's `InterfaceLinkDefinition`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use spec_e2e::{ctl_client, kv_link, nats, serve};
use spec_nats::subjects;
use wasmcloud_control_interface::Link;
use wasmcloud_core::InterfaceLinkDefinition;

fn link(source: &str, target: &str, name: &str, target_config: &[&str]) -> Link {
    kv_link(source, target, name, target_config)
}

async fn next_def(sub: &mut async_nats::Subscriber) -> InterfaceLinkDefinition {
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a delivery within 10 s")
        .expect("subscription open");
    serde_json::from_slice(&msg.payload).expect("decodes as wasmCloud's InterfaceLinkDefinition")
}

#[tokio::test]
async fn wasmcloud_s_client_puts_gets_and_deletes_links() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve(&url, "ctl", &["kvredis"], None).await;
    let client = ctl_client(&url, "ctl").await;
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut puts = watcher
        .subscribe(subjects::link_put("ctl", "kvredis"))
        .await
        .unwrap();
    let mut dels = watcher
        .subscribe(subjects::link_del("ctl", "kvredis"))
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    served
        .service
        .lattice
        .configs
        .put(
            "redis-url",
            Bytes::from_static(br#"{"url":"redis://127.0.0.1:6379"}"#),
        )
        .await
        .unwrap();

    // Put, with a config that exists: delivered to the provider, resolved.
    let r = client
        .put_link(link("app", "kvredis", "default", &["redis-url"]))
        .await
        .unwrap();
    assert!(r.succeeded(), "{}", r.message());
    let def = next_def(&mut puts).await;
    assert_eq!(
        (
            def.source_id.as_str(),
            def.target.as_str(),
            def.name.as_str()
        ),
        ("app", "kvredis", "default")
    );
    assert_eq!(
        def.target_config.get("url").map(String::as_str),
        Some("redis://127.0.0.1:6379")
    );

    // A config name that does not exist: refused, nothing stored.
    let r = client
        .put_link(link("app", "kvredis", "other", &["nope"]))
        .await
        .unwrap();
    assert!(!r.succeeded());
    assert!(r.message().contains("nope"), "{}", r.message());

    // Conflict: same name and interface, other target.
    let r = client
        .put_link(link("app", "other-kv", "default", &[]))
        .await
        .unwrap();
    assert!(!r.succeeded());
    assert!(
        r.message()
            .contains("link already exists with different target"),
        "{}",
        r.message()
    );

    // Get: every link in the lattice's specs, as wasmCloud Links.
    let r = client.get_links().await.unwrap();
    assert!(r.succeeded(), "{}", r.message());
    let links = r.into_data().unwrap_or_default();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].target(), "kvredis");
    assert_eq!(links[0].target_config(), &vec!["redis-url".to_string()]);

    // Delete: delivered; again: still a success (idempotent).
    let r = client
        .delete_link("app", "default", "wasi", "keyvalue")
        .await
        .unwrap();
    assert!(r.succeeded(), "{}", r.message());
    let def = next_def(&mut dels).await;
    assert_eq!(def.source_id, "app");
    let r = client
        .delete_link("app", "default", "wasi", "keyvalue")
        .await
        .unwrap();
    assert!(r.succeeded(), "{}", r.message());
    let r = client.get_links().await.unwrap();
    assert!(r.into_data().unwrap_or_default().is_empty());
    served.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_error_replies_and_the_service_goes_on() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve(&url, "bad", &[], None).await;
    let raw = async_nats::connect(&url).await.unwrap();
    let prefix = subjects::ctl_link_prefix(subjects::DEFAULT_CTL_PREFIX, "bad");
    for (op, payload) in [
        ("put", &b"not json"[..]),
        ("put", br#"{"source_id":"a"}"#),
        ("put", br#"{"source_id":"..","target":"b","wit_namespace":"w","wit_package":"p","interfaces":["i"]}"#),
        ("del", b"\xff\xfe"),
        ("del", br#"{"name":"x"}"#),
        ("put", &[b'['; 100_000][..]),
    ] {
        let reply = raw.request(format!("{prefix}.{op}"), Bytes::copy_from_slice(payload)).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(body["success"], false, "{op} {body}");
        assert!(!body["message"].as_str().unwrap_or_default().is_empty());
    }
    let client = ctl_client(&url, "bad").await;
    let r = client
        .put_link(link("a", "b", "default", &[]))
        .await
        .unwrap();
    assert!(r.succeeded(), "{}", r.message());
    let status = &spec_lattice::serve::collect_status(&raw, "bad", Duration::from_millis(500))
        .await
        .unwrap()[0];
    assert_eq!((status.requests_ok, status.requests_failed), (1, 6));
    assert_eq!(status.links, 1);
    served.stop().await.unwrap();
}

#[tokio::test]
async fn two_serving_hosts_share_the_work_and_the_deliveries() {
    let n = nats().await;
    let url = n.server.url();
    let a = serve(&url, "pair", &[], None).await;
    // The provider's puts come on its key, as wasmCloud addresses a running
    // provider (by xkey); the id subject also gets the answering host's
    // lattice-wide copy, as v1.9's backwards-compatible put.
    let b = serve(&url, "pair", &["prov=PROVXKEY"], None).await;
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut puts = watcher
        .subscribe(subjects::link_put("pair", "PROVXKEY"))
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let client = ctl_client(&url, "pair").await;
    for i in 0..20 {
        let r = client
            .put_link(link(&format!("c{i}"), "prov", "default", &[]))
            .await
            .unwrap();
        assert!(r.succeeded(), "{}", r.message());
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        seen.insert(next_def(&mut puts).await.source_id);
    }
    assert_eq!(
        seen.len(),
        20,
        "each link delivered once to the provider on host B"
    );
    let extra = tokio::time::timeout(Duration::from_millis(500), puts.next()).await;
    assert!(extra.is_err(), "no duplicate delivery: {extra:?}");
    let statuses =
        spec_lattice::serve::collect_status(&watcher, "pair", Duration::from_millis(500))
            .await
            .unwrap();
    assert_eq!(statuses.len(), 2);
    let served: u64 = statuses.iter().map(|s| s.requests_ok).sum();
    assert_eq!(served, 20, "the queue group gave each request to one host");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
