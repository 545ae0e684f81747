//! spec-host on secured lattices, each against a real nats-server the test
//! configures: operator mode with JWT accounts and a creds file, an nkey
//! user, TLS with client certificates, a leaf node whose JetStream lives in
//! the hub's domain, and a control topic prefix of the lattice's own. A
//! refused connection fails at once, in one line that names its cause.

use std::time::{Duration, Instant};

use bytes::Bytes;
use spec_e2e::secure::{hub_and_leaf, secured_server, stranger_creds, Operator, Pki};
use spec_e2e::{serve_with, ServeOptions};
use spec_embed::backend::KeyValue;
use spec_nats::{Auth, Lattice, LatticeOptions, LocalNatsServer, Secret, ServerOptions, Tls};

fn options(url: &str, lattice: &str) -> LatticeOptions {
    LatticeOptions::new(url, lattice)
}

/// Opens the lattice; on failure the error's text and how long it took.
async fn open(options: LatticeOptions) -> Result<Lattice, (String, Duration)> {
    let started = Instant::now();
    Lattice::open(options)
        .await
        .map_err(|e| (e.to_string(), started.elapsed()))
}

/// A refusal: one line, naming `cause`, before the connect bound (no retry
/// loop), never showing `secret`.
fn assert_refused(
    what: &str,
    result: Result<Lattice, (String, Duration)>,
    cause: &str,
    secret: &str,
) {
    let Err((text, took)) = result else {
        panic!("{what}: connected, but must be refused");
    };
    println!("{what}: refused in {took:?}: {text}");
    assert!(
        text.contains(cause),
        "{what}: {text:?} does not name {cause:?}"
    );
    assert!(!text.contains('\n'), "{what}: more than one line: {text:?}");
    assert!(
        secret.is_empty() || !text.contains(secret),
        "{what}: shows a secret: {text}"
    );
    assert!(took < Duration::from_secs(6), "{what}: took {took:?}");
}

/// A link put through the control subject `prefix` on `client`; the reply.
async fn put_link(client: &async_nats::Client, prefix: &str, source: &str) -> serde_json::Value {
    let link = serde_json::json!({
        "source_id": source, "target": "kvredis", "name": "default",
        "wit_namespace": "wasi", "wit_package": "keyvalue", "interfaces": ["store"],
    });
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(format!("{prefix}.put"), Bytes::from(link.to_string())),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    serde_json::from_slice(&reply.payload).expect("a CtlResponse")
}

