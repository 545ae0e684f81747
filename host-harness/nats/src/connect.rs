//! How spec-host reaches a secured lattice: credentials, TLS and the
//! JetStream domain, turned into async-nats connect options, and a refused
//! connection turned into one line that names its cause.
//!
//! The options match the wasmCloud v1.9 host's (`--ctl-credsfile`,
//! `--ctl-jwt` + `--ctl-seed`, `--ctl-tls-ca-file`, `--js-domain`, …).
//! Secrets (seeds, passwords, tokens) are kept in [`Secret`], whose `Debug`
//! and `Display` print nothing of them, and URLs are shown with their
//! user info replaced ([`redact_url`]), so neither reaches a log line, a
//! status reply or an error message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use spec_embed::backend::error_chain;

/// A secret value: printed as `<redacted>`, never as itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Who the connection authenticates as, besides a user and password or a
/// token given in the URL (`nats://user:pass@host`, `nats://token@host`).
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// Nothing beyond what the URL carries.
    #[default]
    None,
    /// A `.creds` file: a user JWT and its nkey seed (`nats --creds`,
    /// wasmCloud's `--ctl-credsfile`).
    CredsFile(PathBuf),
    /// A user JWT and the seed that signs for it (wasmCloud's `--ctl-jwt`
    /// and `--ctl-seed`).
    Jwt {
        /// The user JWT.
        jwt: String,
        /// The user's nkey seed.
        seed: Secret,
    },
    /// A file holding an nkey seed (`SU…`), for servers that list nkey
    /// users.
    NkeyFile(PathBuf),
}

/// TLS towards the server. A `tls://` URL, or any field set here, makes
/// the connection require TLS.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// A PEM file of CA certificates to trust (besides the system's).
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Start TLS before the server's INFO (servers with `handshake_first`).
    pub first: bool,
}

impl Tls {
    /// True when any TLS setting is given.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() || self.first
    }
}

/// Why a connection could not be set up or was refused: one line each.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The options contradict each other or name files that cannot be read.
    #[error("{0}")]
    Options(String),
    /// The server refused the connection, or could not be reached.
    #[error("cannot connect to NATS at {url}: {cause}")]
    Refused {
        /// The URL, its user info redacted.
        url: String,
        /// The cause, once.
        cause: String,
    },
}

/// The URL list as it may be shown: `user:pass@` or `token@` replaced by
/// `<redacted>@`.
pub fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(|u| {
            let u = u.trim();
            let (scheme, rest) = match u.split_once("://") {
                Some((s, r)) => (Some(s), r),
                None => (None, u),
            };
            let rest = match rest.rsplit_once('@') {
                Some((_, host)) => format!("<redacted>@{host}"),
                None => rest.to_string(),
            };
            match scheme {
                Some(s) => format!("{s}://{rest}"),
                None => rest,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// User info of the first URL that has any: `(user, Some(password))`, or
/// `(token, None)`.
fn url_credentials(urls: &str) -> Option<(String, Option<String>)> {
    urls.split(',').find_map(|u| {
        let rest = u.trim().split_once("://").map_or(u.trim(), |(_, r)| r);
        let (info, _) = rest.rsplit_once('@')?;
        let decode = |s: &str| {
            // Percent-escapes, as a URL carries them.
            let mut out = Vec::with_capacity(s.len());
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    if let Some(b) = s
                        .get(i + 1..i + 3)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        Some(match info.split_once(':') {
            Some((user, pass)) => (decode(user), Some(decode(pass))),
            None => (decode(info), None),
        })
    })
}

/// The URL list without user info, as async-nats is given it.
fn bare_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| {
            let u = u.trim();
            match u.split_once("://") {
                Some((scheme, rest)) => {
                    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                    format!("{scheme}://{host}")
                }
                None => u.rsplit_once('@').map_or(u, |(_, h)| h).to_string(),
            }
        })
        .collect()
}

fn read(path: &Path, what: &str) -> Result<String, ConnectError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConnectError::Options(format!("cannot read {what} {}: {e}", path.display())))
}

fn require_file(path: &Path, what: &str) -> Result<(), ConnectError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConnectError::Options(format!(
            "{what} {} does not exist",
            path.display()
        )))
    }
}

