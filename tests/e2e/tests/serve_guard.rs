//! The guard of acknowledged links (`serve::guard`) in a mixed lattice,
//! without a wasmCloud host: its presence is a `host.ping` responder, its
//! blind writes are KV puts of an older spec. Each finding of the guard's
//! review has a case here: same-name links to two targets, a put and its
//! delete answered by different hosts, deletes from the command line,
//! forged events.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spec_e2e::{
    ctl_client, kv_link, nats, put_link_ok, serve, serve_with, wasmcloud_presence, Nats,
    ServeOptions, Served,
};
use spec_nats::events;
use wasmcloud_control_interface::Link;

fn link(source: &str, target: &str, target_config: &[&str]) -> Link {
    kv_link(source, target, "default", target_config)
}

/// Waits until the census of `served` has seen the wasmCloud host.
async fn guard_on(served: &Served) {
    let started = Instant::now();
    while served.service.census().wasmcloud_hosts == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "no census");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A lattice with a (simulated) wasmCloud host and one `spec-host serve`
/// whose guard is on; wash's control client and the spec bucket.
struct Mixed {
    _nats: Nats,
    url: String,
    _wasmcloud: tokio::task::JoinHandle<()>,
    served: Served,
    client: wasmcloud_control_interface::Client,
    specs: async_nats::jetstream::kv::Store,
}

async fn mixed(lattice: &str) -> Mixed {
    let n = nats().await;
    let url = n.server.url();
    let wasmcloud = wasmcloud_presence(&url, lattice).await;
    let served = serve(&url, lattice, &[], None).await;
    guard_on(&served).await;
    let client = ctl_client(&url, lattice).await;
    let specs = served.service.lattice.specs.clone();
    Mixed {
        _nats: n,
        url,
        _wasmcloud: wasmcloud,
        served,
        client,
        specs,
    }
}

/// The sources among `sources` whose stored spec still links to `target`.
async fn still_linked(
    specs: &async_nats::jetstream::kv::Store,
    sources: &[String],
    target: &str,
) -> Vec<String> {
    let mut back = Vec::new();
    for source in sources {
        if stored_text(specs, source)
            .await
            .contains(&format!("\"{target}\""))
        {
            back.push(source.clone());
        }
    }
    back
}

