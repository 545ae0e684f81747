//! `spec-host plugin push|list|rollout|cancel|status`: plugin builds kept in
//! the lattice, and rolling one out to every serving host; `spec-host keys
//! generate`: the issuer's signing key. Builds and rollout records are
//! signed with `--signing-key`; hosts run only what an issuer they trust
//! signed (`serve --trusted-issuer`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::{backends, Cli};
use spec_embed::PluginEngine;
use spec_lattice::rollout::store::{now, now_ms};
use spec_lattice::rollout::trust::unsigned;
use spec_lattice::rollout::{
    BuildInfo, Desired, DiffKind, HostRollout, Phase, RolloutRecord, Rollouts, SigningKey,
};
use spec_lattice::serve::{collect_status, status::Status};
use spec_nats::Lattice;

/// `plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Store a plugin build in the lattice (checked first: it must load,
    /// speak a contract this host loads and answer its version).
    Push {
        /// The component file.
        file: std::path::PathBuf,
        #[command(flatten)]
        signing: Signing,
    },
    /// List the builds stored in the lattice, and which are marked bad.
    List,
    /// Ask every serving host to run a build: each shadows it, then they
    /// switch one batch at a time; a build that misbehaves is rolled back.
    Rollout(RolloutArgs),
    /// Withdraw the rollout: hosts that have not switched stop (hosts that
    /// did keep the build; roll out the old one to go back).
    Cancel(Signing),
    /// Show the rollout asked for and where every host stands.
    Status {
        /// How long to collect live host replies, in milliseconds.
        #[arg(long, default_value_t = 500)]
        wait_ms: u64,
    },
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a signing key: the seed goes to --out (mode 0600, never
    /// overwritten), the public key — what hosts trust with
    /// --trusted-issuer — is printed as the last line.
    Generate {
        /// Where to write the seed.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// The issuer's key, for commands that sign.
#[derive(Debug, Default, Args)]
pub struct Signing {
    /// Seed file of the issuer's signing key (`spec-host keys generate`).
    /// Without it the build or record is unsigned, and only hosts started
    /// with --allow-unsigned-builds act on it.
    #[arg(long, env = "SPEC_HOST_SIGNING_KEY", value_name = "FILE")]
    pub signing_key: Option<std::path::PathBuf>,
}

impl Signing {
    fn key(&self) -> anyhow::Result<Option<SigningKey>> {
        self.signing_key
            .as_deref()
            .map(SigningKey::load)
            .transpose()
    }

    /// The record, signed if a key was given.
    fn record(
        &self,
        record: &RolloutRecord,
    ) -> anyhow::Result<spec_lattice::rollout::SignedRecord> {
        match self.key()? {
            Some(key) => key.sign_record(record),
            None => unsigned(record),
        }
    }
}

/// Runs a `keys` command.
pub(crate) fn keys(command: &KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            let key = SigningKey::generate(out)?;
            println!("seed written to {} (mode 0600); public key:", out.display());
            println!("{}", key.public_key());
            Ok(())
        }
    }
}

/// Flags of `plugin rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The build's SHA-256 (or a unique prefix of at least 8 digits).
    pub digest: String,
    #[command(flatten)]
    pub signing: Signing,
    /// Hosts that switch at once.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// How long each host shadows the build before it may switch, seconds.
    #[arg(long, default_value_t = 30)]
    pub shadow_secs: u64,
    /// How long after switching a host compares failures with the old
    /// build's before it settles, seconds.
    #[arg(long, default_value_t = 30)]
    pub watch_secs: u64,
    /// Differences that do not stop the rollout: stored, deliveries,
    /// replies (comma-separated; a build that fixes a bug differs).
    #[arg(long, value_delimiter = ',')]
    pub expect_differences: Vec<DiffKind>,
    /// Roll out a build marked bad after all (clears the mark).
    #[arg(long)]
    pub retry_bad: bool,
    /// Wait until every host settled (exit 0) or the rollout stopped
    /// (exit 1), printing progress.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
}

/// Runs a plugin command.
pub(crate) async fn run(cli: &Cli, command: &PluginCommand) -> anyhow::Result<()> {
    let backends = backends::open(cli).await?;
    let outcome = async {
        let lattice = backends
            .lattice
            .as_ref()
            .context("plugin builds live in a NATS lattice (not --store memory)")?;
        let rollouts = Rollouts::open(lattice).await?;
        match command {
            PluginCommand::Push { file, signing } => push(cli, &rollouts, file, signing).await,
            PluginCommand::List => list(cli, &rollouts).await,
            PluginCommand::Rollout(args) => rollout(cli, lattice, &rollouts, args).await,
            PluginCommand::Cancel(signing) => {
                let record = RolloutRecord {
                    desired: None,
                    issued_at_ms: now_ms(),
                };
                rollouts.set_record(&signing.record(&record)?).await?;
                if !cli.json {
                    println!("rollout withdrawn");
                }
                Ok(())
            }
            PluginCommand::Status { wait_ms } => {
                let live = collect_status(
                    &lattice.client,
                    &cli.lattice,
                    Duration::from_millis(*wait_ms),
                )
                .await?;
                status(cli, &rollouts, &live).await
            }
        }
    }
    .await;
    backends.shutdown().await;
    outcome
}

