//! Model-based: random sequences of link puts and deletes, spec stores and
//! deletes, table-only updates and reloads over three ids are run against
//! the plugin and against a reference model of the documented rules
//! (conflict on same source/namespace/package/name with an overlapping
//! interface and another target; replace in place on same
//! source/target/namespace/package/name; else append; a delete removes every
//! link with that source/namespace/package/name). After every call the
//! outcome, the stored specs and the host table must equal the model's.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use spec_plugin::memory::{MemoryKv, RecordingNotifier};
use spec_plugin::model::json::decode_spec;
use spec_plugin::model::SpecError;
use spec_plugin::model::{ComponentSpecification, Link};
use spec_plugin::model::{PutOutcome, TableEntry};
use spec_plugin::ops::NativePlugin;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Put(Link),
    DeleteLink(String, String, String, Option<String>),
    Store(String, ComponentSpecification),
    DeleteSpec(String),
    /// `update_host_with_spec`: the table only.
    UpdateHost(String, Vec<Link>),
    /// `remove_host_spec`: the table only.
    RemoveHost(String),
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    let id = || select(IDS.to_vec()).prop_map(String::from);
    let name = proptest::option::of(select(vec!["default", "n1"]).prop_map(String::from));
    let ns_pkg = (select(vec!["wasi", "x"]), select(vec!["kv", "http"]));
    let url = select(vec!["", "u1"]).prop_map(String::from);
    prop_oneof![
        12 => pool_link().prop_map(Op::Put),
        6 => (id(), ns_pkg, name)
            .prop_map(|(s, (ns, pkg), n)| Op::DeleteLink(s, ns.into(), pkg.into(), n)),
        2 => (id(), url, vec(pool_link(), 0..4))
            .prop_map(|(id, url, links)| Op::Store(id, ComponentSpecification { url, links })),
        2 => id().prop_map(Op::DeleteSpec),
        1 => (id(), vec(pool_link(), 0..3)).prop_map(|(id, links)| Op::UpdateHost(id, links)),
        1 => id().prop_map(Op::RemoveHost),
        1 => Just(Op::Reload),
    ]
}

/// What a call did.
#[derive(Debug, PartialEq)]
enum Did {
    Put(PutOutcome),
    Conflict,
    Deleted(Vec<Link>),
    Stored,
    DeletedSpec(bool),
    /// The table alone changed.
    Host,
}

impl Did {
    /// Whether the call must have written nothing.
    fn writes_nothing(&self) -> bool {
        matches!(
            self,
            Did::Conflict | Did::Put(PutOutcome::Unchanged) | Did::DeletedSpec(false) | Did::Host
        ) || matches!(self, Did::Deleted(removed) if removed.is_empty())
    }
}

/// The reference model, with the rules as documented: the stored specs, and
/// the host table, which every store-side call that wrote sets to the
/// stored links of its id (nothing removed or changed, or a conflict: no
/// update).
#[derive(Default)]
struct Model {
    specs: BTreeMap<String, ComponentSpecification>,
    table: BTreeMap<String, Vec<Link>>,
}

impl Model {
    fn apply(&mut self, op: &Op) -> Did {
        let did = self.apply_to_store(op);
        match (op, &did) {
            // A put that wrote something is applied to the table; an
            // unchanged one writes nothing, so there is nothing to apply.
            (Op::Put(l), Did::Put(o)) if *o != PutOutcome::Unchanged => self.sync(&l.source_id),
            (Op::DeleteLink(id, ..), Did::Deleted(r)) if !r.is_empty() => self.sync(id),
            (Op::Store(id, _) | Op::DeleteSpec(id), _) => self.sync(id),
            (Op::UpdateHost(id, links), _) => self.set_table(id, links.clone()),
            (Op::RemoveHost(id), _) => self.set_table(id, Vec::new()),
            (Op::Reload, _) => {
                self.table.clear();
                for id in IDS {
                    self.sync(id);
                }
            }
            _ => {}
        }
        did
    }

    fn sync(&mut self, id: &str) {
        let links = self
            .specs
            .get(id)
            .map(|s| s.links.clone())
            .unwrap_or_default();
        self.set_table(id, links);
    }

    fn set_table(&mut self, id: &str, links: Vec<Link>) {
        if links.is_empty() {
            self.table.remove(id);
        } else {
            self.table.insert(id.to_string(), links);
        }
    }

