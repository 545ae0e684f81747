//! Runs the real wasmCloud v1.9 host library on a lattice, with no
//! components or providers of its own: it answers the control interface
//! (`link.*`, `config.*`, ...) and follows the spec bucket exactly as a
//! `wash up` host does, so tests and benchmarks can put spec-host beside it.
//!
//! Usage: `wasmcloud-v19-host --nats URL [--lattice NAME]`. Prints
//! `ready <host-id>` on stdout once it serves; stops on SIGINT/SIGTERM or
//! when stdin closes (so it never outlives the test that started it).

use std::sync::Arc;

use anyhow::{bail, Context};
use wasmcloud_host::url::Url;
use wasmcloud_host::{WasmbusHost, WasmbusHostConfig};

struct Args {
    nats: String,
    lattice: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut nats = "nats://127.0.0.1:4222".to_string();
    let mut lattice = "default".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nats" => nats = args.next().context("--nats needs a URL")?,
            "--lattice" => lattice = args.next().context("--lattice needs a name")?,
            other => bail!("unknown argument {other:?}; usage: --nats URL [--lattice NAME]"),
        }
    }
    Ok(Args { nats, lattice })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let url = Url::parse(&args.nats).with_context(|| format!("bad NATS URL {:?}", args.nats))?;
    let config = WasmbusHostConfig {
        ctl_nats_url: url.clone(),
        rpc_nats_url: url,
        lattice: Arc::from(args.lattice.as_str()),
        ..Default::default()
    };
    let (host, shutdown) = WasmbusHost::new(config)
        .await
        .context("starting the wasmCloud host")?;
    println!("ready");
    // Stdin closing means the parent is gone.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = stdin_closed => {}
    }
    drop(host);
    shutdown.await.context("stopping the wasmCloud host")?;
    Ok(())
}
