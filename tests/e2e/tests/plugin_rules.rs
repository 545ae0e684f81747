//! The plugin's rules, exercised through the built component on in-memory
//! backends: JSON format, validation, link put/delete rules, host updates
//! and deliveries, concurrency.

use spec_e2e::{start, MemoryHost};
use spec_embed::backend::memory::Recorded;
use spec_embed::SpecError;
use spec_model::{ComponentSpecification, DeliveryKind, ImportLink, Link, PutOutcome, StoreError};

const GOLDEN: &str = r#"{"url":"ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0","links":[{"source_id":"http_keyvalue_counter","target":"kvredis","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["atomics","store"],"source_config":[],"target_config":["redis-url","SECRET_redis_password"]},{"source_id":"http_keyvalue_counter","target":"blobstore-fs","name":"archive","wit_namespace":"wasi","wit_package":"blobstore","interfaces":["blobstore"],"source_config":["root-path"],"target_config":[]}]}"#;

fn kv_link(source: &str, target: &str) -> Link {
    Link::new(source, target, "wasi", "keyvalue", &["store"])
}

fn stored(h: &MemoryHost, id: &str) -> Option<String> {
    h.kv.get_raw(&format!("COMPONENT_{id}"))
        .map(|e| String::from_utf8(e.value).expect("the plugin writes UTF-8 JSON"))
}

fn spec_error<T: std::fmt::Debug>(r: Result<T, spec_embed::CallError>) -> SpecError {
    match r {
        Err(spec_embed::CallError::Spec(e)) => e,
        other => panic!("expected a spec error, got {other:?}"),
    }
}

#[tokio::test]
async fn golden_json_round_trips_byte_for_byte() {
    let h = start(&[]).await;
    h.kv.put_raw("COMPONENT_http_keyvalue_counter", GOLDEN);
    let spec = h
        .host
        .get_component_spec("http_keyvalue_counter")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(spec.links.len(), 2);
    assert_eq!(spec.links[1].name, "archive");
    h.host
        .store_component_spec("http_keyvalue_counter", spec)
        .await
        .unwrap();
    assert_eq!(stored(&h, "http_keyvalue_counter").as_deref(), Some(GOLDEN));
}

