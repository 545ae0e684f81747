//! The `spec-host` binary as a user runs it: no server started by hand,
//! data kept between runs, clear errors, clean shutdown on SIGTERM.

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_spec-host");

fn run(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("spec-host runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until the `serve` named `host_id` answers `status`; `nats` are the
/// arguments that point at its NATS (none: the state dir's local server).
fn wait_until_serving(state: &std::path::Path, nats: &[&str], host_id: &str) {
    let started = Instant::now();
    let mut args = nats.to_vec();
    args.extend(["--json", "status", "--wait-ms", "300"]);
    loop {
        let out = run(state, &args);
        if String::from_utf8_lossy(&out.stdout).contains(host_id) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never answered: {}",
            text(&out)
        );
    }
}

/// Sends SIGTERM and waits for the exit. `limit` is a hang bound, not a
/// timing: past it the process is killed and the test fails.
fn stop_with_sigterm(child: &mut Child, limit: Duration) -> ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("serve did not stop on SIGTERM within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn specs_persist_across_runs_with_a_local_server() {
    let state = tempfile::tempdir().unwrap();
    let out = run(
        state.path(),
        &["spec", "put", "comp1", "--url", "ghcr.io/example/comp:1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        state.path(),
        &[
            "link",
            "put",
            "--source",
            "comp1",
            "--target",
            "kv",
            "--namespace",
            "wasi",
            "--package",
            "keyvalue",
            "--interface",
            "store",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // A new process, a new server on the same store: the data is there.
    let out = run(state.path(), &["--json", "spec", "get", "comp1"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["spec"]["url"], "ghcr.io/example/comp:1");
    assert_eq!(doc["spec"]["links"][0]["target"], "kv");
    // Bad input: a clear error and a failing exit code, nothing else.
    let out = run(state.path(), &["spec", "get", "bad id"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid component id"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unreachable_nats_fails_fast_and_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run(
        state.path(),
        &[
            "--nats",
            &format!("nats://127.0.0.1:{port}"),
            "spec",
            "get",
            "x",
        ],
    );
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect to NATS"),
        "{}",
        text(&out)
    );
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("--state-dir")
        .arg(state.path())
        .args(["--provider", "kvredis", "serve", "--host-id", "cli-test"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_serving(state.path(), &[], "cli-test");
    let status = stop_with_sigterm(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    // Its nats-server is gone too: the record file was removed.
    assert!(!state.path().join("nats-server.json").exists());
}

#[test]
fn serve_stops_on_sigterm_when_its_nats_server_is_gone() {
    // With the server gone, unsubscribing and flushing would wait for a
    // reconnect that never comes: stopping must not.
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut server = rt
        .block_on(spec_nats::LocalNatsServer::start(
            spec_nats::ServerOptions::new(dir.path().join("js")),
        ))
        .expect("a nats-server starts");
    let url = server.url();
    let mut child = Command::new(BIN)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--nats", &url, "serve", "--host-id", "orphan"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_serving(dir.path(), &["--nats", &url], "orphan");
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    // Bounded by the service's own limit (15 s), much quicker in practice.
    stop_with_sigterm(&mut child, Duration::from_secs(30));
}
