//! Section 3: how the table diff of update-host-with-spec scales.
//!
//! The host table holds T links (T = 10 … 100,000) under one id, `hub`;
//! a spec of n links (10 or 1,000) from a new id to `hub` is applied, so
//! every spec link is new and must be looked for under its source and under
//! its target — the worst case for a scan, since `hub`'s entry is the whole
//! table. Timed: the update only; the new id is removed again, untimed, so
//! every repetition sees the same table.
//!
//! Three implementations:
//! * nested scan — the seed's algorithm, kept here as the reference: for
//!   each spec link, scan the entries under its source and its target
//!   linearly for an equal link (O(n·T));
//! * ours, native — `spec_plugin::table::LinkTable::update` (hash index),
//!   on links already decoded;
//! * ours, native from JSON — `HostTable::apply_stored_spec` natively: the
//!   same update from the stored value, decoding included;
//! * ours, plugin — the stored value applied through `SpecHost`
//!   (`apply-stored-spec`, what a host following the bucket does for every
//!   change), with the plugin of contract 0.3 and with the 0.2 build.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;
use spec_embed::LoadedPlugin;
use spec_model::{Link, NotifyError};
use spec_plugin::backend::ProviderNotify;
use spec_plugin::table::LinkTable;

use crate::fixtures;
use crate::sides::{Kind, Side};
use crate::stats::{median, ratio, us_since};
use crate::table::{self, TextTable};

/// Host table sizes measured.
pub const TABLE_SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
/// Spec sizes measured.
pub const SPEC_SIZES: [usize; 2] = [10, 1_000];

const HUB: &str = "hub";
const NEW_ID: &str = "newcomer";

/// The seed's host table and diff, kept as the reference.
#[derive(Default)]
pub struct NestedScanTable {
    entries: HashMap<String, Vec<Link>>,
}

impl NestedScanTable {
    /// Makes `links` the links of `id`; returns (added, removed) as the
    /// seed computed them: a link is added unless an equal one is found by
    /// a linear scan of the entries under its source id and its target; a
    /// held link is removed unless a linear scan of the new links finds it.
    pub fn update(&mut self, id: &str, links: Vec<Link>) -> (Vec<Link>, Vec<Link>) {
        let held = |key: &str, link: &Link| {
            self.entries
                .get(key)
                .is_some_and(|v| v.iter().any(|e| e == link))
        };
        let added: Vec<Link> = links
            .iter()
            .filter(|l| !held(&l.source_id, l) && !held(&l.target, l))
            .cloned()
            .collect();
        let removed: Vec<Link> = match self.entries.get(id) {
            Some(old) => old.iter().filter(|o| !links.contains(o)).cloned().collect(),
            None => Vec::new(),
        };
        if links.is_empty() {
            self.entries.remove(id);
        } else {
            self.entries.insert(id.to_string(), links);
        }
        (added, removed)
    }

    /// Drops `id`'s entry.
    pub fn remove(&mut self, id: &str) {
        self.entries.remove(id);
    }
}

/// A notifier with no local providers: the diff alone is measured.
struct NoProviders;

impl ProviderNotify for NoProviders {
    fn local_providers(&mut self) -> Vec<String> {
        Vec::new()
    }
    fn link_put(&mut self, _: &str, _: &Link) -> Result<(), NotifyError> {
        Ok(())
    }
    fn link_delete(&mut self, _: &str, _: &Link) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// One (table size, spec size) point.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Links in the host table.
    pub table_links: usize,
    /// Links in the applied spec.
    pub spec_links: usize,
    /// Median nested-scan time, µs.
    pub nested_us: f64,
    /// Median native `LinkTable::update` time, µs.
    pub native_us: f64,
    /// Median time of the native lookups alone (`LinkTable::holds` under
    /// source and target for each spec link, no report), µs: the same work
    /// the nested scan does.
    pub lookup_us: f64,
    /// Median native time from the stored value (`HostTable::
    /// apply_stored_spec`: decode and update), µs.
    pub native_json_us: f64,
    /// Median time through the plugin (contract 0.3, the stored value
    /// applied), µs.
    pub plugin_us: f64,
    /// The same through the contract 0.2 build, µs.
    pub plugin_v02_us: f64,
    /// nested / native.
    pub speedup_native: Option<f64>,
    /// nested / lookups alone.
    pub speedup_lookup: Option<f64>,
    /// nested / plugin.
    pub speedup_plugin: Option<f64>,
    /// Repetitions of (nested, native, lookups, plugin, native from JSON).
    pub reps: [usize; 5],
}

