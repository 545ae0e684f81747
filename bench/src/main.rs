//! `spec-bench`: the spec plugin through wasmtime (`SpecHost`) measured
//! side by side with the same logic compiled natively (`NativeHost`), in
//! one run, with the results as tables (stdout), JSON and SVG charts.
//!
//! Sections: 1. boundary cost on the in-memory store; 2. end to end on
//! NATS (latency, throughput); 3. diff scaling against the seed's nested
//! scan; 4. start to first request and swap under load; 5. memory;
//! 7. lattice load against the wasmCloud v1.9 host and raw JetStream;
//! 8. catch-up (`--catch-up-specs N` for another size); 9. lattice
//! rollout; 10. a poison value beside changing specs; 11. what metrics
//! cost a `link.put`.
//! `--quick` runs the same sections with fewer repetitions (CI runs it; it
//! asserts no timing and fails only when something breaks).
//!
//! Layout: [`native`] (the native twin of `SpecHost`; both sides use the
//! same `spec-model` types, so nothing converts), [`sides`] (both behind one interface,
//! A/B interleaving), a module per section (`e2e_table` prints section
//! 2), [`report`] (targets and output), [`table`], [`chart`], [`stats`], [`fixtures`].

/// The allocator spec-host's own binary uses: this binary runs as
/// spec-host (`probe-serve`) in the lattice sections.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod boundary;
mod catchup;
mod chart;
mod diff;
mod e2e;
mod e2e_table;
mod fixtures;
mod hosts;
mod lattice;
mod lattice_report;
mod memory;
mod metrics_cost;
mod native;
mod poison;
mod put_time;
mod report;
mod rollout;
mod scale;
mod sides;
mod start;
mod stats;
mod swap;
mod table;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use report::Results;

/// Benchmarks of the spec plugin against the same logic compiled natively.
#[derive(Parser)]
#[command(name = "spec-bench", version)]
struct Cli {
    /// Fewer repetitions: the whole run takes well under a minute.
    #[arg(long)]
    quick: bool,
    /// Also write the raw numbers as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw SVG charts into DIR.
    #[arg(long, value_name = "DIR")]
    chart: Option<PathBuf>,
    /// Run only these sections (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Specs in the catch-up section's bucket (default 100,000; 5,000 with
    /// --quick). The wasmCloud v1.9 host is left out above 200,000 (it
    /// took 133 s for 100,000).
    #[arg(long, value_name = "N")]
    catch_up_specs: Option<usize>,
    #[command(subcommand)]
    probe: Option<Child>,
}

/// The sections, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    Boundary,
    E2e,
    Diff,
    Start,
    Swap,
    Memory,
    Lattice,
    CatchUp,
    Rollout,
    Poison,
    Metrics,
}

