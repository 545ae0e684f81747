//! The command line's contract with scripts and newcomers: every error
//! path ends in one line on stderr naming the cause once, with the exit
//! code README lists (0 done, 1 failed, 2 bad usage, 3 not found); and the
//! help of every command, kept as a snapshot so a change shows in review.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;
use spec_host::cli::{exit, Cli};
use spec_nats::{LocalNatsServer, ServerOptions};

const BIN: &str = env!("CARGO_BIN_EXE_spec-host");

fn run(state: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("spec-host runs")
}

/// One error path: the arguments, the exit code, and what its one line on
/// stderr must say.
struct Case {
    what: &'static str,
    args: Vec<String>,
    code: u8,
    says: &'static str,
}

fn case(what: &'static str, args: &[&str], code: u8, says: &'static str) -> Case {
    Case {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says,
    }
}

fn check(state: &Path, c: &Case) -> Option<String> {
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let out = run(state, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let code = out.status.code();
    let mut wrong = Vec::new();
    if code != Some(i32::from(c.code)) {
        wrong.push(format!("exit {code:?}, wanted {}", c.code));
    }
    // clap's usage errors add the usage and a hint; every other error is
    // one line.
    let most = if c.code == exit::USAGE { 3 } else { 1 };
    if lines.is_empty() || lines.len() > most {
        wrong.push(format!("{} lines on stderr", lines.len()));
    }
    // The one secret the table passes (a password in a URL) never shows.
    if stderr.contains("hunter2") || String::from_utf8_lossy(&out.stdout).contains("hunter2") {
        wrong.push("the password in the URL is printed".to_string());
    }
    let first = lines.first().copied().unwrap_or_default();
    if !first.contains(c.says) {
        wrong.push(format!("it does not say {:?}", c.says));
    }
    // The cause once: no ": X: X" repeats, no debug forms.
    let parts: Vec<&str> = first.split(": ").collect();
    if parts.windows(2).any(|w| w[0] == w[1]) || first.contains("0x") || first.contains("Os {") {
        wrong.push("a cause twice, or a debug form".to_string());
    }
    (!wrong.is_empty()).then(|| format!("{}: {} — stderr: {stderr}", c.what, wrong.join("; ")))
}

#[tokio::test]
async fn every_error_path_is_one_line_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let open = LocalNatsServer::start(ServerOptions::new(dir.path().join("open")))
        .await
        .unwrap();
    let mut locked_options = ServerOptions::new(dir.path().join("locked"));
    locked_options.nkey_users = vec![nkeys::KeyPair::new_user().public_key()];
    let locked = LocalNatsServer::start(locked_options).await.unwrap();
    let (open_url, locked_url) = (open.url(), locked.url());
    // A stored value that does not decode.
    let client = async_nats::connect(&open_url).await.unwrap();
    let bucket = async_nats::jetstream::new(client)
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "LATTICEDATA_errors".into(),
            history: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    bucket
        .put("COMPONENT_broken", "{not json".into())
        .await
        .unwrap();

    let not_wasm = dir.path().join("notes.wasm");
    std::fs::write(&not_wasm, "hello, world").unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let path = |p: &PathBuf| p.display().to_string();
    let (not_wasm, core_module) = (path(&not_wasm), path(&core_module));
    let nats = |url: &str| {
        vec![
            "--nats".to_string(),
            url.to_string(),
            "--lattice".into(),
            "errors".into(),
        ]
    };
    let on = |url: &str, rest: &[&str]| {
        let mut args = nats(url);
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    };
    // An address another process holds.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let with = |what, args: Vec<String>, code, says| Case {
        what,
        args,
        code,
        says,
    };
    let cases = vec![
        case(
            "not found: spec",
            &["--store", "memory", "spec", "get", "nosuch"],
            exit::NOT_FOUND,
            "not found: no spec stored for nosuch",
        ),
        with(
            "not found: config",
            on(&open_url, &["config", "get", "nosuch"]),
            exit::NOT_FOUND,
            "not found: no configuration nosuch",
        ),
        with(
            "not found: no serving host",
            on(&open_url, &["status", "--wait-ms", "200"]),
            exit::NOT_FOUND,
            "no serving host of lattice errors answered",
        ),
        case(
            "a file that is not wasm",
            &["--store", "memory", "--plugin", &not_wasm, "version"],
            exit::FAILED,
            "is not a WebAssembly component: it does not start with the wasm header",
        ),
        case(
            "a core module",
            &["--store", "memory", "--plugin", &core_module, "version"],
            exit::FAILED,
            "it is a core WebAssembly module",
        ),
        case(
            "another contract",
            &[
                "--store",
                "memory",
                "--plugin",
                test_artifacts::WRONG_WIT_GUEST_WASM,
                "version",
            ],
            exit::FAILED,
            "plugin speaks lattice:spec@0.1.0; this host loads lattice:spec 0.2, 0.3",
        ),
        case(
            "a missing plugin file",
            &[
                "--store",
                "memory",
                "--plugin",
                "/nonexistent/p.wasm",
                "version",
            ],
            exit::FAILED,
            "cannot read plugin /nonexistent/p.wasm",
        ),
        case(
            "NATS refused",
            &["--nats", "nats://127.0.0.1:1", "spec", "get", "x"],
            exit::FAILED,
            "cannot connect to NATS at nats://127.0.0.1:1",
        ),
        with(
            "credentials refused",
            on(&locked_url, &["spec", "get", "x"]),
            exit::FAILED,
            "authorization",
        ),
        with(
            "no JetStream in that domain",
            on(&open_url, &["--js-domain", "nosuch", "spec", "get", "x"]),
            exit::FAILED,
            "domain \"nosuch\"",
        ),
        with(
            "a stored value that does not decode",
            on(&open_url, &["spec", "get", "broken"]),
            exit::FAILED,
            "broken",
        ),
        with(
            "the admin address is taken",
            on(&open_url, &["serve", "--admin-listen", &taken]),
            exit::FAILED,
            "for the admin endpoint",
        ),
        case(
            "an admin address that is not one",
            &["serve", "--admin-listen", "nowhere"],
            exit::USAGE,
            "invalid value 'nowhere' for '--admin-listen",
        ),
        with(
            "an OTLP endpoint that is not http://",
            on(
                &open_url,
                &["serve", "--otlp-endpoint", "https://collector:4318"],
            ),
            exit::FAILED,
            "expected an http:// URL of an OTLP/HTTP collector",
        ),
        with(
            "an OTLP endpoint with credentials in it",
            on(
                &open_url,
                &[
                    "serve",
                    "--otlp-endpoint",
                    "http://user:hunter2@collector:4318",
                ],
            ),
            exit::FAILED,
            "--otlp-endpoint holds credentials",
        ),
        case(
            "a bad flag value",
            &["--memory-cap-mib", "abc", "version"],
            exit::USAGE,
            "invalid value 'abc' for '--memory-cap-mib",
        ),
        case(
            "an unknown command",
            &["frobnicate"],
            exit::USAGE,
            "unrecognized subcommand 'frobnicate'",
        ),
    ];
    let wrong: Vec<String> = cases.iter().filter_map(|c| check(&state, c)).collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // With --json, not found is a document that says so.
    let out = run(
        &state,
        &["--store", "memory", "--json", "spec", "get", "nosuch"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["found"], serde_json::Value::Bool(false), "{doc}");
    assert_eq!(out.status.code(), Some(i32::from(exit::NOT_FOUND)));
}