#[tokio::test]
async fn decoding_fills_wasmcloud_defaults_and_tolerates_unknown_fields() {
    let h = start(&[]).await;
    h.kv.put_raw(
        "COMPONENT_a",
        r#"{"url":"u","extra":{"x":1},"links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"http","interfaces":["outgoing-handler"],"future_field":true}]}"#,
    );
    h.kv.put_raw("COMPONENT_b", r#"{"url":"only-url"}"#);
    let a = h.host.get_component_spec("a").await.unwrap().unwrap();
    assert_eq!(a.links[0].name, "default");
    assert!(a.links[0].source_config.is_empty() && a.links[0].target_config.is_empty());
    let b = h.host.get_component_spec("b").await.unwrap().unwrap();
    assert_eq!(
        b,
        ComponentSpecification {
            url: "only-url".into(),
            links: vec![]
        }
    );
}

#[tokio::test]
async fn corrupt_stored_json_is_a_typed_error_and_is_left_alone() {
    let h = start(&["p"]).await;
    for (i, bad) in [
        "{not json",
        r#"{"links":[]}"#,
        r#"{"url":"u","links":[{"source_id":"a"}]}"#,
        "\u{0}\u{1}",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("bad{i}");
        let key = format!("COMPONENT_{id}");
        let rev = h.kv.put_raw(&key, *bad);
        match spec_error(h.host.get_component_spec(&id).await) {
            SpecError::Decode { id: got, .. } => assert_eq!(got, id),
            other => panic!("expected decode error, got {other:?}"),
        }
        // A put-link on top of a corrupt spec must not overwrite it.
        let e = spec_error(h.host.put_link(kv_link(&id, "p")).await);
        assert!(matches!(e, SpecError::Decode { .. }), "{e:?}");
        let e = spec_error(h.host.delete_link(&id, "wasi", "keyvalue", None).await);
        assert!(matches!(e, SpecError::Decode { .. }), "{e:?}");
        let entry = h.kv.get_raw(&key).unwrap();
        assert_eq!(
            (entry.value.as_slice(), entry.revision),
            (bad.as_bytes(), rev)
        );
    }
    assert!(h.notifier.delivered().is_empty());
    // Listing skips them and names them.
    let listing = h.host.list_links().await.unwrap();
    assert_eq!(listing.undecodable.len(), 4);
}

#[tokio::test]
async fn invalid_ids_and_links_are_rejected_before_writing() {
    let h = start(&["p"]).await;
    for id in [
        "", ".lead", "trail.", "a..b", "sp ace", "ünï", "star*", "gt>",
    ] {
        let e = spec_error(h.host.get_component_spec(id).await);
        assert!(matches!(e, SpecError::InvalidId(_)), "{id:?}: {e:?}");
        let e = spec_error(
            h.host
                .store_component_spec(id, ComponentSpecification::default())
                .await,
        );
        assert!(matches!(e, SpecError::InvalidId(_)), "{id:?}: {e:?}");
        let e = spec_error(h.host.put_link(kv_link(id, "p")).await);
        assert!(
            matches!(e, SpecError::InvalidId(_) | SpecError::InvalidLink(_)),
            "{id:?}: {e:?}"
        );
    }
    for id in ["a", "a.b", "a-b_c=d/e", "A9"] {
        h.host.get_component_spec(id).await.unwrap();
    }
    let mut no_iface = kv_link("a", "p");
    no_iface.interfaces.clear();
    let mut empty_ns = kv_link("a", "p");
    empty_ns.wit_namespace.clear();
    let mut empty_pkg = kv_link("a", "p");
    empty_pkg.wit_package.clear();
    let mut empty_target = kv_link("a", "p");
    empty_target.target.clear();
    let mut empty_iface = kv_link("a", "p");
    empty_iface.interfaces = vec!["".into()];
    for bad in [no_iface, empty_ns, empty_pkg, empty_target, empty_iface] {
        let e = spec_error(h.host.put_link(bad.clone()).await);
        assert!(
            matches!(e, SpecError::InvalidLink(_) | SpecError::InvalidId(_)),
            "{bad:?}: {e:?}"
        );
        let spec = ComponentSpecification {
            url: "u".into(),
            links: vec![bad],
        };
        let e = spec_error(h.host.store_component_spec("a", spec).await);
        assert!(
            matches!(e, SpecError::InvalidLink(_) | SpecError::InvalidId(_)),
            "{e:?}"
        );
    }
    assert!(h.kv.dump().is_empty(), "nothing may be written");
    assert!(h.notifier.delivered().is_empty());
}

#[tokio::test]
async fn put_link_appends_replaces_and_rejects_conflicts() {
    let h = start(&["kvredis"]).await;
    let first = h.host.put_link(kv_link("app", "kvredis")).await.unwrap();
    assert_eq!(first.outcome, PutOutcome::Appended);
    // Missing source spec: created with url "".
    let spec = h.host.get_component_spec("app").await.unwrap().unwrap();
    assert_eq!(spec.url, "");

    // Same source/target/ns/pkg/name: replaced in place, new interfaces.
    let mut wider = kv_link("app", "kvredis");
    wider.interfaces = vec!["store".into(), "atomics".into()];
    let replaced = h.host.put_link(wider.clone()).await.unwrap();
    assert_eq!(replaced.outcome, PutOutcome::Replaced);
    assert!(replaced.revision > first.revision);

    // Equal link again: unchanged, nothing written.
    let again = h.host.put_link(wider.clone()).await.unwrap();
    assert_eq!(again.outcome, PutOutcome::Unchanged);
    assert_eq!(again.revision, replaced.revision);

    // Same name, overlapping interface, other target: wasmCloud's conflict.
    let e = spec_error(h.host.put_link(kv_link("app", "other")).await);
    assert_eq!(
        e,
        SpecError::Conflict(
            "link already exists with different target, consider deleting the existing link or using a different link name".into()
        )
    );
    // Other name, or no overlapping interface: appended.
    h.host
        .put_link(kv_link("app", "other").named("cache"))
        .await
        .unwrap();
    let disjoint = Link::new("app", "other", "wasi", "keyvalue", &["batch"]);
    assert_eq!(
        h.host.put_link(disjoint).await.unwrap().outcome,
        PutOutcome::Appended
    );

    let spec = h.host.get_component_spec("app").await.unwrap().unwrap();
    assert_eq!(spec.links.len(), 3);
    assert_eq!(spec.links[0], wider, "replacement keeps its place");
}

#[tokio::test]
async fn new_links_reach_local_source_and_target_providers_only() {
    let h = start(&["kvredis", "httpserver"]).await;
    let put = h.host.put_link(kv_link("app", "kvredis")).await.unwrap();
    assert_eq!(put.report().added, vec![kv_link("app", "kvredis")]);
    let from_provider = Link::new("httpserver", "app", "wasi", "http", &["incoming-handler"]);
    h.host.put_link(from_provider.clone()).await.unwrap();
    h.host
        .put_link(kv_link("app", "not-local").named("other"))
        .await
        .unwrap();
    let seen = h.notifier.take();
    assert_eq!(
        seen,
        vec![
            Recorded {
                provider_id: "kvredis".into(),
                kind: DeliveryKind::Put,
                link: kv_link("app", "kvredis")
            },
            Recorded {
                provider_id: "httpserver".into(),
                kind: DeliveryKind::Put,
                link: from_provider
            },
        ]
    );
    // The same spec applied again delivers nothing: its links are known.
    let spec = h.host.get_component_spec("app").await.unwrap().unwrap();
    let report = h.host.update_host_with_spec("app", spec).await.unwrap();
    assert!(report.added.is_empty() && report.delivered == 0 && report.failures.is_empty());
    assert!(h.notifier.take().is_empty());
}

#[tokio::test]
async fn a_link_known_under_its_target_is_not_new() {
    let h = start(&["prov"]).await;
    let link = kv_link("comp", "prov");
    // The table learns the link under the target's id (as a provider's
    // spec would carry it), then the source's spec brings the same link.
    let spec = ComponentSpecification {
        url: "".into(),
        links: vec![link.clone()],
    };
    h.host
        .update_host_with_spec("prov", spec.clone())
        .await
        .unwrap();
    h.notifier.take();
    let report = h.host.update_host_with_spec("comp", spec).await.unwrap();
    assert!(report.added.is_empty(), "{report:?}");
    assert!(h.notifier.take().is_empty());
}

#[tokio::test]
async fn removed_links_are_delivered_as_deletes() {
    let h = start(&["kvredis", "blob"]).await;
    let a = kv_link("app", "kvredis");
    let b = Link::new("app", "blob", "wasi", "blobstore", &["blobstore"]);
    let both = ComponentSpecification {
        url: "u".into(),
        links: vec![a.clone(), b.clone()],
    };
    h.host.update_host_with_spec("app", both).await.unwrap();
    h.notifier.take();
    let only_b = ComponentSpecification {
        url: "u".into(),
        links: vec![b.clone()],
    };
    let report = h.host.update_host_with_spec("app", only_b).await.unwrap();
    assert_eq!(report.removed, vec![a.clone()]);
    assert_eq!(report.links(), Ok(vec![b.clone()]));
    assert_eq!(
        h.notifier.take(),
        vec![Recorded {
            provider_id: "kvredis".into(),
            kind: DeliveryKind::Delete,
            link: a
        }]
    );
    let report = h.host.remove_host_spec("app").await.unwrap();
    assert_eq!(report.removed, vec![b.clone()]);
    assert_eq!(h.notifier.take()[0].kind, DeliveryKind::Delete);
    assert!(h.host.snapshot_table().await.unwrap().is_empty());
}

#[tokio::test]
async fn delivery_failures_are_reported_not_fatal() {
    let h = start(&["kvredis", "blob"]).await;
    h.notifier.set_failing("kvredis", true);
    let spec = ComponentSpecification {
        url: "u".into(),
        links: vec![
            kv_link("app", "kvredis"),
            Link::new("app", "blob", "wasi", "blobstore", &["blobstore"]),
        ],
    };
    let stored = h.host.store_component_spec("app", spec).await.unwrap();
    let report = stored.report();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].provider_id, "kvredis");
    assert_eq!(report.delivered, 1);
    assert_eq!(
        h.notifier.delivered().len(),
        1,
        "the other delivery went through"
    );
    assert_eq!(
        report.links().map(|l| l.len()),
        Ok(2),
        "the table holds both links"
    );
}

