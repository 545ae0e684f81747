//! Values stored raw under `COMPONENT_{id}`: arbitrary bytes and UTF-8,
//! valid specs with random JSON edits (missing/extra fields, wrong types,
//! nulls, huge strings) and byte damage, hand-picked odd documents, and
//! nesting up to 10,000 levels (100,000 in the fixed case, on a small
//! stack). Every reader and writer answers `Ok` or a typed error (`Decode`
//! naming the id, …), and one that fails leaves value and table alone.
//! Also: 5,000-link specs, long lists, and the regression found here.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};
use spec_plugin::model::SpecError;
use spec_plugin::model::{ComponentSpecification, Link};
use spec_plugin::ops::NativePlugin;

use test_support::fuzz::{nest, raw_value, Spot};

use super::*;

/// A JSON value of any type, including huge strings.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, "x", null])),
        (0usize..100_000).prop_map(|n| Value::String("x".repeat(n))),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Remove,
    Set(Value),
    Extra(String, Value),
}

const TOP_FIELDS: [&str; 2] = ["url", "links"];
const LINK_FIELDS: [&str; 8] = [
    "source_id",
    "target",
    "name",
    "wit_namespace",
    "wit_package",
    "interfaces",
    "source_config",
    "target_config",
];

/// Applies one edit to the top object (`at: None`) or one of its links.
fn apply_edit(doc: &mut Value, at: Option<Index>, field: Index, edit: Edit) {
    let link_count = doc["links"].as_array().map_or(0, Vec::len);
    let (obj, fields) = match at {
        Some(i) if link_count > 0 => (&mut doc["links"][i.index(link_count)], &LINK_FIELDS[..]),
        _ => (doc, &TOP_FIELDS[..]),
    };
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let name = fields[field.index(fields.len())].to_string();
    match edit {
        Edit::Remove => {
            obj.remove(&name);
        }
        Edit::Set(v) => {
            obj.insert(name, v);
        }
        Edit::Extra(extra, v) => {
            obj.insert(extra, v);
        }
    }
}

/// Byte-level damage after encoding.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Truncate(Index),
    Overwrite(Index, u8),
    Append(Vec<u8>),
}

/// A valid spec, then a few JSON edits, then maybe byte damage.
fn mutated_spec() -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        Just(Edit::Remove),
        leaf().prop_map(Edit::Set),
        (".{0,6}", leaf()).prop_map(|(k, v)| Edit::Extra(k, v)),
    ];
    let damage = prop_oneof![
        4 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Overwrite(i, b)),
        1 => vec(any::<u8>(), 1..8).prop_map(Damage::Append),
    ];
    (
        text(),
        vec(any_link(), 0..4),
        vec((any::<Option<Index>>(), any::<Index>(), edit), 0..4),
        damage,
    )
        .prop_map(|(url, links, edits, damage)| {
            let mut doc = json!(ComponentSpecification { url, links });
            for (at, field, edit) in edits {
                apply_edit(&mut doc, at, field, edit);
            }
            let mut bytes = doc.to_string().into_bytes();
            match damage {
                Damage::None => {}
                Damage::Truncate(i) => bytes.truncate(i.index(bytes.len())),
                Damage::Overwrite(i, b) => {
                    let i = i.index(bytes.len());
                    bytes[i] = b;
                }
                Damage::Append(tail) => bytes.extend(tail),
            }
            bytes
        })
}