/// Sampling bounds: at least `min` samples, then more until `budget_us`
/// is spent or `max` are taken.
#[derive(Clone, Copy)]
struct Bounds {
    min: usize,
    max: usize,
    budget_us: f64,
}

impl Bounds {
    fn more(&self, taken: usize, started: Instant) -> bool {
        taken < self.max && (taken < self.min || us_since(started) < self.budget_us)
    }
}

/// Repeats `f` (which returns one sample in µs) within `bounds`.
fn sample(bounds: Bounds, mut f: impl FnMut() -> Result<f64>) -> Result<Vec<f64>> {
    let started = Instant::now();
    let mut out = Vec::new();
    while bounds.more(out.len(), started) {
        out.push(f()?);
    }
    Ok(out)
}

/// Runs the section.
pub async fn run(plugin: &LoadedPlugin, v02: &LoadedPlugin, quick: bool) -> Result<Vec<Row>> {
    let bounds = if quick {
        Bounds {
            min: 1,
            max: 40,
            budget_us: 40_000.0,
        }
    } else {
        Bounds {
            min: 5,
            max: 400,
            budget_us: 400_000.0,
        }
    };
    let mut rows = Vec::new();
    for table_links in TABLE_SIZES {
        let hub = fixtures::links(HUB, "t", table_links);
        let hub_native: Vec<Link> = hub.clone();
        let mut nested = NestedScanTable::default();
        nested.update(HUB, hub_native.clone());
        let mut ours = LinkTable::new();
        ours.update(HUB, &hub_native, &mut NoProviders);
        let hub_json = spec_model::json::encode_spec(&fixtures::spec(HUB, "t", table_links));
        let mut from_json = spec_plugin::host_table::HostTable::new();
        from_json.apply_stored_spec(&mut NoProviders, HUB, &hub_json)?;
        let side = Side::start_memory(Kind::Plugin, plugin).await?;
        let side_v02 = Side::start_memory(Kind::Plugin, v02).await?;
        for s in [&side, &side_v02] {
            s.apply(HUB, hub_json.clone()).await?;
        }

        for spec_links in SPEC_SIZES {
            let spec = fixtures::spec(NEW_ID, HUB, spec_links);
            let native_links: Vec<Link> = spec.links.clone();
            let json = spec_model::json::encode_spec(&spec);
            let nested_t = sample(bounds, || {
                let links = native_links.clone();
                let t = Instant::now();
                let (added, _) = nested.update(NEW_ID, links);
                let took = us_since(t);
                nested.remove(NEW_ID);
                check(added.len(), spec_links, "nested scan")?;
                Ok(took)
            })?;
            let native_t = sample(bounds, || {
                let links = native_links.clone();
                let t = Instant::now();
                let report = ours.update(NEW_ID, &links, &mut NoProviders);
                let took = us_since(t);
                ours.remove(NEW_ID, &mut NoProviders);
                check(report.added.len(), spec_links, "LinkTable")?;
                Ok(took)
            })?;
            let lookup_t = sample(bounds, || {
                let t = Instant::now();
                let added = native_links
                    .iter()
                    .filter(|l| !ours.holds(&l.source_id, l) && !ours.holds(&l.target, l))
                    .count();
                let took = us_since(t);
                check(added, spec_links, "LinkTable::holds")?;
                Ok(took)
            })?;
            let native_json_t = sample(bounds, || {
                let t = Instant::now();
                let report = from_json.apply_stored_spec(&mut NoProviders, NEW_ID, &json)?;
                let took = us_since(t);
                from_json.remove_host_spec(&mut NoProviders, NEW_ID)?;
                check(report.added.len(), spec_links, "HostTable from JSON")?;
                Ok(took)
            })?;
            let mut plugin_t = Vec::new();
            let mut plugin_v02_t = Vec::new();
            let started = Instant::now();
            while bounds.more(plugin_t.len(), started) {
                for (s, times) in [(&side, &mut plugin_t), (&side_v02, &mut plugin_v02_t)] {
                    let value = json.clone();
                    let t = Instant::now();
                    let report = s.apply(NEW_ID, value).await?;
                    times.push(us_since(t));
                    s.remove(NEW_ID).await?;
                    check(report.added.len(), spec_links, "plugin")?;
                }
            }
            let (nested_us, native_us, plugin_us) =
                (median(&nested_t), median(&native_t), median(&plugin_t));
            let (native_json_us, plugin_v02_us) = (median(&native_json_t), median(&plugin_v02_t));
            let lookup_us = median(&lookup_t);
            rows.push(Row {
                table_links,
                spec_links,
                nested_us,
                native_us,
                native_json_us,
                lookup_us,
                plugin_us,
                plugin_v02_us,
                speedup_native: ratio(nested_us, native_us),
                speedup_lookup: ratio(nested_us, lookup_us),
                speedup_plugin: ratio(nested_us, plugin_us),
                reps: [
                    nested_t.len(),
                    native_t.len(),
                    lookup_t.len(),
                    plugin_t.len(),
                    native_json_t.len(),
                ],
            });
        }
    }
    Ok(rows)
}

