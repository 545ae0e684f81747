//! The concurrent engine behind `spec-host serve`, on a real nats-server and
//! driven by wasmCloud's own control client: link.get answered from the
//! table (with an error reply, not silence, past the server's max
//! payload), bounded admission answering "busy", a call stuck in a plugin
//! loop holding up nobody else, config names capped, a spec change whose
//! apply traps retried until a fixed build applies it, and its retries
//! kept off the table owner.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use spec_e2e::{
    ctl_client, kv_link, nats, nats_with_max_payload, put_link_ok, serve_with, ServeOptions,
    PLUGIN_FAULTY_WASM,
};
use spec_embed::PluginLimits;
use spec_nats::subjects;
use wasmcloud_control_interface::Link;

/// Another host writes a spec whose apply traps in the faulty build.
async fn store_poison_apply(served: &spec_e2e::Served) {
    let json = r#"{"url":"","links":[{"source_id":"poison-apply","target":"kvredis","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"],"source_config":[],"target_config":[]}]}"#;
    served
        .service
        .lattice
        .specs
        .put(
            "COMPONENT_poison-apply",
            Bytes::from_static(json.as_bytes()),
        )
        .await
        .unwrap();
}

fn link(source: &str, target: &str) -> Link {
    kv_link(source, target, "default", &[])
}

/// A copy of the faulty plugin build in a temp file, so the test can swap
/// the file to another build.
fn plugin_file(dir: &tempfile::TempDir, from: &str) -> std::path::PathBuf {
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(from, &path).expect("copy the plugin");
    path
}

#[tokio::test]
async fn link_get_comes_from_the_table_and_an_oversized_reply_is_an_error() {
    // A server that takes at most 64 KiB: about 300 links fit in a reply.
    let n = nats_with_max_payload(Some(64 << 10)).await;
    let url = n.server.url();
    let served = serve_with(&url, "big", ServeOptions::default()).await;
    let client = ctl_client(&url, "big").await;
    for i in 0..50 {
        put_link_ok(&client, link(&format!("c{i}"), "kv")).await;
    }
    // Right after the puts (this host applied its own writes): all there.
    let got = client.get_links().await.unwrap();
    assert!(got.succeeded(), "{}", got.message());
    assert_eq!(got.data().map(|l| l.len()), Some(50));
    // Specs written straight into the bucket (another host, say) reach the
    // table through the follower; then the reply no longer fits.
    let specs = served.service.lattice.specs.clone();
    for i in 50..1_000 {
        let json = format!(
            r#"{{"url":"","links":[{{"source_id":"c{i}","target":"kv","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"],"source_config":[],"target_config":[]}}]}}"#
        );
        specs
            .put(format!("COMPONENT_c{i}"), Bytes::from(json))
            .await
            .unwrap();
    }
    let started = Instant::now();
    while served.service.host.table_stats().links < 1_000 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "follower too slow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = client.get_links().await.unwrap();
    assert!(!got.succeeded());
    assert!(got.message().contains("max_payload"), "{}", got.message());
    assert!(got.message().contains("1000 links"), "{}", got.message());
    // Decided from the count alone (1,000 links take at least 129 kB of
    // JSON, over 64 KiB), before any link was copied out or encoded.
    assert!(
        got.message().contains("reply of at least 129000 bytes"),
        "{}",
        got.message()
    );
    // The service goes on.
    put_link_ok(&client, link("after", "kv")).await;
    served.stop().await.unwrap();
}