fn stored_links(value: &[u8]) -> usize {
    spec_model::json::decode_spec(value)
        .map(|s| s.links.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn operator_mode_with_a_creds_file_serves_the_lattice() {
    let dir = tempfile::tempdir().unwrap();
    let op = Operator::new();
    let server = secured_server(dir.path(), op.config.clone()).await;
    let url = server.url();
    let creds = op.user_creds(dir.path(), "host");

    let mut connection = options(&url, "secured");
    connection.auth = Auth::CredsFile(creds.clone());
    let served = serve_with(
        &url,
        "secured",
        ServeOptions {
            providers: vec!["kvredis".into()],
            connection: Some(connection),
            ..ServeOptions::default()
        },
    )
    .await;

    // A client of the same account (JWT + seed, wasmCloud's pair) asks.
    let (jwt, seed) = op.user_jwt("client");
    let mut as_client = options(&url, "secured");
    as_client.auth = Auth::Jwt {
        jwt,
        seed: Secret::new(seed.clone()),
    };
    let client_lattice = open(as_client).await.expect("JWT + seed admitted");
    let reply = put_link(&client_lattice.client, "wasmbus.ctl.v1.secured.link", "app").await;
    assert_eq!(reply["success"], true, "{reply}");
    let stored = client_lattice
        .specs
        .get("COMPONENT_app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored_links(&stored), 1);

    assert_refused(
        "no credentials",
        open(options(&url, "secured")).await,
        "authorization violation",
        "",
    );
    let mut stranger = options(&url, "secured");
    stranger.auth = Auth::CredsFile(stranger_creds(dir.path()));
    assert_refused(
        "a user of an unknown account",
        open(stranger).await,
        "authorization violation",
        "",
    );
    let mut bad_seed = options(&url, "secured");
    bad_seed.auth = Auth::Jwt {
        jwt: "not.a.jwt".into(),
        seed: Secret::new("SUNOTASEEDATALL"),
    };
    assert_refused(
        "a seed that is no seed",
        open(bad_seed).await,
        "--nats-seed",
        "SUNOTASEEDATALL",
    );
    let mut missing = options(&url, "secured");
    missing.auth = Auth::CredsFile(dir.path().join("absent.creds"));
    assert_refused(
        "a missing creds file",
        open(missing).await,
        "absent.creds",
        "",
    );
    served.stop().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn an_nkey_user_is_admitted_and_anyone_else_refused() {
    let dir = tempfile::tempdir().unwrap();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, &seed).unwrap();
    let mut server = ServerOptions::new(dir.path().join("js"));
    server.nkey_users = vec![user.public_key()];
    let server = LocalNatsServer::start(server).await.unwrap();

    let mut admitted = options(&server.url(), "nk");
    admitted.auth = Auth::NkeyFile(seed_file);
    let lattice = open(admitted).await.expect("the nkey user is admitted");
    let kv = lattice.key_value();
    let revision = kv.set("COMPONENT_x", b"{}".to_vec()).await.unwrap();
    assert!(revision > 0);

    assert_refused(
        "no nkey",
        open(options(&server.url(), "nk")).await,
        "authorization violation",
        "",
    );
    let other = nkeys::KeyPair::new_user();
    let other_file = dir.path().join("other.nk");
    std::fs::write(&other_file, other.seed().unwrap()).unwrap();
    let mut refused = options(&server.url(), "nk");
    refused.auth = Auth::NkeyFile(other_file);
    assert_refused(
        "another nkey",
        open(refused).await,
        "authorization violation",
        &seed,
    );
    // A password in the URL never shows in the error.
    let with_password = server.url().replace("nats://", "nats://alice:hunter2@");
    assert_refused(
        "a password in the URL",
        open(options(&with_password, "nk")).await,
        "authorization violation",
        "hunter2",
    );
}

#[tokio::test]
async fn tls_with_a_test_ca_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = secured_server(dir.path(), pki.server_config(true)).await;
    let url = format!("tls://127.0.0.1:{}", server.port());
    let tls = Tls {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        first: false,
    };
    let mut good = options(&url, "tls");
    good.tls = tls.clone();
    let lattice = open(good)
        .await
        .expect("CA and client certificate admitted");
    lattice
        .key_value()
        .set("COMPONENT_t", b"{\"url\":\"u\",\"links\":[]}".to_vec())
        .await
        .unwrap();

    let mut no_client_cert = options(&url, "tls");
    no_client_cert.tls = Tls {
        cert_file: None,
        key_file: None,
        ..tls.clone()
    };
    let refused = open(no_client_cert).await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused"
    );
    assert_refused(
        "no client certificate",
        refused,
        "cannot connect to NATS",
        "",
    );
    let mut unknown_ca = options(&url, "tls");
    unknown_ca.tls = Tls {
        ca_file: Some(pki.other_ca.clone()),
        ..tls.clone()
    };
    assert_refused(
        "a server certificate of an unknown CA",
        open(unknown_ca).await,
        "TLS",
        "",
    );
    // Plain NATS to a TLS-only server.
    let plain = format!("nats://127.0.0.1:{}", server.port());
    assert!(open(options(&plain, "tls")).await.is_err());
}

#[tokio::test]
async fn a_host_on_a_leaf_node_keeps_its_specs_in_the_hub_s_domain() {
    let dir = tempfile::tempdir().unwrap();
    let servers = hub_and_leaf(dir.path()).await;
    let leaf_url = servers.leaf.url();
    let mut on_leaf = options(&leaf_url, "leafy");
    on_leaf.js_domain = Some("hub".into());
    // The leaf connects to the hub a moment after it starts.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match open(on_leaf.clone()).await {
            Ok(_) => break,
            Err((e, _)) if Instant::now() < deadline => {
                println!("leaf not yet joined: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err((e, _)) => panic!("the hub's domain never answered through the leaf: {e}"),
        }
    }
    let served = serve_with(
        &leaf_url,
        "leafy",
        ServeOptions {
            connection: Some(on_leaf.clone()),
            ..ServeOptions::default()
        },
    )
    .await;
    let client = async_nats::connect(&leaf_url).await.unwrap();
    let reply = put_link(&client, "wasmbus.ctl.v1.leafy.link", "edge").await;
    assert_eq!(reply["success"], true, "{reply}");

    // The spec is in the hub's bucket.
    let hub = open(options(&servers.hub.url(), "leafy"))
        .await
        .expect("hub");
    let stored = hub
        .specs
        .get("COMPONENT_edge")
        .await
        .unwrap()
        .expect("stored in the hub");
    assert_eq!(stored_links(&stored), 1);
    // A delete through the leaf reaches the hub too (published on
    // $JS.hub.API.$KV…, since plain $KV subjects do not cross).
    let leaf_lattice = open(on_leaf).await.unwrap();
    leaf_lattice
        .key_value()
        .delete("COMPONENT_edge")
        .await
        .unwrap();
    assert!(hub
        .key_value()
        .get("COMPONENT_edge")
        .await
        .unwrap()
        .is_none());

    let mut wrong = options(&leaf_url, "leafy");
    wrong.js_domain = Some("nowhere".into());
    let result = open(wrong).await;
    let Err((text, took)) = result else {
        panic!("a domain nobody serves must be refused")
    };
    println!("wrong domain: refused in {took:?}: {text}");
    assert!(
        text.contains("nowhere") && text.contains("--js-domain"),
        "{text}"
    );
    served.stop().await.unwrap();
}

#[tokio::test]
async fn a_control_prefix_of_the_lattice_s_own_is_served_and_the_default_is_not() {
    let n = spec_e2e::nats().await;
    let url = n.server.url();
    let mut custom = options(&url, "pfx");
    custom.ctl_prefix = "acme.ctl".into();
    let served = serve_with(
        &url,
        "pfx",
        ServeOptions {
            connection: Some(custom),
            ..ServeOptions::default()
        },
    )
    .await;
    let client = async_nats::connect(&url).await.unwrap();
    let reply = put_link(&client, "acme.ctl.v1.pfx.link", "app").await;
    assert_eq!(reply["success"], true, "{reply}");
    let default = client
        .request("wasmbus.ctl.v1.pfx.link.get", Bytes::new())
        .await;
    assert!(
        default.is_err(),
        "nobody serves the default prefix: {default:?}"
    );
    let get = client
        .request("acme.ctl.v1.pfx.link.get", Bytes::new())
        .await
        .expect("link.get under the lattice's prefix");
    let body: serde_json::Value = serde_json::from_slice(&get.payload).unwrap();
    assert_eq!(body["response"].as_array().map(Vec::len), Some(1), "{body}");
    served.stop().await.unwrap();
}

#[test]
fn lattice_errors_name_no_secret() {
    let mut o = options("nats://bob:pa55word@127.0.0.1:1", "x");
    o.auth = Auth::Jwt {
        jwt: "j".into(),
        seed: Secret::new("SUSECRETSEED"),
    };
    let shown = format!("{o:?} {}", o.shown_url());
    assert!(!shown.contains("pa55word"), "{shown}");
    assert!(!shown.contains("SUSECRETSEED"), "{shown}");
}
