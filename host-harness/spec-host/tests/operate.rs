//! `spec-host serve` as an operator runs it: the admin endpoint's probes
//! through a NATS outage, its metrics against a known load, JSON logs, and
//! the OTLP export received by a collector stand-in. The binary runs as a
//! process beside its own nats-server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats_039 as nats039;
use prost::Message;
use wasmcloud_control_interface::{ClientBuilder, Link};

const BIN: &str = env!("CARGO_BIN_EXE_spec-host");

/// One `serve` with an admin endpoint, its stderr (logs) in a file.
struct Served {
    child: Child,
    admin: std::sync::OnceLock<String>,
    log: PathBuf,
}

impl Served {
    fn start(dir: &Path, nats_url: &str, host_id: &str, extra: &[&str]) -> Served {
        let log = dir.join(format!("{host_id}.log"));
        let child = Command::new(BIN)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args([
                "--nats",
                nats_url,
                "--lattice",
                "ops",
                "--log-format",
                "json",
            ])
            .args(["serve", "--host-id", host_id])
            // Port 0: the address it got is read from its log, so no other
            // test can take a port picked in advance.
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(extra)
            // Plugin calls log at debug: the test follows a request id into
            // them.
            .env(
                "RUST_LOG",
                "warn,spec_lattice=info,spec_host=info,spec_embed=debug",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spec-host starts");
        Served {
            child,
            admin: std::sync::OnceLock::new(),
            log,
        }
    }

    /// The admin endpoint's base URL, from the log line that names it
    /// (waiting for it, 60 s at most).
    fn admin(&self) -> &str {
        self.admin.get_or_init(|| {
            let started = Instant::now();
            loop {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let bound = log
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|l| l["message"] == "admin endpoint: /livez /readyz /metrics")
                    .and_then(|l| l["bound"].as_str().map(str::to_string));
                if let Some(bound) = bound {
                    return format!("http://{bound}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no admin endpoint in the log:\n{log}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    }

    /// `GET path`: status and body, or `None` when nothing answers.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let response = client.get(format!("{}{path}", self.admin())).send().ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().unwrap_or_default()))
    }

    /// Waits (60 s at most: a hang bound) until `path` answers `status`.
    fn wait_for(&self, path: &str, status: u16) -> String {
        let started = Instant::now();
        loop {
            let got = self.get(path);
            if let Some((s, body)) = &got {
                if *s == status {
                    return body.clone();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{path} never answered {status}; last: {got:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn nats_server(dir: &Path, rt: &tokio::runtime::Runtime) -> spec_nats::LocalNatsServer {
    rt.block_on(spec_nats::LocalNatsServer::start(
        spec_nats::ServerOptions::new(dir.join("js")),
    ))
    .expect("a nats-server starts")
}

#[test]
fn readyz_turns_503_while_nats_is_down_and_200_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut server = nats_server(dir.path(), &rt);
    let served = Served::start(dir.path(), &server.url(), "probe", &[]);
    served.wait_for("/livez", 200);
    assert_eq!(served.wait_for("/readyz", 200), "ready\n");
    rt.block_on(server.stop());
    let reason = served.wait_for("/readyz", 503);
    assert!(
        reason.starts_with("not ready: not connected to NATS"),
        "{reason}"
    );
    // Alive all the same: restarting it would not bring NATS back.
    assert_eq!(served.get("/livez").map(|r| r.0), Some(200));
    rt.block_on(server.restart())
        .expect("the nats-server restarts");
    served.wait_for("/readyz", 200);
    let metrics = scrape(&served);
    assert!(value(&metrics, "spec_host_nats_reconnects_total", &[]) >= 1.0);
    assert_eq!(value(&metrics, "spec_host_nats_connected", &[]), 1.0);
    served.stop();
}

/// The scrape, checked line by line against the text format, then parsed.
fn scrape(served: &Served) -> prometheus_parse::Scrape {
    let (status, body) = served.get("/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    test_support::prometheus::check_exposition(&body);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text")
}

/// The value of `name` with `labels` (all of them given), or NaN.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or(f64::NAN)
}

fn link(i: usize) -> Link {
    link_from(&format!("comp{i}"))
}

fn link_from(source: &str) -> Link {
    Link::builder()
        .source_id(source)
        .target("kvredis")
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(vec!["store".to_string()])
        .build()
        .expect("a complete link")
}

#[test]
fn metrics_count_a_known_load_and_json_logs_carry_request_ids() {
    const PUTS: usize = 25;
    const DELS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = nats_server(dir.path(), &rt);
    let served = Served::start(dir.path(), &server.url(), "counted-host", &[]);
    served.wait_for("/readyz", 200);
    let url = server.url();
    rt.block_on(async {
        let nc = nats039::connect(&url).await.unwrap();
        let ctl = ClientBuilder::new(nc).lattice("ops").build();
        for i in 0..PUTS {
            let put = ctl.put_link(link(i)).await.expect("link put answered");
            assert!(put.succeeded(), "{}", put.message());
        }
        for i in 0..DELS {
            let del = ctl
                .delete_link(&format!("comp{i}"), "default", "wasi", "keyvalue")
                .await
                .expect("link del answered");
            assert!(del.succeeded(), "{}", del.message());
        }
        // A malformed put: answered with an error, counted as one.
        let bad = ctl
            .nats_client()
            .request("wasmbus.ctl.v1.ops.link.put", "not json".into())
            .await
            .expect("a reply");
        assert!(String::from_utf8_lossy(&bad.payload).contains("\"success\":false"));
    });
    let put = [("rpc_method", "link.put"), ("outcome", "ok")];
    let del = [("rpc_method", "link.del"), ("outcome", "ok")];
    let failed = [("rpc_method", "link.put"), ("outcome", "error")];
    // The table follows the bucket: wait for it, then read everything.
    let started = Instant::now();
    let metrics = loop {
        let m = scrape(&served);
        if value(&m, "spec_host_table_links", &[]) == (PUTS - DELS) as f64 {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "table never settled"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&metrics, "spec_host_requests_total", &put),
        PUTS as f64
    );
    assert_eq!(
        value(&metrics, "spec_host_requests_total", &del),
        DELS as f64
    );
    assert_eq!(value(&metrics, "spec_host_requests_total", &failed), 1.0);
    assert_eq!(
        value(&metrics, "rpc_server_call_duration_seconds_count", &put),
        PUTS as f64
    );
    assert_eq!(
        value(&metrics, "spec_host_follower_changes_applied_total", &[]),
        (PUTS + DELS) as f64
    );
    assert_eq!(
        value(&metrics, "spec_host_follower_lag_seconds_count", &[]),
        (PUTS + DELS) as f64
    );
    assert_eq!(value(&metrics, "spec_host_table_caught_up", &[]), 1.0);
    assert_eq!(
        value(
            &metrics,
            "spec_host_plugin_faults_total",
            &[("class", "trap")]
        ),
        0.0
    );
    // Where the plugin calls' time went: one put-link call per put (the
    // malformed one never reaches the plugin), each with time in the
    // plugin and in its imports (the KV round trips).
    let put_link = [("call", "put-link")];
    assert_eq!(
        value(&metrics, "spec_host_plugin_calls_total", &put_link),
        PUTS as f64
    );
    for part in ["plugin", "imports"] {
        let labels = [("call", "put-link"), ("part", part)];
        let seconds = value(&metrics, "spec_host_plugin_call_seconds_total", &labels);
        assert!(seconds > 0.0, "no {part} time for put-link");
    }
    assert_eq!(
        value(
            &metrics,
            "spec_host_build_info",
            &[("host_id", "counted-host"), ("lattice", "ops")]
        ),
        1.0
    );
    let log = served.stop();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(line.get(field).is_some(), "no {field} in {line}");
        }
    }
    // The failed request's warning names its request, lattice and host.
    let failure = lines
        .iter()
        .find(|l| l["message"] == "request failed")
        .expect("the malformed put is logged");
    assert_eq!(failure["lattice"], "ops");
    assert_eq!(failure["host_id"], "counted-host");
    assert_eq!(failure["method"], "link.put");
    let id = failure["request_id"].as_str().expect("a request id");
    // The whole host id, then a count: unique in the lattice.
    let n = id
        .strip_prefix("counted-host-")
        .expect("the host id, then -");
    assert!(n.parse::<u64>().is_ok(), "{id}");
    // Plugin calls made for a request carry its id.
    let in_plugin: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "plugin call returned" && l.get("request_id").is_some())
        .collect();
    assert!(
        in_plugin.len() >= PUTS,
        "{} plugin calls with a request id",
        in_plugin.len()
    );
    let nested = in_plugin[0]["spans"].as_array().unwrap();
    let names: Vec<&str> = nested.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["request", "plugin_call"], "{}", in_plugin[0]);
}

/// A collector stand-in: answers OTLP/HTTP posts with 200 and keeps the
/// metric names each export carried.
fn collector() -> (String, std::sync::mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if !request_line.starts_with("POST /v1/metrics ") {
                continue;
            }
            use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
            let export =
                ExportMetricsServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
            let names = export
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| m.name.clone())
                .collect();
            let _ = tx.send(names);
        }
    });
    (url, rx)
}

#[test]
fn metrics_are_pushed_over_otlp_when_an_endpoint_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = nats_server(dir.path(), &rt);
    let (endpoint, exports) = collector();
    let served = Served::start(
        dir.path(),
        &server.url(),
        "pushed",
        &["--otlp-endpoint", &endpoint, "--otlp-interval", "300ms"],
    );
    served.wait_for("/readyz", 200);
    let url = server.url();
    rt.block_on(async {
        let nc = nats039::connect(&url).await.unwrap();
        let ctl = ClientBuilder::new(nc).lattice("ops").build();
        assert!(ctl.put_link(link(1)).await.unwrap().succeeded());
    });
    let wanted = [
        "spec_host_requests",
        "rpc.server.call.duration",
        "spec_host_table_caught_up",
        "spec_host_plugin_faults",
        "spec_host_build_info",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<String> = Vec::new();
    while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "exports carried only {seen:?}");
        if let Ok(names) = exports.recv_timeout(left) {
            seen.extend(names);
        }
    }
    served.stop();
}

