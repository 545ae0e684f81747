//! The rollout scenario's fault: lattice-wide plugin rollouts driven with
//! `spec-host plugin …` while the load runs on three hosts.
//!
//! 1. A good build (the `alt-version` plugin: same logic, another version
//!    string) is pushed and rolled out: every host shadows it, then they
//!    switch one at a time; all three must end on it.
//! 2. The `fault-injection` build is rolled out while puts on `poison-pill`
//!    arrive during its shadow window: its shadow traps, it is rejected and
//!    marked bad, and no host switches.
//! 3. The same build again (`--retry-bad`) with no shadow window: the first
//!    host switches, poison pills make it trap, it rolls back by itself and
//!    marks the build bad, and the others never switch.
//! 4. A build that reads only snapshot format 99: every host refuses it,
//!    saying why.
//!
//! Poison pills write one link of the load's namespace under their own
//! source; it is deleted at the end so the store check sees only the load.

use std::time::{Duration, Instant};

use serde_json::Value;
use spec_lattice::serve::status::Status;
use wasmcloud_control_interface::Client as CtlClient;

use super::fixture::Fixture;
use super::load::{send, Reply};
use super::model::{Change, LinkKey};

fn pill_key() -> LinkKey {
    LinkKey {
        source: "poison-pill".into(),
        name: "pill".into(),
    }
}

fn pill() -> Change {
    Change::Put {
        target: "poison-target".into(),
        interfaces: vec!["store".into()],
    }
}

