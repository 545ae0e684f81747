//! Hot swap while serving: the plugin file is replaced during a stream of
//! link puts; no request fails, the table survives, status shows the new
//! build. A file that is not a spec plugin is refused and the running
//! plugin keeps serving.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats_039 as nats039;
use spec_e2e::{nats, serve, PLUGIN_ALT_WASM, PLUGIN_WASM, WRONG_WIT_GUEST_WASM};
use wasmcloud_control_interface::{ClientBuilder, Link};

/// Replaces `path` atomically with the bytes of `from`.
fn install(from: &str, path: &Path) {
    let tmp = path.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn wait_for_version(
    client: &async_nats::Client,
    lattice: &str,
    want: &str,
) -> spec_lattice::serve::status::Status {
    let started = Instant::now();
    loop {
        let found =
            spec_lattice::serve::collect_status(client, lattice, Duration::from_millis(200))
                .await
                .unwrap();
        if let Some(s) = found.into_iter().find(|s| s.plugin.version == want) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no swap to {want}"
        );
    }
}

#[tokio::test]
async fn a_swap_under_load_fails_no_request_and_keeps_the_table() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let plugin_file = dir.path().join("plugin.wasm");
    install(PLUGIN_WASM, &plugin_file);
    let served = serve(&url, "swap", &[], Some(plugin_file.clone())).await;
    let before = served.service.plugin_info();
    let nc = nats039::connect(url.as_str()).await.unwrap();
    let client = ClientBuilder::new(nc)
        .lattice("swap")
        .timeout(Duration::from_secs(10))
        .build();

    let mut tasks = Vec::new();
    for t in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..50 {
                let link = Link::builder()
                    .source_id(&format!("comp{t}"))
                    .target(&format!("target{i}"))
                    .name(&format!("l{i}"))
                    .wit_namespace("wasi")
                    .wit_package("keyvalue")
                    .interfaces(vec!["store".into()])
                    .build()
                    .unwrap();
                match client.put_link(link).await {
                    Ok(r) if r.succeeded() => {}
                    Ok(r) => failed.push(r.message().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failed
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    install(PLUGIN_ALT_WASM, &plugin_file);
    let raw = async_nats::connect(&url).await.unwrap();
    let status = wait_for_version(&raw, "swap", &format!("{}+alt", before.version)).await;
    assert_ne!(status.plugin.digest, before.digest);
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "failed requests during the swap: {failures:?}"
    );
    let status = wait_for_version(&raw, "swap", &format!("{}+alt", before.version)).await;
    assert_eq!(status.swaps, 1);
    assert_eq!(status.links, 200, "the table survived the swap");
    assert_eq!(status.requests_ok, 200);

    // A component of another world: refused, the alt build keeps serving.
    install(WRONG_WIT_GUEST_WASM, &plugin_file);
    let started = Instant::now();
    while served
        .service
        .counters
        .swaps_refused
        .load(Ordering::Relaxed)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the build of another world was never tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = wait_for_version(&raw, "swap", &format!("{}+alt", before.version)).await;
    assert_eq!(status.swaps, 1);
    // And it still answers.
    let r = client.get_links().await.unwrap();
    assert_eq!(r.into_data().unwrap_or_default().len(), 200);
    served.stop().await.unwrap();
}
