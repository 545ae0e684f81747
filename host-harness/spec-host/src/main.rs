//! `spec-host`: runs the lattice component-spec plugin. See `--help`.

use clap::Parser;
use spec_host::cli::{Cli, Command};

/// mimalloc, not the system allocator: following a lattice allocates and
/// frees small blocks at a high rate (an id, a value, a report per change),
/// and glibc's malloc and free took a quarter of a catch-up's host time
/// (BENCHMARKS.md, the scale section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Services log what they do (requests, swaps, deliveries) at info; a
    // one-shot command prints its result and logs only trouble. async-nats'
    // own error lines are off: a refused connection is reported once, as
    // the command's error. RUST_LOG overrides all of it.
    let default = match cli.command {
        Command::Serve(_) | Command::Follow => {
            "warn,async_nats=off,spec_host=info,spec_embed=info,spec_nats=info,spec_lattice=info"
        }
        _ => "warn,async_nats=off",
    };
    spec_host::logs::init(cli.log_format, default);
    use spec_host::cli::{exit, one_line, NotFound};
    match spec_host::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::from(exit::OK),
        Err(e) => match e.downcast_ref::<NotFound>() {
            Some(not_found) => {
                eprintln!("not found: {not_found}");
                std::process::ExitCode::from(exit::NOT_FOUND)
            }
            None => {
                eprintln!("error: {}", one_line(&e));
                std::process::ExitCode::from(exit::FAILED)
            }
        },
    }
}
