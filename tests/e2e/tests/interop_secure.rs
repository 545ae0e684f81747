//! The interop suite on secured lattices: the real wasmCloud v1.9 host
//! (`wasmcloud-host` 0.27.1, started with its secured-lattice options) and
//! `spec-host serve` (with its own) serve one lattice on the same secured
//! nats-server, driven by wasmCloud's control client:
//!
//! * operator mode with a creds file each, TLS with a test CA, and a
//!   control topic prefix of the lattice's own;
//! * a leaf node whose JetStream is the hub's (`--js-domain hub`).
//!
//! Both serve the control subjects in wasmCloud's queue group, so either
//! answers a request; each test then checks that both tables hold what was
//! acknowledged, the wasmCloud host's through its own `link.get` once
//! spec-host has stopped. Needs the wasmCloud host binary, so every test is
//! ignored in a plain `cargo test`; `./run.sh interop` runs them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use spec_e2e::secure::{hub_and_leaf, secured_server, Operator, Pki};
use spec_e2e::{kv_link, serve_with, wasmcloud, ServeOptions, Served};
use spec_nats::{Auth, Lattice, LatticeOptions, Tls};

/// How long a change may take to reach the other host.
const WAIT: Duration = Duration::from_secs(15);
const LINKS: usize = 20;

/// wasmCloud's control client over an async-nats 0.39 connection made by
/// `connect`, with this topic prefix.
fn ctl(
    nc: async_nats_039::Client,
    lattice: &str,
    prefix: &str,
) -> wasmcloud_control_interface::Client {
    wasmcloud_control_interface::ClientBuilder::new(nc)
        .lattice(lattice)
        .topic_prefix(prefix)
        .timeout(Duration::from_secs(20))
        .build()
}

/// `spec-host serve` with provider `kvredis`, connected as `connection`
/// says.
async fn serve_on(connection: LatticeOptions) -> Served {
    let (url, lattice) = (connection.url.clone(), connection.lattice.clone());
    let options = ServeOptions {
        providers: vec!["kvredis".into()],
        connection: Some(connection),
        ..ServeOptions::default()
    };
    serve_with(&url, &lattice, options).await
}

/// Puts `LINKS` links `app{i} -> kvredis` through the queue group; every
/// one must be acknowledged.
async fn put_links(client: &wasmcloud_control_interface::Client) {
    for i in 0..LINKS {
        let reply = client
            .put_link(kv_link(&format!("app{i}"), "kvredis", "default", &[]))
            .await
            .expect("link.put answered");
        assert!(reply.succeeded(), "link.put refused: {}", reply.message());
    }
}