async fn push(
    cli: &Cli,
    rollouts: &Rollouts,
    file: &std::path::Path,
    signing: &Signing,
) -> anyhow::Result<()> {
    let key = signing.key()?;
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let engine = PluginEngine::new().context("starting the wasm engine")?;
    let info =
        spec_lattice::rollout::publish::push(rollouts, &engine, &bytes, cli.limits(), key.as_ref())
            .await
            .with_context(|| format!("pushing {}", file.display()))?;
    if cli.json {
        super::output::print_json(&info);
    } else {
        println!(
            "pushed {} ({}, contract {}, {} bytes)",
            info.digest, info.version, info.contract, info.size
        );
    }
    Ok(())
}

async fn list(cli: &Cli, rollouts: &Rollouts) -> anyhow::Result<()> {
    let builds = rollouts.builds().await?;
    let bad: BTreeMap<String, String> = rollouts
        .bad_builds()
        .await?
        .into_iter()
        .map(|b| (b.digest, b.reason))
        .collect();
    if cli.json {
        let rows: Vec<_> = builds
            .iter()
            .map(|b| serde_json::json!({ "build": b, "bad": bad.get(&b.digest) }))
            .collect();
        super::output::print_json(&rows);
        return Ok(());
    }
    if builds.is_empty() {
        println!("no builds in the lattice (push one with `spec-host plugin push FILE`)");
    }
    for b in &builds {
        let mark = match bad.get(&b.digest) {
            Some(reason) => format!("  BAD: {reason}"),
            None => String::new(),
        };
        println!(
            "{}  {}  contract {}  {} bytes{mark}",
            b.digest, b.version, b.contract, b.size
        );
    }
    Ok(())
}

/// The one stored build whose digest starts with `prefix`.
async fn resolve(rollouts: &Rollouts, prefix: &str) -> anyhow::Result<BuildInfo> {
    if prefix.len() < 8 {
        bail!("give at least 8 digits of the build's digest");
    }
    let mut found: Vec<BuildInfo> = rollouts
        .builds()
        .await?
        .into_iter()
        .filter(|b| b.digest.starts_with(prefix))
        .collect();
    match found.len() {
        0 => bail!("no build {prefix}… in the lattice (push it with `spec-host plugin push FILE`)"),
        1 => Ok(found.remove(0)),
        n => bail!("{n} builds start with {prefix}; give more digits"),
    }
}

async fn rollout(
    cli: &Cli,
    lattice: &Lattice,
    rollouts: &Rollouts,
    args: &RolloutArgs,
) -> anyhow::Result<()> {
    // A key that cannot be read fails before anything is written.
    args.signing.key()?;
    let build = resolve(rollouts, &args.digest).await?;
    if !spec_embed::SUPPORTED_CONTRACTS
        .iter()
        .any(|c| build.contract.starts_with(c))
    {
        bail!(
            "build {} speaks contract {}; hosts load {:?}",
            build.digest,
            build.contract,
            spec_embed::SUPPORTED_CONTRACTS
        );
    }
    if let Some(bad) = rollouts.bad(&build.digest).await? {
        if !args.retry_bad {
            bail!(
                "build {} is marked bad ({}, by {} at {}); pass --retry-bad to roll it out anyway",
                build.digest,
                bad.reason,
                bad.host_id,
                bad.at
            );
        }
        rollouts.clear_bad(&build.digest).await?;
    }
    let live = collect_status(&lattice.client, &cli.lattice, Duration::from_millis(500)).await?;
    if live.is_empty() {
        bail!("no serving host answered; nothing to roll out to");
    }
    let mut order: Vec<String> = live.iter().map(|s| s.host_id.clone()).collect();
    order.sort();
    let desired = Desired {
        digest: build.digest.clone(),
        from_digest: majority_running(&live),
        batch: args.batch.max(1),
        shadow_secs: args.shadow_secs,
        watch_secs: args.watch_secs,
        expect: args.expect_differences.clone(),
        order,
        at: now(),
    };
    let record = RolloutRecord {
        desired: Some(desired.clone()),
        issued_at_ms: now_ms(),
    };
    rollouts.set_record(&args.signing.record(&record)?).await?;
    if !cli.json {
        println!(
            "rolling out {} ({}) to {} host(s), {} at a time: shadow {} s, watch {} s",
            build.digest,
            build.version,
            desired.order.len(),
            desired.batch,
            desired.shadow_secs,
            desired.watch_secs
        );
    }
    if !args.wait {
        if cli.json {
            super::output::print_json(&desired);
        }
        return Ok(());
    }
    wait(cli, rollouts, &desired, Duration::from_secs(args.wait_secs)).await
}