    fn apply_to_store(&mut self, op: &Op) -> Did {
        match op {
            Op::Put(l) => {
                let mut links = self
                    .specs
                    .get(&l.source_id)
                    .map(|s| s.links.clone())
                    .unwrap_or_default();
                let same = |e: &Link| {
                    e.source_id == l.source_id
                        && e.wit_namespace == l.wit_namespace
                        && e.wit_package == l.wit_package
                        && e.name == l.name
                };
                let overlaps = |e: &Link| e.interfaces.iter().any(|i| l.interfaces.contains(i));
                if links
                    .iter()
                    .any(|e| same(e) && e.target != l.target && overlaps(e))
                {
                    return Did::Conflict;
                }
                let outcome = match links.iter().position(|e| same(e) && e.target == l.target) {
                    Some(i) if links[i] == *l => PutOutcome::Unchanged,
                    Some(i) => {
                        links[i] = l.clone();
                        PutOutcome::Replaced
                    }
                    None => {
                        links.push(l.clone());
                        PutOutcome::Appended
                    }
                };
                self.specs.entry(l.source_id.clone()).or_default().links = links;
                Did::Put(outcome)
            }
            Op::DeleteLink(src, ns, pkg, name) => {
                let name = name.as_deref().unwrap_or("default");
                let Some(spec) = self.specs.get_mut(src) else {
                    return Did::Deleted(Vec::new());
                };
                let (removed, kept): (Vec<Link>, Vec<Link>) =
                    spec.links.iter().cloned().partition(|l| {
                        l.source_id == *src
                            && l.wit_namespace == *ns
                            && l.wit_package == *pkg
                            && l.name == name
                    });
                spec.links = kept;
                Did::Deleted(removed)
            }
            Op::Store(id, spec) => {
                self.specs.insert(id.clone(), spec.clone());
                Did::Stored
            }
            Op::DeleteSpec(id) => Did::DeletedSpec(self.specs.remove(id).is_some()),
            Op::UpdateHost(..) | Op::RemoveHost(_) | Op::Reload => Did::Host,
        }
    }

    fn snapshot(&self) -> Vec<TableEntry> {
        self.table
            .iter()
            .map(|(id, links)| TableEntry {
                id: id.clone(),
                links: links.clone(),
            })
            .collect()
    }
}

fn run(
    p: &mut NativePlugin,
    s: &mut MemoryKv,
    n: &mut RecordingNotifier,
    op: &Op,
) -> Result<Did, SpecError> {
    match op {
        Op::Put(l) => match p.put_link(s, n, l.clone()) {
            Ok(r) => Ok(Did::Put(r.outcome)),
            Err(SpecError::Conflict(_)) => Ok(Did::Conflict),
            Err(e) => Err(e),
        },
        Op::DeleteLink(src, ns, pkg, name) => p
            .delete_link(s, n, src, ns, pkg, name.as_deref())
            .map(|r| Did::Deleted(r.result.removed)),
        Op::Store(id, spec) => p
            .store_component_spec(s, n, id, spec.clone())
            .map(|_| Did::Stored),
        Op::DeleteSpec(id) => p
            .delete_component_spec(s, n, id)
            .map(|r| Did::DeletedSpec(r.existed)),
        Op::UpdateHost(id, links) => {
            let spec = ComponentSpecification {
                url: String::new(),
                links: links.clone(),
            };
            p.update_host_with_spec(n, id, spec).map(|_| Did::Host)
        }
        Op::RemoveHost(id) => p.remove_host_spec(n, id).map(|_| Did::Host),
        Op::Reload => p.reload_from_store(s).map(|_| Did::Host),
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Every call agrees with the model; the store holds the model's specs
    /// and the host table the model's table after every call.
    #[test]
    fn link_rules_match_the_model(ops in vec(op(), 1..40)) {
        let (mut p, mut s, mut n) = (NativePlugin::new(), MemoryKv::new(), RecordingNotifier::new(["p", "q"]));
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            let writes = s.writes();
            let did = run(&mut p, &mut s, &mut n, op)?;
            let want = model.apply(op);
            prop_assert_eq!(&did, &want, "step {} {:?}", step, op);
            if want.writes_nothing() {
                prop_assert_eq!(s.writes(), writes, "step {} wrote: {:?}", step, op);
            }
            for id in IDS {
                let stored = s.raw(&key(id)).map(|e| decode_spec(&e.value));
                prop_assert_eq!(stored, model.specs.get(id).cloned().map(Ok), "step {} {}", step, id);
            }
            prop_assert_eq!(p.snapshot_table(), model.snapshot(), "step {} {:?}", step, op);
        }
        // What the table holds is always a snapshot that restores.
        let mut fresh = NativePlugin::new();
        prop_assert_eq!(fresh.restore_table(p.snapshot_table()), Ok(()));
        prop_assert_eq!(fresh.snapshot_table(), p.snapshot_table());
    }
}