/// Child-process probes the bench runs itself as (not for direct use).
#[derive(Subcommand)]
enum Child {
    /// Start a host and serve one request; print the times as JSON.
    #[command(hide = true, name = "probe-start")]
    Start {
        /// Use a component cache in DIR.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Build a table of LINKS links; print RSS before and after as JSON.
    #[command(hide = true, name = "probe-memory")]
    Memory {
        /// Links in the table.
        #[arg(long)]
        links: usize,
        /// The native side instead of the plugin.
        #[arg(long)]
        native: bool,
    },
    /// Put links through wasmCloud's control client from CLIENTS clients
    /// for SECONDS on a lattice some host serves, and print puts/s: a load
    /// to profile a host under.
    #[command(hide = true, name = "probe-load")]
    Load {
        /// NATS URL.
        #[arg(long)]
        nats: String,
        /// Lattice.
        #[arg(long)]
        lattice: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// How long.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Run `spec-host` with these arguments (the lattice sections serve
    /// with it, in a process of its own).
    #[command(hide = true, name = "probe-serve")]
    Serve {
        /// spec-host's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    // First thing: the start probe measures from here.
    let main_started = Instant::now();
    let cli = Cli::parse();
    match &cli.probe {
        Some(Child::Start { cache }) => return start::probe(main_started, cache.as_deref()),
        Some(Child::Memory { links, native }) => return memory::probe(*native, *links),
        Some(Child::Serve { args }) => return hosts::probe_serve(args),
        Some(Child::Load {
            nats,
            lattice,
            clients,
            seconds,
        }) => return lattice::probe_load(nats, lattice, *clients, *seconds),
        None => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // The driver runs as a task on a worker thread, as a host's callers do
    // (NATS handlers, the follower), not on the thread in `block_on`: a
    // call to a worker task can then stay on one thread instead of waking
    // another for every call and every answer.
    let (quick, only, specs) = (cli.quick, cli.only.clone(), cli.catch_up_specs);
    let mut results = rt.block_on(async move {
        tokio::spawn(run(quick, only, specs))
            .await
            .context("the benchmark driver panicked")?
    })?;
    results.wall_s = main_started.elapsed().as_secs_f64();
    results.targets = report::check_targets(&results);

    for t in report::tables(&results) {
        println!("{t}");
    }
    println!(
        "{} run took {:.1} s.",
        if cli.quick { "Quick" } else { "Full" },
        results.wall_s
    );
    if let Some(path) = &cli.json {
        report::write_json(&results, path)?;
    }
    if let Some(dir) = &cli.chart {
        report::write_charts(&results, dir)?;
    }
    // Shut down without waiting for the hosts' idle workers.
    rt.shutdown_background();
    Ok(())
}

fn progress(text: &str) {
    eprintln!("spec-bench: {text}");
}

async fn run(quick: bool, only: Vec<Section>, catch_up_specs: Option<usize>) -> Result<Results> {
    let wanted = |s: Section| only.is_empty() || only.contains(&s);
    let engine = spec_embed::PluginEngine::new().context("setting up the wasm engine")?;
    let plugin = engine
        .load_bytes(spec_embed::bundled::PLUGIN)
        .context("loading the bundled plugin")?;
    // The build of the previous contract version, measured beside it.
    let plugin_v02 = engine
        .load_file(std::path::Path::new(test_artifacts::PLUGIN_V0_2_WASM))
        .context("loading the contract 0.2 build")?;
    let mut r = Results {
        quick,
        ..Results::default()
    };
    if wanted(Section::Boundary) {
        progress("1/11 boundary cost on the in-memory store");
        r.boundary = Some(
            boundary::run(&plugin, &plugin_v02, quick)
                .await
                .context("boundary section")?,
        );
    }
    if wanted(Section::E2e) {
        progress("2/11 end to end on NATS");
        r.e2e = Some(e2e::run(&plugin, quick).await.context("NATS section")?);
    }
    if wanted(Section::Diff) {
        progress("3/11 diff scaling");
        r.diff = Some(
            diff::run(&plugin, &plugin_v02, quick)
                .await
                .context("diff section")?,
        );
    }
    if wanted(Section::Start) {
        progress("4/11 start to first request");
        let start = tokio::task::spawn_blocking(move || start::run(quick))
            .await
            .context("the start section panicked")?;
        r.start = Some(start.context("start section")?);
    }
    if wanted(Section::Swap) {
        progress("5/11 swap under load");
        r.swap = Some(
            swap::run(&engine, &plugin, quick)
                .await
                .context("swap section")?,
        );
    }
    if wanted(Section::Memory) {
        progress("6/11 memory");
        r.memory = Some(
            memory::run(&plugin, quick)
                .await
                .context("memory section")?,
        );
    }
    if wanted(Section::Lattice) {
        progress("7/11 lattice load: spec-host serve, wasmCloud v1.9 host, raw JetStream");
        r.lattice = Some(lattice::run(quick).await.context("lattice section")?);
    }
    if wanted(Section::CatchUp) {
        progress("8/11 catch-up");
        r.catch_up = Some(
            catchup::run(quick, catch_up_specs)
                .await
                .context("catch-up section")?,
        );
    }
    if wanted(Section::Rollout) {
        progress("9/11 lattice rollout: shadow overhead and rollout time, 3 hosts");
        r.rollout = Some(rollout::run(quick).await.context("rollout section")?);
    }
    if wanted(Section::Poison) {
        progress("10/11 a poison value beside changing specs");
        r.poison = Some(poison::run(quick).await.context("poison section")?);
    }
    if wanted(Section::Metrics) {
        progress("11/11 metrics on vs off: link.put latency and throughput");
        r.metrics = Some(metrics_cost::run(quick).await.context("metrics section")?);
    }
    Ok(r)
}
