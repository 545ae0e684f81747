//! Tests of the operations against the in-memory backends, including the
//! compare-and-swap loop under interference.

use super::*;
use crate::backend::Entry;
use crate::memory::{MemoryKv, RecordingNotifier};
use crate::ops::NativePlugin;
use spec_model::{DeliveryKind, NotifyError, TableEntry};
use test_support::link;

fn spec(links: Vec<Link>) -> ComponentSpecification {
    ComponentSpecification {
        url: "oci://x".into(),
        links,
    }
}

fn stored(store: &MemoryKv, id: &str) -> ComponentSpecification {
    let entry = store.raw(&component_key(id)).expect("stored");
    decode_spec(&entry.value).expect("decodes")
}

fn setup() -> (NativePlugin, MemoryKv, RecordingNotifier) {
    (
        NativePlugin::new(),
        MemoryKv::new(),
        RecordingNotifier::new(["kvredis"]),
    )
}

#[test]
fn store_get_delete_round_trip() {
    let (mut p, mut s, mut n) = setup();
    assert_eq!(p.get_component_spec(&mut s, "comp"), Ok(None));
    let sp = spec(vec![link("comp", "kvredis", "default", &["store"])]);
    let r = p
        .store_component_spec(&mut s, &mut n, "comp", sp.clone())
        .expect("store");
    assert_eq!(r.revision, 1);
    assert_eq!(r.report().added, sp.links);
    assert_eq!(r.report().delivered, 1);
    assert_eq!(p.get_component_spec(&mut s, "comp"), Ok(Some(sp.clone())));

    let d = p
        .delete_component_spec(&mut s, &mut n, "comp")
        .expect("delete");
    assert!(d.existed);
    assert_eq!(d.report().removed, sp.links);
    assert_eq!(d.report().delivered, 1);
    assert_eq!(n.deliveries()[1].kind, DeliveryKind::Delete);
    assert_eq!(p.get_component_spec(&mut s, "comp"), Ok(None));

    let writes = s.writes();
    let d = p
        .delete_component_spec(&mut s, &mut n, "comp")
        .expect("delete again");
    assert!(!d.existed);
    assert_eq!(s.writes(), writes, "deleting an absent spec writes nothing");
}

#[test]
fn corrupt_stored_json_is_a_decode_error_and_left_alone() {
    let (mut p, mut s, mut n) = setup();
    s.set(&component_key("bad"), b"{not json".to_vec())
        .expect("set");
    let before = s.raw(&component_key("bad")).cloned();
    let writes = s.writes();
    let is_decode = |r: &Result<_, SpecError>| matches!(r, Err(SpecError::Decode { id, message }) if id == "bad" && !message.is_empty());
    assert!(is_decode(&p.get_component_spec(&mut s, "bad").map(|_| ())));
    assert!(is_decode(
        &p.put_link(&mut s, &mut n, link("bad", "t", "default", &["s"]))
            .map(|_| ())
    ));
    assert!(is_decode(
        &p.delete_link(&mut s, &mut n, "bad", "wasi", "keyvalue", None)
            .map(|_| ())
    ));
    assert_eq!(s.writes(), writes);
    assert_eq!(s.raw(&component_key("bad")).cloned(), before);
    assert!(n.deliveries().is_empty());
}

#[test]
fn invalid_input_is_rejected_before_any_write() {
    let (mut p, mut s, mut n) = setup();
    for id in ["", "a b", ".a", "a.", "a..b", "ü"] {
        assert!(
            matches!(
                p.get_component_spec(&mut s, id),
                Err(SpecError::InvalidId(_))
            ),
            "{id}"
        );
        assert!(matches!(
            p.store_component_spec(&mut s, &mut n, id, spec(vec![])),
            Err(SpecError::InvalidId(_))
        ));
        assert!(matches!(
            p.delete_component_spec(&mut s, &mut n, id),
            Err(SpecError::InvalidId(_))
        ));
        assert!(matches!(
            p.remove_host_spec(&mut n, id),
            Err(SpecError::InvalidId(_))
        ));
    }
    let bad_link = link("comp", "t", "default", &[]);
    assert!(matches!(
        p.store_component_spec(&mut s, &mut n, "comp", spec(vec![bad_link.clone()])),
        Err(SpecError::InvalidLink(_))
    ));
    assert!(matches!(
        p.put_link(&mut s, &mut n, bad_link.clone()),
        Err(SpecError::InvalidLink(_))
    ));
    assert!(matches!(
        p.update_host_with_spec(&mut n, "comp", spec(vec![bad_link])),
        Err(SpecError::InvalidLink(_))
    ));
    assert!(matches!(
        p.put_link(
            &mut s,
            &mut n,
            link("comp", "bad target", "default", &["s"])
        ),
        Err(SpecError::InvalidId(_))
    ));
    assert!(matches!(
        p.delete_link(&mut s, &mut n, "comp", "", "keyvalue", None),
        Err(SpecError::InvalidLink(_))
    ));
    assert_eq!(s.writes(), 0);
    assert!(n.deliveries().is_empty());
    assert_eq!(p.table().id_count(), 0);
}

