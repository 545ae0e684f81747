//! Builds WebAssembly guests for `wasm32-wasip2` from a build script.
//!
//! Shared by the build scripts of `spec-embed` (feature `bundled`: the
//! plugin embedded in the library) and `test-artifacts` (the extra guests
//! that tests and benchmarks load). Each guest is built by a nested `cargo` into its own target directory
//! under the workspace's, so it never waits on the outer build's lock and
//! is rebuilt only when its sources change.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One guest to build.
pub struct Guest<'a> {
    /// Cargo package name.
    pub package: &'a str,
    /// Cargo features to enable.
    pub features: &'a [&'a str],
    /// Subdirectory of `<target>/wasm/` to build in: distinct per feature
    /// set, because artifacts of one package share a file name.
    pub dir: &'a str,
    /// Environment variable (for `env!`) that receives the `.wasm` path.
    pub env: &'a str,
}

const TARGET: &str = "wasm32-wasip2";

/// The workspace root: the nearest folder above the crate being built that
/// holds the contract (`wit/spec.wit`) and the lockfile.
fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("wit/spec.wit").is_file() && dir.join("Cargo.lock").is_file())
        .expect("a workspace crate sits below the folder holding wit/ and Cargo.lock")
        .to_path_buf()
}

fn target_root(root: &Path) -> PathBuf {
    // A relative CARGO_TARGET_DIR is taken from the workspace root (where
    // the guests are built from), not from this build script's directory.
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
        .join("wasm")
}

/// Builds every guest and exports its path to the crate being compiled.
pub fn build_guests(guests: &[Guest<'_>]) {
    let root = workspace_root();
    for watched in [
        "wit",
        "guest/model/src",
        "guest/model/Cargo.toml",
        "guest/plugin/src",
        "guest/plugin/Cargo.toml",
        "guest/rt",
        "tests/guests",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for guest in guests {
        // Packagers (and a host-only check) can hand in a prebuilt guest:
        // `<ENV>_PREBUILT=/path/x.wasm`.
        let prebuilt = format!("{}_PREBUILT", guest.env);
        println!("cargo:rerun-if-env-changed={prebuilt}");
        if let Some(path) = std::env::var_os(&prebuilt) {
            println!(
                "cargo:rustc-env={}={}",
                guest.env,
                PathBuf::from(path).display()
            );
            continue;
        }
        let target_dir = target_root(&root).join(guest.dir);
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                TARGET,
                "-p",
                guest.package,
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        // No DWARF in the component: it is most of the file and only slows
        // down compiling it. Function names stay, so traps still show a
        // readable wasm backtrace.
        cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
        if !guest.features.is_empty() {
            cmd.arg("--features").arg(guest.features.join(","));
        }
        // The outer build's flags and wrappers are for the host target;
        // clippy's wrapper would even skip writing the .wasm.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {}: {e}", guest.package));
        if !status.success() {
            panic!(
                "building guest {} for {TARGET} failed ({status})",
                guest.package
            );
        }
        let artifact = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", guest.package.replace('-', "_")));
        if !artifact.exists() {
            panic!(
                "guest {} built but {} is missing",
                guest.package,
                artifact.display()
            );
        }
        println!("cargo:rustc-env={}={}", guest.env, artifact.display());
    }
}
