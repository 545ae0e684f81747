//! Concurrency tests of the link CAS loop through the public API: a competing
//! writer slips in between the plugin's read and its compare-and-swap, and the
//! plugin must retry without losing either side's links, or give up after a
//! bounded number of tries having written nothing.

use spec_plugin::backend::{Entry, KeyValue};
use spec_plugin::memory::{MemoryKv, RecordingNotifier};
use spec_plugin::model::json::{decode_spec, encode_spec};
use spec_plugin::model::keys::{component_key, id_from_key};
use spec_plugin::model::PutOutcome;
use spec_plugin::model::{ComponentSpecification, Link};
use spec_plugin::model::{SpecError, StoreError};
use spec_plugin::ops::NativePlugin;
use spec_plugin::specs::MAX_CAS_TRIES;
use test_support::link;

fn stored(store: &MemoryKv, id: &str) -> ComponentSpecification {
    let entry = store.raw(&component_key(id)).expect("stored");
    decode_spec(&entry.value).expect("decodes")
}

fn setup() -> (NativePlugin, RecordingNotifier) {
    (NativePlugin::new(), RecordingNotifier::new(["kvredis"]))
}

/// A store that lets a competing writer append a link between every read and
/// the next compare-and-swap, `remaining` times.
struct Interfering {
    inner: MemoryKv,
    remaining: usize,
    competitors: usize,
}

impl KeyValue for Interfering {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.inner.set(key, value)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.competitors += 1;
            // The competitor does its own read-modify-write, which succeeds.
            let id = id_from_key(key).expect("spec key");
            let mut spec = match self.inner.get(key)? {
                Some(e) => decode_spec(&e.value).expect("decodes"),
                None => ComponentSpecification::default(),
            };
            let name = format!("competitor{}", self.competitors);
            spec.links.push(link(id, "rival", &name, &["store"]));
            self.inner.set(key, encode_spec(&spec))?;
        }
        self.inner.compare_and_swap(key, value, expected)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        self.inner.delete(key)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_keys(prefix)
    }
}

#[test]
fn cas_retries_after_a_competing_write_and_loses_nothing() {
    let (mut p, mut n) = setup();
    let mut s = Interfering {
        inner: MemoryKv::new(),
        remaining: 3,
        competitors: 0,
    };
    let mine = link("comp", "kvredis", "default", &["store"]);
    let r = p
        .put_link(&mut s, &mut n, mine.clone())
        .expect("put wins on the 4th try");
    assert_eq!(r.outcome, PutOutcome::Appended);
    let links = stored(&s.inner, "comp").links;
    assert_eq!(links.len(), 4, "3 competitors + mine: {links:?}");
    assert_eq!(links.last(), Some(&mine));
    assert_eq!(
        r.report().links(),
        Ok(links),
        "host table matches what was stored"
    );

    // Delete under interference keeps the competitor's new link.
    s.remaining = 1;
    let d = p
        .delete_link(&mut s, &mut n, "comp", "wasi", "keyvalue", None)
        .expect("delete");
    assert_eq!(d.removed, vec![mine]);
    let links = stored(&s.inner, "comp").links;
    assert_eq!(links.len(), 4, "3 + the 4th competitor, mine removed");
    assert!(links.iter().any(|l| l.name == "competitor4"));
}

#[test]
fn cas_gives_up_after_max_cas_tries_lost_races_without_losing_links() {
    let (mut p, mut n) = setup();
    let mut s = Interfering {
        inner: MemoryKv::new(),
        remaining: usize::MAX,
        competitors: 0,
    };
    let mine = link("comp", "kvredis", "default", &["store"]);
    match p.put_link(&mut s, &mut n, mine.clone()) {
        Err(SpecError::RevisionConflict(m)) => {
            assert!(
                m.contains("COMPONENT_comp") && m.contains(&MAX_CAS_TRIES.to_string()),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.competitors, MAX_CAS_TRIES);
    let links = stored(&s.inner, "comp").links;
    assert_eq!(
        links.len(),
        MAX_CAS_TRIES,
        "every competitor's link survives"
    );
    assert!(!links.contains(&mine), "ours was not written");
    assert_eq!(p.table().id_count(), 0, "no host update");
    assert!(n.deliveries().is_empty());

    s.remaining = usize::MAX;
    let d = p.delete_link(
        &mut s,
        &mut n,
        "comp",
        "wasi",
        "keyvalue",
        Some("competitor1"),
    );
    assert!(matches!(d, Err(SpecError::RevisionConflict(_))));
    assert_eq!(stored(&s.inner, "comp").links.len(), 2 * MAX_CAS_TRIES);
}

/// A handle on a store shared by two plugins (two hosts of one lattice).
#[derive(Clone)]
struct Shared(std::rc::Rc<std::cell::RefCell<MemoryKv>>);

impl KeyValue for Shared {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.0.borrow_mut().get(key)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.0.borrow_mut().set(key, value)
    }
    fn compare_and_swap(&mut self, k: &str, v: Vec<u8>, e: Option<u64>) -> Result<u64, StoreError> {
        self.0.borrow_mut().compare_and_swap(k, v, e)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        self.0.borrow_mut().delete(key)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.0.borrow_mut().list_keys(prefix)
    }
}

/// Host A's view of the shared store: before every other compare-and-swap
/// of A, host B completes a whole put of its next link.
struct RacingHostB {
    shared: Shared,
    rival: NativePlugin,
    rival_notifier: RecordingNotifier,
    rival_links: std::collections::VecDeque<Link>,
    cas_calls: usize,
}

impl KeyValue for RacingHostB {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.shared.get(key)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.shared.set(key, value)
    }
    fn compare_and_swap(&mut self, k: &str, v: Vec<u8>, e: Option<u64>) -> Result<u64, StoreError> {
        self.cas_calls += 1;
        if self.cas_calls % 2 == 1 {
            if let Some(link) = self.rival_links.pop_front() {
                let mut shared = self.shared.clone();
                self.rival
                    .put_link(&mut shared, &mut self.rival_notifier, link)
                    .expect("B's put");
            }
        }
        self.shared.compare_and_swap(k, v, e)
    }
    fn delete(&mut self, key: &str) -> Result<u64, StoreError> {
        self.shared.delete(key)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.shared.list_keys(prefix)
    }
}

#[test]
fn two_hosts_putting_links_on_one_source_lose_none() {
    let shared = Shared(Default::default());
    let mut a_store = RacingHostB {
        shared: shared.clone(),
        rival: NativePlugin::new(),
        rival_notifier: RecordingNotifier::new(["kvredis"]),
        rival_links: (0..100)
            .map(|i| link("comp", "kvredis", &format!("b{i}"), &["s"]))
            .collect(),
        cas_calls: 0,
    };
    let (mut a, mut n) = setup();
    for i in 0..100 {
        let r = a.put_link(
            &mut a_store,
            &mut n,
            link("comp", "kvredis", &format!("a{i}"), &["s"]),
        );
        assert_eq!(r.expect("A's put").outcome, PutOutcome::Appended);
    }
    assert!(a_store.rival_links.is_empty());
    assert_eq!(
        a_store.cas_calls, 200,
        "every put of A lost one race and retried once"
    );
    let links = stored(&shared.0.borrow(), "comp").links;
    assert_eq!(links.len(), 200);
    for i in 0..100 {
        assert!(links.iter().any(|l| l.name == format!("a{i}")));
        assert!(links.iter().any(|l| l.name == format!("b{i}")));
    }
}
