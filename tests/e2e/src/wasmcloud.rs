//! The real wasmCloud v1.9 host (`wasmcloud-host` 0.27.1, built by
//! `scripts/wasmcloud-host.sh` into `target/wasmcloud`) as a child process,
//! for the interop suites. Its command line is the wrapper's
//! (`tests/interop/wasmcloud-host`): `--nats`, `--lattice` and the
//! secured-lattice options `--creds`, `--tls`, `--tls-ca`, `--js-domain` and
//! `--ctl-topic-prefix`.

use std::path::PathBuf;
use std::time::Duration;

/// The wasmCloud v1.9 host, killed on drop.
pub struct WasmCloud {
    child: std::process::Child,
}

impl Drop for WasmCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `WASMCLOUD_HOST_BIN`, or the script's build in this checkout.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WASMCLOUD_HOST_BIN") {
        return path.into();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasmcloud/release/wasmcloud-v19-host");
    assert!(
        path.is_file(),
        "{} is missing: build it with ./run.sh wasmcloud-host",
        path.display()
    );
    path
}

/// Starts it on `url` for `lattice` with `extra` arguments; returns once it
/// printed `ready` (it has connected, made its buckets and subscribed).
pub async fn start(url: &str, lattice: &str, extra: &[&str]) -> WasmCloud {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary())
        .args(["--nats", url, "--lattice", lattice])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the wasmCloud host starts");
    let stdout = child.stdout.take().expect("piped");
    let line = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        // Keep its stdout open: a closed pipe would end it on its next print.
        std::mem::forget(reader);
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("ready within a minute")
        .expect("reader");
    assert_eq!(line.trim(), "ready", "the wasmCloud host did not start");
    WasmCloud { child }
}
