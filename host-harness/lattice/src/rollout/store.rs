//! Where a lattice keeps its plugin builds and its rollout.
//!
//! * Object store `SPECPLUGINS_{lattice}`: `build/{sha256}` — a component,
//!   with its contract and plugin versions as metadata; and
//!   `compiled/{sha256}/{engine}` — that build compiled by a host for an
//!   engine (wasmtime's serialized form), with the SHA-256 of those bytes
//!   recorded when written, so the lattice compiles each build once.
//! * Bucket `SPECROLLOUT_{lattice}`: `desired` (the build hosts should run,
//!   and how to get there), `host.{id}` (each host's phase), `bad.{sha256}`
//!   (builds a host rejected or rolled back, lattice-wide).
//!
//! Everything fetched is checked before use: a build must hash to its
//! name, compiled code to its recorded digest.

use std::collections::{BTreeMap, HashMap};

use async_nats::jetstream::kv;
use async_nats::jetstream::object_store::{ObjectMetadata, ObjectStore};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use spec_embed::backend::error_chain;
use spec_embed::digest_of;
use spec_nats::{subjects, Lattice};

/// What a rollout may find differing between two builds and let pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffKind {
    /// The bytes a request writes to the store.
    Stored,
    /// The links an applied change adds or removes (its deliveries).
    Deliveries,
    /// Request replies (success, or the error message).
    Replies,
}

impl DiffKind {
    /// Its name, as written on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DiffKind::Stored => "stored",
            DiffKind::Deliveries => "deliveries",
            DiffKind::Replies => "replies",
        }
    }
}

impl std::str::FromStr for DiffKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stored" => Ok(DiffKind::Stored),
            "deliveries" => Ok(DiffKind::Deliveries),
            "replies" => Ok(DiffKind::Replies),
            other => Err(format!(
                "{other:?} is not a kind of difference (stored, deliveries, replies)"
            )),
        }
    }
}

/// The build the lattice should run, and how to get there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// SHA-256 of the build.
    pub digest: String,
    /// The build the lattice ran before (rolled back to).
    pub from_digest: String,
    /// Hosts that switch at once.
    pub batch: usize,
    /// How long a host shadows the build before it may switch, seconds.
    pub shadow_secs: u64,
    /// How long after switching a host compares failures, seconds.
    pub watch_secs: u64,
    /// Differences that do not stop the rollout.
    pub expect: Vec<DiffKind>,
    /// The switching order: host ids (hosts not listed go last).
    pub order: Vec<String>,
    /// When it was asked for (RFC 3339).
    pub at: String,
}

/// Where one host stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Runs the desired build, or no rollout is asked for.
    Idle,
    /// Running the new build beside the live one.
    Shadowing,
    /// Shadowed clean; waiting for its turn.
    Waiting,
    /// Switched; comparing failures with the old build's.
    Switched,
    /// Switched and stayed: done.
    Settled,
    /// Refused the build (cannot load it, or cannot take over the table).
    Refused,
    /// Found it bad in shadow: did not switch.
    Rejected,
    /// Switched, then went back to the old build.
    RolledBack,
}

/// The shadow's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowReport {
    /// Requests and changes run on both builds and compared.
    pub compared: u64,
    /// Differences found, by kind.
    pub differences: BTreeMap<String, u64>,
    /// Differences of kinds not declared expected.
    pub unexpected: u64,
    /// Traps and limit hits of the new build.
    pub faults: u64,
    /// Comparisons skipped (the shadow fell behind).
    pub skipped: u64,
    /// A few differences and faults, described.
    pub examples: Vec<String>,
}

/// One host's rollout state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRollout {
    /// The host.
    pub host_id: String,
    /// The build it runs now.
    pub running: String,
    /// The build being rolled out to it, if any.
    pub target: Option<String>,
    /// When the rollout it works on was asked for (`Desired::at`): tells
    /// its state from what it recorded for an earlier rollout.
    #[serde(default)]
    pub rollout_at: Option<String>,
    /// Its phase.
    pub phase: Phase,
    /// What the shadow found.
    pub shadow: Option<ShadowReport>,
    /// Why it refused, rejected or rolled back.
    pub reason: Option<String>,
    /// When this was written (RFC 3339).
    pub at: String,
}

