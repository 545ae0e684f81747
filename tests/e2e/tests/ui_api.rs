//! The HTTP API of `spec-host ui` without a browser: a real nats-server, a
//! serving host answering the edits, the UI server in process, and plain
//! HTTP/1.1 requests. (The browser test is `./run.sh ui-browser-test`.)

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use spec_e2e::{nats, nats_host, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request; (status, body). `host` overrides the Host header.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    host: Option<&str>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let host = host.map_or(format!("127.0.0.1:{port}"), str::to_string);
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn until<F: AsyncFn() -> bool>(what: &str, f: F) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_api_shows_the_lattice_and_edits_through_the_hosts() {
    let server = nats().await;
    let url = server.server.url();
    let lattice = "ui-api";
    let _served = serve(&url, lattice, &["kvredis"], None).await;
    let view = nats_host(&url, lattice, &[]).await;
    // A spec that does not decode, written by someone else.
    view.lattice
        .specs
        .put("COMPONENT_broken", Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    view.lattice
        .configs
        .put("SECRET_pw", Bytes::from_static(br#"{"backend":"nats"}"#))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ui = tokio::spawn(spec_lattice::ui::serve(
        view.lattice.clone(),
        view.host.clone(),
        listener,
        None,
        async move {
            let _ = stopped.await;
        },
    ));

    let put = r#"{"source_id":"app","target":"kvredis","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"]}"#;
    let (status, body) = http(port, "POST", "/api/links", Some(put), None).await;
    assert_eq!(
        (status, json(&body)["success"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    until("the link in the snapshot", async || {
        let (_, body) = http(port, "GET", "/api/snapshot", None, None).await;
        let snap = json(&body);
        snap["components"][0]["links"][0]["target"] == "kvredis"
            && snap["undecodable"][0]["key"] == "COMPONENT_broken"
            && snap["configs"][0]["secret_reference"] == true
            && snap["configs"][0]["values"].is_null()
            && snap["hosts"].as_array().is_some_and(|h| !h.is_empty())
    })
    .await;

    // The same rules and words as `wash link put`.
    let conflict = put.replace("\"kvredis\"", "\"other\"");
    let (status, body) = http(port, "POST", "/api/links", Some(&conflict), None).await;
    assert_eq!(status, 200);
    let reply = json(&body);
    assert_eq!(reply["success"], false);
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{body}"
    );

    let (status, body) = http(port, "GET", "/api/components/app", None, None).await;
    assert_eq!(status, 200, "{body}");
    let details = json(&body);
    assert_eq!(
        details["import_links"][0]["interface"],
        "wasi:keyvalue/store"
    );
    let (status, body) = http(port, "GET", "/api/components/kvredis", None, None).await;
    assert_eq!(
        (status, json(&body)["inbound"][0]["source_id"].as_str()),
        (200, Some("app"))
    );
    assert_eq!(
        http(port, "GET", "/api/components/nope", None, None)
            .await
            .0,
        404
    );
    assert_eq!(
        http(port, "GET", "/api/components/bad%20id", None, None)
            .await
            .0,
        400
    );
    assert_eq!(
        http(port, "POST", "/api/links", Some("{"), None).await.0,
        400
    );
    // Another site's page cannot reach it through a browser.
    assert_eq!(
        http(port, "GET", "/api/snapshot", None, Some("evil.example:80"))
            .await
            .0,
        403
    );

    let del = r#"{"source_id":"app","wit_namespace":"wasi","wit_package":"keyvalue"}"#;
    let (status, body) = http(port, "POST", "/api/links/delete", Some(del), None).await;
    assert_eq!(
        (status, json(&body)["message"].as_str()),
        (200, Some("successfully deleted link"))
    );
    until("the delete in the snapshot", async || {
        let (_, body) = http(port, "GET", "/api/snapshot", None, None).await;
        json(&body)["components"][0]["links"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    let (status, body) = http(port, "GET", "/", None, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("app.js"));

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), ui)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

/// A request with exactly these header lines; the status, read without
/// waiting for the body (an event stream never ends).
async fn status_of(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_api_request_needs_it_and_foreign_writes_are_refused() {
    let server = nats().await;
    let url = server.server.url();
    let view = nats_host(&url, "ui-token", &[]).await;
    // Beyond loopback a token is required.
    let open = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused =
        spec_lattice::ui::serve(view.lattice.clone(), view.host.clone(), open, None, async {
        })
        .await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("needs a token")),
        "a server beyond loopback without a token must not start"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let token = spec_lattice::ui::generate_token().unwrap();
    assert_eq!(token.len(), 64);
    let ui = tokio::spawn(spec_lattice::ui::serve(
        view.lattice.clone(),
        view.host.clone(),
        listener,
        Some(token.clone()),
        async move {
            let _ = stopped.await;
        },
    ));
    let bearer = format!("Authorization: Bearer {token}");
    let json_type = "Content-Type: application/json";
    let put = r#"{"source_id":"app","target":"kv","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"]}"#;
    until("the server answers", async || {
        status_of(port, "GET", "/api/snapshot", &[&bearer], "").await == 200
    })
    .await;
    // Reads, the event stream and writes without the token: 401.
    assert_eq!(status_of(port, "GET", "/api/snapshot", &[], "").await, 401);
    assert_eq!(status_of(port, "GET", "/api/events", &[], "").await, 401);
    assert_eq!(
        status_of(
            port,
            "GET",
            "/api/snapshot",
            &["Authorization: Bearer wrong"],
            ""
        )
        .await,
        401
    );
    assert_eq!(
        status_of(port, "POST", "/api/links", &[json_type], put).await,
        401
    );
    // With it: the page (no token needed for its files), the event stream
    // by query (a browser's EventSource sends no headers), reads.
    assert_eq!(status_of(port, "GET", "/", &[], "").await, 200);
    let events = format!("/api/events?token={token}");
    assert_eq!(status_of(port, "GET", &events, &[], "").await, 200);
    assert_eq!(
        status_of(port, "GET", "/api/components/app", &[&bearer], "").await,
        404
    );
    // A write that another site's page could send is refused even with the
    // token: not JSON, or from a foreign Origin.
    assert_eq!(
        status_of(
            port,
            "POST",
            "/api/links",
            &[&bearer, "Content-Type: text/plain"],
            put
        )
        .await,
        415
    );
    assert_eq!(
        status_of(
            port,
            "POST",
            "/api/links",
            &[&bearer, json_type, "Origin: http://evil.example"],
            put
        )
        .await,
        403
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), ui)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