/// Waits until spec-host's table holds every link.
async fn spec_host_holds_all(served: &Served) {
    let started = Instant::now();
    while served.service.host.links().len() < LINKS {
        assert!(started.elapsed() < WAIT, "spec-host's table has every link");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With spec-host stopped, the wasmCloud host alone answers `link.get`:
/// its own table must hold every link.
async fn wasmcloud_holds_all(client: &wasmcloud_control_interface::Client) {
    let started = Instant::now();
    loop {
        let reply = client.get_links().await.expect("link.get answered");
        assert!(reply.succeeded(), "{}", reply.message());
        let links = reply.data().cloned().unwrap_or_default();
        if links.len() == LINKS {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "the wasmCloud host's table holds {} of {LINKS} links",
            links.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Collects the distinct sources of `linkdefs.put` deliveries until all
/// `LINKS` were heard.
async fn heard_every_link(mut deliveries: async_nats::Subscriber) {
    let mut sources = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while sources.len() < LINKS {
        let msg = tokio::time::timeout_at(deadline, deliveries.next())
            .await
            .unwrap_or_else(|_| panic!("the provider heard {} of {LINKS} links", sources.len()))
            .expect("subscription open");
        let link: serde_json::Value = serde_json::from_slice(&msg.payload).expect("a linkdef");
        if let Some(source) = link["source_id"].as_str() {
            sources.insert(source.to_string());
        }
    }
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn creds_tls_and_a_control_prefix_one_lattice_served_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let op = Operator::new();
    let pki = Pki::new(dir.path());
    // Operator mode and TLS (server certificate from the test CA; the
    // wasmCloud host has no client-certificate option, so none is asked).
    let server = secured_server(
        dir.path(),
        format!("{}{}", op.config, pki.server_config(false)),
    )
    .await;
    let url = format!("tls://127.0.0.1:{}", server.port());
    let (lattice, prefix) = ("secure1", "acme.ctl");

    let wasmcloud_creds = op.user_creds(dir.path(), "wasmcloud");
    let _wasmcloud = wasmcloud::start(
        &url,
        lattice,
        &[
            "--creds",
            &wasmcloud_creds.display().to_string(),
            "--tls",
            "--tls-ca",
            &pki.ca.display().to_string(),
            "--ctl-topic-prefix",
            prefix,
        ],
    )
    .await;

    let mut connection = LatticeOptions::new(&url, lattice);
    connection.auth = Auth::CredsFile(op.user_creds(dir.path(), "spec-host"));
    connection.tls = Tls {
        ca_file: Some(pki.ca.clone()),
        ..Tls::default()
    };
    connection.ctl_prefix = prefix.to_string();
    let provider_side = Lattice::open(connection.clone()).await.expect("admitted");
    let deliveries = provider_side
        .client
        .subscribe(format!("wasmbus.rpc.{lattice}.kvredis.linkdefs.put"))
        .await
        .unwrap();
    provider_side.client.flush().await.unwrap();
    let served = serve_on(connection).await;

    let client_creds = op.user_creds(dir.path(), "wash");
    let nc = async_nats_039::ConnectOptions::with_credentials_file(client_creds)
        .await
        .unwrap()
        .add_root_certificates(pki.ca.clone())
        .require_tls(true)
        .connect(url.as_str())
        .await
        .expect("the control client is admitted");
    let client = ctl(nc.clone(), lattice, prefix);

    // The wasmCloud host answers host.ping under the lattice's prefix (and
    // spec-host's census sees it there); nobody answers under the default.
    let hosts = client.get_hosts().await.unwrap();
    assert_eq!(hosts.len(), 1, "the wasmCloud host answers under {prefix}");
    let default_prefix = ctl(nc, lattice, "wasmbus.ctl")
        .get_hosts()
        .await
        .unwrap_or_default();
    assert!(
        default_prefix.is_empty(),
        "nobody answers under wasmbus.ctl"
    );
    let started = Instant::now();
    while served.service.census().wasmcloud_hosts == 0 {
        assert!(
            started.elapsed() < WAIT,
            "spec-host's census sees the wasmCloud host"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    put_links(&client).await;
    spec_host_holds_all(&served).await;
    heard_every_link(deliveries).await;
    served.stop().await.unwrap();
    wasmcloud_holds_all(&client).await;
    eprintln!("INTEROP secured (creds, TLS, prefix {prefix}): {LINKS} links acknowledged, in both tables, the provider heard every link");
}

#[tokio::test]
#[ignore = "needs the wasmCloud v1.9 host: ./run.sh interop"]
async fn a_leaf_node_with_the_hub_s_domain_one_lattice_served_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let servers = hub_and_leaf(dir.path()).await;
    let leaf = servers.leaf.url();
    let lattice = "leafy";
    let _wasmcloud = wasmcloud::start(&leaf, lattice, &["--js-domain", "hub"]).await;

    let mut connection = LatticeOptions::new(&leaf, lattice);
    connection.js_domain = Some("hub".into());
    let served = serve_on(connection).await;
    let nc = async_nats_039::connect(leaf.as_str()).await.unwrap();
    let client = ctl(nc, lattice, "wasmbus.ctl");

    put_links(&client).await;
    spec_host_holds_all(&served).await;
    // Stored in the hub's bucket: the hub itself has every spec.
    let on_hub = Lattice::open(LatticeOptions::new(servers.hub.url(), lattice))
        .await
        .expect("the hub");
    for i in 0..LINKS {
        let stored = on_hub.specs.get(format!("COMPONENT_app{i}")).await.unwrap();
        assert!(stored.is_some(), "app{i} is in the hub's bucket");
    }
    served.stop().await.unwrap();
    wasmcloud_holds_all(&client).await;
    eprintln!("INTEROP leaf node, domain hub: {LINKS} links acknowledged, in the hub's bucket and both tables");
}