#[test]
fn put_link_appends_replaces_keeps_and_conflicts() {
    let (mut p, mut s, mut n) = setup();
    let l1 = link("comp", "kvredis", "default", &["store", "atomics"]);
    let r = p.put_link(&mut s, &mut n, l1.clone()).expect("put");
    assert_eq!(r.outcome, PutOutcome::Appended);
    assert_eq!(stored(&s, "comp").url, "", "a new spec has an empty url");

    let r2 = p.put_link(&mut s, &mut n, l1.clone()).expect("put again");
    assert_eq!(r2.outcome, PutOutcome::Unchanged);
    assert_eq!(r2.revision, r.revision);
    assert_eq!(s.writes(), 1, "unchanged writes nothing");

    let mut l1b = l1.clone();
    l1b.target_config = vec!["redis-url".into()];
    let r3 = p.put_link(&mut s, &mut n, l1b.clone()).expect("replace");
    assert_eq!(r3.outcome, PutOutcome::Replaced);
    assert!(r3.revision > r.revision);
    assert_eq!(stored(&s, "comp").links, vec![l1b.clone()]);
    assert_eq!(r3.report().removed, vec![l1.clone()]);
    assert_eq!(r3.report().added, vec![l1b.clone()]);

    // Same name, overlapping interface, other target: wasmCloud's conflict.
    let writes = s.writes();
    let clash = link("comp", "other", "default", &["atomics"]);
    assert_eq!(
        p.put_link(&mut s, &mut n, clash).map(|_| ()),
        Err(SpecError::Conflict(CONFLICT_MESSAGE.to_string()))
    );
    assert_eq!(s.writes(), writes);
    // Other name or disjoint interfaces: appended.
    let other_name = link("comp", "other", "archive", &["atomics"]);
    let disjoint = link("comp", "other", "default", &["batch"]);
    for l in [other_name.clone(), disjoint.clone()] {
        assert_eq!(
            p.put_link(&mut s, &mut n, l).expect("put").outcome,
            PutOutcome::Appended
        );
    }
    assert_eq!(stored(&s, "comp").links, vec![l1b, other_name, disjoint]);
}

#[test]
fn put_link_keeps_url_and_updates_host() {
    let (mut p, mut s, mut n) = setup();
    p.store_component_spec(&mut s, &mut n, "comp", spec(vec![]))
        .expect("store");
    let l = link("comp", "kvredis", "default", &["store"]);
    let r = p.put_link(&mut s, &mut n, l.clone()).expect("put");
    assert_eq!(stored(&s, "comp").url, "oci://x");
    assert_eq!(r.report().links(), Ok(vec![l.clone()]));
    assert_eq!(p.table().links_of("comp"), vec![l]);
    assert_eq!(p.table_mut().import_links("comp").len(), 1);
}

