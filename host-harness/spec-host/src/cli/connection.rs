//! The flags that reach a secured lattice, as a wasmCloud v1.9 host takes
//! them (`--ctl-credsfile`, `--ctl-jwt`/`--ctl-seed`, `--ctl-tls-*`,
//! `--js-domain`, `--ctl-topic-prefix`), each with an environment variable.
//! Secret values are read into [`Secret`], which never prints them, and
//! clap is told not to show them from the environment in `--help`.

use std::path::PathBuf;

use clap::Args;
use spec_nats::{subjects, Auth, LatticeOptions, Secret, Tls};

/// How to authenticate and encrypt the NATS connection.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Lattice connection")]
pub struct Connection {
    /// NATS credentials file (user JWT and nkey seed, as `nats --creds`
    /// and wasmCloud's --ctl-credsfile take).
    #[arg(long, global = true, env = "SPEC_HOST_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// User JWT; goes with --nats-seed (wasmCloud's --ctl-jwt).
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_NATS_JWT",
        hide_env_values = true,
        requires = "nats_seed",
        value_name = "JWT"
    )]
    pub nats_jwt: Option<String>,
    /// The user's nkey seed, signing for --nats-jwt (wasmCloud's
    /// --ctl-seed). Never printed.
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_NATS_SEED",
        hide_env_values = true,
        requires = "nats_jwt",
        value_name = "SEED"
    )]
    pub nats_seed: Option<Secret>,
    /// File holding an nkey user seed (servers that list nkey users).
    #[arg(long, global = true, env = "SPEC_HOST_NATS_NKEY", value_name = "FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// CA certificates (PEM) to trust for the server's certificate; also
    /// turns TLS on. `tls://` URLs turn it on too.
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_NATS_TLS_CA",
        value_name = "FILE"
    )]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients; goes with
    /// --nats-tls-key.
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_NATS_TLS_CERT",
        requires = "nats_tls_key",
        value_name = "FILE"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_NATS_TLS_KEY",
        requires = "nats_tls_cert",
        value_name = "FILE"
    )]
    pub nats_tls_key: Option<PathBuf>,
    /// TLS before anything else (servers with `handshake_first`).
    #[arg(long, global = true, env = "SPEC_HOST_NATS_TLS_FIRST")]
    pub nats_tls_first: bool,
    /// JetStream domain of the lattice's buckets (the hub's, when this host
    /// connects to a leaf node).
    #[arg(long, global = true, env = "SPEC_HOST_JS_DOMAIN", value_name = "NAME")]
    pub js_domain: Option<String>,
    /// Prefix of the control subjects, as wasmCloud's --ctl-topic-prefix.
    #[arg(
        long,
        global = true,
        env = "SPEC_HOST_CTL_TOPIC_PREFIX",
        default_value = subjects::DEFAULT_CTL_PREFIX,
        value_name = "PREFIX"
    )]
    pub ctl_topic_prefix: String,
}

impl Connection {
    /// Puts these settings into `options`; refuses contradictory ones.
    pub fn apply(&self, options: &mut LatticeOptions) -> anyhow::Result<()> {
        let given = [
            self.nats_creds.is_some(),
            self.nats_jwt.is_some(),
            self.nats_nkey.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            anyhow::bail!("give one of --nats-creds, --nats-jwt/--nats-seed and --nats-nkey");
        }
        if let Some(path) = &self.nats_creds {
            options.auth = Auth::CredsFile(path.clone());
        }
        if let (Some(jwt), Some(seed)) = (&self.nats_jwt, &self.nats_seed) {
            options.auth = Auth::Jwt {
                jwt: jwt.clone(),
                seed: seed.clone(),
            };
        }
        if let Some(path) = &self.nats_nkey {
            options.auth = Auth::NkeyFile(path.clone());
        }
        options.tls = Tls {
            ca_file: self.nats_tls_ca.clone(),
            cert_file: self.nats_tls_cert.clone(),
            key_file: self.nats_tls_key.clone(),
            first: self.nats_tls_first,
        };
        options.js_domain = self.js_domain.clone().filter(|d| !d.is_empty());
        if self.ctl_topic_prefix.is_empty() || self.ctl_topic_prefix.split('.').any(str::is_empty) {
            anyhow::bail!(
                "--ctl-topic-prefix {:?} is not a subject prefix",
                self.ctl_topic_prefix
            );
        }
        options.ctl_prefix = self.ctl_topic_prefix.clone();
        Ok(())
    }
}