#[tokio::test]
async fn import_link_table_later_link_wins() {
    let h = start(&[]).await;
    let spec = ComponentSpecification {
        url: "u".into(),
        links: vec![
            Link::new("app", "kv1", "wasi", "keyvalue", &["store", "atomics"]),
            Link::new("app", "kv2", "wasi", "keyvalue", &["store"]),
            Link::new("app", "kv3", "wasi", "keyvalue", &["store"]).named("cache"),
        ],
    };
    h.host.update_host_with_spec("app", spec).await.unwrap();
    let row = |name: &str, interface: &str, target: &str| ImportLink {
        name: name.into(),
        interface: interface.into(),
        target: target.into(),
    };
    assert_eq!(
        h.host.import_links("app").await.unwrap(),
        vec![
            row("cache", "wasi:keyvalue/store", "kv3"),
            row("default", "wasi:keyvalue/atomics", "kv1"),
            row("default", "wasi:keyvalue/store", "kv2"),
        ]
    );
}

#[tokio::test]
async fn delete_link_is_idempotent_and_reports_what_it_removed() {
    let h = start(&["kvredis"]).await;
    // Absent spec and absent link: success, nothing written.
    let none = h
        .host
        .delete_link("app", "wasi", "keyvalue", None)
        .await
        .unwrap();
    assert!(none.removed.is_empty() && none.update.is_none());
    assert!(h.kv.dump().is_empty());
    h.host.put_link(kv_link("app", "kvredis")).await.unwrap();
    h.host
        .put_link(kv_link("app", "other").named("cache"))
        .await
        .unwrap();
    let rev = h.kv.get_raw("COMPONENT_app").unwrap().revision;
    let none = h
        .host
        .delete_link("app", "wasi", "keyvalue", Some("nope"))
        .await
        .unwrap();
    assert!(none.removed.is_empty());
    assert_eq!(
        h.kv.get_raw("COMPONENT_app").unwrap().revision,
        rev,
        "nothing written"
    );
    h.notifier.take();

    let del = h
        .host
        .delete_link("app", "wasi", "keyvalue", None)
        .await
        .unwrap();
    assert_eq!(del.removed, vec![kv_link("app", "kvredis")]);
    let update = del.update.expect("an update follows a removal");
    assert_eq!(update.removed, vec![kv_link("app", "kvredis")]);
    assert_eq!(h.notifier.take()[0].kind, DeliveryKind::Delete);
    let spec = h.host.get_component_spec("app").await.unwrap().unwrap();
    assert_eq!(spec.links, vec![kv_link("app", "other").named("cache")]);
    let again = h
        .host
        .delete_link("app", "wasi", "keyvalue", Some("default"))
        .await
        .unwrap();
    assert!(again.removed.is_empty());
}

