//! The `spec-host` command line.
//!
//! Every command loads the plugin (the bundled build unless `--plugin`),
//! starts it over the chosen backends and runs one operation through it.
//! With `--store memory` the store lives as long as the process; `demo`
//! runs a scripted session on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use spec_embed::{
    default_pool_size, ComponentCache, LoadedPlugin, PluginEngine, PluginLimits, SpecHost,
};
use spec_model::{ComponentSpecification, Link, UpdateReport};
use spec_nats::LocalProvider;

mod announce;
mod backends;
mod config;
mod connection;
mod demo;
mod follow;
mod local_server;
mod output;
mod plugin;
mod serve;
mod ui;

/// What `spec-host` exits with.
pub mod exit {
    /// It did what was asked.
    pub const OK: u8 = 0;
    /// It failed; the one line on stderr says why.
    pub const FAILED: u8 = 1;
    /// The command line was not understood (clap's usage error).
    pub const USAGE: u8 = 2;
    /// A read found nothing: `spec get`, `config get`, or `status` with no
    /// serving host answering.
    pub const NOT_FOUND: u8 = 3;
}

const EXIT_CODES: &str = "Exit codes: 0 done; 1 failed (one line on stderr says why); 2 bad usage; \
3 not found (spec get, config get, status with no serving host; with --json the document says \"found\": false).";

/// A read that found nothing ([`exit::NOT_FOUND`]), so a script can tell it
/// from a failure.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// An error as one line: its causes joined by ": ", a cause left out when
/// the text so far already says it, line breaks and runs of spaces folded.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is
/// not an error.
fn print_all(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The man page of `spec-host` and its subcommands, as roff.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Runs wasmCloud's component-spec logic as a WebAssembly plugin.
#[derive(Debug, Parser)]
#[command(name = "spec-host", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// NATS server URL(s) of the lattice, comma-separated. Without it,
    /// spec-host runs its own local JetStream nats-server.
    #[arg(
        help_heading = "Lattice connection",
        long,
        global = true,
        env = "SPEC_HOST_NATS"
    )]
    pub nats: Option<String>,
    /// How to reach a secured lattice.
    #[command(flatten)]
    pub connection: connection::Connection,
    /// Lattice name: specs live in LATTICEDATA_{lattice}.
    #[arg(
        help_heading = "Lattice connection",
        long,
        default_value = "default",
        global = true,
        env = "SPEC_HOST_LATTICE"
    )]
    pub lattice: String,
    /// Where the local nats-server keeps its data (default: the user's data
    /// directory, e.g. ~/.local/share/spec-host).
    #[arg(
        help_heading = "Lattice connection",
        long,
        global = true,
        env = "SPEC_HOST_STATE_DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// Replicas for buckets this host creates (a JetStream cluster).
    #[arg(
        help_heading = "Lattice connection",
        long,
        default_value_t = 1,
        global = true
    )]
    pub replicas: usize,
    /// Where specs are stored.
    #[arg(help_heading = "Lattice connection", long, value_enum, default_value_t = StoreKind::Nats, global = true)]
    pub store: StoreKind,
    /// Plugin component to run instead of the bundled one.
    #[arg(help_heading = "Plugin", long, global = true, env = "SPEC_HOST_PLUGIN")]
    pub plugin: Option<PathBuf>,
    /// A provider running on this host, `ID` or `ID=KEY` where KEY is the
    /// subject token its link puts go to (default: the id). Repeatable.
    #[arg(help_heading = "Plugin", long = "provider", global = true)]
    pub providers: Vec<LocalProvider>,
    /// Print machine-readable JSON instead of text.
    #[arg(help_heading = "Output", long, global = true)]
    pub json: bool,
    /// Log lines as text, or as one JSON object per line (with lattice,
    /// host id, and a request's id and method).
    #[arg(help_heading = "Output", long, value_enum, default_value_t = crate::logs::LogFormat::Text, global = true, env = "SPEC_HOST_LOG_FORMAT")]
    pub log_format: crate::logs::LogFormat,
    /// Largest linear memory one plugin call may use, in MiB. The table
    /// owner's cap is this plus room for the table it holds (up to
    /// wasm32's 4 GiB), so it does not bound the lattice's size.
    #[arg(
        help_heading = "Plugin limits",
        long,
        default_value_t = 256,
        global = true
    )]
    pub memory_cap_mib: usize,
    /// Plugin CPU time one call may use, in milliseconds.
    #[arg(
        help_heading = "Plugin limits",
        long,
        default_value_t = 2000,
        global = true
    )]
    pub cpu_budget_ms: u64,
    /// Wall-clock time one plugin call may take, waiting on NATS included,
    /// in milliseconds.
    #[arg(
        help_heading = "Plugin limits",
        long,
        default_value_t = 5000,
        global = true
    )]
    pub deadline_ms: u64,
    /// Import calls (store reads and writes, deliveries) one plugin call may
    /// make, plus one per key a listing returned.
    #[arg(
        help_heading = "Plugin limits",
        long,
        default_value_t = 1000,
        global = true
    )]
    pub max_imports: u32,
    /// Plugin instances that serve requests at once (default: 16 per core).
    #[arg(help_heading = "Plugin limits", long, global = true)]
    pub pool_size: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Storage backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// A NATS JetStream lattice (`--nats`, or a local server).
    Nats,
    /// In this process's memory, gone when it exits.
    Memory,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Component specifications.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Links.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Named configurations (CONFIGDATA_{lattice}), as `wash config` keeps
    /// them.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Show the plugin's version and digest.
    Version,
    /// Follow the lattice: apply every spec change written by any host to
    /// this host's table and deliver link changes to its providers, until
    /// interrupted.
    Follow,
    /// Serve the lattice: answer wasmCloud link requests
    /// (wasmbus.ctl.v1.{lattice}.link.put|del|get) with the plugin, follow
    /// the bucket, deliver to local providers, answer status requests, and
    /// swap the plugin when the --plugin file changes or on SIGHUP. Stops on
    /// SIGINT/SIGTERM after finishing requests in flight.
    Serve(serve::ServeArgs),
    /// Show every serving host of the lattice: plugin version and digest,
    /// providers, link count.
    Status {
        /// How long to collect replies, in milliseconds.
        #[arg(long, default_value_t = 500)]
        wait_ms: u64,
    },
    /// A short scripted session: a link put reaching a provider, a
    /// conflict rejected, a delete delivered, and the stored JSON.
    Demo,
    /// Open the lattice in the browser: the link graph, configs, serving
    /// hosts and changes, live; put and delete links from the page.
    Ui {
        /// Where to listen. On loopback only this machine reaches the page;
        /// anywhere else every API request must carry a token.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: std::net::SocketAddr,
        /// The token the page's requests must carry (required off
        /// loopback; if not given there, one is generated and printed once
        /// in the URL to open).
        #[arg(long, env = "SPEC_HOST_UI_TOKEN", hide_env_values = true)]
        token: Option<spec_nats::Secret>,
    },
    /// Plugin builds kept in the lattice, and rolling them out to every
    /// serving host.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Signing keys for plugin builds and rollouts.
    #[command(subcommand)]
    Keys(plugin::KeysCommand),
    /// Print a completion script for a shell, e.g.
    /// `spec-host completions bash > ~/.local/share/bash-completion/completions/spec-host`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `spec-host man > spec-host.1`.
    Man,
}