// ---- properties -----------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Whatever is stored under an id, readers and writers answer `Ok` or a
    /// typed error, and a failed call changes neither store nor table.
    #[test]
    fn stored_values_decode_or_fail_typed(value in raw_value(mutated_spec(), 10_000)) {
        let mut fx = Fx::new();
        fx.put_raw("fz", &value);
        let decodes = serde_json::from_slice::<ComponentSpecification>(&value).is_ok();
        let is_decode = |e: &SpecError| matches!(e, SpecError::Decode { id, .. } if id == "fz");

        let before = fx.state();
        match fx.plugin.get_component_spec(&mut fx.store, "fz") {
            Ok(Some(spec)) => {
                prop_assert!(decodes);
                let again = serde_json::to_vec(&spec)?;
                prop_assert_eq!(serde_json::from_slice::<ComponentSpecification>(&again)?, spec);
            }
            Ok(None) => prop_assert!(false, "stored value not found"),
            Err(e) => prop_assert!(!decodes && is_decode(&e), "{e:?}"),
        }
        prop_assert_eq!(fx.state(), before.clone());

        let listing = fx.plugin.list_links(&mut fx.store)?;
        prop_assert_eq!(listing.undecodable.contains(&"fz".to_string()), !decodes);
        prop_assert!(listing.links.contains(&store_link("good", "p")));

        match fx.plugin.apply_stored_spec(&mut fx.notifier, "fz", &value) {
            Ok(_) => prop_assert!(decodes),
            Err(e) => {
                prop_assert!(
                    is_decode(&e) || matches!(e, SpecError::InvalidId(_) | SpecError::InvalidLink(_)),
                    "{e:?}"
                );
                prop_assert_eq!(is_decode(&e), !decodes);
                prop_assert_eq!(fx.state(), before.clone());
            }
        }

        let before = fx.state();
        let put = fx.plugin.put_link(&mut fx.store, &mut fx.notifier, store_link("fz", "p"));
        if let Err(e) = put {
            prop_assert!(is_decode(&e) || matches!(e, SpecError::Conflict(_)), "{e:?}");
            prop_assert_eq!(is_decode(&e), !decodes);
            prop_assert_eq!(fx.state(), before);
        }
        let before = fx.state();
        let del = fx.plugin.delete_link(&mut fx.store, &mut fx.notifier, "fz", "wasi", "keyvalue", None);
        if let Err(e) = del {
            prop_assert!(is_decode(&e) && !decodes, "{e:?}");
            prop_assert_eq!(fx.state(), before);
        }

        let reload = fx.plugin.reload_from_store(&mut fx.store)?;
        prop_assert_eq!(reload.undecodable.contains(&"fz".to_string()), !decodes);
        prop_assert!(reload.loaded >= 1);
    }

}

// ---- fixed cases ----------------------------------------------------------

/// Runs `f` on a thread with a small stack: decoding must not recurse per
/// nesting level.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let joined = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .map(|t| t.join());
    assert!(matches!(joined, Ok(Ok(()))), "thread failed: {joined:?}");
}

#[test]
fn deep_nesting_is_a_decode_error_on_a_small_stack() {
    on_small_stack(|| {
        for depth in [129, 10_000, 100_000] {
            for objects in [false, true] {
                for (spot, closed) in [
                    (Spot::Top, true),
                    (Spot::Top, false),
                    (Spot::Links, true),
                    (Spot::Extra, false),
                ] {
                    let mut fx = Fx::new();
                    let value = nest(depth, objects, spot, closed);
                    fx.put_raw("fz", &value);
                    let before = fx.state();
                    let got = fx.plugin.get_component_spec(&mut fx.store, "fz");
                    assert!(
                        matches!(&got, Err(SpecError::Decode { id, .. }) if id == "fz"),
                        "{depth} {objects} {spot:?}: {got:?}"
                    );
                    let put =
                        fx.plugin
                            .put_link(&mut fx.store, &mut fx.notifier, store_link("fz", "p"));
                    assert!(matches!(put, Err(SpecError::Decode { .. })), "{put:?}");
                    let applied = fx.plugin.apply_stored_spec(&mut fx.notifier, "fz", &value);
                    assert!(matches!(applied, Err(SpecError::Decode { .. })));
                    assert_eq!(fx.state(), before);
                }
                // An unknown field is skipped without recursion, at any depth.
                let mut fx = Fx::new();
                fx.put_raw("fz", &nest(depth, objects, Spot::Extra, true));
                let got = fx.plugin.get_component_spec(&mut fx.store, "fz");
                assert!(matches!(got, Ok(Some(_))), "{depth}: {got:?}");
            }
        }
    });
}

fn many_links(source: &str, n: usize, tag: &str) -> Vec<Link> {
    (0..n)
        .map(|i| {
            let mut l = store_link(source, if i % 2 == 0 { "p" } else { "q" });
            l.name = format!("{tag}-{i}");
            l.target_config = vec![format!("cfg-{i}")];
            l
        })
        .collect()
}