/// The stored spec of `source`, as text ("" when there is none).
async fn stored_text(specs: &async_nats::jetstream::kv::Store, source: &str) -> String {
    specs
        .get(format!("COMPONENT_{source}"))
        .await
        .unwrap()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
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
    let m = mixed("blind").await;
    let (client, specs) = (&m.client, &m.specs);
    put_link_ok(client, link("app", "kv-a", &[])).await;
    let before = specs.get("COMPONENT_app").await.unwrap().unwrap();
    put_link_ok(client, other_link("app")).await;
    // A v1.9 host that read the spec before the second put writes it back
    // blindly: the acknowledged link to kv-b is gone from the store.
    specs.put("COMPONENT_app", before.clone()).await.unwrap();
    wait_put_back(specs, "app").await;
    assert!(
        m.served
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
    m.served.stop().await.unwrap();
}

#[tokio::test]
async fn links_acknowledged_before_the_first_census_are_guarded_too() {
    // The load starts the moment the host serves, before it has taken its
    // first census: its guard must not ignore those acknowledgements.
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = wasmcloud_presence(&url, "early").await;
    let client = ctl_client(&url, "early").await;
    let served = serve(&url, "early", &[], None).await;
    put_link_ok(&client, link("early", "kv-a", &[])).await;
    let specs = served.service.lattice.specs.clone();
    let before = specs.get("COMPONENT_early").await.unwrap().unwrap();
    put_link_ok(&client, other_link("early")).await;
    specs.put("COMPONENT_early", before).await.unwrap();
    // The census takes a few hundred milliseconds (two 200 ms collections):
    // the acknowledgements and the blind write came before it, or this test
    // would not test what its name says.
    assert!(
        !served.service.census().taken,
        "the census was taken before the load: the premise does not hold"
    );
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

#[tokio::test]
async fn a_same_name_link_to_another_target_dropped_by_a_blind_write_is_put_back() {
    // The rules allow two links of one name from one source when their
    // targets differ and their interfaces are disjoint: dropping one while
    // the other stays is a drop, not a replacement.
    let m = mixed("twins").await;
    let (client, specs) = (&m.client, &m.specs);
    put_link_ok(client, link("app", "kv-a", &[])).await;
    let before = specs.get("COMPONENT_app").await.unwrap().unwrap();
    let atomics = Link::builder()
        .source_id("app")
        .target("kv-b")
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["atomics".to_string()])
        .build()
        .unwrap();
    put_link_ok(client, atomics).await;
    assert!(stored_text(specs, "app").await.contains("kv-b"));
    specs.put("COMPONENT_app", before).await.unwrap();
    wait_put_back(specs, "app").await;
    m.served.stop().await.unwrap();
}

#[tokio::test]
async fn a_put_and_its_delete_answered_by_different_hosts_bring_nothing_back() {
    // Two spec-hosts answer in the queue group; 40 clients each put a link
    // and delete it at once. Every delete followed its put's
    // acknowledgement, so no link may be stored afterwards. (The old guard
    // passed this too: the two events rarely queue together here. The
    // next test feeds them together, and failed on it.)
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = wasmcloud_presence(&url, "pd").await;
    let one = |id: &str| ServeOptions {
        host_id: Some(id.to_string()),
        ..ServeOptions::default()
    };
    let first = serve_with(&url, "pd", one("pd-1")).await;
    let second = serve_with(&url, "pd", one("pd-2")).await;
    guard_on(&first).await;
    guard_on(&second).await;
    let specs = first.service.lattice.specs.clone();
    let mut tasks = Vec::new();
    for round in 0..2 {
        for i in 0..40 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let client = ctl_client(&url, "pd").await;
                let source = format!("app{round}x{i}");
                put_link_ok(&client, link(&source, "kv", &[])).await;
                let reply = client
                    .delete_link(&source, "default", "wasi", "keyvalue")
                    .await
                    .expect("link.del answered");
                assert!(reply.succeeded(), "{}", reply.message());
                source
            }));
        }
    }
    let mut sources = Vec::new();
    for t in tasks {
        sources.push(t.await.unwrap());
    }
    // Longer than the guard's grace and several of its ticks.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = still_linked(&specs, &sources, "kv").await;
    let restored = first.service.guard.restored.load(Ordering::Relaxed)
        + second.service.guard.restored.load(Ordering::Relaxed);
    assert!(
        back.is_empty(),
        "deleted links came back ({restored} put back): {back:?}"
    );
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_forged_linkdef_set_event_is_never_written() {
    let m = mixed("forged").await;
    let (client, specs) = (&m.client, &m.specs);
    put_link_ok(client, link("victim", "kv", &[])).await;
    // Nobody asked for this link and nobody stored it: only an event says
    // it was acknowledged.
    let forged =
        spec_model::Link::new("victim", "evil", "wasi", "keyvalue", &["store"]).named("sneaky");
    let forger = async_nats::connect(&m.url).await.unwrap();
    events::publish(
        &forger,
        "forged",
        "NFORGED",
        events::LINKDEF_SET,
        events::linkdef_set(&forged),
    )
    .await;
    forger.flush().await.unwrap();
    // Past the guard's grace it would have written it; and once it has
    // waited its whole window, it lets the event go.
    let started = Instant::now();
    while m
        .served
        .service
        .guard
        .uncorroborated
        .load(Ordering::Relaxed)
        == 0
    {
        assert!(
            !stored_text(specs, "victim").await.contains("evil"),
            "the guard wrote a link on a forged event's word"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the forged event was never let go"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!stored_text(specs, "victim").await.contains("evil"));
    assert_eq!(m.served.service.guard.restored.load(Ordering::Relaxed), 0);
    m.served.stop().await.unwrap();
}

#[tokio::test]
async fn a_link_deleted_from_the_command_line_beside_v1_9_hosts_stays_deleted() {
    let m = mixed("cli").await;
    let (client, specs) = (&m.client, &m.specs);
    put_link_ok(client, link("app", "kv-a", &[])).await;
    put_link_ok(client, other_link("app")).await;
    // `spec-host link del` right after: it writes the bucket itself.
    spec_e2e::spec_host_cli(
        &m.url,
        "cli",
        "link del --source app --name other --namespace wasi --package keyvalue",
    )
    .await
    .expect("link del");
    assert!(!stored_text(specs, "app").await.contains("kv-b"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !stored_text(specs, "app").await.contains("kv-b"),
        "put back after the command line deleted it"
    );
    // And `spec put`, which stores the spec without links, removes both
    // for good too.
    put_link_ok(client, other_link("app")).await;
    spec_e2e::spec_host_cli(&m.url, "cli", "spec put app --url oci://app:2")
        .await
        .expect("spec put");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = stored_text(specs, "app").await;
    assert!(
        !now.contains("kv-a") && !now.contains("kv-b"),
        "links came back: {now}"
    );
    m.served.stop().await.unwrap();
}

#[tokio::test]
async fn a_delete_announced_late_is_not_undone() {
    // Another tool deletes a link: it writes the bucket, and announces the
    // delete only afterwards. Under load the announcement trails the table
    // change by hundreds of milliseconds; a guard that repaired a missing
    // link at its next tick would put the deleted link back in between.
    let m = mixed("late").await;
    let (client, specs) = (&m.client, &m.specs);
    put_link_ok(client, link("app", "kv-a", &[])).await;
    put_link_ok(client, other_link("app")).await;
    // The stored spec without the link named "other".
    let stored: serde_json::Value = serde_json::from_str(&stored_text(specs, "app").await).unwrap();
    let mut spec = stored.clone();
    if let Some(links) = spec["links"].as_array_mut() {
        links.retain(|l| l["name"] != "other");
    }
    assert_ne!(spec, stored, "no link named other in {stored}");
    let text = serde_json::to_vec(&spec).unwrap();
    specs.put("COMPONENT_app", text.into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let announcer = async_nats::connect(&m.url).await.unwrap();
    let deleted = events::linkdef_deleted("app", "other", "wasi", "keyvalue", None);
    events::publish(
        &announcer,
        "late",
        "NOTHERTOOL",
        events::LINKDEF_DELETED,
        deleted,
    )
    .await;
    announcer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = stored_text(specs, "app").await;
    assert!(now.contains("kv-a"), "the kept link is gone: {now}");
    assert!(!now.contains("kv-b"), "the deleted link came back: {now}");
    assert_eq!(m.served.service.guard.restored.load(Ordering::Relaxed), 0);
    m.served.stop().await.unwrap();
}

#[tokio::test]
async fn a_put_and_its_delete_announced_together_are_taken_in_that_order() {
    // The events of a put and of the delete that followed it, arriving
    // together (as from two hosts, one right after the other): taken the
    // other way round, the delete would end nothing and the put would
    // start a watch over a link that is gone, and put it back.
    let m = mixed("order").await;
    let (client, specs) = (&m.client, &m.specs);
    let announcer = async_nats::connect(&m.url).await.unwrap();
    let sources: Vec<String> = (0..20).map(|i| format!("app{i}")).collect();
    for source in &sources {
        put_link_ok(client, link(source, "kv", &[])).await;
    }
    for source in &sources {
        // The delete's write, then both announcements back to back.
        specs
            .put(
                format!("COMPONENT_{source}"),
                Bytes::from_static(br#"{"url":"","links":[]}"#),
            )
            .await
            .unwrap();
        let put = spec_model::Link::new(source, "kv", "wasi", "keyvalue", &["store"]);
        events::publish(
            &announcer,
            "order",
            "NHOSTA",
            events::LINKDEF_SET,
            events::linkdef_set(&put),
        )
        .await;
        let deleted = events::linkdef_deleted(source, "default", "wasi", "keyvalue", Some(&put));
        events::publish(
            &announcer,
            "order",
            "NHOSTB",
            events::LINKDEF_DELETED,
            deleted,
        )
        .await;
    }
    announcer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = still_linked(specs, &sources, "kv").await;
    assert!(back.is_empty(), "deleted links came back: {back:?}");
    m.served.stop().await.unwrap();
}