/// `spec …`
#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Print the spec stored for a component.
    Get {
        /// Component id.
        id: String,
    },
    /// Store a spec with a URL and no links (keeps nothing of an old one).
    Put {
        /// Component id.
        id: String,
        /// Image reference or file URL.
        #[arg(long)]
        url: String,
    },
    /// Delete a component's spec.
    Delete {
        /// Component id.
        id: String,
    },
}

/// `link …`
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Add or replace a link.
    Put(LinkPutArgs),
    /// Remove a link.
    Del(LinkDelArgs),
    /// List every link in the store (in the store's order, printed as it
    /// is read: any lattice size).
    List,
}

/// Flags of `link put`.
#[derive(Debug, Args)]
pub struct LinkPutArgs {
    /// Source component id.
    #[arg(long)]
    pub source: String,
    /// Target id.
    #[arg(long)]
    pub target: String,
    /// WIT namespace, e.g. wasi.
    #[arg(long)]
    pub namespace: String,
    /// WIT package, e.g. keyvalue.
    #[arg(long)]
    pub package: String,
    /// Interface (repeatable).
    #[arg(long = "interface", required = true)]
    pub interfaces: Vec<String>,
    /// Link name.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Source configuration name (repeatable).
    #[arg(long = "source-config")]
    pub source_config: Vec<String>,
    /// Target configuration name (repeatable).
    #[arg(long = "target-config")]
    pub target_config: Vec<String>,
}

impl LinkPutArgs {
    fn to_link(&self) -> Link {
        Link {
            source_id: self.source.clone(),
            target: self.target.clone(),
            name: self.name.clone(),
            wit_namespace: self.namespace.clone(),
            wit_package: self.package.clone(),
            interfaces: self.interfaces.clone(),
            source_config: self.source_config.clone(),
            target_config: self.target_config.clone(),
        }
    }
}

