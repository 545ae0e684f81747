#!/usr/bin/env bash
# The full reliability run: release build, 8 clients x 250 link operations
# per scenario against two `spec-host serve` processes, with every fault
# (nats-server kill -9, spec-host kill -9, a cluster node kill -9, plugin
# swap + poison pills) and bad inputs. Prints what each scenario did and
# found, then a summary of the `RELIABILITY ...` lines; the whole output is
# kept in target/reliability/last-run.log. Figures go into docs/RELIABILITY.md.
#
#   scripts/reliability.sh                      # full run
#   RELIABILITY_CLIENTS=16 RELIABILITY_OPS=1000 scripts/reliability.sh
#   RELIABILITY_SEED=42 scripts/reliability.sh  # same operation mix again
#
# Needs nats-server >= 2.10 on PATH or NATS_SERVER_BIN (./run.sh installs
# one) and the wasm32-wasip2 target (the build installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

export RELIABILITY_FULL=1
mkdir -p target/reliability
log=target/reliability/last-run.log
started=$(date +%s)
cargo test --release --locked -p spec-host --test reliability -- \
    --nocapture --test-threads=1 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo
echo "== summary ($(( $(date +%s) - started )) s, log: $log) =="
grep '^RELIABILITY ' "$log" || true
exit "$status"
