//! What the guard watches: the acknowledged links, by source, and the link
//! requests seen lately (what corroborates an acknowledgement).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use spec_model::Link;

/// How long a link must have been stored to be let go; also how long an
/// acknowledgement waits to be corroborated.
pub const SETTLED: Duration = Duration::from_secs(10);

/// How long after its acknowledgement a link may be missing from the table
/// before it counts as dropped (the follower's lag).
pub(super) const GRACE: Duration = Duration::from_millis(300);

/// How long a corroborated link must be seen missing before it is put
/// back. A delete by another tool writes the bucket first and announces
/// itself (`linkdef_deleted`) after; under load the announcement can trail
/// the table change by hundreds of milliseconds, and a repair in between
/// would undo the delete.
pub(super) const MISSING_FOR: Duration = Duration::from_secs(1);

/// Links watched at most (and requests remembered at most); past it the
/// oldest tenth is let go in one pass (logged).
pub const MAX_WATCHED: usize = 100_000;

/// Tries to put one link back before giving up on it.
pub(super) const MAX_REPAIRS: u32 = 20;

/// The same source, namespace, package and name.
pub(super) fn same_name(a: &Link, b: &Link) -> bool {
    a.source_id == b.source_id
        && a.wit_namespace == b.wit_namespace
        && a.wit_package == b.wit_package
        && a.name == b.name
}

/// Whether stored link `stored` replaces `link`: the rules keep one link
/// per name and target, and one per name among overlapping interfaces.
pub(super) fn replaces(stored: &Link, link: &Link) -> bool {
    same_name(stored, link) && (stored.target == link.target || stored.interfaces_overlap(link))
}

/// One acknowledged link.
pub(super) struct Watched {
    pub link: Link,
    pub acknowledged: Instant,
    /// Its put request was seen, or it was seen stored: a real
    /// acknowledgement, not just an event.
    pub corroborated: bool,
    pub stored_since: Option<Instant>,
    /// When a check first found it missing (cleared when it is seen stored
    /// and after each repair).
    pub missing_since: Option<Instant>,
    pub next_check: Instant,
    pub repairs: u32,
}

/// The acknowledged links, by source id (every event, change and check
/// concerns one source, so nothing scans the whole map but the tick).
#[derive(Default)]
pub(super) struct Book {
    pub by_source: HashMap<String, Vec<Watched>>,
    pub count: usize,
    /// Times the book was full and shed its oldest links.
    pub evictions: u64,
}

impl Book {
    pub fn retain_source(&mut self, source: &str, keep: impl FnMut(&Watched) -> bool) {
        if let Some(list) = self.by_source.get_mut(source) {
            let before = list.len();
            list.retain(keep);
            self.count -= before - list.len();
            if list.is_empty() {
                self.by_source.remove(source);
            }
        }
    }

    /// Starts watching `link`, acknowledged now; a link it supersedes (same
    /// name, another target, an overlapping interface — the rules allow only
    /// one) or an earlier put of it is let go.
    pub fn acknowledge(&mut self, link: Link, corroborated: bool) {
        self.retain_source(&link.source_id, |w| {
            let superseded = w.link.target != link.target && w.link.interfaces_overlap(&link);
            !(same_name(&w.link, &link) && (w.link.target == link.target || superseded))
        });
        let now = Instant::now();
        self.by_source
            .entry(link.source_id.clone())
            .or_default()
            .push(Watched {
                link,
                acknowledged: now,
                corroborated,
                stored_since: None,
                missing_since: None,
                next_check: now + GRACE,
                repairs: 0,
            });
        self.count += 1;
        if self.count > MAX_WATCHED {
            self.shed_oldest();
        }
    }

    /// Marks `link` as corroborated, if it is watched.
    pub fn corroborate(&mut self, link: &Link) {
        for w in self
            .by_source
            .get_mut(&link.source_id)
            .into_iter()
            .flatten()
        {
            if w.link == *link {
                w.corroborated = true;
            }
        }
    }