/// A build marked bad lattice-wide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadBuild {
    /// The build.
    pub digest: String,
    /// Why.
    pub reason: String,
    /// The host that found it.
    pub host_id: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A build in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// SHA-256 of the component.
    pub digest: String,
    /// The contract version it speaks.
    pub contract: String,
    /// Its `plugin-version`.
    pub version: String,
    /// Size in bytes.
    pub size: usize,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// A NATS call failed.
    #[error("{what}: {message}")]
    Nats {
        /// What was being done.
        what: String,
        /// Why.
        message: String,
    },
    /// Fetched bytes did not hash to what they should.
    #[error("{what} hashes to {found}, not {expected}: refused")]
    Digest {
        /// What was fetched.
        what: String,
        /// Its hash.
        found: String,
        /// The hash it must have.
        expected: String,
    },
    /// No such build.
    #[error("no build {0} in the lattice (push it with `spec-host plugin push`)")]
    NoBuild(String),
}

fn nats(what: &str, e: impl std::error::Error + 'static) -> RolloutError {
    RolloutError::Nats {
        what: what.to_string(),
        message: error_chain(&e),
    }
}

/// The current time, RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The lattice's builds and rollout state.
#[derive(Clone)]
pub struct Rollouts {
    builds: ObjectStore,
    state: kv::Store,
}

fn build_name(digest: &str) -> String {
    format!("build/{digest}")
}

fn compiled_name(digest: &str, engine: &str) -> String {
    format!("compiled/{digest}/{engine}")
}

impl Rollouts {
    /// Opens (or creates) the lattice's build store and rollout bucket.
    pub async fn open(lattice: &Lattice) -> Result<Rollouts, RolloutError> {
        let name = &lattice.options.lattice;
        let builds = lattice
            .object_store(&subjects::plugin_builds(name))
            .await
            .map_err(|e| nats("opening the build store", e))?;
        let state = lattice
            .bucket(&subjects::rollout_bucket(name))
            .await
            .map_err(|e| nats("opening the rollout bucket", e))?;
        Ok(Rollouts { builds, state })
    }