/// Every spec link is new to the table: an implementation that finds fewer
/// is broken, and its time would mean nothing.
fn check(added: usize, expected: usize, what: &str) -> Result<()> {
    if added != expected {
        bail!("{what} found {added} new links of {expected}");
    }
    Ok(())
}

/// The section's table.
pub fn table(rows: &[Row]) -> TextTable {
    let mut t = TextTable::new(
        "3. Diff scaling: update, new spec against a table of T links (median)",
        &[
            "table links",
            "spec links",
            "nested scan",
            "ours native",
            "native from JSON",
            "plugin 0.3",
            "plugin 0.2",
            "ours lookups only",
            "nested/native",
            "nested/plugin",
            "nested/lookups",
        ],
    );
    for r in rows {
        t.row(vec![
            table::count(r.table_links),
            table::count(r.spec_links),
            table::time(r.nested_us),
            table::time(r.native_us),
            table::time(r.native_json_us),
            table::time(r.plugin_us),
            table::time(r.plugin_v02_us),
            table::time(r.lookup_us),
            table::ratio(r.speedup_native),
            table::ratio(r.speedup_plugin),
            table::ratio(r.speedup_lookup),
        ]);
    }
    t.note("Ours is the whole update: diff, new packed entry, deliveries, update report (added and removed links, the packed entry); \"ours native\" starts from decoded links, \"native from JSON\" and the plugins from the stored value (decoding included), as a host following the bucket does. nested/plugin is against plugin 0.3. The nested scan computes added/removed only; \"lookups only\" is ours doing just that (hash lookups under source and target).");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference and ours must agree on what is new, or comparing
    /// their times means nothing.
    #[test]
    fn nested_scan_and_link_table_agree() {
        let native = |links: Vec<Link>| -> Vec<Link> { links };
        let hub = native(fixtures::links(HUB, "t", 20));
        let (mut nested, mut ours) = (NestedScanTable::default(), LinkTable::new());
        nested.update(HUB, hub.clone());
        ours.update(HUB, &hub, &mut NoProviders);
        // A spec holding 5 of hub's own links (held under their source)
        // and 10 new ones.
        let mut spec = hub[..5].to_vec();
        spec.extend(native(fixtures::links(NEW_ID, HUB, 10)));
        let (added, removed) = nested.update(NEW_ID, spec.clone());
        let report = ours.update(NEW_ID, &spec, &mut NoProviders);
        assert_eq!(added, report.added);
        assert_eq!(added.len(), 10);
        assert!(removed.is_empty() && report.removed.is_empty());
    }
}