    /// Lets the oldest tenth go, in one pass over the book: a full book
    /// costs one scan per [`MAX_WATCHED`]`/10` new links, not one each.
    fn shed_oldest(&mut self) {
        let keep = MAX_WATCHED - MAX_WATCHED / 10;
        let mut ages: Vec<Instant> = self
            .by_source
            .values()
            .flatten()
            .map(|w| w.acknowledged)
            .collect();
        let shed = ages.len().saturating_sub(keep);
        if shed == 0 {
            return;
        }
        let (_, cut, _) = ages.select_nth_unstable(shed - 1);
        let cut = *cut;
        let sources: Vec<String> = self.by_source.keys().cloned().collect();
        let mut left = shed;
        for source in sources {
            self.retain_source(&source, |w| {
                if left > 0 && w.acknowledged <= cut {
                    left -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.evictions += 1;
        tracing::warn!(
            shed,
            "too many links watched; the oldest are no longer guarded"
        );
    }

    /// Checks `source`'s links at the next tick (its spec changed).
    pub fn soon(&mut self, source: &str) {
        let now = Instant::now();
        for w in self.by_source.get_mut(source).into_iter().flatten() {
            w.next_check = w.next_check.min(now).max(w.acknowledged + GRACE);
        }
    }
}

/// The link puts requested lately (any host may answer them), so that an
/// event can be matched with a request.
#[derive(Default)]
pub(super) struct Requests {
    by_source: HashMap<String, VecDeque<(Instant, Link)>>,
    count: usize,
}

impl Requests {
    /// Remembers a requested link.
    pub fn seen(&mut self, link: Link) {
        let now = Instant::now();
        let list = self.by_source.entry(link.source_id.clone()).or_default();
        while list
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > SETTLED)
        {
            list.pop_front();
            self.count -= 1;
        }
        list.push_back((now, link));
        self.count += 1;
        if self.count > MAX_WATCHED {
            self.prune();
        }
    }

    /// Whether `link` was requested within [`SETTLED`].
    pub fn was_requested(&self, link: &Link) -> bool {
        let now = Instant::now();
        self.by_source.get(&link.source_id).is_some_and(|list| {
            list.iter()
                .any(|(at, l)| now.duration_since(*at) <= SETTLED && l == link)
        })
    }

    /// Forgets requests older than [`SETTLED`]; if a burst within that
    /// window still fills the memory, all of it (those events then wait for
    /// their link to be seen stored).
    pub fn prune(&mut self) {
        let now = Instant::now();
        let mut count = 0;
        self.by_source.retain(|_, list| {
            list.retain(|(at, _)| now.duration_since(*at) <= SETTLED);
            count += list.len();
            !list.is_empty()
        });
        self.count = count;
        if self.count > MAX_WATCHED {
            tracing::warn!(
                requests = self.count,
                "too many link requests to remember; forgotten"
            );
            self.by_source.clear();
            self.count = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(source: &str, target: &str, name: &str, interfaces: &[&str]) -> Link {
        Link {
            source_id: source.into(),
            target: target.into(),
            name: name.into(),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            source_config: Vec::new(),
            target_config: Vec::new(),
        }
    }

    #[test]
    fn a_same_name_link_to_another_target_with_disjoint_interfaces_replaces_nothing() {
        let store = link("app", "kv-a", "default", &["store"]);
        let atomics = link("app", "kv-b", "default", &["atomics"]);
        assert!(!replaces(&store, &atomics));
        assert!(replaces(
            &link("app", "kv-b", "default", &["store"]),
            &atomics
        ));
        assert!(replaces(
            &link("app", "kv-c", "default", &["atomics"]),
            &atomics
        ));
        // Both watched at once: acknowledging one keeps the other.
        let mut book = Book::default();
        book.acknowledge(store, true);
        book.acknowledge(atomics, true);
        assert_eq!(book.count, 2);
    }

    #[test]
    fn a_full_book_sheds_a_tenth_in_one_pass_not_one_scan_per_link() {
        let mut book = Book::default();
        let extra = MAX_WATCHED / 5;
        for i in 0..MAX_WATCHED + extra {
            book.acknowledge(
                link(
                    &format!("s{}", i % 1000),
                    &format!("t{i}"),
                    &format!("n{i}"),
                    &["store"],
                ),
                true,
            );
        }
        assert!(book.count <= MAX_WATCHED);
        assert!(book.count >= MAX_WATCHED - MAX_WATCHED / 10);
        // One shedding pass per tenth of the book at most.
        assert!(book.evictions <= 2, "{} passes", book.evictions);
        // The newest are kept.
        let newest = format!("n{}", MAX_WATCHED + extra - 1);
        assert!(book
            .by_source
            .values()
            .flatten()
            .any(|w| w.link.name == newest));
    }

    #[test]
    fn an_event_is_corroborated_by_its_request_only() {
        let mut requests = Requests::default();
        let asked = link("app", "kv", "default", &["store"]);
        requests.seen(asked.clone());
        assert!(requests.was_requested(&asked));
        assert!(!requests.was_requested(&link("app", "evil", "default", &["store"])));
        let mut book = Book::default();
        let forged = link("app", "evil", "other", &["store"]);
        book.acknowledge(forged.clone(), requests.was_requested(&forged));
        book.corroborate(&asked);
        assert!(!book.by_source["app"][0].corroborated);
        book.corroborate(&forged);
        assert!(book.by_source["app"][0].corroborated);
    }
}
