//! A build shadowed beside the live one (`spec_lattice::rollout::Shadow`),
//! in process over the in-memory store: what it finds equal, what it
//! counts as a fault, and which builds it refuses to start.

use std::sync::Arc;
use std::time::Duration;

use spec_e2e::{load, plugin, PLUGIN_ALT_WASM, PLUGIN_FAULTY_WASM, PLUGIN_FOREIGN_WASM};
use spec_embed::backend::memory::{MemoryKv, RecordingNotifier};
use spec_embed::backend::KeyValue;
use spec_embed::{CallError, Link, PluginLimits, SpecHost};
use spec_lattice::rollout::shadow::{record_reads, ReadLog, Request, RequestOutcome};
use spec_lattice::rollout::{DiffKind, Shadow};
use test_support::link;

struct Live {
    host: SpecHost,
    kv: MemoryKv,
}

async fn live() -> Live {
    let kv = MemoryKv::new();
    let host = SpecHost::start(
        plugin(),
        Arc::new(ReadLog::new(Arc::new(kv.clone()))),
        Arc::new(RecordingNotifier::new(["prov"])),
        PluginLimits::default(),
    )
    .await
    .expect("live host starts");
    Live { host, kv }
}

async fn shadow_of(live: &Live, path: &str, expect: Vec<DiffKind>) -> Result<Shadow, CallError> {
    Shadow::start(
        load(path),
        Arc::new(live.kv.clone()) as Arc<dyn KeyValue>,
        vec!["prov".into()],
        PluginLimits::default(),
        live.host.handoff().await.expect("handoff"),
        expect,
    )
    .await
}

/// A put on the live host, repeated on the shadow from the live reads.
async fn put_both(live: &Live, shadow: &Arc<Shadow>, l: Link) {
    let (put, reads) = record_reads(live.host.put_link(l.clone())).await;
    let outcome = match put {
        Ok(put) => RequestOutcome {
            reply: Ok(()),
            written: put.result.value,
        },
        Err(e) => RequestOutcome {
            reply: Err(spec_embed::backend::error_chain(&e)),
            written: None,
        },
    };
    shadow.compare(Request::Put(l), reads, outcome);
}

#[tokio::test]
async fn an_equal_build_shows_no_difference_even_when_another_writer_races() {
    let live = live().await;
    live.host
        .put_link(link("a", "prov", "one", &["store"]))
        .await
        .unwrap();
    let shadow = Arc::new(shadow_of(&live, PLUGIN_ALT_WASM, vec![]).await.unwrap());
    for i in 0..20 {
        put_both(
            &live,
            &shadow,
            link("a", "prov", &format!("l{i}"), &["store"]),
        )
        .await;
        // Another host writes the same spec before the shadow runs: the
        // shadow still sees what the live build saw.
        live.host
            .put_link(link("a", "prov", &format!("other{i}"), &["store"]))
            .await
            .unwrap();
    }
    // A conflict is refused the same way by both.
    put_both(&live, &shadow, link("a", "elsewhere", "one", &["store"])).await;
    shadow.drain(Duration::from_secs(5)).await;
    let report = shadow.report();
    assert_eq!(report.compared, 21, "{report:?}");
    assert_eq!(report.unexpected, 0, "{report:?}");
    assert_eq!(report.faults, 0, "{report:?}");

    // Table changes: both tables add the same links.
    let put = live
        .host
        .put_link(link("b", "prov", "x", &["store"]))
        .await
        .unwrap();
    let stored = live.kv.get_raw("COMPONENT_b").unwrap();
    shadow
        .follow(
            "b",
            stored.revision,
            Some(stored.value),
            put.update.as_ref(),
        )
        .await;
    let report = shadow.report();
    assert_eq!(report.compared, 22, "{report:?}");
    assert_eq!(report.unexpected, 0, "{report:?}");
}

