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
    // The listing, printed as it is read: one JSON document.
    let out = run(state.path(), &["--json", "link", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["links"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(doc["links"][0]["target"], "kv");
    assert_eq!(doc["undecodable"], serde_json::json!([]));
    let out = run(state.path(), &["link", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("1 link(s)\n"),
        "{}",
        text(&out)
    );
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

#[test]
fn a_refused_credential_fails_at_once_in_one_line_and_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut options = spec_nats::ServerOptions::new(dir.path().join("js"));
    options.nkey_users = vec![nkeys::KeyPair::new_user().public_key()];
    let server = rt
        .block_on(spec_nats::LocalNatsServer::start(options))
        .expect("a nats-server starts");
    let url = server.url().replace("nats://", "nats://alice:hunter2@");
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    let cases: [(&str, Vec<&str>, &str); 3] = [
        ("no credentials", vec![], "authorization violation"),
        (
            "a JWT and seed the server does not know",
            vec![
                "--nats-jwt",
                "eyJ0eXAiOiJKV1QifQ.e30.sig",
                "--nats-seed",
                &seed,
            ],
            "cannot connect to NATS",
        ),
        (
            "a creds file that is not one",
            vec!["--nats-creds", "/etc/hostname"],
            "not a NATS credentials file",
        ),
    ];
    for (what, flags, cause) in cases {
        let started = Instant::now();
        let mut args = vec!["--nats", url.as_str()];
        args.extend(flags);
        args.extend(["spec", "get", "x"]);
        let out = run(&dir.path().join("state"), &args);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "{what}: exit {:?} after {took:?}: {stderr}",
            out.status.code()
        );
        assert!(!out.status.success(), "{what}: {}", text(&out));
        assert!(stderr.contains(cause), "{what}: {}", text(&out));
        assert_eq!(stderr.trim().lines().count(), 1, "{what}: {}", text(&out));
        for secret in ["hunter2", seed.as_str()] {
            assert!(
                !text(&out).contains(secret),
                "{what} shows a secret: {}",
                text(&out)
            );
        }
        // A hang bound, not a timing: a refusal must not retry.
        assert!(took < Duration::from_secs(10), "{what}: {took:?}");
    }
    drop(server);
}

#[test]
fn the_local_server_admits_only_spec_host_s_own_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .args(["serve", "--host-id", "private"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Every command on the state directory connects without flags.
    wait_until_serving(&state, &[], "private");
    let out = run(&state, &["spec", "put", "c", "--url", "u"]);
    assert!(out.status.success(), "{}", text(&out));

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("nats-user.nk")), 0o600);
    assert_eq!(mode(&state.join("nats-server.json")), 0o600);

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("nats-server.json")).unwrap()).unwrap();
    let url = record["url"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let anonymous = rt.block_on(async_nats::connect(url.as_str()));
    let err = anonymous.expect_err("a client without the state directory's key is refused");
    assert_eq!(
        err.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{err}"
    );
    stop_with_sigterm(&mut child, Duration::from_secs(20));
}

#[test]
fn keys_generate_writes_a_private_seed_and_prints_the_public_key_last() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("issuer.nk");
    let out = run(
        dir.path(),
        &["keys", "generate", "--out", seed.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let public = stdout.trim().lines().last().unwrap_or_default().to_string();
    let key = nkeys::KeyPair::from_seed(std::fs::read_to_string(&seed).unwrap().trim()).unwrap();
    assert_eq!(public, key.public_key());
    assert!(
        !stdout.contains(&key.seed().unwrap()),
        "the seed is never printed"
    );
    let mode = std::fs::metadata(&seed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = run(
        dir.path(),
        &["keys", "generate", "--out", seed.to_str().unwrap()],
    );
    assert!(
        !again.status.success(),
        "an existing key is never overwritten"
    );
    // A host that names a key that is no key refuses to start.
    let bad = run(
        dir.path(),
        &["--store", "memory", "serve", "--trusted-issuer", "nope"],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not an nkey public key"),
        "{}",
        text(&bad)
    );
}