/// What link.get's refusal points to: `spec-host link list` reads the
/// lattice in pages, each under its own deadline, on a scratch table that
/// lives for one page. Every link comes out once; a value that does not
/// decode is named, not fatal.
#[tokio::test]
async fn a_listing_of_any_size_comes_in_pages() {
    let n = nats().await;
    let url = n.server.url();
    let h = spec_e2e::nats_host(&url, "paged", &[]).await;
    spec_e2e::fill_specs(&h.lattice, "c", 2_500).await;
    h.lattice
        .specs
        .put("COMPONENT_bad", Bytes::from_static(b"not json"))
        .await
        .unwrap();
    let mut pages = Vec::new();
    let (links, specs) = h
        .host
        .list_links_paged(1_000, |page| pages.push(page))
        .await
        .unwrap();
    assert_eq!((links, specs), (2_500, 2_501));
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p.links.len() + p.undecodable.len())
        .collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 1_000), "{sizes:?}");
    let undecodable: Vec<&String> = pages.iter().flat_map(|p| &p.undecodable).collect();
    assert_eq!(undecodable, [&"bad".to_string()]);
    // The same links as the one-call listing.
    let key = |l: &spec_embed::Link| (l.source_id.clone(), l.name.clone());
    let mut paged: Vec<spec_embed::Link> = pages.into_iter().flat_map(|p| p.links).collect();
    paged.sort_by_key(key);
    let mut whole = h.host.list_links().await.unwrap().links;
    whole.sort_by_key(key);
    assert_eq!(paged.len(), 2_500);
    assert!(paged == whole, "the paged listing differs from list-links");
}

/// `serve` running the faulty test plugin (its `poison-loop` component
/// loops over its imports), whose calls only the `deadline` cuts off.
async fn serve_faulty(
    url: &str,
    lattice: &str,
    dir: &tempfile::TempDir,
    deadline: Duration,
    max_in_flight: Option<usize>,
) -> spec_e2e::Served {
    let limits = PluginLimits {
        deadline,
        max_imports: u32::MAX,
        ..PluginLimits::default()
    };
    serve_with(
        url,
        lattice,
        ServeOptions {
            plugin_file: Some(plugin_file(dir, PLUGIN_FAULTY_WASM)),
            limits: Some(limits),
            max_in_flight,
            ..ServeOptions::default()
        },
    )
    .await
}

/// A put whose plugin call loops until its deadline, sent in the background.
async fn put_poison_loop(
    url: &str,
    lattice: &str,
) -> tokio::task::JoinHandle<wasmcloud_control_interface::CtlResponse<()>> {
    let client = ctl_client(url, lattice).await;
    tokio::spawn(async move {
        let reply = client.put_link(link("poison-loop", "kv")).await;
        reply.expect("the looping put is answered")
    })
}

