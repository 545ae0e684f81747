//! Tests of the link table: new-link rule, deliveries, diff, snapshot.

use super::*;
use crate::memory::RecordingNotifier;
use spec_model::TableEntry;
use test_support::link;

/// The deliveries made since the last call, as (provider, kind).
fn kinds(n: &mut RecordingNotifier) -> Vec<(String, DeliveryKind)> {
    n.take_deliveries()
        .into_iter()
        .map(|d| (d.provider_id, d.kind))
        .collect()
}

fn restored(entries: Vec<TableEntry>) -> Snapshot {
    Snapshot::pack(&entries)
}

#[test]
fn new_links_go_to_local_source_and_target_only() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["kvredis", "p2"]);
    let l1 = link("comp", "kvredis", "default", &["store"]);
    let l2 = link("comp", "remote", "other", &["store"]);
    let r = t.update("comp", &[l1.clone(), l2.clone()], &mut n);
    assert_eq!(r.added, vec![l1.clone(), l2.clone()]);
    assert_eq!(
        kinds(&mut n),
        vec![("kvredis".to_string(), DeliveryKind::Put)]
    );
    assert_eq!(r.links().expect("packed"), vec![l1.clone(), l2.clone()]);
    assert_eq!(n.provider_queries(), 1);

    // Same spec again: nothing new, nothing asked.
    let r = t.update("comp", &[l1.clone(), l2], &mut n);
    assert!(
        r.added.is_empty() && r.removed.is_empty() && r.delivered == 0 && r.failures.is_empty()
    );
    assert_eq!(n.provider_queries(), 1);

    // A provider linking to itself is told once.
    let selfie = link("p2", "p2", "default", &["store"]);
    t.update("p2", &[selfie], &mut n);
    assert_eq!(kinds(&mut n), vec![("p2".to_string(), DeliveryKind::Put)]);

    // Source local and target local: both told.
    let both = link("p2", "kvredis", "x", &["store"]);
    t.update("p3", &[both], &mut n);
    assert_eq!(
        kinds(&mut n),
        vec![
            ("p2".to_string(), DeliveryKind::Put),
            ("kvredis".to_string(), DeliveryKind::Put)
        ]
    );
}

#[test]
fn equal_link_under_source_or_target_is_not_new() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["prov"]);
    let l = link("comp", "prov", "default", &["store"]);
    // Held under its target's entry (e.g. a snapshot keyed by provider).
    t.restore(restored(vec![TableEntry {
        id: "prov".into(),
        links: vec![l.clone()],
    }]))
    .expect("restore");
    let r = t.update("other", std::slice::from_ref(&l), &mut n);
    assert!(r.added.is_empty(), "held under target");
    // Held under its source's entry.
    let mut t = LinkTable::new();
    t.restore(restored(vec![TableEntry {
        id: "comp".into(),
        links: vec![l.clone()],
    }]))
    .expect("restore");
    let r = t.update("third", std::slice::from_ref(&l), &mut n);
    assert!(r.added.is_empty(), "held under source");
    // A link that differs in one field is new.
    let mut changed = l;
    changed.target_config.push("cfg".into());
    let r = t.update("comp", &[changed.clone()], &mut n);
    assert_eq!(r.added, vec![changed]);
    assert_eq!(r.removed.len(), 1);
    // Deletes are delivered before puts so the replacement ends up in force.
    assert_eq!(
        kinds(&mut n),
        vec![
            ("prov".to_string(), DeliveryKind::Delete),
            ("prov".to_string(), DeliveryKind::Put)
        ]
    );
}

#[test]
fn removed_links_are_delivered_as_deletes_and_empty_spec_drops_entry() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["a", "b"]);
    let la = link("comp", "a", "default", &["store"]);
    let lb = link("comp", "b", "other", &["store"]);
    t.update("comp", &[la.clone(), lb.clone()], &mut n);
    n.take_deliveries();
    let r = t.update("comp", std::slice::from_ref(&lb), &mut n);
    assert_eq!(r.removed, vec![la.clone()]);
    assert_eq!(kinds(&mut n), vec![("a".to_string(), DeliveryKind::Delete)]);
    let r = t.update::<Link>("comp", &[], &mut n);
    assert_eq!(r.removed, vec![lb.clone()]);
    assert_eq!(t.id_count(), 0);
    assert!(t.links_of("comp").is_empty());

    t.update("comp", &[la.clone(), lb.clone()], &mut n);
    n.take_deliveries();
    let r = t.remove("comp", &mut n);
    assert_eq!(r.removed, vec![la, lb]);
    assert_eq!(r.delivered, 2);
    assert!(kinds(&mut n)
        .iter()
        .all(|(_, k)| *k == DeliveryKind::Delete));
    assert_eq!(t.remove("comp", &mut n), UpdateReport::default());
}

#[test]
fn delivery_failures_are_recorded_not_fatal() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["a", "b"]);
    n.fail_deliveries_to("a");
    let la = link("comp", "a", "default", &["store"]);
    let lb = link("comp", "b", "x", &["store"]);
    let r = t.update("comp", &[la.clone(), lb.clone()], &mut n);
    assert_eq!(r.delivered, 1);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].provider_id, "a");
    assert!(matches!(
        r.failures[0].error,
        spec_model::NotifyError::DeliveryFailed(_)
    ));
    assert_eq!(
        t.links_of("comp"),
        &[la, lb][..],
        "table updated despite the failure"
    );
}