    async fn read_object(
        &self,
        name: &str,
    ) -> Result<Option<(Vec<u8>, HashMap<String, String>)>, RolloutError> {
        let mut object = match self.builds.get(name).await {
            Ok(object) => object,
            Err(e) if e.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(nats(&format!("reading {name}"), e)),
        };
        let metadata = object.info().metadata.clone();
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| nats(&format!("reading {name}"), e))?;
        Ok(Some((bytes, metadata)))
    }

    /// Stores a build (idempotent: the name is its digest).
    pub async fn push_build(&self, bytes: &[u8], info: &BuildInfo) -> Result<(), RolloutError> {
        let meta = ObjectMetadata {
            name: build_name(&info.digest),
            description: Some(info.version.clone()),
            metadata: HashMap::from([
                ("contract".to_string(), info.contract.clone()),
                ("version".to_string(), info.version.clone()),
            ]),
            ..Default::default()
        };
        let mut reader = bytes;
        self.builds
            .put(meta, &mut reader)
            .await
            .map_err(|e| nats("storing the build", e))?;
        Ok(())
    }

    /// A build's bytes, checked against its digest.
    pub async fn fetch_build(&self, digest: &str) -> Result<Vec<u8>, RolloutError> {
        let (bytes, _) = self
            .read_object(&build_name(digest))
            .await?
            .ok_or_else(|| RolloutError::NoBuild(digest.to_string()))?;
        let found = digest_of(&bytes);
        if found != digest {
            return Err(RolloutError::Digest {
                what: format!("build {digest}"),
                found,
                expected: digest.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Every build in the store.
    pub async fn builds(&self) -> Result<Vec<BuildInfo>, RolloutError> {
        let mut list = self
            .builds
            .list()
            .await
            .map_err(|e| nats("listing builds", e))?;
        let mut out = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| nats("listing builds", e))?;
            let Some(digest) = info.name.strip_prefix("build/") else {
                continue;
            };
            let field = |k: &str| info.metadata.get(k).cloned().unwrap_or_default();
            out.push(BuildInfo {
                digest: digest.to_string(),
                contract: field("contract"),
                version: field("version"),
                size: info.size,
            });
        }
        Ok(out)
    }

    /// Stores a build compiled for `engine`, with the digest of the bytes.
    pub async fn push_compiled(
        &self,
        digest: &str,
        engine: &str,
        bytes: &[u8],
    ) -> Result<(), RolloutError> {
        let meta = ObjectMetadata {
            name: compiled_name(digest, engine),
            metadata: HashMap::from([("sha256".to_string(), digest_of(bytes))]),
            ..Default::default()
        };
        let mut reader = bytes;
        self.builds
            .put(meta, &mut reader)
            .await
            .map_err(|e| nats("storing compiled code", e))?;
        Ok(())
    }

    /// A build compiled for `engine` by some host, if stored, checked
    /// against the digest recorded when it was written.
    pub async fn fetch_compiled(
        &self,
        digest: &str,
        engine: &str,
    ) -> Result<Option<Vec<u8>>, RolloutError> {
        let Some((bytes, metadata)) = self.read_object(&compiled_name(digest, engine)).await?
        else {
            return Ok(None);
        };
        let found = digest_of(&bytes);
        let recorded = metadata.get("sha256").cloned().unwrap_or_default();
        if found != recorded {
            return Err(RolloutError::Digest {
                what: format!("compiled code of {digest}"),
                found,
                expected: recorded,
            });
        }
        Ok(Some(bytes))
    }

    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, RolloutError> {
        match self.state.get(key).await {
            Ok(Some(v)) => Ok(serde_json::from_slice(&v).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(nats(&format!("reading {key}"), e)),
        }
    }

    async fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RolloutError> {
        let bytes = serde_json::to_vec(value).map_err(|e| nats("encoding", e))?;
        self.state
            .put(key, Bytes::from(bytes))
            .await
            .map_err(|e| nats(&format!("writing {key}"), e))?;
        Ok(())
    }

    /// The rollout asked for, if any.
    pub async fn desired(&self) -> Result<Option<Desired>, RolloutError> {
        self.read("desired").await
    }

    /// Asks the lattice to run a build.
    pub async fn set_desired(&self, desired: &Desired) -> Result<(), RolloutError> {
        self.write("desired", desired).await
    }

    /// Withdraws the rollout asked for: hosts that have not switched stop
    /// where they are; hosts that switched keep the build (roll out the
    /// old one to go back).
    pub async fn cancel(&self) -> Result<(), RolloutError> {
        self.state
            .delete("desired")
            .await
            .map_err(|e| nats("cancelling the rollout", e))
    }

    /// Records where a host stands.
    pub async fn set_host(&self, state: &HostRollout) -> Result<(), RolloutError> {
        self.write(&format!("host.{}", state.host_id), state).await
    }

    /// Every host's recorded state.
    pub async fn hosts(&self) -> Result<Vec<HostRollout>, RolloutError> {
        self.read_prefix("host.").await
    }

    /// Marks a build bad for the whole lattice.
    pub async fn mark_bad(&self, bad: &BadBuild) -> Result<(), RolloutError> {
        self.write(&format!("bad.{}", bad.digest), bad).await
    }

    /// Whether (and why) a build is marked bad.
    pub async fn bad(&self, digest: &str) -> Result<Option<BadBuild>, RolloutError> {
        self.read(&format!("bad.{digest}")).await
    }

    /// Lifts a build's bad mark (an operator retries it).
    pub async fn clear_bad(&self, digest: &str) -> Result<(), RolloutError> {
        self.state
            .delete(format!("bad.{digest}"))
            .await
            .map_err(|e| nats("clearing the bad mark", e))
    }

    /// Every build marked bad.
    pub async fn bad_builds(&self) -> Result<Vec<BadBuild>, RolloutError> {
        self.read_prefix("bad.").await
    }

    async fn read_prefix<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, RolloutError> {
        let keys = self
            .state
            .keys()
            .await
            .map_err(|e| nats("listing the rollout bucket", e))?;
        let keys: Vec<String> = keys
            .filter_map(|k| async move { k.ok() })
            .filter(|k| std::future::ready(k.starts_with(prefix)))
            .collect()
            .await;
        let mut out = Vec::new();
        for key in keys {
            if let Some(v) = self.read(&key).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Changes of `desired` and of bad builds, for hosts to react at once.
    pub async fn watch(&self) -> Result<kv::Watch, RolloutError> {
        self.state
            .watch_all()
            .await
            .map_err(|e| nats("watching the rollout bucket", e))
    }
}
