//! `spec-host config put|get|del`: named configurations in
//! `CONFIGDATA_{lattice}`, as `wash config` writes them (a JSON object of
//! strings per name; secret references are entries too, never resolved).

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::NotFound;
use super::{backends, output, Cli};
use spec_nats::configs;

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Store a configuration: `KEY=VALUE` pairs (replaces an old one).
    Put {
        /// Configuration name.
        name: String,
        /// Values, `KEY=VALUE` (repeatable).
        #[arg(value_name = "KEY=VALUE")]
        values: Vec<String>,
    },
    /// Print a configuration.
    Get {
        /// Configuration name.
        name: String,
    },
    /// Delete a configuration (absent is fine).
    Del {
        /// Configuration name.
        name: String,
    },
}

fn pairs(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{v:?} is not KEY=VALUE"),
        })
        .collect()
}

/// Runs a config command.
pub(crate) async fn run(cli: &Cli, command: &ConfigCommand) -> anyhow::Result<()> {
    let backends = backends::open(cli).await?;
    let outcome = async {
        let lattice = backends
            .lattice
            .as_ref()
            .context("configs live in a NATS lattice (not --store memory)")?;
        let bucket = &lattice.configs;
        let out = output::Printer { json: cli.json };
        match command {
            ConfigCommand::Put { name, values } => {
                let map = pairs(values)?;
                let bytes = serde_json::to_vec(&map)?;
                configs::put(bucket, name, &bytes).await?;
                out.config(name, Some(&map.into_iter().collect()));
            }
            ConfigCommand::Get { name } => {
                let map = configs::get(bucket, name).await?;
                out.config(name, map.as_ref());
                if map.is_none() {
                    return Err(NotFound(format!("no configuration {name}")).into());
                }
            }
            ConfigCommand::Del { name } => {
                configs::delete(bucket, name).await?;
                out.config_deleted(name);
            }
        }
        anyhow::Ok(())
    }
    .await;
    backends.shutdown().await;
    outcome
}
