//! The hosts the lattice sections drive, each in a process of its own on a
//! shared nats-server: `spec-host serve` (the bench runs itself as
//! `spec-bench probe-serve …`, which is `spec-host`'s own command line),
//! and the real wasmCloud v1.9 host (`wasmcloud-host` 0.27.1, built by
//! `scripts/wasmcloud-host.sh`). Both are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The wasmCloud v1.9 host binary: `$WASMCLOUD_HOST_BIN`, else where the
/// build script puts it.
pub fn wasmcloud_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WASMCLOUD_HOST_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasmcloud/release/wasmcloud-v19-host");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "wasmCloud v1.9 host not built ({}); build it once with ./run.sh wasmcloud-host (~25 min)",
            path.display()
        ))
    }
}

/// The child side of `probe-serve`: `spec-host` with `args`.
pub fn probe_serve(args: &[String]) -> Result<()> {
    use clap::Parser;
    let cli = spec_host::cli::Cli::try_parse_from(
        std::iter::once("spec-host".to_string()).chain(args.iter().cloned()),
    )
    .context("spec-host arguments")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")?;
    rt.block_on(spec_host::cli::run(cli))
}

/// A host process, killed on drop.
pub struct HostProcess {
    child: Child,
    /// What it is, for messages.
    pub name: &'static str,
    /// When it was spawned.
    pub spawned: Instant,
}

impl HostProcess {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading /proc/PID/status")?;
        crate::memory::vm_rss(&status).context("no VmRSS line")
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_file(name: &str) -> Result<std::fs::File> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-logs");
    std::fs::create_dir_all(&dir)?;
    Ok(std::fs::File::create(dir.join(format!("{name}.log")))?)
}

/// Starts `spec-host serve` on `lattice` (this binary as `probe-serve`),
/// with `extra` spec-host flags.
pub fn spawn_spec_host(url: &str, lattice: &str, extra: &[String]) -> Result<HostProcess> {
    spawn_spec_host_as(url, lattice, &format!("bench-{lattice}"), extra)
}

/// As [`spawn_spec_host`], with host id `id`.
pub fn spawn_spec_host_as(
    url: &str,
    lattice: &str,
    id: &str,
    extra: &[String],
) -> Result<HostProcess> {
    spawn_spec_host_serving(url, lattice, id, extra, &[])
}

/// As [`spawn_spec_host_as`], with `serve_flags` after `serve`.
pub fn spawn_spec_host_serving(
    url: &str,
    lattice: &str,
    id: &str,
    extra: &[String],
    serve_flags: &[String],
) -> Result<HostProcess> {
    let me = std::env::current_exe().context("finding the bench binary")?;
    let mut args: Vec<String> = vec![
        "probe-serve".into(),
        "--".into(),
        "--nats".into(),
        url.into(),
        "--lattice".into(),
        lattice.into(),
    ];
    args.extend(extra.iter().cloned());
    args.extend(["serve".into(), "--host-id".into(), id.into()]);
    args.extend(serve_flags.iter().cloned());
    let child = Command::new(me)
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&format!("spec-host-{id}"))?)
        .spawn()
        .context("starting spec-host serve")?;
    Ok(HostProcess {
        child,
        name: "spec-host serve",
        spawned: Instant::now(),
    })
}

/// Starts the wasmCloud v1.9 host on `lattice`.
pub fn spawn_wasmcloud(binary: &Path, url: &str, lattice: &str) -> Result<HostProcess> {
    let child = Command::new(binary)
        .args(["--nats", url, "--lattice", lattice])
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file(&format!("wasmcloud-{lattice}"))?)
        .spawn()
        .context("starting the wasmCloud host")?;
    Ok(HostProcess {
        child,
        name: "wasmCloud v1.9 host",
        spawned: Instant::now(),
    })
}

/// Waits until the wasmCloud host prints `ready` (its `Host::new` returned:
/// connected, buckets open, initial scan of the spec bucket done).
pub async fn wasmcloud_ready(host: &mut HostProcess, limit: Duration) -> Result<Duration> {
    let stdout = host
        .child
        .stdout
        .take()
        .context("the wasmCloud host's stdout is gone")?;
    let spawned = host.spawned;
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(stdout);
        let read = reader.read_line(&mut line);
        // Keep the pipe open (the host must not see a closed stdout).
        std::mem::forget(reader);
        read.map(|_| (line, spawned.elapsed()))
    });
    let (line, took) = tokio::time::timeout(limit, line)
        .await
        .context("the wasmCloud host did not get ready in time")???;
    if line.trim() != "ready" {
        bail!("the wasmCloud host printed {line:?} instead of ready");
    }
    Ok(took)
}

/// Waits until a `spec-host serve` on `lattice` answers status with its
/// table caught up and holding `links` links; returns when that was,
/// counted from the spawn.
pub async fn spec_host_ready(
    host: &mut HostProcess,
    client: &async_nats::Client,
    lattice: &str,
    links: usize,
    limit: Duration,
) -> Result<Duration> {
    let deadline = Instant::now() + limit;
    loop {
        host.check_alive()?;
        let found =
            spec_lattice::serve::collect_status(client, lattice, Duration::from_millis(20)).await?;
        if found.iter().any(|s| s.caught_up && s.links >= links) {
            return Ok(host.spawned.elapsed());
        }
        if Instant::now() > deadline {
            bail!("spec-host serve did not catch up with {links} links within {limit:?}");
        }
    }
}

/// The body of one `GET /metrics` from a spec-host admin endpoint.
pub async fn scrape(admin: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        bail!("scrape of {admin} answered {text:.40}");
    }
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_string())
}
