//! Who may change what a lattice runs.
//!
//! Writing to the lattice's buckets is not enough to run code on its hosts:
//! a host shadows or switches only to a build whose digest, and whose
//! rollout record, an issuer it trusts has signed with an ed25519 nkey (the
//! keys wasmCloud signs claims with). Builds travel as components only;
//! each host compiles what it runs.
//!
//! * A build's signature covers `spec-host build v1 {sha256}`.
//! * A rollout record's signature covers its exact JSON text; the record
//!   carries when it was issued, and a host refuses one older than the
//!   record in force (a replay).
//! * A host with no trusted issuer takes part in no rollout unless it was
//!   started with `--allow-unsigned-builds` (demos, local tests).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;

use super::store::{BuildSignature, RolloutRecord, SignedRecord};

/// What a build signature covers.
fn build_message(digest: &str) -> String {
    format!("spec-host build v1 {digest}")
}

/// An issuer's signing key (an nkey seed, kept in a file of mode 0600).
pub struct SigningKey(KeyPair);

impl SigningKey {
    /// Makes a new key, writes its seed to `out` (mode 0600; an existing
    /// file is never overwritten) and returns the key.
    pub fn generate(out: &Path) -> anyhow::Result<SigningKey> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let key = KeyPair::new_account();
        let seed = key
            .seed()
            .map_err(|e| anyhow::anyhow!("making a seed: {e}"))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
        file.write_all(format!("{seed}\n").as_bytes())?;
        Ok(SigningKey(key))
    }

    /// Reads a seed file; refuses one that others may read.
    pub fn load(path: &Path) -> anyhow::Result<SigningKey> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| anyhow::anyhow!("cannot read signing key {}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "signing key {} is readable by other users; chmod 600 it",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read signing key {}: {e}", path.display()))?;
        let key = KeyPair::from_seed(text.trim())
            .map_err(|_| anyhow::anyhow!("{} does not hold an nkey seed", path.display()))?;
        Ok(SigningKey(key))
    }

    /// The public key hosts trust with `--trusted-issuer`.
    pub fn public_key(&self) -> String {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> anyhow::Result<String> {
        let signature = self
            .0
            .sign(message)
            .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(URL_SAFE_NO_PAD.encode(signature))
    }

    /// Signs a build's digest.
    pub fn sign_build(&self, digest: &str) -> anyhow::Result<BuildSignature> {
        Ok(BuildSignature {
            issuer: self.public_key(),
            signature: self.sign(build_message(digest).as_bytes())?,
        })
    }

    /// Signs a rollout record.
    pub fn sign_record(&self, record: &RolloutRecord) -> anyhow::Result<SignedRecord> {
        let text = serde_json::to_string(record)?;
        Ok(SignedRecord {
            signature: Some(self.sign(text.as_bytes())?),
            issuer: Some(self.public_key()),
            record: text,
        })
    }
}

/// A rollout record nobody signed (accepted only with
/// `--allow-unsigned-builds`).
pub fn unsigned(record: &RolloutRecord) -> anyhow::Result<SignedRecord> {
    Ok(SignedRecord {
        record: serde_json::to_string(record)?,
        issuer: None,
        signature: None,
    })
}

/// What a serving host accepts.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    issuers: Vec<String>,
    allow_unsigned: bool,
}

impl Trust {
    /// Trusts these issuers' public keys; `allow_unsigned` also takes
    /// builds and records nobody signed.
    pub fn new(issuers: Vec<String>, allow_unsigned: bool) -> Result<Trust, String> {
        for issuer in &issuers {
            if KeyPair::from_public_key(issuer).is_err() {
                return Err(format!(
                    "--trusted-issuer {issuer:?} is not an nkey public key"
                ));
            }
        }
        Ok(Trust {
            issuers,
            allow_unsigned,
        })
    }