#[tokio::test]
async fn a_trap_in_the_shadow_is_a_fault_and_the_live_request_unharmed() {
    let live = live().await;
    let shadow = Arc::new(shadow_of(&live, PLUGIN_FAULTY_WASM, vec![]).await.unwrap());
    put_both(&live, &shadow, link("poison-pill", "prov", "p", &["store"])).await;
    put_both(&live, &shadow, link("fine", "prov", "p", &["store"])).await;
    shadow.drain(Duration::from_secs(5)).await;
    let report = shadow.report();
    assert_eq!(report.faults, 1, "{report:?}");
    assert_eq!(report.compared, 1, "{report:?}");
    assert!(
        report.examples[0].contains("put-link"),
        "{:?}",
        report.examples
    );
    // The live build stored both.
    assert!(live.kv.get_raw("COMPONENT_poison-pill").is_some());
}

#[tokio::test]
async fn expected_differences_are_counted_but_let_pass() {
    let live = live().await;
    let shadow = Arc::new(
        shadow_of(&live, PLUGIN_ALT_WASM, vec![DiffKind::Stored])
            .await
            .unwrap(),
    );
    let l = link("c", "prov", "n", &["store"]);
    let (put, reads) = record_reads(live.host.put_link(l.clone())).await;
    let mut written = put.unwrap().result.value.unwrap();
    written.push(b' ');
    shadow.compare(
        Request::Put(l),
        reads,
        RequestOutcome {
            reply: Ok(()),
            written: Some(written),
        },
    );
    shadow.drain(Duration::from_secs(5)).await;
    let report = shadow.report();
    assert_eq!(report.differences.get("stored"), Some(&1), "{report:?}");
    assert_eq!(report.unexpected, 0, "{report:?}");
}

#[tokio::test]
async fn a_build_that_cannot_read_the_table_is_refused() {
    let live = live().await;
    live.host
        .put_link(link("a", "prov", "one", &["store"]))
        .await
        .unwrap();
    match shadow_of(&live, PLUGIN_FOREIGN_WASM, vec![]).await {
        Err(CallError::Incompatible(why)) => assert!(why.contains("format"), "{why}"),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a build reading only format 99 took over the table"),
    }
}

#[tokio::test]
async fn a_shadow_that_fell_behind_the_live_changes_takes_the_live_table_over_again() {
    // The stream of live changes dropped some before the shadow saw them
    // (it fell more than the stream's capacity behind). A shadow that only
    // counts them keeps a table the live one no longer has, and an
    // identical build then differs on every change of those ids.
    let live = live().await;
    let resyncs = Arc::new(shadow_of(&live, PLUGIN_ALT_WASM, vec![]).await.unwrap());
    let counts_only = Arc::new(shadow_of(&live, PLUGIN_ALT_WASM, vec![]).await.unwrap());
    let ids: Vec<String> = (0..10).map(|i| format!("lag{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let value = spec_model::json::encode_spec(&test_support::spec(
            "",
            vec![link(id, "prov", "default", &["store"])],
        ));
        let applied = live
            .host
            .apply_store_change(id, i as u64 + 1, Some(value))
            .await
            .unwrap();
        assert!(applied.is_some());
    }
    resyncs.lagged(10, &live.host).await;
    counts_only.skipped(10);
    // Changes both see: each id's links removed.
    let empty = spec_model::json::encode_spec(&test_support::spec("", Vec::new()));
    for (i, id) in ids.iter().enumerate() {
        let revision = 100 + i as u64;
        let report = live
            .host
            .apply_store_change(id, revision, Some(empty.clone()))
            .await
            .unwrap();
        assert_eq!(report.as_ref().map(|r| r.removed.len()), Some(1));
        resyncs
            .follow(id, revision, Some(empty.clone()), report.as_ref())
            .await;
        counts_only
            .follow(id, revision, Some(empty.clone()), report.as_ref())
            .await;
    }
    let taken_over = resyncs.report();
    assert_eq!(taken_over.resynced, 1);
    assert_eq!(taken_over.compared, 10);
    assert_eq!(taken_over.unexpected, 0, "{:?}", taken_over.examples);
    let stale = counts_only.report();
    assert_eq!(
        stale.unexpected, 10,
        "the finding: a stale shadow table differs"
    );
}
