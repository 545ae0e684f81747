//! The expected state of every link key, computed from the replies.
//!
//! A key is `(source, name)` (namespace `wasi`, package `keyvalue` for
//! every link of the suite); its state is the set of its links, one per
//! target. The plugin's rules, as the model applies them:
//!
//! * put `(target, interfaces)`: a conflict when a link of the key with
//!   another target shares an interface (nothing changes); otherwise the
//!   link of that target is replaced, or added;
//! * delete: every link of the key goes.
//!
//! Each key is owned by one load client, whose operations are sequential,
//! so the model is exact. An *acknowledged* operation (success or conflict
//! reply) took effect exactly as its reply says. An *unacknowledged* one
//! (timeout, error reply, client error) may never take effect, or take
//! effect at any later moment — even after later acknowledged operations of
//! the same client, since a request or a compare-and-swap buffered across a
//! reconnect can land late. So the model keeps a set of possible states,
//! each with the unacknowledged operations still pending in it; any pending
//! operation may apply at any point. The final stored state must be one of
//! the possible states: a link every possible state has but the store lacks
//! is **lost**; a stored link no possible state has is **resurrected**.

use std::collections::{BTreeMap, BTreeSet};

/// Namespace of every link the suite writes.
pub const NAMESPACE: &str = "wasi";
/// Package of every link the suite writes.
pub const PACKAGE: &str = "keyvalue";
/// The text of the plugin's conflict error (wasmCloud's).
pub const CONFLICT: &str = "link already exists with different target";

/// A link key: source id and link name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkKey {
    /// Source component id.
    pub source: String,
    /// Link name.
    pub name: String,
}

impl std::fmt::Display for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.source, self.name)
    }
}

/// The links of one key: target → interfaces.
pub type Links = BTreeMap<String, Vec<String>>;

/// What an operation asks for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A link put.
    Put {
        /// Target.
        target: String,
        /// Interfaces, in a fixed order.
        interfaces: Vec<String>,
    },
    /// A link delete.
    Delete,
}

/// How an acknowledged operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success reply.
    Ok,
    /// Refused as a conflict (nothing changed).
    Conflict,
}

/// Applies `change` to `links` by the plugin's rules.
pub fn apply(links: &Links, change: &Change) -> (Links, Outcome) {
    match change {
        Change::Delete => (Links::new(), Outcome::Ok),
        Change::Put { target, interfaces } => {
            let clash = links
                .iter()
                .any(|(t, i)| t != target && i.iter().any(|x| interfaces.contains(x)));
            if clash {
                return (links.clone(), Outcome::Conflict);
            }
            let mut next = links.clone();
            next.insert(target.clone(), interfaces.clone());
            (next, Outcome::Ok)
        }
    }
}

/// One possible state: the links, and the unacknowledged operations (by
/// index) that have not applied in it yet.
type State = (Links, BTreeSet<usize>);

/// Bound on possible states of one key; far above what a run produces
/// (each unacknowledged operation at most doubles them).
const MAX_STATES: usize = 100_000;

/// The possible states of one key.
#[derive(Clone, Debug)]
pub struct KeyModel {
    unacked: Vec<Change>,
    states: BTreeSet<State>,
}

impl Default for KeyModel {
    fn default() -> Self {
        KeyModel {
            unacked: Vec::new(),
            states: BTreeSet::from([(Links::new(), BTreeSet::new())]),
        }
    }
}

impl KeyModel {
    /// Every state reachable by applying pending operations.
    fn closure(&self) -> BTreeSet<State> {
        let mut all = self.states.clone();
        let mut work: Vec<State> = all.iter().cloned().collect();
        while let Some((links, pending)) = work.pop() {
            for &i in &pending {
                let (next, _) = apply(&links, &self.unacked[i]);
                let mut rest = pending.clone();
                rest.remove(&i);
                let state = (next, rest);
                if all.insert(state.clone()) {
                    work.push(state);
                }
            }
            assert!(
                all.len() <= MAX_STATES,
                "model blew up: more than {MAX_STATES} possible states for one key"
            );
        }
        all
    }

    /// An acknowledged operation. `Err` when no possible state explains
    /// the reply (a wrong reply: e.g. a conflict reported where no
    /// conflicting link could exist).
    pub fn acked(&mut self, change: &Change, outcome: Outcome) -> Result<(), String> {
        let next: BTreeSet<State> = self
            .closure()
            .into_iter()
            .filter_map(|(links, pending)| {
                let (after, o) = apply(&links, change);
                (o == outcome).then_some((after, pending))
            })
            .collect();
        if next.is_empty() {
            return Err(format!(
                "reply {outcome:?} to {change:?} fits no possible state {:?}",
                self.candidates()
            ));
        }
        self.states = next;
        Ok(())
    }

