//! The guard of acknowledged links beside the real wasmCloud v1.9 host:
//! the cases `serve_guard.rs` simulates (blind writes, a `host.ping`
//! responder) repeated with the host that really writes blindly. Both
//! serve one lattice; requests go to either (queue group). Needs the
//! wasmCloud host binary: ignored in a plain `cargo test`, run by
//! `./run.sh interop`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spec_e2e::{ctl_client, nats, serve, wasmcloud, Served};
use wasmcloud_control_interface::{Client as CtlClient, Link};

/// Component `source`'s stored links (none when it has no spec).
async fn stored(served: &Served, source: &str) -> Vec<spec_model::Link> {
    let value = served
        .service
        .lattice
        .specs
        .get(format!("COMPONENT_{source}"))
        .await
        .unwrap();
    value
        .and_then(|v| spec_model::json::decode_spec(&v).ok())
        .map(|s| s.links)
        .unwrap_or_default()
}

/// Waits until the guard's census sees the wasmCloud host.
async fn guard_on(served: &Served) {
    let started = Instant::now();
    while served.service.census().wasmcloud_hosts == 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "no census");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A link of `source` named "default" to `target` on interface `interface`
/// of a package of its own.
fn twin(source: &str, target: &str, interface: &str) -> Link {
    Link::builder()
        .source_id(source)
        .target(target)
        .name("default")
        .wit_namespace("acme")
        .wit_package("many")
        .interfaces(vec![interface.to_string()])
        .build()
        .unwrap()
}

async fn clients(url: &str, lattice: &str, n: usize) -> Vec<Arc<CtlClient>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(ctl_client(url, lattice).await));
    }
    out
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn same_name_links_to_many_targets_put_at_once_are_all_kept() {
    // One name, 40 targets, disjoint interfaces: 40 links the rules allow
    // side by side, put at once through both hosts. The v1.9 host's blind
    // writes drop some; each is its own link, so the guard puts it back.
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = wasmcloud::start(&url, "g1", &[]).await;
    let served = serve(&url, "g1", &[], None).await;
    guard_on(&served).await;
    let clients = clients(&url, "g1", 40).await;
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let client = Arc::clone(client);
        let link = twin("app", &format!("t{i}"), &format!("i{i}"));
        tasks.push(tokio::spawn(async move { client.put_link(link).await }));
    }
    let mut acknowledged = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Ok(r) if r.succeeded()) {
            acknowledged += 1;
        }
    }
    let right_after = stored(&served, "app").await.len();
    let started = Instant::now();
    let mut now = right_after;
    while now < acknowledged && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = stored(&served, "app").await.len();
    }
    eprintln!(
        "INTEROP same-name twins: 40 sent, {acknowledged} acknowledged, {right_after} stored right after, {now} after {:?}; put back {}",
        started.elapsed(),
        served.service.guard.restored.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(acknowledged, 40);
    assert_eq!(now, 40, "acknowledged same-name links lost");
    served.stop().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_put_and_its_delete_answered_by_either_host_bring_nothing_back() {
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = wasmcloud::start(&url, "g2", &[]).await;
    let served = serve(&url, "g2", &[], None).await;
    guard_on(&served).await;
    let clients = clients(&url, "g2", 40).await;
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let client = Arc::clone(client);
        tasks.push(tokio::spawn(async move {
            let source = format!("pd{i}");
            let put = client
                .put_link(spec_e2e::kv_link(&source, "kv", "default", &[]))
                .await;
            assert!(matches!(put, Ok(ref r) if r.succeeded()), "{put:?}");
            let del = client
                .delete_link(&source, "default", "wasi", "keyvalue")
                .await;
            assert!(matches!(del, Ok(ref r) if r.succeeded()), "{del:?}");
            source
        }));
    }
    let mut sources = Vec::new();
    for t in tasks {
        sources.push(t.await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut back = Vec::new();
    for source in &sources {
        if !stored(&served, source).await.is_empty() {
            back.push(source.clone());
        }
    }
    eprintln!(
        "INTEROP put then delete, 40 clients: {} came back",
        back.len()
    );
    assert!(back.is_empty(), "deleted links came back: {back:?}");
    served.stop().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_link_deleted_from_the_command_line_stays_deleted() {
    let n = nats().await;
    let url = n.server.url();
    let _wasmcloud = wasmcloud::start(&url, "g3", &[]).await;
    let served = serve(&url, "g3", &[], None).await;
    guard_on(&served).await;
    let client = ctl_client(&url, "g3").await;
    for (target, name) in [("kv-a", "default"), ("kv-b", "other")] {
        let reply = client
            .put_link(spec_e2e::kv_link("app", target, name, &[]))
            .await
            .unwrap();
        assert!(reply.succeeded(), "{}", reply.message());
    }
    spec_e2e::spec_host_cli(
        &url,
        "g3",
        "link del --source app --name other --namespace wasi --package keyvalue",
    )
    .await
    .expect("link del");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let links = stored(&served, "app").await;
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].target, "kv-a");
    // And the v1.9 host's own table (it alone answers once spec-host
    // stops) lost it too.
    served.stop().await.unwrap();
    let reply = client.get_links().await.unwrap();
    assert!(reply.succeeded(), "{}", reply.message());
    let theirs: Vec<Link> = reply.data().cloned().unwrap_or_default();
    let names: Vec<&str> = theirs.iter().map(|l| l.name()).collect();
    assert_eq!(names, ["default"], "{theirs:?}");
}