#[tokio::test]
async fn delete_component_spec_drops_links_and_tells_providers() {
    let h = start(&["kvredis"]).await;
    h.host.put_link(kv_link("app", "kvredis")).await.unwrap();
    h.notifier.take();
    let del = h.host.delete_component_spec("app").await.unwrap();
    assert!(del.existed);
    assert_eq!(del.report().removed, vec![kv_link("app", "kvredis")]);
    assert_eq!(h.notifier.take()[0].kind, DeliveryKind::Delete);
    assert!(h.host.get_component_spec("app").await.unwrap().is_none());
    let again = h.host.delete_component_spec("app").await.unwrap();
    assert!(!again.existed);
}

#[tokio::test]
async fn store_failures_are_typed_and_nothing_is_half_written() {
    let h = start(&["kvredis"]).await;
    h.host.put_link(kv_link("app", "kvredis")).await.unwrap();
    let before = h.kv.dump();
    h.kv.set_offline(true);
    let e = spec_error(h.host.put_link(kv_link("app", "x").named("n")).await);
    assert!(
        matches!(e, SpecError::Store(StoreError::ConnectionLost(_))),
        "{e:?}"
    );
    h.kv.set_offline(false);
    assert_eq!(h.kv.dump(), before);
    h.host
        .put_link(kv_link("app", "x").named("n"))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_link_puts_on_one_source_are_all_kept() {
    let h = start(&[]).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let host = h.host.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let link = kv_link("shared", &format!("target-{t}-{i}")).named(format!("l{t}-{i}"));
                host.put_link(link).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let spec = h.host.get_component_spec("shared").await.unwrap().unwrap();
    assert_eq!(spec.links.len(), 200);
    let table = h.host.snapshot_table().await.unwrap();
    assert_eq!(table[0].links.len(), 200);
}

#[tokio::test]
async fn snapshot_and_restore_round_trip() {
    let h = start(&[]).await;
    h.host.put_link(kv_link("a", "b")).await.unwrap();
    h.host.put_link(kv_link("c", "d")).await.unwrap();
    let snap = h.host.snapshot_table().await.unwrap();
    assert_eq!(snap.len(), 2);
    let other = start(&[]).await;
    other.host.restore_table(snap.clone()).await.unwrap();
    assert_eq!(other.host.snapshot_table().await.unwrap(), snap);
    let mut bad = snap.clone();
    bad[0].id = "..".into();
    let e = spec_error(other.host.restore_table(bad).await);
    assert!(matches!(e, SpecError::InvalidSnapshot(_)), "{e:?}");
    assert_eq!(
        other.host.snapshot_table().await.unwrap(),
        snap,
        "a bad snapshot changes nothing"
    );
}

#[tokio::test]
async fn reload_from_store_rebuilds_the_table_without_deliveries() {
    let h = start(&["kvredis"]).await;
    h.kv.put_raw("COMPONENT_http_keyvalue_counter", GOLDEN);
    h.kv.put_raw("COMPONENT_broken", "][");
    let report = h.host.reload_from_store().await.unwrap();
    assert_eq!((report.loaded, report.links), (1, 2));
    assert_eq!(report.undecodable, vec!["broken".to_string()]);
    assert!(h.notifier.delivered().is_empty());
    assert_eq!(h.host.snapshot_table().await.unwrap()[0].links.len(), 2);
}
