//! Where a lattice keeps its plugin builds and its rollout.
//!
//! * Object store `SPECPLUGINS_{lattice}`: `build/{sha256}` — a component,
//!   with its contract and plugin versions, and its issuer's signature of
//!   the digest, as metadata. Only components travel: compiled code never
//!   does, each host compiles what it runs (and caches it privately).
//! * Bucket `SPECROLLOUT_{lattice}`: `desired` (the rollout record: the
//!   build hosts should run and how to get there, signed by its issuer),
//!   `host.{id}` (each host's phase), `bad.{sha256}` (builds a host rejected
//!   or rolled back, lattice-wide).
//!
//! Everything fetched is checked before use: a build must hash to its
//! name; signatures are checked by [`super::trust`].

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
    /// Takes part in no rollout (no trusted issuer, unsigned not allowed).
    Off,
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
    /// Times the shadow's table fell behind the live one's changes and was
    /// taken over afresh from the live table.
    #[serde(default)]
    pub resynced: u64,
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

/// The rollout record: what is asked of the hosts, and when it was
/// issued. `desired: None` is a cancel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The rollout asked for; `None`: withdrawn.
    pub desired: Option<Desired>,
    /// When it was issued, milliseconds since the Unix epoch: a host refuses
    /// a record older than the one in force (a replay).
    pub issued_at_ms: u64,
}

/// A rollout record as stored: its exact JSON text, and the issuer's
/// signature of that text (both absent when unsigned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The [`RolloutRecord`] as JSON, byte for byte as signed.
    pub record: String,
    /// The issuer's public key (nkey).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Ed25519 signature of `record`, base64url.
    #[serde(default)]
    pub signature: Option<String>,
}

impl SignedRecord {
    /// The record, read without checking anything (for display).
    pub fn unverified(&self) -> Option<RolloutRecord> {
        serde_json::from_str(&self.record).ok()
    }
}

/// An issuer's signature of a build's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSignature {
    /// The issuer's public key (nkey).
    pub issuer: String,
    /// Ed25519 signature, base64url.
    pub signature: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
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

    /// Stores a build (idempotent: the name is its digest), with its
    /// issuer's signature if it has one.
    pub async fn push_build(
        &self,
        bytes: &[u8],
        info: &BuildInfo,
        signature: Option<&BuildSignature>,
    ) -> Result<(), RolloutError> {
        let mut metadata = HashMap::from([
            ("contract".to_string(), info.contract.clone()),
            ("version".to_string(), info.version.clone()),
        ]);
        if let Some(sig) = signature {
            metadata.insert("issuer".to_string(), sig.issuer.clone());
            metadata.insert("signature".to_string(), sig.signature.clone());
        }
        let meta = ObjectMetadata {
            name: build_name(&info.digest),
            description: Some(info.version.clone()),
            metadata,
            ..Default::default()
        };
        let mut reader = bytes;
        self.builds
            .put(meta, &mut reader)
            .await
            .map_err(|e| nats("storing the build", e))?;
        Ok(())
    }

    /// A build's bytes, checked against its digest, and its signature.
    pub async fn fetch_build(
        &self,
        digest: &str,
    ) -> Result<(Vec<u8>, Option<BuildSignature>), RolloutError> {
        let (bytes, metadata) = self
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
        let signature = match (metadata.get("issuer"), metadata.get("signature")) {
            (Some(issuer), Some(signature)) => Some(BuildSignature {
                issuer: issuer.clone(),
                signature: signature.clone(),
            }),
            _ => None,
        };
        Ok((bytes, signature))
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

    /// The rollout record as stored, if any (not checked: see
    /// [`super::trust::Trust::check_record`]).
    pub async fn record(&self) -> Result<Option<SignedRecord>, RolloutError> {
        self.read("desired").await
    }

    /// The rollout asked for, read without checking its signature (for
    /// display).
    pub async fn desired(&self) -> Result<Option<Desired>, RolloutError> {
        Ok(self
            .record()
            .await?
            .and_then(|r| r.unverified())
            .and_then(|r| r.desired))
    }

    /// Writes the rollout record (a rollout, or with `desired: None` a
    /// cancel: hosts that have not switched stop where they are; hosts
    /// that switched keep the build — roll out the old one to go back).
    pub async fn set_record(&self, record: &SignedRecord) -> Result<(), RolloutError> {
        self.write("desired", record).await
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