#[test]
fn repeats_in_a_spec_are_delivered_once() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["a"]);
    let la = link("comp", "a", "default", &["store"]);
    let r = t.update("comp", &[la.clone(), la.clone()], &mut n);
    assert_eq!(r.added, vec![la.clone()]);
    assert_eq!(r.delivered, 1);
    assert_eq!(
        r.links().map(|l| l.len()),
        Ok(2),
        "the table holds exactly the spec"
    );
    let r = t.update::<Link>("comp", &[], &mut n);
    assert_eq!(r.removed, vec![la]);
}

#[test]
fn import_links_later_wins_sorted() {
    let l1 = link("c", "t1", "default", &["store", "atomics"]);
    let l2 = link("c", "t2", "default", &["store"]);
    let l3 = link("c", "t3", "alpha", &["store"]);
    let rows = import_links(&[l1, l2, l3]);
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.interface.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("alpha", "wasi:keyvalue/store", "t3"),
            ("default", "wasi:keyvalue/atomics", "t1"),
            ("default", "wasi:keyvalue/store", "t2"),
        ]
    );
}

#[test]
fn snapshot_restore_round_trip_and_rejects_bad_entries() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(Vec::<String>::new());
    t.update("zed", &[link("zed", "a", "default", &["store"])], &mut n);
    t.update("abc", &[link("abc", "b", "default", &["store"])], &mut n);
    let snap = t.snapshot();
    assert_eq!(
        snap.entries
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["abc", "zed"]
    );
    let mut other = LinkTable::new();
    other.restore(snap.clone()).expect("restore");
    assert_eq!(other.snapshot(), snap);

    for bad in [
        vec![TableEntry {
            id: "bad id".into(),
            links: vec![],
        }],
        vec![
            TableEntry {
                id: "a".into(),
                links: vec![],
            },
            TableEntry {
                id: "a".into(),
                links: vec![],
            },
        ],
    ] {
        assert!(matches!(
            other.restore(restored(bad)),
            Err(SpecError::InvalidSnapshot(_))
        ));
        assert_eq!(other.snapshot(), snap, "untouched");
    }
}

#[test]
fn restore_takes_stored_links_as_they_are() {
    // Other writers may store links this plugin would not write (an empty
    // target here); the table mirrors the store, so a snapshot holding them
    // must restore.
    let mut t = LinkTable::new();
    let odd = vec![TableEntry {
        id: "a".into(),
        links: vec![link("a", "", "default", &["store"])],
    }];
    t.restore(restored(odd.clone())).expect("restores");
    assert_eq!(t.snapshot(), restored(odd));
}

#[test]
fn restore_checks_the_format_and_the_bytes() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(Vec::<String>::new());
    t.update("keep", &[link("keep", "a", "default", &["store"])], &mut n);
    let before = t.snapshot();
    let mut other_format = before.clone();
    other_format.format = 2;
    let mut garbage = before.clone();
    garbage.entries[0].links = vec![0xff; 7];
    for bad in [other_format, garbage] {
        assert!(matches!(t.restore(bad), Err(SpecError::InvalidSnapshot(_))));
        assert_eq!(t.snapshot(), before, "untouched");
    }
}

#[test]
fn collisions_fall_back_to_a_scan() {
    // Force a collision by pointing the index of one link's hash at another.
    let a = link("c", "a", "default", &["store"]);
    let b = link("c", "b", "default", &["store"]);
    let mut e = IdLinks::new(&[a, b.clone()]);
    let hb = link_hash(&b);
    e.index.insert(hb, 0); // as if `a` had `b`'s hash and came first
    assert_eq!(e.position(spec_model::packed::link_tokens(&b), hb), Some(1));
    assert!(!e.contains_link(&link("c", "z", "default", &["store"]), hb));
}

#[test]
fn diff_at_scale_100k_links() {
    let mut t = LinkTable::new();
    let mut n = RecordingNotifier::new(["t7"]);
    let make = |i: usize| {
        link(
            "big",
            &format!("t{}", i % 1000),
            &format!("n{i}"),
            &["store"],
        )
    };
    let links: Vec<Link> = (0..100_000).map(make).collect();
    let r = t.update("big", &links, &mut n);
    assert_eq!(r.added.len(), 100_000);
    assert_eq!(r.delivered, 100, "only links to t7 are delivered");
    assert_eq!(t.link_count(), 100_000);

    // Drop the first 500, change 500, add 500 new ones.
    let mut next: Vec<Link> = links[500..].to_vec();
    for l in next.iter_mut().take(500) {
        l.interfaces.push("atomics".into());
    }
    next.extend((100_000..100_500).map(make));
    let start = std::time::Instant::now();
    let r = t.update("big", &next, &mut n);
    let took = start.elapsed();
    assert_eq!(r.removed.len(), 1000, "500 dropped + 500 changed");
    assert_eq!(r.added.len(), 1000, "500 changed + 500 new");
    assert_eq!(t.links_of("big"), next);
    assert!(t.holds("big", &next[99_999]));
    assert!(!t.holds("big", &links[0]));
    assert!(took.as_secs() < 10, "diff is linear: {took:?}");
}