#[test]
fn delete_link_removes_reports_and_is_idempotent() {
    let (mut p, mut s, mut n) = setup();
    let keep = link("comp", "kvredis", "archive", &["store"]);
    let gone = link("comp", "kvredis", "default", &["store"]);
    p.store_component_spec(
        &mut s,
        &mut n,
        "comp",
        spec(vec![gone.clone(), keep.clone()]),
    )
    .expect("store");
    n.take_deliveries();
    let r = p
        .delete_link(&mut s, &mut n, "comp", "wasi", "keyvalue", None)
        .expect("delete");
    assert_eq!(r.removed, vec![gone.clone()]);
    let update = r.update.expect("host updated");
    assert_eq!(update.removed, vec![gone.clone()]);
    assert_eq!(update.delivered, 1);
    assert_eq!(n.deliveries()[0].kind, DeliveryKind::Delete);
    assert_eq!(stored(&s, "comp").links, vec![keep]);

    let writes = s.writes();
    let r = p
        .delete_link(&mut s, &mut n, "comp", "wasi", "keyvalue", None)
        .expect("again");
    assert_eq!(
        r.result,
        DeleteLinkResult {
            removed: vec![],
            written: None,
        }
    );
    assert_eq!(r.update, None);
    let r = p
        .delete_link(&mut s, &mut n, "absent", "wasi", "keyvalue", None)
        .expect("absent");
    assert_eq!(
        r.result,
        DeleteLinkResult {
            removed: vec![],
            written: None,
        }
    );
    assert_eq!(s.writes(), writes, "nothing written");

    // Removing the last link still writes the spec, url kept, links empty.
    p.delete_link(&mut s, &mut n, "comp", "wasi", "keyvalue", Some("archive"))
        .expect("last");
    let raw = &s.raw(&component_key("comp")).expect("still stored").value;
    assert_eq!(raw.as_slice(), br#"{"url":"oci://x","links":[]}"#);
    assert_eq!(p.table().id_count(), 0);
}

#[test]
fn two_hundred_links_on_one_source_all_stored() {
    let (mut p, mut s, mut n) = setup();
    for i in 0..200 {
        let r = p.put_link(
            &mut s,
            &mut n,
            link("comp", &format!("t{i}"), &format!("n{i}"), &["s"]),
        );
        assert_eq!(r.expect("put").outcome, PutOutcome::Appended);
    }
    assert_eq!(stored(&s, "comp").links.len(), 200);
    assert_eq!(p.table().links_of("comp").len(), 200);
}

#[test]
fn other_store_errors_are_returned_not_retried() {
    let (mut p, mut s, mut n) = setup();
    s.fail_writes_with(Some(StoreError::Timeout("slow".into())));
    let r = p.put_link(&mut s, &mut n, link("comp", "kvredis", "default", &["s"]));
    assert_eq!(
        r.map(|_| ()),
        Err(SpecError::Store(StoreError::Timeout("slow".into())))
    );
    assert_eq!(p.table().id_count(), 0);
    assert!(n.deliveries().is_empty());
}

#[test]
fn host_only_updates_touch_no_store_and_record_failures() {
    let (mut p, s, mut n) = setup();
    n.fail_deliveries_to("kvredis");
    let l = link("comp", "kvredis", "default", &["store"]);
    let r = p
        .update_host_with_spec(&mut n, "comp", spec(vec![l.clone()]))
        .expect("update");
    assert!(matches!(
        r.failures[0].error,
        NotifyError::DeliveryFailed(_)
    ));
    assert_eq!(p.table().links_of("comp"), vec![l.clone()]);
    let r = p.remove_host_spec(&mut n, "comp").expect("remove");
    assert_eq!(r.removed, vec![l]);
    assert_eq!(s.writes(), 0);
}

#[test]
fn list_and_reload_skip_undecodable_and_vanished() {
    let (mut p, mut s, mut n) = setup();
    let a = link("a", "kvredis", "default", &["store"]);
    let b1 = link("b", "x", "default", &["store"]);
    let b2 = link("b", "y", "other", &["store"]);
    p.store_component_spec(&mut s, &mut n, "b", spec(vec![b1.clone(), b2.clone()]))
        .expect("b");
    p.store_component_spec(&mut s, &mut n, "a", spec(vec![a.clone()]))
        .expect("a");
    p.store_component_spec(&mut s, &mut n, "empty", spec(vec![]))
        .expect("empty");
    s.set(&component_key("corrupt"), b"[]".to_vec())
        .expect("corrupt");
    s.set("OTHER_key", b"x".to_vec()).expect("other");
    let writes = s.writes();

    let listing = p.list_links(&mut s).expect("list");
    assert_eq!(listing.links, vec![a.clone(), b1.clone(), b2.clone()]);
    assert_eq!(listing.undecodable, vec!["corrupt".to_string()]);

    n.take_deliveries();
    let mut fresh = NativePlugin::new();
    let r = fresh.reload_from_store(&mut s).expect("reload");
    assert_eq!(
        r,
        spec_model::ReloadReport {
            loaded: 3,
            links: 3,
            undecodable: vec!["corrupt".into()]
        }
    );
    assert_eq!(fresh.snapshot_table(), p.snapshot_table());
    assert!(n.deliveries().is_empty(), "reload delivers nothing");
    assert_eq!(s.writes(), writes, "nothing written");
}

/// A store whose listing names a key that is gone by the time it is read.
struct Vanishing(MemoryKv);

impl KeyValue for Vanishing {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.0.get(key)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.0.set(key, value)
    }
    fn compare_and_swap(&mut self, k: &str, v: Vec<u8>, e: Option<u64>) -> Result<u64, StoreError> {
        self.0.compare_and_swap(k, v, e)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        self.0.delete(key)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = self.0.list_keys(prefix)?;
        keys.push(component_key("ghost"));
        Ok(keys)
    }
}