#[tokio::test]
async fn a_call_stuck_in_a_plugin_loop_holds_up_nobody_and_is_cut_off() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let served = serve_faulty(&url, "stuck", &dir, Duration::from_secs(3), None).await;
    let looping = put_poison_loop(&url, "stuck").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While one request loops over its imports, others are answered.
    let client = ctl_client(&url, "stuck").await;
    let started = Instant::now();
    let mut answered = 0;
    while !looping.is_finished() {
        put_link_ok(&client, link(&format!("fine{answered}"), "kv")).await;
        answered += 1;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the loop was never cut off"
        );
    }
    let reply = looping.await.unwrap();
    assert!(!reply.succeeded());
    assert!(reply.message().contains("deadline"), "{}", reply.message());
    assert!(
        answered > 20,
        "only {answered} puts answered during the loop"
    );
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_admission_answers_busy_at_once() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let served = serve_faulty(&url, "busy", &dir, Duration::from_secs(2), Some(1)).await;
    // The one place is taken by a call that loops until its deadline.
    let looping = put_poison_loop(&url, "busy").await;
    let taken = Instant::now();
    while served.service.in_flight() == 0 {
        assert!(
            taken.elapsed() < Duration::from_secs(10),
            "the looping call never came in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = ctl_client(&url, "busy").await;
    let started = Instant::now();
    let reply = client.get_links().await.unwrap();
    assert!(!reply.succeeded());
    assert!(reply.message().contains("busy"), "{}", reply.message());
    // At once: not after the looping call's deadline.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let _ = looping.await;
    // Once the place is free again, requests are served.
    assert!(client.get_links().await.unwrap().succeeded());
    assert!(
        served
            .service
            .counters
            .busy
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    served.stop().await.unwrap();
}

#[tokio::test]
async fn config_names_are_capped_and_checked_before_anything_is_written() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve_with(&url, "cfg", ServeOptions::default()).await;
    let client = ctl_client(&url, "cfg").await;
    let names: Vec<String> = (0..65).map(|i| format!("cfg{i}")).collect();
    let too_many = Link::builder()
        .source_id("app")
        .target("kv")
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["store".to_string()])
        .target_config(names)
        .build()
        .unwrap();
    let reply = client.put_link(too_many).await.unwrap();
    assert!(!reply.succeeded());
    assert!(
        reply.message().contains("at most 64"),
        "{}",
        reply.message()
    );
    // Missing configs and secret references, all named in wasmCloud's words.
    let missing = Link::builder()
        .source_id("app")
        .target("kv")
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["store".to_string()])
        .source_config(vec!["nope".to_string()])
        .target_config(vec!["SECRET_gone".to_string()])
        .build()
        .unwrap();
    let reply = client.put_link(missing).await.unwrap();
    assert_eq!(
        reply.message(),
        "Failed to validate configuration and secrets. Configuration nope not found in config store. Secret reference SECRET_gone not found in config store. "
    );
    assert!(served
        .service
        .lattice
        .specs
        .get("COMPONENT_app")
        .await
        .unwrap()
        .is_none());
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_spec_change_whose_apply_traps_is_applied_once_a_fixed_build_runs() {
    let n = nats().await;
    let url = n.server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = plugin_file(&dir, PLUGIN_FAULTY_WASM);
    let served = serve_with(
        &url,
        "retry",
        ServeOptions {
            providers: vec!["kvredis".into()],
            plugin_file: Some(file.clone()),
            ..ServeOptions::default()
        },
    )
    .await;
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut puts = watcher
        .subscribe(subjects::link_put("retry", "kvredis"))
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    store_poison_apply(&served).await;
    // Other changes keep flowing meanwhile.
    let client = ctl_client(&url, "retry").await;
    put_link_ok(&client, link("fine", "kvredis")).await;
    let first = tokio::time::timeout(Duration::from_secs(10), puts.next())
        .await
        .expect("the other change is delivered")
        .unwrap();
    assert!(String::from_utf8_lossy(&first.payload).contains("\"fine\""));
    // The failed change waits: not applied, not lost.
    let started = Instant::now();
    loop {
        let stats = served.service.follow_stats().expect("following");
        if stats.pending.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served.service.host.links_of("poison-apply").is_empty());
    // A fixed build is swapped in: the change applies and is delivered.
    std::fs::copy(spec_e2e::PLUGIN_WASM, &file).unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(20), puts.next())
        .await
        .expect("delivered after the swap")
        .unwrap();
    assert!(String::from_utf8_lossy(&delivered.payload).contains("poison-apply"));
    assert_eq!(served.service.host.links_of("poison-apply").len(), 1);
    let stats = served.service.follow_stats().unwrap();
    assert_eq!(stats.pending.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(stats.retried.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_spec_change_that_keeps_trapping_is_retried_off_the_table_owner() {
    let n = nats().await;
    let url = n.server.url();
    let served = serve_with(
        &url,
        "probe",
        ServeOptions {
            providers: vec!["kvredis".into()],
            plugin_file: Some(PLUGIN_FAULTY_WASM.into()),
            ..ServeOptions::default()
        },
    )
    .await;
    store_poison_apply(&served).await;
    let stats = served.service.follow_stats().expect("following");
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    // Tried again (0.1, 0.2, 0.4, 0.8 s apart) while other changes flow.
    let client = ctl_client(&url, "probe").await;
    let started = Instant::now();
    let mut i = 0;
    while count(&stats.faults) < 4 {
        put_link_ok(&client, link(&format!("fine-{i}"), "kvredis")).await;
        i += 1;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} faults",
            count(&stats.faults)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&stats.pending), 1);
    // The owner faulted once (the first apply); every try after that ran
    // on a scratch instance, so its table was restored once, not per try.
    let restarts = served.service.host.table_stats().owner_restarts;
    assert_eq!(
        restarts, 1,
        "the table owner was restarted {restarts} times"
    );
    assert!(served.service.host.links_of("poison-apply").is_empty());
    assert!(
        served
            .service
            .host
            .caught_up_with_own_writes(Duration::from_secs(5))
            .await
    );
    assert_eq!(
        served
            .service
            .host
            .links_of(&format!("fine-{}", i - 1))
            .len(),
        1
    );
    served.stop().await.unwrap();
}