/// Flags of `link del`.
#[derive(Debug, Args)]
pub struct LinkDelArgs {
    /// Source component id.
    #[arg(long)]
    pub source: String,
    /// WIT namespace.
    #[arg(long)]
    pub namespace: String,
    /// WIT package.
    #[arg(long)]
    pub package: String,
    /// Link name.
    #[arg(long, default_value = "default")]
    pub name: String,
}

impl Cli {
    fn limits(&self) -> PluginLimits {
        PluginLimits {
            memory_cap: self.memory_cap_mib.saturating_mul(1 << 20),
            cpu_budget: Duration::from_millis(self.cpu_budget_ms),
            deadline: Duration::from_millis(self.deadline_ms),
            max_imports: self.max_imports,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(backends::default_state_dir)
    }

    fn load_plugin(&self, engine: &PluginEngine) -> anyhow::Result<LoadedPlugin> {
        let plugin = match &self.plugin {
            Some(path) => engine.load_file(path),
            None => engine.load_bytes(spec_embed::bundled::PLUGIN),
        };
        plugin.context("loading the plugin")
    }
}

/// Runs the command line; the process exit code follows the result.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Status { wait_ms } = cli.command {
        return status(&cli, wait_ms).await;
    }
    if let Command::Config(command) = &cli.command {
        return config::run(&cli, command).await;
    }
    if let Command::Plugin(command) = &cli.command {
        return plugin::run(&cli, command).await;
    }
    if let Command::Keys(command) = &cli.command {
        return plugin::keys(command);
    }
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "spec-host", &mut script);
        return print_all(&script).context("writing the completions");
    }
    if let Command::Man = cli.command {
        let mut page = Vec::new();
        man_page(&mut page).context("rendering the man page")?;
        return print_all(&page).context("writing the man page");
    }
    let engine = PluginEngine::new()
        .context("starting the wasm engine")?
        .with_cache(ComponentCache::new(cli.state_dir().join("compiled")));
    let engine = Arc::new(engine);
    let plugin = cli.load_plugin(&engine)?;
    let mut cli = cli;
    // The page's own table delivers nothing: providers hear from their host.
    if matches!(cli.command, Command::Ui { .. }) {
        cli.providers.clear();
    }
    if matches!(cli.command, Command::Demo) && !cli.providers.iter().any(|p| p.id == demo::PROVIDER)
    {
        cli.providers.push(LocalProvider {
            id: demo::PROVIDER.to_string(),
            key: demo::PROVIDER.to_string(),
        });
    }
    let prepared = match &cli.command {
        Command::Serve(args) => Some(serve::prepare(args)?),
        _ => None,
    };
    let backends = backends::open(&cli).await?;
    let outcome = run_with(&cli, &engine, plugin, &backends, prepared).await;
    backends.shutdown().await;
    outcome
}

async fn status(cli: &Cli, wait_ms: u64) -> anyhow::Result<()> {
    let backends = backends::open(cli).await?;
    let outcome = async {
        let lattice = backends
            .lattice
            .as_ref()
            .context("status needs a NATS lattice")?;
        let wait = Duration::from_millis(wait_ms);
        let found =
            spec_lattice::serve::collect_status(&lattice.client, &cli.lattice, wait).await?;
        output::Printer { json: cli.json }.statuses(&found);
        if found.is_empty() {
            return Err(NotFound(format!(
                "no serving host of lattice {} answered",
                cli.lattice
            ))
            .into());
        }
        anyhow::Ok(())
    }
    .await;
    backends.shutdown().await;
    outcome
}

