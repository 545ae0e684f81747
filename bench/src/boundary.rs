//! Section 1: the cost of the plugin boundary on the in-memory store.
//!
//! get / store / update-host-with-spec / put-link, per call, through
//! `SpecHost` and through `NativeHost`, on a spec of 2, 100 and 1,000 links.
//! Both sides run over `MemoryKv`, so the difference is the boundary itself:
//! lowering and lifting values into the component, instance entry and the
//! host's worker hop.

use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;
use spec_embed::LoadedPlugin;
use spec_model::{ComponentSpecification, Link};

use crate::fixtures;
use crate::sides::{interleave, Batch, Kind, Side};
use crate::stats::{median, ratio, us_since};
use crate::table::{self, TextTable};

/// Spec sizes measured.
pub const SIZES: [usize; 3] = [2, 100, 1000];

/// The source id whose spec every call works on.
const ID: &str = "bench-src";

/// One operation measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// plugin-version: no work, so the call and hand-off overhead alone.
    Version,
    Get,
    Store,
    Update,
    PutLink,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::Store, Op::Update, Op::PutLink];

    fn name(self) -> &'static str {
        match self {
            Op::Version => "plugin-version (empty call)",
            Op::Get => "get",
            Op::Store => "store",
            Op::Update => "update-host-with-spec",
            Op::PutLink => "put-link",
        }
    }
}

/// The per-call result of one operation at one spec size.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Operation name.
    pub op: &'static str,
    /// Links in the spec.
    pub links: usize,
    /// Median per-call time through the plugin, µs.
    pub plugin_us: f64,
    /// Median per-call time natively, µs.
    pub native_us: f64,
    /// `plugin_us / native_us`.
    pub ratio: Option<f64>,
    /// Calls timed per side.
    pub samples: usize,
}

struct OpBatch {
    op: Op,
    spec: ComponentSpecification,
    calls: usize,
    /// The link that put-link replaces, toggled on each call per side so
    /// that every put writes (see [`fixtures::toggled`]).
    last: Link,
    flip: [bool; 2],
}

impl Batch for OpBatch {
    async fn run(&mut self, side: &Side, slot: usize) -> Result<Vec<f64>> {
        let mut times = Vec::with_capacity(self.calls);
        let n = self.spec.links.len();
        for _ in 0..self.calls {
            match self.op {
                Op::Version => {
                    let t = Instant::now();
                    side.version().await?;
                    times.push(us_since(t));
                }
                Op::Get => {
                    let t = Instant::now();
                    let spec = side.get(ID).await?;
                    times.push(us_since(t));
                    if spec.map(|s| s.links.len()) != Some(n) {
                        bail!("get returned a spec without its {n} links");
                    }
                }
                Op::Store => {
                    let spec = self.spec.clone();
                    let t = Instant::now();
                    side.store(ID, spec).await?;
                    times.push(us_since(t));
                }
                Op::Update => {
                    let spec = self.spec.clone();
                    let t = Instant::now();
                    let report = side.update(ID, spec).await?;
                    times.push(us_since(t));
                    let held = spec_model::packed::count(&report.entry).unwrap_or(0);
                    if held != n {
                        bail!("update left {held} links, not {n}");
                    }
                }
                Op::PutLink => {
                    self.flip[slot] = !self.flip[slot];
                    let link = fixtures::toggled(self.last.clone(), self.flip[slot]);
                    let t = Instant::now();
                    let out = side.put_link(link).await?;
                    times.push(us_since(t));
                    let held = out
                        .update
                        .as_ref()
                        .map_or(n, |u| spec_model::packed::count(&u.entry).unwrap_or(0));
                    if held != n {
                        bail!("put-link changed the spec size to {held}");
                    }
                }
            }
        }
        Ok(times)
    }
}

/// Calls per batch: fewer for large specs so each batch takes a similar
/// time.
fn calls_for(links: usize, quick: bool) -> usize {
    let calls = match links {
        0..=10 => 200,
        11..=200 => 60,
        _ => 12,
    };
    if quick {
        calls / 2
    } else {
        calls
    }
}

/// Runs the section.
pub async fn run(plugin: &LoadedPlugin, quick: bool) -> Result<Vec<Row>> {
    let rounds = if quick { 3 } else { 20 };
    let mut rows = Vec::new();
    let p = Side::start_memory(Kind::Plugin, plugin).await?;
    let n = Side::start_memory(Kind::Native, plugin).await?;
    let mut batch = OpBatch {
        op: Op::Version,
        spec: fixtures::spec(ID, "bench-target", 1),
        calls: calls_for(0, quick),
        last: fixtures::link(ID, "bench-target", 0),
        flip: [false; 2],
    };
    let samples = interleave(&mut batch, &[&p, &n], rounds).await?;
    rows.push(row(Op::Version, 0, &samples));
    for links in SIZES {
        let p = Side::start_memory(Kind::Plugin, plugin).await?;
        let n = Side::start_memory(Kind::Native, plugin).await?;
        let spec = fixtures::spec(ID, "bench-target", links);
        p.store(ID, spec.clone()).await?;
        n.store(ID, spec.clone()).await?;
        let Some(last) = spec.links.last().cloned() else {
            bail!("a spec of {links} links has no last link");
        };
        for op in Op::ALL {
            let mut batch = OpBatch {
                op,
                spec: spec.clone(),
                calls: calls_for(links, quick),
                last: last.clone(),
                flip: [false; 2],
            };
            let samples = interleave(&mut batch, &[&p, &n], rounds).await?;
            rows.push(row(op, links, &samples));
        }
    }
    Ok(rows)
}

/// A row from the samples of [plugin, native].
fn row(op: Op, links: usize, samples: &[Vec<f64>]) -> Row {
    let (ps, ns) = (&samples[0], &samples[1]);
    let (plugin_us, native_us) = (median(ps), median(ns));
    Row {
        op: op.name(),
        links,
        plugin_us,
        native_us,
        ratio: ratio(plugin_us, native_us),
        samples: ps.len(),
    }
}

/// The section's table.
pub fn table(rows: &[Row]) -> TextTable {
    let mut t = TextTable::new(
        "1. Boundary cost per call, in-memory store (median)",
        &[
            "operation",
            "spec links",
            "plugin",
            "native",
            "plugin/native",
        ],
    );
    for r in rows {
        t.row(vec![
            r.op.to_string(),
            if r.links == 0 {
                "–".into()
            } else {
                table::count(r.links)
            },
            table::time(r.plugin_us),
            table::time(r.native_us),
            table::ratio(r.ratio),
        ]);
    }
    t.note("Both sides: same MemoryKv and RecordingNotifier types, one call at a time; batches interleaved A/B, B/A.");
    t
}
