//! Section 1: the cost of the plugin boundary on the in-memory store.
//!
//! get / store / update / put-link, per call, through `SpecHost` with the
//! plugin of contract 0.3, through `SpecHost` with the build of contract
//! 0.2, and through `NativeHost`, on a spec of 2, 100 and 1,000 links. All
//! three run over `MemoryKv`, so the difference is the boundary itself:
//! lowering and lifting values into the component, wasm against native
//! code, instance entry and the host's worker hop.
//!
//! A spec goes in as what callers hold: `store` takes wasmCloud's JSON (as
//! `spec put` and other writers hand it in) and `update` applies a stored
//! value (as a host following the bucket does for every change); `get`
//! returns the decoded spec.

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
    /// Store from wasmCloud's JSON.
    Store,
    /// Apply a stored value (JSON) to the table.
    Update,
    PutLink,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::Store, Op::Update, Op::PutLink];

    fn name(self) -> &'static str {
        match self {
            Op::Version => "plugin-version (empty call)",
            Op::Get => "get",
            Op::Store => "store (JSON in)",
            Op::Update => "update (apply a stored value)",
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
    /// Median per-call time through the plugin (contract 0.3), µs.
    pub plugin_us: f64,
    /// Median per-call time through the contract 0.2 build, µs.
    pub plugin_v02_us: f64,
    /// Median per-call time natively, µs.
    pub native_us: f64,
    /// `plugin_us / native_us`.
    pub ratio: Option<f64>,
    /// `plugin_v02_us / native_us`.
    pub ratio_v02: Option<f64>,
    /// Calls timed per side.
    pub samples: usize,
}

struct OpBatch {
    op: Op,
    spec: ComponentSpecification,
    /// The spec as wasmCloud's JSON.
    json: Vec<u8>,
    calls: usize,
    /// The link that put-link replaces, toggled on each call per side so
    /// that every put writes (see [`fixtures::toggled`]).
    last: Link,
    flip: [bool; 3],
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
                    let t = Instant::now();
                    side.store_json(ID, &self.json).await?;
                    times.push(us_since(t));
                }
                Op::Update => {
                    let value = self.json.clone();
                    let t = Instant::now();
                    let report = side.apply(ID, value).await?;
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
pub async fn run(plugin: &LoadedPlugin, v02: &LoadedPlugin, quick: bool) -> Result<Vec<Row>> {
    let rounds = if quick { 3 } else { 20 };
    let mut rows = Vec::new();
    let sides = async || -> Result<[Side; 3]> {
        Ok([
            Side::start_memory(Kind::Plugin, plugin).await?,
            Side::start_memory(Kind::Plugin, v02).await?,
            Side::start_memory(Kind::Native, plugin).await?,
        ])
    };
    let [p, o, n] = sides().await?;
    let spec = fixtures::spec(ID, "bench-target", 1);
    let mut batch = OpBatch {
        op: Op::Version,
        json: spec_model::json::encode_spec(&spec),
        spec,
        calls: calls_for(0, quick),
        last: fixtures::link(ID, "bench-target", 0),
        flip: [false; 3],
    };
    let samples = interleave(&mut batch, &[&p, &o, &n], rounds).await?;
    rows.push(row(Op::Version, 0, &samples));
    for links in SIZES {
        let [p, o, n] = sides().await?;
        let spec = fixtures::spec(ID, "bench-target", links);
        for side in [&p, &o, &n] {
            side.store(ID, spec.clone()).await?;
        }
        let Some(last) = spec.links.last().cloned() else {
            bail!("a spec of {links} links has no last link");
        };
        for op in Op::ALL {
            let mut batch = OpBatch {
                op,
                json: spec_model::json::encode_spec(&spec),
                spec: spec.clone(),
                calls: calls_for(links, quick),
                last: last.clone(),
                flip: [false; 3],
            };
            let samples = interleave(&mut batch, &[&p, &o, &n], rounds).await?;
            rows.push(row(op, links, &samples));
        }
    }
    Ok(rows)
}

/// A row from the samples of [plugin 0.3, plugin 0.2, native].
fn row(op: Op, links: usize, samples: &[Vec<f64>]) -> Row {
    let (plugin_us, plugin_v02_us, native_us) = (
        median(&samples[0]),
        median(&samples[1]),
        median(&samples[2]),
    );
    Row {
        op: op.name(),
        links,
        plugin_us,
        plugin_v02_us,
        native_us,
        ratio: ratio(plugin_us, native_us),
        ratio_v02: ratio(plugin_v02_us, native_us),
        samples: samples[0].len(),
    }
}

/// The section's table.
pub fn table(rows: &[Row]) -> TextTable {
    let mut t = TextTable::new(
        "1. Boundary cost per call, in-memory store (median)",
        &[
            "operation",
            "spec links",
            "plugin 0.3",
            "plugin 0.2",
            "native",
            "0.3/native",
            "0.2/native",
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
            table::time(r.plugin_v02_us),
            table::time(r.native_us),
            table::ratio(r.ratio),
            table::ratio(r.ratio_v02),
        ]);
    }
    t.note("All sides: same MemoryKv and RecordingNotifier types, one call at a time; batches interleaved forwards and backwards. Store takes wasmCloud's JSON; update applies a stored value (JSON), as a follower does.");
    t
}
