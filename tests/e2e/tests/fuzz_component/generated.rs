//! Generated cases, drawn with a fixed seed: stored values (arbitrary bytes
//! and UTF-8, mutated specs, odd documents, nesting up to 20,000 levels),
//! arbitrary ids, links with arbitrary fields and malformed snapshots, each
//! checked against the documented rules.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};
use spec_embed::{ComponentSpecification, SpecError};
use spec_model::TableEntry;

use test_support::fuzz::raw_value;

use super::*;

const TOP_FIELDS: [&str; 3] = ["url", "links", "extra"];
const LINK_FIELDS: [&str; 9] = [
    "source_id",
    "target",
    "name",
    "wit_namespace",
    "wit_package",
    "interfaces",
    "source_config",
    "target_config",
    "extra",
];

/// A valid spec's JSON with fields removed or set to values of any type
/// (huge strings too), then maybe truncated.
fn mutated_spec() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        (0usize..50_000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    // (in a link?, which link, which field, None: remove, Some: set)
    let edit = (
        any::<bool>(),
        any::<Index>(),
        any::<Index>(),
        proptest::option::of(leaf),
    );
    let parts = (text(), vec(any_link(), 0..3), vec(edit, 0..3));
    (parts, proptest::option::of(any::<Index>())).prop_map(|((url, links, edits), cut)| {
        let mut doc = json!({ "url": url, "links": links });
        for (in_link, which, field, value) in edits {
            let n = doc["links"].as_array().map_or(0, Vec::len);
            let (obj, fields) = if in_link && n > 0 {
                (&mut doc["links"][which.index(n)], &LINK_FIELDS[..])
            } else {
                (&mut doc, &TOP_FIELDS[..])
            };
            let (Some(obj), name) = (obj.as_object_mut(), fields[field.index(fields.len())]) else {
                continue;
            };
            match value {
                None => obj.remove(name),
                Some(v) => obj.insert(name.to_string(), v),
            };
        }
        let mut bytes = doc.to_string().into_bytes();
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        bytes
    })
}

#[tokio::test]
async fn stored_values_give_ok_or_a_typed_error() {
    let h = host().await;
    let mut undecodable = 0;
    for (i, value) in draw(raw_value(mutated_spec(), 20_000), 120)
        .into_iter()
        .enumerate()
    {
        let id = format!("fz{i}");
        h.kv.put_raw(&format!("COMPONENT_{id}"), value.clone());
        let decodes = serde_json::from_slice::<ComponentSpecification>(&value).is_ok();
        undecodable += usize::from(!decodes);
        let is_decode =
            |e: &SpecError| matches!(e, SpecError::Decode { id: got, .. } if *got == id);
        let before = h.kv.dump();

        match typed("get", h.host.get_component_spec(&id).await) {
            Ok(got) => assert!(decodes && got.is_some(), "case {i}: {got:?}"),
            Err(e) => assert!(!decodes && is_decode(&e), "case {i}: {e:?}"),
        }
        match typed("apply", h.host.apply_stored_spec(&id, value.clone()).await) {
            Ok(_) => assert!(decodes, "case {i}"),
            Err(e) => {
                let invalid = matches!(e, SpecError::InvalidId(_) | SpecError::InvalidLink(_));
                assert!(
                    (is_decode(&e) && !decodes) || (invalid && decodes),
                    "case {i}: {e:?}"
                );
            }
        }
        let listing = typed("list", h.host.list_links().await).expect("list-links");
        assert_eq!(listing.undecodable.contains(&id), !decodes, "case {i}");
        assert_eq!(h.kv.dump(), before, "case {i}: a read wrote");

        match typed("put", h.host.put_link(store_link(&id, "p")).await) {
            Ok(_) => assert!(decodes, "case {i}"),
            Err(e) => {
                let conflict = matches!(e, SpecError::Conflict(_));
                assert!(
                    (is_decode(&e) && !decodes) || (conflict && decodes),
                    "case {i}: {e:?}"
                );
                assert_eq!(h.kv.dump(), before, "case {i}: a failed put wrote");
            }
        }
        let before = h.kv.dump();
        match typed(
            "delete-link",
            h.host.delete_link(&id, "wasi", "keyvalue", None).await,
        ) {
            Ok(_) => assert!(decodes, "case {i}"),
            Err(e) => {
                assert!(is_decode(&e) && !decodes, "case {i}: {e:?}");
                assert_eq!(h.kv.dump(), before, "case {i}: a failed delete wrote");
            }
        }
    }
    let reload = typed("reload", h.host.reload_from_store().await).expect("reload");
    assert_eq!(reload.undecodable.len(), undecodable);
    assert!(
        undecodable > 0 && undecodable < 120,
        "{undecodable}: a poor mix"
    );
    assert_alive(&h).await;
}