#[test]
fn vanished_keys_are_skipped() {
    let (mut p, mut s, mut n) = setup();
    let a = link("a", "kvredis", "default", &["store"]);
    p.store_component_spec(&mut s, &mut n, "a", spec(vec![a.clone()]))
        .expect("a");
    let listing = p.list_links(&mut Vanishing(s)).expect("list");
    assert_eq!(
        listing,
        LinkListing {
            links: vec![a],
            undecodable: vec![]
        }
    );
}

#[test]
fn snapshot_restore_through_the_plugin() {
    let (mut p, mut s, mut n) = setup();
    p.store_component_spec(
        &mut s,
        &mut n,
        "a",
        spec(vec![link("a", "b", "default", &["s"])]),
    )
    .expect("store");
    let snap = p.snapshot_table();
    let mut q = NativePlugin::new();
    q.restore_table(snap.clone()).expect("restore");
    assert_eq!(q.snapshot_table(), snap);
    assert!(matches!(
        q.restore_table(vec![TableEntry {
            id: "..".into(),
            links: vec![]
        }]),
        Err(SpecError::InvalidSnapshot(_))
    ));
    assert_eq!(q.snapshot_table(), snap);
}

#[test]
fn stored_bytes_are_wasmclouds_json() {
    let golden = r#"{"url":"ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0","links":[{"source_id":"http_keyvalue_counter","target":"kvredis","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["atomics","store"],"source_config":[],"target_config":["redis-url","SECRET_redis_password"]},{"source_id":"http_keyvalue_counter","target":"blobstore-fs","name":"archive","wit_namespace":"wasi","wit_package":"blobstore","interfaces":["blobstore"],"source_config":["root-path"],"target_config":[]}]}"#;
    let (mut p, mut s, mut n) = setup();
    let id = "http_keyvalue_counter";
    s.set(&component_key(id), golden.as_bytes().to_vec())
        .expect("seed");
    let spec = p
        .get_component_spec(&mut s, id)
        .expect("get")
        .expect("present");
    let r = p
        .store_component_spec(&mut s, &mut n, id, spec)
        .expect("store");
    let entry = s.raw(&component_key(id)).expect("stored");
    assert_eq!(entry.value, golden.as_bytes());
    assert_eq!(entry.revision, r.revision);
    // Only the link to the local provider was delivered.
    assert_eq!(r.report().delivered, 1);
    assert_eq!(n.deliveries()[0].provider_id, "kvredis");
    let rows: Vec<String> = p
        .table_mut()
        .import_links(id)
        .into_iter()
        .map(|r| r.interface)
        .collect();
    assert_eq!(
        rows,
        [
            "wasi:blobstore/blobstore",
            "wasi:keyvalue/atomics",
            "wasi:keyvalue/store"
        ]
    );
}

#[test]
fn apply_stored_spec_decodes_then_updates_and_names_bad_values() {
    let mut p = NativePlugin::new();
    let mut n = RecordingNotifier::new(["kvredis"]);
    let good = br#"{"url":"u","links":[{"source_id":"app","target":"kvredis","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"]}]}"#;
    let report = p.apply_stored_spec(&mut n, "app", good).expect("applies");
    assert_eq!(report.added.len(), 1);
    assert_eq!(n.deliveries().len(), 1);
    let err = p
        .apply_stored_spec(&mut n, "app", b"{oops")
        .expect_err("corrupt");
    assert!(
        matches!(err, SpecError::Decode { ref id, .. } if id == "app"),
        "{err:?}"
    );
    assert_eq!(
        p.snapshot_table()[0].links.len(),
        1,
        "a bad value changes nothing"
    );
    let err = p.apply_stored_spec(&mut n, "..", good).expect_err("bad id");
    assert!(matches!(err, SpecError::InvalidId(_)), "{err:?}");
}