/// The build most serving hosts run.
fn majority_running(live: &[Status]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in live {
        *counts.entry(s.plugin.digest.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

/// How a rollout ended, from the hosts' recorded states.
fn verdict(desired: &Desired, hosts: &[HostRollout]) -> Option<Result<(), String>> {
    let mine: Vec<&HostRollout> = hosts
        .iter()
        .filter(|h| h.rollout_at.as_deref() == Some(&desired.at))
        .collect();
    if let Some(stopped) = mine.iter().find(|h| {
        matches!(
            h.phase,
            Phase::Refused | Phase::Rejected | Phase::RolledBack
        )
    }) {
        return Some(Err(format!(
            "{} {:?}: {}",
            stopped.host_id,
            stopped.phase,
            stopped.reason.clone().unwrap_or_default()
        )));
    }
    let settled = desired.order.iter().all(|id| {
        mine.iter()
            .any(|h| &h.host_id == id && h.running == desired.digest && h.phase == Phase::Settled)
    });
    settled.then_some(Ok(()))
}

async fn wait(
    cli: &Cli,
    rollouts: &Rollouts,
    desired: &Desired,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        let hosts = rollouts.hosts().await?;
        let line: Vec<String> = desired
            .order
            .iter()
            .map(|id| {
                let phase = hosts
                    .iter()
                    .find(|h| &h.host_id == id && h.rollout_at.as_deref() == Some(&desired.at))
                    .map_or("pending".to_string(), |h| format!("{:?}", h.phase));
                format!("{id} {phase}")
            })
            .collect();
        let line = line.join(", ");
        if line != last && !cli.json {
            println!("[{:>5.1} s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        match verdict(desired, &hosts) {
            Some(Ok(())) => {
                if cli.json {
                    super::output::print_json(&hosts);
                } else {
                    println!(
                        "rolled out to every host in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(());
            }
            Some(Err(why)) => {
                if cli.json {
                    super::output::print_json(&hosts);
                }
                bail!("rollout stopped: {why}");
            }
            None => {}
        }
        if started.elapsed() > limit {
            bail!("the rollout did not finish within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn status(cli: &Cli, rollouts: &Rollouts, live: &[Status]) -> anyhow::Result<()> {
    let desired = rollouts.desired().await?;
    let bad = rollouts.bad_builds().await?;
    let mut hosts = rollouts.hosts().await?;
    // A live host's own report is newer (its shadow's running counts).
    for s in live {
        if let Some(r) = &s.rollout {
            match hosts.iter_mut().find(|h| h.host_id == r.host_id) {
                Some(h) => *h = r.clone(),
                None => hosts.push(r.clone()),
            }
        }
    }
    hosts.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    if cli.json {
        super::output::print_json(&serde_json::json!({
            "desired": desired,
            "hosts": hosts,
            "bad": bad,
        }));
        return Ok(());
    }
    match &desired {
        Some(d) => println!(
            "desired: {} (from {}), batch {}, shadow {} s, watch {} s, expected differences {:?}, asked {}",
            d.digest, d.from_digest, d.batch, d.shadow_secs, d.watch_secs, d.expect, d.at
        ),
        None => println!("no rollout asked for"),
    }
    for h in &hosts {
        let alive = live.iter().any(|s| s.host_id == h.host_id);
        println!(
            "{} {:?}: runs {}{}{}",
            h.host_id,
            h.phase,
            h.running,
            h.target
                .as_ref()
                .filter(|t| **t != h.running)
                .map(|t| format!(", target {t}"))
                .unwrap_or_default(),
            if alive { "" } else { " (not answering)" }
        );
        if let Some(s) = &h.shadow {
            println!(
                "  shadow: {} compared, differences {:?} ({} unexpected), {} fault(s), {} skipped, {} resync(s)",
                s.compared, s.differences, s.unexpected, s.faults, s.skipped, s.resynced
            );
            for e in &s.examples {
                println!("    {e}");
            }
        }
        if let Some(reason) = &h.reason {
            println!("  reason: {reason}");
        }
    }
    for b in &bad {
        println!(
            "bad build {}: {} (by {} at {})",
            b.digest, b.reason, b.host_id, b.at
        );
    }
    Ok(())
}
