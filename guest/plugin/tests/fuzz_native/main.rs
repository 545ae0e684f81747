//! Bad-input fuzzing of the plugin's native logic (proptest over
//! `NativePlugin` with the in-memory store and notifier): what corrupt, hostile or
//! merely odd input does to the decode and link paths. Every call must
//! answer `Ok` or a typed `SpecError`, never panic or overflow the stack,
//! and a failed call must leave the store and the host table as they were.
//!
//! * `stored`: values stored raw under `COMPONENT_{id}` (arbitrary bytes and
//!   UTF-8, mutated specs, odd documents, nesting up to 100,000 levels),
//!   5,000-link specs, and the regression found there;
//! * `rules`: arbitrary ids, links with arbitrary fields and malformed table
//!   snapshots against an oracle of the documented rules;
//! * `model`: random sequences of store and table calls against a reference
//!   model of the link rules.
//!
//! This file holds what the three share. proptest persists failing cases
//! beside each module, as `tests/fuzz_native/<module>.regressions`, and
//! replays them first on every run: commit them.

mod model;
mod rules;
mod stored;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::FileFailurePersistence;
use spec_plugin::backend::KeyValue;
use spec_plugin::memory::{MemoryKv, RecordingNotifier};
use spec_plugin::model::TableEntry;
use spec_plugin::model::{ComponentSpecification, Link};
use spec_plugin::ops::NativePlugin;
use test_support::fuzz::{any_id, any_link, id_ok, link_ok, text};
use test_support::store_link;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn key(id: &str) -> String {
    format!("COMPONENT_{id}")
}

/// KeyValue writes, the values of `good` and `fz`, and the host table.
#[derive(Clone, Debug, PartialEq)]
struct State {
    writes: u64,
    values: Vec<Option<Vec<u8>>>,
    table: Vec<TableEntry>,
}

/// A plugin over in-memory backends, with one good spec stored (`good`).
struct Fx {
    plugin: NativePlugin,
    store: MemoryKv,
    notifier: RecordingNotifier,
}

impl Fx {
    fn new() -> Self {
        let mut fx = Fx {
            plugin: NativePlugin::new(),
            store: MemoryKv::new(),
            notifier: RecordingNotifier::new(["p", "q"]),
        };
        let spec = ComponentSpecification {
            url: "u".into(),
            links: vec![store_link("good", "p")],
        };
        let stored = fx
            .plugin
            .store_component_spec(&mut fx.store, &mut fx.notifier, "good", spec);
        assert!(stored.is_ok(), "{stored:?}");
        fx
    }

    fn put_raw(&mut self, id: &str, value: &[u8]) {
        assert!(self.store.set(&key(id), value.to_vec()).is_ok());
    }

    /// What a failed call must leave alone: the store and the table.
    fn state(&self) -> State {
        let values = ["good", "fz"]
            .map(|id| self.store.raw(&key(id)).map(|e| e.value.clone()))
            .to_vec();
        State {
            writes: self.store.writes(),
            values,
            table: self.plugin.snapshot_table(),
        }
    }
}

/// Ids the model and the snapshots use.
const IDS: [&str; 3] = ["a", "b", "c"];

/// A link drawn from small pools, so that links collide often: always valid.
fn pool_link() -> impl Strategy<Value = Link> {
    (
        (select(IDS.to_vec()), select(vec!["a", "p", "q"])),
        select(vec!["default", "n1"]),
        (select(vec!["wasi", "x"]), select(vec!["kv", "http"])),
        subsequence(vec!["i1", "i2", "i3"], 1..=3),
        vec(select(vec!["c1", "SECRET_s"]), 0..2),
        vec(Just("t1"), 0..2),
    )
        .prop_map(|((s, t), n, (ns, pkg), ifaces, sc, tc)| Link {
            source_id: s.into(),
            target: t.into(),
            name: n.into(),
            wit_namespace: ns.into(),
            wit_package: pkg.into(),
            interfaces: ifaces.into_iter().map(String::from).collect(),
            source_config: sc.into_iter().map(String::from).collect(),
            target_config: tc.into_iter().map(String::from).collect(),
        })
}