    /// An unacknowledged operation: pending from now on.
    pub fn unacked(&mut self, change: Change) {
        let i = self.unacked.len();
        self.unacked.push(change);
        self.states = std::mem::take(&mut self.states)
            .into_iter()
            .map(|(links, mut pending)| {
                pending.insert(i);
                (links, pending)
            })
            .collect();
    }

    /// Whether any operation of this key went unacknowledged.
    pub fn uncertain(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// Every state the store may hold for this key now.
    pub fn candidates(&self) -> BTreeSet<Links> {
        self.closure().into_iter().map(|(links, _)| links).collect()
    }
}

/// What the comparison of the store with the model found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Keys compared.
    pub keys: usize,
    /// Keys whose state was uncertain (unacknowledged operations).
    pub uncertain_keys: usize,
    /// Links every possible state has, missing from the store.
    pub lost: usize,
    /// Stored links no possible state has.
    pub resurrected: usize,
    /// Keys whose stored links fit no possible state otherwise.
    pub other: usize,
    /// Replies that fit no possible state (wrong answers).
    pub wrong_replies: usize,
    /// One line per problem.
    pub details: Vec<String>,
}

/// Compares the stored links of every key with the model.
pub fn compare(
    model: &BTreeMap<LinkKey, KeyModel>,
    stored: &BTreeMap<LinkKey, Links>,
    wrong_replies: &[String],
) -> Findings {
    let mut f = Findings {
        wrong_replies: wrong_replies.len(),
        details: wrong_replies.to_vec(),
        ..Findings::default()
    };
    let empty = Links::new();
    let keys: BTreeSet<&LinkKey> = model.keys().chain(stored.keys()).collect();
    for key in keys {
        f.keys += 1;
        let actual = stored.get(key).unwrap_or(&empty);
        let Some(m) = model.get(key) else {
            // Nobody wrote this key: every stored link is unexplained.
            f.resurrected += actual.len();
            f.details
                .push(format!("{key}: stored {actual:?}, never written"));
            continue;
        };
        if m.uncertain() {
            f.uncertain_keys += 1;
        }
        let candidates = m.candidates();
        if candidates.contains(actual) {
            continue;
        }
        let must: Vec<(&String, &Vec<String>)> = candidates
            .iter()
            .next()
            .map(|first| {
                first
                    .iter()
                    .filter(|(t, i)| candidates.iter().all(|c| c.get(*t) == Some(*i)))
                    .collect()
            })
            .unwrap_or_default();
        let lost = must
            .iter()
            .filter(|(t, i)| actual.get(*t) != Some(*i))
            .count();
        let resurrected = actual
            .iter()
            .filter(|(t, i)| !candidates.iter().any(|c| c.get(*t) == Some(*i)))
            .count();
        f.lost += lost;
        f.resurrected += resurrected;
        if lost == 0 && resurrected == 0 {
            f.other += 1;
        }
        f.details.push(format!(
            "{key}: stored {actual:?}, expected one of {candidates:?} (lost {lost}, resurrected {resurrected})"
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(t: &str, i: &[&str]) -> Change {
        Change::Put {
            target: t.into(),
            interfaces: i.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn acked_operations_follow_the_plugin_rules() {
        let mut m = KeyModel::default();
        m.acked(&put("a", &["store"]), Outcome::Ok).unwrap();
        m.acked(&put("b", &["store"]), Outcome::Conflict).unwrap();
        m.acked(&put("b", &["atomics"]), Outcome::Ok).unwrap();
        assert_eq!(m.candidates().len(), 1);
        assert_eq!(m.candidates().into_iter().next().unwrap().len(), 2);
        // A reply that cannot be right is reported.
        assert!(m.acked(&put("c", &["store"]), Outcome::Ok).is_err());
        m.acked(&Change::Delete, Outcome::Ok).unwrap();
        assert_eq!(m.candidates(), BTreeSet::from([Links::new()]));
    }

    #[test]
    fn an_unacknowledged_put_may_land_even_after_a_later_delete() {
        let mut m = KeyModel::default();
        m.unacked(put("a", &["store"]));
        m.acked(&Change::Delete, Outcome::Ok).unwrap();
        let c = m.candidates();
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(m.uncertain());
    }

    #[test]
    fn compare_names_lost_and_resurrected_links() {
        let key = LinkKey {
            source: "s".into(),
            name: "n".into(),
        };
        let mut m = KeyModel::default();
        m.acked(&put("a", &["store"]), Outcome::Ok).unwrap();
        let model = BTreeMap::from([(key.clone(), m)]);
        let f = compare(&model, &BTreeMap::new(), &[]);
        assert_eq!((f.lost, f.resurrected), (1, 0));
        let stored = BTreeMap::from([(
            key,
            Links::from([
                ("a".to_string(), vec!["store".to_string()]),
                ("z".to_string(), vec!["x".to_string()]),
            ]),
        )]);
        let f = compare(&model, &stored, &[]);
        assert_eq!((f.lost, f.resurrected), (0, 1));
    }
}
