//! Input rules against an oracle written from the WIT docs: arbitrary ids
//! (any Unicode, empty, dots, 10k chars) and links with arbitrary fields are
//! accepted exactly when the rules allow, and otherwise rejected with
//! `InvalidId`/`InvalidLink`, nothing written and nothing delivered;
//! malformed table snapshots are rejected whole with `InvalidSnapshot`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use spec_plugin::model::ComponentSpecification;
use spec_plugin::model::SpecError;
use spec_plugin::model::TableEntry;

use super::*;

proptest! {
    #![proptest_config(config(256))]

    /// Ids: accepted exactly when the id rules allow; a rejected id is
    /// `InvalidId` and writes nothing, delivers nothing.
    #[test]
    fn ids_follow_the_rules(id in any_id()) {
        let mut fx = Fx::new();
        let ok = id_ok(&id);
        let before = fx.state();
        let deliveries = fx.notifier.deliveries().len();
        let spec = ComponentSpecification { url: "u".into(), links: vec![store_link("good", "q")] };
        let valid_json = serde_json::to_vec(&spec)?;
        let results: Vec<(&str, Result<(), SpecError>)> = vec![
            ("get", fx.plugin.get_component_spec(&mut fx.store, &id).map(drop)),
            ("delete-link", fx.plugin.delete_link(&mut fx.store, &mut fx.notifier, &id, "wasi", "kv", None).map(drop)),
            ("remove-host", fx.plugin.remove_host_spec(&mut fx.notifier, &id).map(drop)),
            ("delete-spec", fx.plugin.delete_component_spec(&mut fx.store, &mut fx.notifier, &id).map(drop)),
            ("apply", fx.plugin.apply_stored_spec(&mut fx.notifier, &id, &valid_json).map(drop)),
            ("update", fx.plugin.update_host_with_spec(&mut fx.notifier, &id, spec.clone()).map(drop)),
            ("store", fx.plugin.store_component_spec(&mut fx.store, &mut fx.notifier, &id, spec).map(drop)),
        ];
        for (op, r) in results {
            match r {
                Ok(()) => prop_assert!(ok, "{op} accepted {id:?}"),
                Err(SpecError::InvalidId(m)) => {
                    prop_assert!(!ok, "{op} rejected {id:?}: {m}");
                    prop_assert!(m.len() < 2_048, "{op}: message of {} bytes", m.len());
                }
                Err(e) => prop_assert!(false, "{op} {id:?}: {e:?}"),
            }
        }
        if !ok {
            prop_assert_eq!(fx.state(), before);
            prop_assert_eq!(fx.notifier.deliveries().len(), deliveries);
        }
    }

    /// Links with arbitrary fields: accepted exactly when valid; otherwise
    /// `InvalidId`/`InvalidLink` and nothing written or delivered.
    #[test]
    fn links_follow_the_rules(l in any_link(), name in proptest::option::of(text())) {
        let mut fx = Fx::new();
        let ok = link_ok(&l);
        let before = fx.state();
        let deliveries = fx.notifier.deliveries().len();
        let spec = ComponentSpecification { url: "u".into(), links: vec![l.clone()] };
        let results: Vec<(&str, Result<(), SpecError>)> = vec![
            ("update", fx.plugin.update_host_with_spec(&mut fx.notifier, "good", spec.clone()).map(drop)),
            ("store", fx.plugin.store_component_spec(&mut fx.store, &mut fx.notifier, "fz", spec).map(drop)),
            ("put", fx.plugin.put_link(&mut fx.store, &mut fx.notifier, l.clone()).map(drop)),
        ];
        for (op, r) in results {
            match r {
                Ok(()) => prop_assert!(ok, "{op} accepted {l:?}"),
                Err(SpecError::InvalidId(_) | SpecError::InvalidLink(_)) => {
                    prop_assert!(!ok, "{op} rejected {l:?}")
                }
                // Only put can conflict, with the link stored just before.
                Err(SpecError::Conflict(_)) if op == "put" => prop_assert!(ok),
                Err(e) => prop_assert!(false, "{op} {l:?}: {e:?}"),
            }
        }
        if !ok {
            prop_assert_eq!(fx.state(), before.clone());
            prop_assert_eq!(fx.notifier.deliveries().len(), deliveries);
        }
        let before = fx.state();
        let del_ok = id_ok(&l.source_id) && !l.wit_namespace.is_empty() && !l.wit_package.is_empty();
        match fx.plugin.delete_link(&mut fx.store, &mut fx.notifier, &l.source_id, &l.wit_namespace, &l.wit_package, name.as_deref()) {
            Ok(_) => prop_assert!(del_ok),
            Err(SpecError::InvalidId(_) | SpecError::InvalidLink(_)) => {
                prop_assert!(!del_ok);
                prop_assert_eq!(fx.state(), before);
            }
            Err(e) => prop_assert!(false, "delete-link: {e:?}"),
        }
    }
}

/// Snapshots as a host might hand them back: mostly valid, sometimes with a
/// bad id, a repeated id or a bad link.
fn any_entries() -> impl Strategy<Value = Vec<TableEntry>> {
    let id = prop_oneof![3 => select(IDS.to_vec()).prop_map(String::from), 1 => any_id()];
    let links = vec(prop_oneof![3 => pool_link(), 1 => any_link()], 0..3);
    vec(
        (id, links).prop_map(|(id, links)| TableEntry { id, links }),
        0..4,
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// A snapshot is restored exactly when every id is valid and appears
    /// once (links are taken as stored, valid or not); otherwise
    /// `InvalidSnapshot` and the table stays.
    #[test]
    fn restore_takes_valid_snapshots_only(entries in any_entries()) {
        let mut fx = Fx::new();
        let before = fx.state();
        let mut seen = std::collections::BTreeSet::new();
        let ok = entries
            .iter()
            .all(|e| id_ok(&e.id) && seen.insert(e.id.clone()));
        match fx.plugin.restore_table(entries.clone()) {
            Ok(()) => {
                prop_assert!(ok);
                let mut want: Vec<TableEntry> =
                    entries.into_iter().filter(|e| !e.links.is_empty()).collect();
                want.sort_by(|a, b| a.id.cmp(&b.id));
                prop_assert_eq!(fx.plugin.snapshot_table(), want);
            }
            Err(SpecError::InvalidSnapshot(_)) => {
                prop_assert!(!ok);
                prop_assert_eq!(fx.state(), before.clone());
            }
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        prop_assert_eq!(fx.store.writes(), before.writes);
    }
}