/// The line saying why a rollout stopped, or the output's last line.
fn why(said: &str) -> &str {
    said.lines()
        .find(|l| l.contains("rollout stopped"))
        .or_else(|| said.lines().last())
        .unwrap_or_default()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Pushes a build; its digest.
async fn push(fx: &Fixture, file: &str) -> String {
    let out = fx.cli(&["--json", "plugin", "push", file]).await;
    assert!(out.status.success(), "plugin push {file}: {}", text(&out));
    let info: Value = serde_json::from_slice(&out.stdout).expect("push prints JSON");
    info["digest"].as_str().expect("a digest").to_string()
}

/// `plugin status --json`.
async fn rollout_status(fx: &Fixture) -> Value {
    let out = fx.cli(&["--json", "plugin", "status"]).await;
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn phases(status: &Value) -> Vec<(String, String)> {
    status["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| {
                    (
                        h["host_id"].as_str().unwrap_or_default().to_string(),
                        h["phase"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn statuses(fx: &Fixture) -> Vec<Status> {
    let client = super::fixture::connect(&fx.urls()).await;
    spec_lattice::serve::collect_status(&client, &fx.lattice, Duration::from_millis(300))
        .await
        .unwrap_or_default()
}

/// Waits (bounded) until every host runs `digest`; the digests they run.
async fn all_on(fx: &Fixture, digest: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let found = statuses(fx).await;
        let running: Vec<String> = found
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.host_id,
                    &s.plugin.digest[..12.min(s.plugin.digest.len())]
                )
            })
            .collect();
        if found.len() == fx.hosts.len() && found.iter().all(|s| s.plugin.digest == digest) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "hosts not all on {} within {limit:?}: {running:?}",
                &digest[..12]
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends poison pills until `until` resolves or `limit` passes; returns
/// (sent, refused, what `until` gave if it did).
async fn pills_until<F: std::future::Future>(
    ctl: &CtlClient,
    until: F,
    limit: Duration,
) -> (usize, usize, Option<F::Output>) {
    let (mut sent, mut refused) = (0, 0);
    let (key, put) = (pill_key(), pill());
    tokio::pin!(until);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        tokio::select! {
            out = &mut until => return (sent, refused, Some(out)),
            _ = tokio::time::sleep_until(deadline) => return (sent, refused, None),
            (reply, _) = send(ctl, &key, &put) => {
                sent += 1;
                if !matches!(reply, Reply::Acked(_)) {
                    refused += 1;
                }
            }
        }
    }
}

/// Starts `spec-host plugin rollout DIGEST ARGS… --wait` in a task.
fn rollout_in_background(
    fx: &Fixture,
    digest: &str,
    args: &[&str],
) -> tokio::task::JoinHandle<std::process::Output> {
    let mut all: Vec<String> = vec!["plugin".into(), "rollout".into(), digest.into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--wait", "--wait-secs", "60"].map(String::from));
    let cli = fx.cli_command();
    tokio::spawn(async move { cli.run(&all).await })
}

/// Runs the four rollouts; returns (what was done, problems).
pub async fn exercise(fx: &Fixture, ctl: &CtlClient) -> (Vec<String>, Vec<String>, usize) {
    let mut done = Vec::new();
    let mut problems = Vec::new();
    let before = statuses(fx).await;
    let old = before
        .first()
        .map(|s| s.plugin.digest.clone())
        .unwrap_or_default();

    // 1. A good build, everywhere.
    let good = push(fx, test_artifacts::PLUGIN_ALT_WASM).await;
    let t = Instant::now();
    let out = fx
        .cli(&[
            "plugin",
            "rollout",
            &good,
            "--shadow-secs",
            "2",
            "--watch-secs",
            "2",
            "--wait",
            "--wait-secs",
            "120",
        ])
        .await;
    let took = t.elapsed();
    if !out.status.success() {
        problems.push(format!("good build not rolled out: {}", text(&out)));
    }
    if let Err(e) = all_on(fx, &good, Duration::from_secs(10)).await {
        problems.push(e);
    }
    let status = rollout_status(fx).await;
    let compared: Vec<u64> = status["hosts"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|h| h["shadow"]["compared"].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let unexpected: u64 = status["hosts"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|h| h["shadow"]["unexpected"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    if unexpected > 0 {
        problems.push(format!("the good build differed in shadow: {status}"));
    }
    // A good build that any host rolled back or rejected: wrongly.
    let wrongly_rolled_back = status["hosts"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|h| matches!(h["phase"].as_str(), Some("rolled-back" | "rejected")))
                .count()
        })
        .unwrap_or(0);
    done.push(format!(
        "good build {} rolled out to {} hosts in {:.1} s (shadow 2 s, watch 2 s per host; comparisons per host {compared:?})",
        &good[..12],
        fx.hosts.len(),
        took.as_secs_f64()
    ));

    // 2. A build that traps on poison-pill, caught in shadow.
    let faulty = push(fx, test_artifacts::PLUGIN_FAULTY_WASM).await;
    let rollout = rollout_in_background(fx, &faulty, &["--shadow-secs", "4", "--watch-secs", "2"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (sent, ..) = pills_until(ctl, std::future::pending::<()>(), Duration::from_secs(2)).await;
    let out = rollout.await.expect("rollout command task");
    let said = text(&out);
    if out.status.success() || !said.contains("Rejected") {
        problems.push(format!("faulty build not rejected in shadow: {said}"));
    }
    if let Err(e) = all_on(fx, &good, Duration::from_secs(10)).await {
        problems.push(e);
    }
    done.push(format!(
        "build trapping on poison-pill rolled out, {sent} pills during its shadow: {}",
        why(&said)
    ));

    // 3. The same build with no shadow window: rolled back by itself.
    let rollout = rollout_in_background(
        fx,
        &faulty,
        &["--retry-bad", "--shadow-secs", "0", "--watch-secs", "30"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut switched = false;
    while !switched && Instant::now() < deadline {
        switched = phases(&rollout_status(fx).await)
            .iter()
            .any(|(_, p)| p == "switched");
        if !switched {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if !switched {
        problems.push("no host switched to the faulty build with no shadow window".into());
    }
    let t = Instant::now();
    let (sent, refused, ended) = pills_until(ctl, rollout, Duration::from_secs(40)).await;
    let Some(Ok(out)) = ended else {
        problems.push("the rollback did not end within 40 s of the first pill".into());
        return (done, problems, wrongly_rolled_back);
    };
    let rolled = t.elapsed();
    let said = text(&out);
    // The others stop within a poll or two of the bad mark.
    let mut status = rollout_status(fx).await;
    for _ in 0..20 {
        if !phases(&status).iter().any(|(_, p)| p == "waiting") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = rollout_status(fx).await;
    }
    let rolled_back: Vec<String> = phases(&status)
        .into_iter()
        .filter(|(_, p)| p == "rolled-back")
        .map(|(h, _)| h)
        .collect();
    if out.status.success() || rolled_back.len() != 1 {
        problems.push(format!(
            "faulty build not rolled back by one host: {said} {status}"
        ));
    }
    let others: Vec<(String, String)> = phases(&status)
        .into_iter()
        .filter(|(_, p)| p != "rolled-back" && p != "rejected")
        .collect();
    if !others.is_empty() {
        problems.push(format!("hosts neither rolled back nor stopped: {others:?}"));
    }
    if let Err(e) = all_on(fx, &good, Duration::from_secs(10)).await {
        problems.push(e);
    }
    done.push(format!(
        "same build, no shadow: {rolled_back:?} switched, {sent} pills ({refused} refused), rolled back {:.1} s after the first pill; the others never switched",
        rolled.as_secs_f64()
    ));

    // 4. A build that cannot read the table's format.
    let foreign = push(fx, test_artifacts::PLUGIN_FOREIGN_WASM).await;
    let out = fx
        .cli(&[
            "plugin",
            "rollout",
            &foreign,
            "--shadow-secs",
            "1",
            "--watch-secs",
            "1",
            "--wait",
            "--wait-secs",
            "60",
        ])
        .await;
    let said = text(&out);
    if out.status.success() || !said.contains("Refused") || !said.contains("snapshot format") {
        problems.push(format!("foreign-format build not refused: {said}"));
    }
    if let Err(e) = all_on(fx, &good, Duration::from_secs(10)).await {
        problems.push(e);
    }
    done.push(format!(
        "build reading only snapshot format 99 refused: {}",
        why(&said)
    ));

    // The pills' link goes; the store holds the load's links only.
    let (reply, _) = send(ctl, &pill_key(), &Change::Delete).await;
    if !matches!(reply, Reply::Acked(_)) {
        problems.push(format!("cannot delete the poison-pill link: {reply:?}"));
    }
    if old == good {
        problems.push("the hosts ran the alt build before the rollout".into());
    }
    (done, problems, wrongly_rolled_back)
}