#[test]
fn plugin_faults_are_counted_by_class_with_the_instances_they_cost() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = nats_server(dir.path(), &rt);
    // The fault-injection build: a put of `poison-pill` traps, one of
    // `poison-loop` loops over its imports until the import cap stops it.
    let served = Served::start(
        dir.path(),
        &server.url(),
        "faulty",
        &["--plugin", test_artifacts::PLUGIN_FAULTY_WASM],
    );
    served.wait_for("/readyz", 200);
    let before = scrape(&served);
    let url = server.url();
    rt.block_on(async {
        let nc = nats039::connect(&url).await.unwrap();
        let ctl = ClientBuilder::new(nc).lattice("ops").build();
        for source in ["poison-pill", "poison-loop"] {
            let put = ctl.put_link(link_from(source)).await.expect("answered");
            assert!(!put.succeeded(), "{source}: {}", put.message());
        }
        assert!(ctl.put_link(link(1)).await.unwrap().succeeded());
    });
    let after = scrape(&served);
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        grew("spec_host_plugin_faults_total", &[("class", "trap")]),
        1.0
    );
    assert_eq!(
        grew("spec_host_plugin_faults_total", &[("class", "import_cap")]),
        1.0
    );
    assert_eq!(
        grew("spec_host_plugin_faults_total", &[("class", "cpu_budget")]),
        0.0
    );
    assert_eq!(grew("spec_host_plugin_instances_replaced_total", &[]), 2.0);
    let failed = [("rpc_method", "link.put"), ("outcome", "error")];
    assert_eq!(value(&after, "spec_host_requests_total", &failed), 2.0);
    served.stop();
}

#[test]
fn a_failing_otlp_export_is_reported_once_not_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = nats_server(dir.path(), &rt);
    // A port held by this test (no other test can take it meanwhile) whose
    // every connection is closed at once, unanswered.
    let refuser = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", refuser.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in refuser.incoming() {
            drop(stream);
        }
    });
    let served = Served::start(
        dir.path(),
        &server.url(),
        "unheard",
        &["--otlp-endpoint", &endpoint, "--otlp-interval", "200ms"],
    );
    served.wait_for("/readyz", 200);
    std::thread::sleep(Duration::from_millis(1_500));
    let log = served.stop();
    let failures = log
        .lines()
        .filter(|l| l.contains("OTLP metrics export failed"))
        .count();
    assert_eq!(failures, 1, "{log}");
    assert!(log.contains("\"level\":\"WARN\""), "{log}");
}