async fn run_with(
    cli: &Cli,
    engine: &Arc<PluginEngine>,
    plugin: LoadedPlugin,
    backends: &backends::Backends,
    prepared: Option<serve::Prepared>,
) -> anyhow::Result<()> {
    let digest = plugin.digest().to_string();
    // A serving host notes what each request read, for a build shadowed
    // in a rollout to be given the same.
    let kv: Arc<dyn spec_embed::backend::KeyValue> = match cli.command {
        Command::Serve(_) => Arc::new(spec_lattice::rollout::shadow::ReadLog::new(
            backends.kv.clone(),
        )),
        _ => backends.kv.clone(),
    };
    let host = SpecHost::start_with_pool(
        plugin,
        kv,
        backends.notify.clone(),
        cli.limits(),
        cli.pool_size.unwrap_or_else(default_pool_size),
    )
    .await
    .context("starting the plugin")?;
    if let Command::Demo = cli.command {
        return demo::run(&host, backends, backends.recorder.clone(), cli.json).await;
    }
    if let (Command::Serve(args), Some(prepared)) = (&cli.command, prepared) {
        return serve::run(cli, args, prepared, engine, host, backends, digest).await;
    }
    if let Command::Ui { listen, token } = &cli.command {
        let listen = *listen;
        let token = token.as_ref().map(|t| t.expose().to_string());
        let lattice = backends
            .lattice
            .as_ref()
            .context("ui needs a NATS lattice (not --store memory)")?;
        return ui::run(&host, lattice, listen, token).await;
    }
    if let Command::Follow = cli.command {
        let lattice = backends
            .lattice
            .as_ref()
            .context("follow needs a NATS lattice (not --store memory)")?;
        return follow::run(&host, lattice, cli.json).await;
    }
    // A fresh process knows no table: before a write, take it from the
    // store, so that only real changes are delivered to providers.
    if matches!(
        cli.command,
        Command::Spec(SpecCommand::Put { .. } | SpecCommand::Delete { .. })
            | Command::Link(LinkCommand::Put(_) | LinkCommand::Del(_))
    ) {
        host.reload_from_store()
            .await
            .context("loading the link table")?;
    }
    let out = output::Printer { json: cli.json };
    match &cli.command {
        Command::Version => {
            out.version(&host.plugin_version(), &digest);
        }
        Command::Spec(SpecCommand::Get { id }) => {
            let spec = host.get_component_spec(id).await?;
            out.spec(id, spec.as_ref());
            if spec.is_none() {
                return Err(NotFound(format!("no spec stored for {id}")).into());
            }
        }
        Command::Spec(SpecCommand::Put { id, url }) => {
            let spec = ComponentSpecification {
                url: url.clone(),
                links: Vec::new(),
            };
            let stored = host.store_component_spec(id, spec).await?;
            if let Some(update) = &stored.update {
                announce::links_deleted(backends, &update.removed).await;
            }
            out.stored(id, &stored);
        }
        Command::Spec(SpecCommand::Delete { id }) => {
            let deleted = host.delete_component_spec(id).await?;
            out.spec_deleted(id, &deleted);
        }
        Command::Link(LinkCommand::Put(args)) => {
            let link = args.to_link();
            let put = host.put_link(link.clone()).await?;
            if put.outcome != spec_model::PutOutcome::Unchanged {
                announce::link_set(backends, &link).await;
            }
            out.link_put(&args.source, &put);
        }
        Command::Link(LinkCommand::Del(a)) => {
            let del = host
                .delete_link(&a.source, &a.namespace, &a.package, Some(&a.name))
                .await?;
            if del.removed.is_empty() {
                announce::link_name_deleted(backends, &a.source, &a.namespace, &a.package, &a.name)
                    .await;
            } else {
                announce::links_deleted(backends, &del.removed).await;
            }
            out.link_deleted(&del);
        }
        Command::Link(LinkCommand::List) => {
            // In pages, printed as they come: any lattice size, each step
            // under its own deadline (one call for every spec would not
            // do at a million components).
            let mut listing = out.listing_out();
            let (links, _) = host
                .list_links_paged(LIST_PAGE, |page| listing.page(page))
                .await?;
            listing.end(links);
        }
        Command::Demo
        | Command::Follow
        | Command::Serve(_)
        | Command::Status { .. }
        | Command::Config(_)
        | Command::Plugin(_)
        | Command::Keys(_)
        | Command::Completions { .. }
        | Command::Man
        | Command::Ui { .. } => {}
    }
    Ok(())
}

/// Specs per page of `link list`.
const LIST_PAGE: usize = 1000;

/// A host id for status replies: `spechost-` and 8 random hex digits.
fn random_host_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // A randomly keyed hasher is a dependency-free random source.
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("spechost-{:08x}", n as u32)
}

/// Lines describing what an update changed and delivered, for text output.
pub(crate) fn update_lines(report: &UpdateReport) -> Vec<String> {
    let show = |link: &Link| link.to_string();
    let mut lines: Vec<String> = report
        .removed
        .iter()
        .map(|l| format!("removed from the table: {}", show(l)))
        .chain(
            report
                .added
                .iter()
                .map(|l| format!("new in the table: {}", show(l))),
        )
        .collect();
    if report.delivered > 0 {
        lines.push(format!(
            "{} delivery(ies) to local providers",
            report.delivered
        ));
    }
    lines.extend(report.failures.iter().map(|f| {
        let verb = match f.kind {
            spec_model::DeliveryKind::Put => "put",
            spec_model::DeliveryKind::Delete => "delete",
        };
        format!(
            "FAILED {verb} to provider {}: {}: {}",
            f.provider_id,
            show(&f.link),
            f.error
        )
    }));
    lines
}
