//! Secured nats-servers for tests, each made fresh in a test's own
//! directory: operator mode with JWT accounts and `.creds` files, nkey
//! users, TLS with a test CA and client certificates, and a hub with a leaf
//! node in another JetStream domain.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};
use spec_nats::server::free_port;
use spec_nats::{LocalNatsServer, ServerOptions};

/// A NATS JWT: `issuer` signs `claims` about `subject`.
pub fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let claims = json!({
        "jti": format!("TEST{now}X{serial}X{}", std::process::id()),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("nkey signs");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A `.creds` file's text for a user JWT and its seed.
pub fn creds(user_jwt: &str, user: &KeyPair) -> String {
    let seed = user.seed().expect("user seed");
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

fn account_claims() -> Value {
    json!({
        "type": "account",
        "version": 2,
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
        },
        "default_permissions": { "pub": {}, "sub": {} }
    })
}

fn user_claims() -> Value {
    json!({ "type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1 })
}

/// An operator with a system account and one application account, and the
/// server configuration that trusts them.
pub struct Operator {
    /// The application account's key (it signs its users).
    pub account: KeyPair,
    /// The server configuration (operator mode, memory resolver).
    pub config: String,
}

impl Operator {
    /// A fresh operator, system account and application account.
    pub fn new() -> Operator {
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let account = KeyPair::new_account();
        let op_jwt = jwt(
            &operator,
            &operator.public_key(),
            "test-operator",
            json!({ "type": "operator", "version": 2, "system_account": system.public_key() }),
        );
        let sys_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            json!({ "type": "account", "version": 2, "limits": { "subs": -1, "data": -1, "payload": -1, "conn": -1 } }),
        );
        let app_jwt = jwt(&operator, &account.public_key(), "APP", account_claims());
        let config = format!(
            "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {sys}: {sys_jwt}\n  {app}: {app_jwt}\n}}\n",
            sys = system.public_key(),
            app = account.public_key(),
        );
        Operator { account, config }
    }

    /// A new user of the application account, as a `.creds` file in `dir`.
    pub fn user_creds(&self, dir: &Path, name: &str) -> PathBuf {
        let user = KeyPair::new_user();
        let user_jwt = jwt(&self.account, &user.public_key(), name, user_claims());
        let path = dir.join(format!("{name}.creds"));
        std::fs::write(&path, creds(&user_jwt, &user)).expect("write creds");
        path
    }

    /// A user JWT and seed of the application account, for `--nats-jwt`
    /// and `--nats-seed`.
    pub fn user_jwt(&self, name: &str) -> (String, String) {
        let user = KeyPair::new_user();
        let user_jwt = jwt(&self.account, &user.public_key(), name, user_claims());
        (user_jwt, user.seed().expect("seed"))
    }
}

impl Default for Operator {
    fn default() -> Self {
        Operator::new()
    }
}

/// A user signed by an account the server has never heard of.
pub fn stranger_creds(dir: &Path) -> PathBuf {
    let other = Operator::new();
    other.user_creds(dir, "stranger")
}

/// A test CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate, and a second CA that signed none of them; PEM files in
/// `dir`.
pub struct Pki {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// Another CA, trusted by nobody here.
    pub other_ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client's certificate.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
}

impl Pki {
    /// Makes every certificate afresh.
    pub fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair as Key};
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        let make_ca = |name: &str| {
            let key = Key::generate().expect("ca key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("ca cert");
            (cert, key)
        };
        let (ca_cert, ca_key) = make_ca("spec-host test CA");
        let (other_cert, _) = make_ca("another CA");
        let leaf = |sans: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose| {
            let key = Key::generate().expect("key");
            let mut params = CertificateParams::new(sans).expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).expect("signed");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_pem, client_key) = leaf(
            vec!["spec-host-client".into()],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            server_cert: write("server.pem", server_pem),
            server_key: write("server-key.pem", server_key),
            client_cert: write("client.pem", client_pem),
            client_key: write("client-key.pem", client_key),
        }
    }

    /// The server's `tls` block; `verify`: client certificates required.
    pub fn server_config(&self, verify: bool) -> String {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n  timeout: 2\n}}\n",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca.display()
        )
    }
}

/// Starts a JetStream server in `dir` with this extra configuration.
pub async fn secured_server(dir: &Path, config: String) -> LocalNatsServer {
    let mut options = ServerOptions::new(dir.join("js"));
    options.config = Some(config);
    match LocalNatsServer::start(options).await {
        Ok(s) => s,
        Err(e) => panic!("secured nats-server: {e}"),
    }
}

/// A hub with JetStream in domain `hub` and a leaf node without JetStream
/// connected to it.
pub struct HubAndLeaf {
    /// The hub (JetStream domain `hub`).
    pub hub: LocalNatsServer,
    /// The leaf node (no JetStream of its own).
    pub leaf: LocalNatsServer,
}

/// Starts a hub and a leaf in `dir`.
pub async fn hub_and_leaf(dir: &Path) -> HubAndLeaf {
    let leaf_port = free_port().expect("free port");
    let mut hub = ServerOptions::new(dir.join("hub"));
    hub.jetstream = false;
    hub.config = Some(format!(
        "jetstream {{ store_dir: \"{}\", domain: hub }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n",
        dir.join("hub/js").display()
    ));
    let hub = LocalNatsServer::start(hub).await.expect("hub starts");
    let mut leaf = ServerOptions::new(dir.join("leaf"));
    leaf.jetstream = false;
    leaf.config = Some(format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ] }}\n"
    ));
    let leaf = LocalNatsServer::start(leaf).await.expect("leaf starts");
    HubAndLeaf { hub, leaf }
}