#[test]
fn five_thousand_links_round_trip_and_update() {
    let mut fx = Fx::new();
    let spec = ComponentSpecification {
        url: "u".repeat(1 << 20),
        links: many_links("big", 5_000, "a"),
    };
    let stored =
        fx.plugin
            .store_component_spec(&mut fx.store, &mut fx.notifier, "big", spec.clone());
    let stored = stored.expect("store");
    assert_eq!(stored.report().added.len(), 5_000);
    let got = fx.plugin.get_component_spec(&mut fx.store, "big");
    assert_eq!(got, Ok(Some(spec.clone())));
    assert_eq!(fx.plugin.table().links_of("big"), spec.links);

    // Half the links renamed: 2,500 removed, 2,500 added.
    let mut next = spec.clone();
    next.links[..2_500].clone_from_slice(&many_links("big", 2_500, "b"));
    let update = fx
        .plugin
        .store_component_spec(&mut fx.store, &mut fx.notifier, "big", next.clone())
        .expect("update");
    assert_eq!(update.report().added.len(), 2_500);
    assert_eq!(update.report().removed.len(), 2_500);
    assert_eq!(fx.plugin.table().links_of("big"), next.links);

    let put = fx
        .plugin
        .put_link(&mut fx.store, &mut fx.notifier, store_link("big", "p"));
    assert!(put.is_ok(), "{put:?}");
    let listing = fx.plugin.list_links(&mut fx.store).expect("list");
    assert_eq!(listing.links.len(), 5_001 + 1);
    let reload = fx.plugin.reload_from_store(&mut fx.store).expect("reload");
    assert_eq!((reload.loaded, reload.links), (2, 5_002));
    let raw = fx.store.raw(&key("big")).expect("stored").value.clone();
    let mut other = NativePlugin::new();
    let applied = other.apply_stored_spec(&mut fx.notifier, "big", &raw);
    assert_eq!(applied.map(|r| r.links().map(|l| l.len())), Ok(Ok(5_001)));
    let deleted = fx.plugin.delete_link(
        &mut fx.store,
        &mut fx.notifier,
        "big",
        "wasi",
        "keyvalue",
        None,
    );
    assert_eq!(deleted.map(|d| d.removed.len()), Ok(1));

    // One link with long lists (multi-byte lengths in the packed table).
    let mut wide = store_link("wide", "p");
    wide.interfaces = (0..5_000).map(|i| format!("i{i}")).collect();
    wide.source_config = (0..300).map(|i| format!("s{i}")).collect();
    let spec = ComponentSpecification {
        url: String::new(),
        links: vec![wide.clone()],
    };
    let stored = (fx.plugin).store_component_spec(&mut fx.store, &mut fx.notifier, "wide", spec);
    assert!(stored.is_ok(), "{stored:?}");
    assert_eq!(fx.plugin.table().links_of("wide"), vec![wide.clone()]);
    assert!(fx.plugin.table().holds("wide", &wide));
}

// ---- regressions ----------------------------------------------------------

/// A stored spec whose link breaks the link rules (no interface), as another
/// writer may leave it: it decodes, so readers take it as it is.
const STORED_INVALID_LINK: &str = r#"{"url":"u","links":[{"source_id":"fz","target":"p","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":[]}]}"#;

/// The table must always be a snapshot that `restore_table` takes back: a
/// host restores it into every new instance (after a trap, on a swap).
#[test]
fn regression_table_fed_from_stored_invalid_links_still_restores() {
    let mut other = store_link("fz", "q");
    other.name = "other".into();
    type Feed = fn(&mut Fx, &Link) -> Result<(), SpecError>;
    let feeds: [(&str, Feed); 3] = [
        ("put_link", |fx, l| {
            let r = fx
                .plugin
                .put_link(&mut fx.store, &mut fx.notifier, l.clone());
            r.map(drop)
        }),
        ("delete_link", |fx, l| {
            let r = fx
                .plugin
                .put_link(&mut fx.store, &mut fx.notifier, l.clone());
            assert!(r.is_ok(), "{r:?}");
            fx.plugin.restore_table(Vec::new())?;
            let n = Some(l.name.as_str());
            let r = (fx.plugin).delete_link(
                &mut fx.store,
                &mut fx.notifier,
                "fz",
                "wasi",
                "keyvalue",
                n,
            );
            r.map(drop)
        }),
        ("reload_from_store", |fx, _| {
            fx.plugin.reload_from_store(&mut fx.store).map(drop)
        }),
    ];
    let mut failures = Vec::new();
    for (via, feed) in feeds {
        let mut fx = Fx::new();
        fx.put_raw("fz", STORED_INVALID_LINK.as_bytes());
        assert_eq!(feed(&mut fx, &other), Ok(()), "{via}");
        if let Err(e) = NativePlugin::new().restore_table(fx.plugin.snapshot_table()) {
            failures.push(format!("after {via}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