/// Every command's long help, with environment values left out (they
/// depend on who runs the test).
fn helps() -> Vec<(String, String)> {
    fn walk(cmd: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let text = cmd.render_long_help().to_string();
        let text: Vec<String> = text
            .lines()
            .map(|l| match (l.find("[env: "), l.rfind(']')) {
                (Some(start), Some(end)) if end > start => {
                    let inner = &l[start + 6..end];
                    let name = inner.split('=').next().unwrap_or(inner);
                    format!("{}[env: {name}]", &l[..start])
                }
                _ => l.trim_end().to_string(),
            })
            .collect();
        out.push((path.to_string(), text.join("\n") + "\n"));
        for sub in cmd.get_subcommands_mut() {
            // clap's own `help` subcommands repeat the others.
            if sub.get_name() == "help" {
                continue;
            }
            let name = format!("{path}-{}", sub.get_name());
            walk(sub, &name, out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&mut cmd, "spec-host", &mut out);
    out
}

#[test]
fn the_help_of_every_command_matches_its_snapshot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help");
    let update = std::env::var_os("SPEC_HOST_UPDATE_HELP").is_some();
    let mut changed = Vec::new();
    for (name, text) in helps() {
        let file = dir.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(kept) if kept == text => {}
            _ => changed.push(name),
        }
    }
    assert!(
        changed.is_empty(),
        "help changed for {changed:?}: review, then rerun with SPEC_HOST_UPDATE_HELP=1"
    );
    // A subcommand's own options come first, the global ones under their
    // headings after them.
    let (_, put) = helps()
        .into_iter()
        .find(|(n, _)| n == "spec-host-link-put")
        .unwrap();
    let options = put.find("Options:").unwrap();
    let own = put.find("\n      --source").unwrap();
    let connection = put.find("Lattice connection:").unwrap();
    assert!(options < own && own < connection, "{put}");
    for heading in [
        "Lattice connection:",
        "Plugin:",
        "Plugin limits:",
        "Output:",
    ] {
        assert!(put.contains(heading), "no {heading} in\n{put}");
    }
}

#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("spec-host") && text.contains("lattice"),
            "{shell}"
        );
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let roff = String::from_utf8_lossy(&out.stdout);
    assert!(
        roff.contains(".TH spec-host 1") && roff.contains("Exit codes"),
        "{roff}"
    );
}