    /// Why this host takes part in no rollout, if it does not.
    pub fn off_reason(&self) -> Option<&'static str> {
        (self.issuers.is_empty() && !self.allow_unsigned).then_some(
            "lattice rollouts are off: no --trusted-issuer given (and no --allow-unsigned-builds)",
        )
    }

    /// Checks a signature of `message`. With trusted issuers, only their
    /// signatures pass (`--allow-unsigned-builds` does not loosen that);
    /// without any, everything passes if unsigned builds are allowed.
    fn verify(
        &self,
        issuer: Option<&str>,
        signature: Option<&str>,
        message: &[u8],
        what: &str,
    ) -> Result<(), String> {
        if self.issuers.is_empty() {
            return match self.allow_unsigned {
                true => Ok(()),
                false => Err(format!("{what} cannot be checked: no trusted issuer")),
            };
        }
        let (Some(issuer), Some(signature)) = (issuer, signature) else {
            return Err(format!("{what} is not signed by a trusted issuer"));
        };
        if !self.issuers.iter().any(|t| t == issuer) {
            return Err(format!(
                "{what} is signed by {issuer}, not a trusted issuer"
            ));
        }
        let key = KeyPair::from_public_key(issuer)
            .map_err(|_| format!("{what} names an issuer that is not an nkey"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| format!("{what}'s signature is not base64url"))?;
        key.verify(message, &signature).map_err(|_| {
            format!(
                "{what}'s signature does not verify (tampered with, or signed for other content)"
            )
        })
    }

    /// The record, if its signature verifies against a trusted issuer.
    pub fn check_record(&self, signed: &SignedRecord) -> Result<RolloutRecord, String> {
        self.verify(
            signed.issuer.as_deref(),
            signed.signature.as_deref(),
            signed.record.as_bytes(),
            "the rollout record",
        )?;
        serde_json::from_str(&signed.record)
            .map_err(|e| format!("the rollout record does not decode: {e}"))
    }

    /// Whether a build with this digest and signature may be compiled.
    pub fn check_build(
        &self,
        digest: &str,
        signature: Option<&BuildSignature>,
    ) -> Result<(), String> {
        self.verify(
            signature.map(|s| s.issuer.as_str()),
            signature.map(|s| s.signature.as_str()),
            build_message(digest).as_bytes(),
            &format!("build {digest}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: u64) -> RolloutRecord {
        RolloutRecord {
            desired: None,
            issued_at_ms: at,
        }
    }

    #[test]
    fn signed_things_verify_and_tampered_or_foreign_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&dir.path().join("k.nk")).unwrap();
        let other = SigningKey::generate(&dir.path().join("o.nk")).unwrap();
        let trust = Trust::new(vec![key.public_key()], false).unwrap();

        let signed = key.sign_record(&record(5)).unwrap();
        assert_eq!(trust.check_record(&signed).unwrap(), record(5));
        let mut tampered = signed.clone();
        tampered.record = tampered.record.replace('5', "6");
        assert!(trust
            .check_record(&tampered)
            .unwrap_err()
            .contains("does not verify"));
        let foreign = other.sign_record(&record(5)).unwrap();
        assert!(trust
            .check_record(&foreign)
            .unwrap_err()
            .contains("not a trusted issuer"));
        let plain = unsigned(&record(5)).unwrap();
        assert!(trust
            .check_record(&plain)
            .unwrap_err()
            .contains("not signed"));

        let sig = key.sign_build("abc").unwrap();
        assert!(trust.check_build("abc", Some(&sig)).is_ok());
        assert!(trust.check_build("abd", Some(&sig)).is_err());
        assert!(trust.check_build("abc", None).is_err());
        // Unsigned is taken only when allowed, and never by a host that
        // trusts an issuer.
        let open = Trust::new(vec![], true).unwrap();
        assert!(open.check_build("abc", None).is_ok());
        let strict = Trust::new(vec![key.public_key()], true).unwrap();
        assert!(strict.check_build("abc", None).is_err());
        assert!(strict.check_record(&plain).is_err());
        assert!(Trust::new(vec![], false).unwrap().off_reason().is_some());
        assert!(Trust::new(vec!["nope".into()], false).is_err());
    }

    #[test]
    fn seed_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.nk");
        let key = SigningKey::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(SigningKey::generate(&path).is_err());
        assert_eq!(
            SigningKey::load(&path).unwrap().public_key(),
            key.public_key()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SigningKey::load(&path).is_err());
    }
}
