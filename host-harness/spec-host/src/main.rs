//! `spec-host`: runs the lattice component-spec plugin. See `--help`.

use clap::Parser;
use spec_host::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Services log what they do (requests, swaps, deliveries) at info; a
    // one-shot command prints its result and logs only trouble. RUST_LOG
    // overrides both.
    let default = match cli.command {
        Command::Serve { .. } | Command::Follow => {
            "warn,spec_host=info,spec_embed=info,spec_nats=info,spec_lattice=info"
        }
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    match spec_host::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