/// The async-nats options for these credentials and TLS settings, and the
/// URLs to dial. Files are read here, so a missing one fails before any
/// connection is tried.
pub fn client_options(
    urls: &str,
    auth: &Auth,
    tls: &Tls,
) -> Result<(async_nats::ConnectOptions, Vec<String>), ConnectError> {
    let mut options = async_nats::ConnectOptions::new();
    match url_credentials(urls) {
        Some((user, Some(pass))) => options = options.user_and_password(user, pass),
        Some((token, None)) => options = options.token(token),
        None => {}
    }
    match auth {
        Auth::None => {}
        Auth::CredsFile(path) => {
            let text = read(path, "credentials file")?;
            options = options.credentials(&text).map_err(|_| {
                ConnectError::Options(format!(
                    "{} is not a NATS credentials file (a user JWT and an nkey seed)",
                    path.display()
                ))
            })?;
        }
        Auth::Jwt { jwt, seed } => {
            let key = nkeys::KeyPair::from_seed(seed.expose().trim()).map_err(|_| {
                ConnectError::Options("--nats-seed is not a valid nkey seed".into())
            })?;
            let key = Arc::new(key);
            options = options.jwt(jwt.trim().to_string(), move |nonce| {
                let key = Arc::clone(&key);
                async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
            });
        }
        Auth::NkeyFile(path) => {
            let seed = read(path, "nkey seed file")?;
            let seed = seed.trim().to_string();
            if nkeys::KeyPair::from_seed(&seed).is_err() {
                return Err(ConnectError::Options(format!(
                    "{} does not hold an nkey seed",
                    path.display()
                )));
            }
            options = options.nkey(seed);
        }
    }
    let tls_url = urls.split(',').any(|u| u.trim().starts_with("tls://"));
    if tls.is_set() || tls_url {
        options = options.require_tls(true);
    }
    if let Some(ca) = &tls.ca_file {
        require_file(ca, "TLS CA file")?;
        options = options.add_root_certificates(ca.clone());
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            require_file(cert, "TLS certificate")?;
            require_file(key, "TLS key")?;
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        (None, None) => {}
        _ => {
            return Err(ConnectError::Options(
                "--nats-tls-cert and --nats-tls-key go together".into(),
            ))
        }
    }
    if tls.first {
        options = options.tls_first();
    }
    Ok((options, bare_urls(urls)))
}

/// An error's chain in one line, each distinct part once (async-nats
/// repeats its source inside its own message).
pub fn chain_once(err: &(dyn std::error::Error + 'static)) -> String {
    let chain = error_chain(err);
    let mut parts: Vec<&str> = Vec::new();
    for part in chain.split(": ") {
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// One line for a failed connect: the cause in words a user acts on, and
/// the detail once.
pub fn refused(urls: &str, err: &async_nats::ConnectError) -> ConnectError {
    use async_nats::ConnectErrorKind as K;
    let detail = chain_once(err);
    let detail = detail
        .strip_prefix("IO error: ")
        .unwrap_or(&detail)
        .to_string();
    // rustls' failures arrive as I/O errors: tell them by their words.
    let tls = ["certificate", "alert", "tls", "TLS", "handshake"]
        .iter()
        .any(|w| detail.contains(w));
    let cause = match err.kind() {
        K::AuthorizationViolation => {
            "the server refused the credentials (authorization violation)".to_string()
        }
        K::Authentication => format!("cannot sign the server's challenge ({detail})"),
        K::TimedOut => "no answer in time".to_string(),
        _ if detail.contains("CertificateRequired") => format!(
            "TLS failed: the server requires a client certificate \
             (--nats-tls-cert and --nats-tls-key) ({detail})"
        ),
        _ if detail.contains("UnknownIssuer") => format!(
            "TLS failed: the server's certificate is signed by a CA this host \
             does not trust (--nats-tls-ca) ({detail})"
        ),
        K::Tls => format!("TLS failed ({detail})"),
        _ if tls => format!("TLS failed ({detail})"),
        _ => detail,
    };
    ConnectError::Refused {
        url: redact_url(urls),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_never_shows() {
        assert_eq!(
            redact_url("nats://alice:s3cret@h:4222, tls://tok@g:1"),
            "nats://<redacted>@h:4222,tls://<redacted>@g:1"
        );
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        assert_eq!(format!("{:?}", Secret::new("SUABC")), "<redacted>");
        let auth = Auth::Jwt {
            jwt: "eyJ".into(),
            seed: Secret::new("SUSEED"),
        };
        assert!(!format!("{auth:?}").contains("SUSEED"));
    }

    #[test]
    fn credentials_come_from_the_url() {
        assert_eq!(
            url_credentials("nats://h:1,nats://bob:p%40ss@h:2"),
            Some(("bob".into(), Some("p@ss".into())))
        );
        assert_eq!(
            url_credentials("nats://tok@h:1"),
            Some(("tok".into(), None))
        );
        assert_eq!(url_credentials("nats://h:1"), None);
        assert_eq!(
            bare_urls("nats://a:b@h:1, tls://h:2"),
            ["nats://h:1", "tls://h:2"]
        );
    }

    #[test]
    fn missing_files_and_half_pairs_fail_before_connecting() {
        let missing = Auth::CredsFile("/nonexistent/x.creds".into());
        let e = client_options("nats://h:1", &missing, &Tls::default()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.creds"), "{e}");
        let half = Tls {
            cert_file: Some("/etc/hostname".into()),
            ..Tls::default()
        };
        let e = client_options("nats://h:1", &Auth::None, &half).unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
        let bad_seed = Auth::Jwt {
            jwt: "x".into(),
            seed: Secret::new("not-a-seed"),
        };
        let e = client_options("nats://h:1", &bad_seed, &Tls::default()).unwrap_err();
        assert!(!e.to_string().contains("not-a-seed"), "{e}");
    }
}
