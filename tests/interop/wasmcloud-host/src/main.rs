//! Runs the real wasmCloud v1.9 host library on a lattice, with no
//! components or providers of its own: it answers the control interface
//! (`link.*`, `config.*`, ...) and follows the spec bucket exactly as a
//! `wash up` host does, so tests and benchmarks can put spec-host beside it.
//!
//! Usage:
//! `wasmcloud-v19-host --nats URL [--lattice NAME] [--creds FILE | --jwt JWT --seed SEED]
//! [--tls] [--tls-ca FILE] [--js-domain NAME] [--ctl-topic-prefix PREFIX]`.
//! These are the secured-lattice options of `wasmcloud` 1.9 (`--ctl-credsfile`,
//! `--ctl-jwt`/`--ctl-seed`, `--ctl-tls`, `--js-domain`, `--ctl-topic-prefix`),
//! mapped onto `WasmbusHostConfig`. The host library has no CA option of its
//! own: its NATS client reads extra roots from `SSL_CERT_FILE`, which
//! `--tls-ca` sets. It has no client-certificate option either.
//!
//! Prints `ready` on stdout once it serves; stops on SIGINT/SIGTERM or
//! when stdin closes (so it never outlives the test that started it).

use std::sync::Arc;

use anyhow::{bail, Context};
use nkeys::KeyPair;
use wasmcloud_host::url::Url;
use wasmcloud_host::{WasmbusHost, WasmbusHostConfig};

#[derive(Default)]
struct Args {
    nats: Option<String>,
    lattice: Option<String>,
    jwt: Option<String>,
    seed: Option<String>,
    creds: Option<String>,
    tls: bool,
    tls_ca: Option<String>,
    js_domain: Option<String>,
    ctl_topic_prefix: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut out = Args::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--nats" => out.nats = Some(value("a URL")?),
            "--lattice" => out.lattice = Some(value("a name")?),
            "--jwt" => out.jwt = Some(value("a JWT")?),
            "--seed" => out.seed = Some(value("a seed")?),
            "--creds" => out.creds = Some(value("a file")?),
            "--tls-ca" => out.tls_ca = Some(value("a file")?),
            "--js-domain" => out.js_domain = Some(value("a name")?),
            "--ctl-topic-prefix" => out.ctl_topic_prefix = Some(value("a prefix")?),
            "--tls" => out.tls = true,
            other => bail!("unknown argument {other:?}; see the header of main.rs for usage"),
        }
    }
    Ok(out)
}

/// The first non-empty line after the line holding `marker`.
fn block_after(text: &str, marker: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| !l.contains(marker)).skip(1);
    lines
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// The user JWT and seed of a `nats --creds` file, as `--ctl-credsfile` reads it.
fn read_creds(path: &str) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let jwt = block_after(&text, "BEGIN NATS USER JWT").context("creds file has no user JWT")?;
    let seed = block_after(&text, "BEGIN USER NKEY SEED").context("creds file has no seed")?;
    Ok((jwt, seed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let nats = args.nats.as_deref().unwrap_or("nats://127.0.0.1:4222");
    let url = Url::parse(nats).with_context(|| format!("bad NATS URL {nats:?}"))?;
    let (jwt, seed) = match (&args.creds, args.jwt, args.seed) {
        (Some(path), None, None) => {
            let (jwt, seed) = read_creds(path)?;
            (Some(jwt), Some(seed))
        }
        (Some(_), _, _) => bail!("--creds excludes --jwt and --seed"),
        (None, jwt, seed) => (jwt, seed),
    };
    let key = match seed {
        Some(seed) => Some(Arc::new(
            KeyPair::from_seed(&seed).context("the seed is not an nkey seed")?,
        )),
        None => None,
    };
    if let Some(ca) = &args.tls_ca {
        // Read by the NATS client's native-roots loader (rustls-native-certs);
        // set before any connection exists, while no other thread reads the
        // environment.
        std::env::set_var("SSL_CERT_FILE", ca);
    }
    let mut config = WasmbusHostConfig {
        ctl_nats_url: url.clone(),
        rpc_nats_url: url,
        ctl_jwt: jwt.clone(),
        ctl_key: key.clone(),
        ctl_tls: args.tls,
        rpc_jwt: jwt,
        rpc_key: key,
        rpc_tls: args.tls,
        js_domain: args.js_domain,
        lattice: Arc::from(args.lattice.as_deref().unwrap_or("default")),
        ..Default::default()
    };
    if let Some(prefix) = args.ctl_topic_prefix {
        config.ctl_topic_prefix = prefix;
    }
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