#[tokio::test]
async fn ids_are_accepted_exactly_when_valid() {
    let h = host().await;
    let good = spec("u", vec![store_link("good", "q")]);
    let good_json = serde_json::to_vec(&good).expect("encode");
    for (i, id) in draw(any_id(), 80).into_iter().enumerate() {
        let ok = id_ok(&id);
        let before = h.kv.dump();
        let results: Vec<(&str, Result<(), SpecError>)> = vec![
            (
                "get",
                typed("get", h.host.get_component_spec(&id).await).map(drop),
            ),
            (
                "delete-link",
                typed("dl", h.host.delete_link(&id, "wasi", "kv", None).await).map(drop),
            ),
            (
                "remove-host",
                typed("rh", h.host.remove_host_spec(&id).await).map(drop),
            ),
            (
                "delete-spec",
                typed("ds", h.host.delete_component_spec(&id).await).map(drop),
            ),
            (
                "apply",
                typed(
                    "apply",
                    h.host.apply_stored_spec(&id, good_json.clone()).await,
                )
                .map(drop),
            ),
            (
                "update",
                typed(
                    "update",
                    h.host.update_host_with_spec(&id, good.clone()).await,
                )
                .map(drop),
            ),
            (
                "store",
                typed(
                    "store",
                    h.host.store_component_spec(&id, good.clone()).await,
                )
                .map(drop),
            ),
        ];
        for (op, r) in results {
            match r {
                Ok(()) => assert!(ok, "case {i}: {op} accepted {id:?}"),
                Err(SpecError::InvalidId(m)) => {
                    assert!(!ok, "case {i}: {op} rejected {id:?}: {m}");
                    assert!(
                        m.len() < 2_048,
                        "case {i}: {op}: message of {} bytes",
                        m.len()
                    );
                }
                Err(e) => panic!("case {i}: {op} {id:?}: {e:?}"),
            }
        }
        if !ok {
            assert_eq!(h.kv.dump(), before, "case {i}: a rejected id wrote");
        }
    }
    assert_alive(&h).await;
}

#[tokio::test]
async fn links_are_accepted_exactly_when_valid() {
    let h = host().await;
    let cases = draw((any_link(), proptest::option::of(text())), 80);
    for (i, (l, name)) in cases.into_iter().enumerate() {
        let ok = link_ok(&l);
        let before = h.kv.dump();
        let one = spec("u", vec![l.clone()]);
        let results: Vec<(&str, Result<(), SpecError>)> = vec![
            (
                "update",
                typed(
                    "update",
                    h.host.update_host_with_spec("good", one.clone()).await,
                )
                .map(drop),
            ),
            (
                "store",
                typed("store", h.host.store_component_spec("fz", one).await).map(drop),
            ),
            (
                "put",
                typed("put", h.host.put_link(l.clone()).await).map(drop),
            ),
        ];
        for (op, r) in results {
            match r {
                Ok(()) => assert!(ok, "case {i}: {op} accepted {l:?}"),
                Err(SpecError::InvalidId(_) | SpecError::InvalidLink(_)) => {
                    assert!(!ok, "case {i}: {op} rejected {l:?}")
                }
                Err(SpecError::Conflict(_)) if op == "put" => assert!(ok, "case {i}"),
                Err(e) => panic!("case {i}: {op} {l:?}: {e:?}"),
            }
        }
        if !ok {
            assert_eq!(h.kv.dump(), before, "case {i}: a rejected link wrote");
        }
        let before = h.kv.dump();
        let del_ok =
            id_ok(&l.source_id) && !l.wit_namespace.is_empty() && !l.wit_package.is_empty();
        let (ns, pkg) = (&l.wit_namespace, &l.wit_package);
        match typed(
            "delete-link",
            h.host
                .delete_link(&l.source_id, ns, pkg, name.as_deref())
                .await,
        ) {
            Ok(_) => assert!(del_ok, "case {i}"),
            Err(SpecError::InvalidId(_) | SpecError::InvalidLink(_)) => {
                assert!(!del_ok, "case {i}");
                assert_eq!(h.kv.dump(), before, "case {i}: a rejected delete wrote");
            }
            Err(e) => panic!("case {i}: delete-link: {e:?}"),
        }
    }
    assert_alive(&h).await;
}

#[tokio::test]
/// Ids must be valid and distinct; links are taken as stored.
async fn malformed_snapshots_are_rejected_whole() {
    let h = host().await;
    let valid = (select(vec!["a", "b", "good"]), select(vec!["p", "q"]))
        .prop_map(|(s, t)| store_link(s, t));
    let id = prop_oneof![3 => select(vec!["a", "b", "good"]).prop_map(String::from), 1 => any_id()];
    let entry = (id, vec(prop_oneof![3 => valid, 1 => any_link()], 0..3))
        .prop_map(|(id, links)| TableEntry { id, links });
    let store = h.kv.dump();
    for (i, entries) in draw(vec(entry, 0..4), 40).into_iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        let ok = entries
            .iter()
            .all(|e| id_ok(&e.id) && seen.insert(e.id.clone()));
        let table = typed("snapshot", h.host.snapshot_table().await).expect("snapshot");
        match typed("restore", h.host.restore_table(entries.clone()).await) {
            Ok(()) => {
                assert!(ok, "case {i}: accepted {entries:?}");
                let mut want: Vec<TableEntry> = entries
                    .into_iter()
                    .filter(|e| !e.links.is_empty())
                    .collect();
                want.sort_by(|a, b| a.id.cmp(&b.id));
                let got = typed("snapshot", h.host.snapshot_table().await);
                assert_eq!(got, Ok(want), "case {i}");
            }
            Err(SpecError::InvalidSnapshot(_)) => {
                assert!(!ok, "case {i}: rejected {entries:?}");
                let got = typed("snapshot", h.host.snapshot_table().await);
                assert_eq!(
                    got,
                    Ok(table),
                    "case {i}: a rejected restore changed the table"
                );
            }
            Err(e) => panic!("case {i}: {e:?}"),
        }
    }
    assert_eq!(h.kv.dump(), store, "a restore wrote to the store");
    assert_alive(&h).await;
}
