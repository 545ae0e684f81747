#!/usr/bin/env bash
# `spec-host ui` on a demo lattice, or the browser test against it.
#   scripts/ui.sh demo           a local nats-server, two serving hosts, a few
#                                components, links and configs; the page at
#                                http://127.0.0.1:${UI_PORT:-8088}/ until Ctrl-C
#   scripts/ui.sh browser-test   the same lattice, then headless Chromium
#                                (Debian's chromium, installed if missing)
#                                checks the page; screenshot: docs/ui.png
# Needs NATS_SERVER_BIN (run.sh sets it) and a release build of spec-host.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}
BIN=target/release/spec-host
PORT=${UI_PORT:-8088}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

NATS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NATS_SERVER_BIN" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$dir/js" >"$dir/nats.log" 2>&1 & pids+=($!)
export SPEC_HOST_NATS="nats://127.0.0.1:$NATS_PORT" SPEC_HOST_STATE_DIR="$dir/state" SPEC_HOST_LATTICE=demo
for _ in $(seq 50); do "$BIN" config get probe >/dev/null 2>&1 && break; sleep 0.2; done

"$BIN" --provider kvredis --provider httpserver serve --host-id host-alpha >"$dir/alpha.log" 2>&1 & pids+=($!)
"$BIN" --provider blobstore-fs --provider messaging-nats serve --host-id host-bravo >"$dir/bravo.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do [ "$("$BIN" --json status 2>/dev/null | grep -c host_id || true)" -ge 2 ] && break; sleep 0.2; done

link() { "$BIN" link put "$@" >/dev/null; }
"$BIN" config put redis-url url=redis://127.0.0.1:6379 >/dev/null
"$BIN" config put http-port address=0.0.0.0:8080 >/dev/null
"$BIN" config put SECRET_redis-password backend=nats-kv key=redis >/dev/null
link --source http-router --target api-backend --namespace acme --package orders --interface api
link --source http-router --target kvredis --namespace wasi --package keyvalue --interface store --interface atomics --target-config redis-url --target-config SECRET_redis-password
link --source api-backend --target kvredis --namespace wasi --package keyvalue --interface store --target-config redis-url
link --source api-backend --target messaging-nats --namespace wasmcloud --package messaging --interface consumer
link --source httpserver --target http-router --namespace wasi --package http --interface incoming-handler --source-config http-port
link --source cron-job --target blobstore-fs --namespace wasi --package blobstore --interface blobstore --name archive

"$BIN" ui --listen "127.0.0.1:$PORT" >"$dir/ui.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/api/snapshot" >/dev/null 2>&1 && break; sleep 0.2; done

if [ "$mode" = demo ]; then
    echo "the lattice view: http://127.0.0.1:$PORT/  (lattice demo on $SPEC_HOST_NATS; Ctrl-C stops everything)"
    wait "${pids[-1]}"
    exit 0
fi

if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Debian's chromium" >&2
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
[ -d tests/ui/node_modules/playwright-core ] || (cd tests/ui && npm ci --no-audit --no-fund --silent)

export UI_URL="http://127.0.0.1:$PORT" UI_SCREENSHOT="$PWD/docs/ui.png"
export UI_EXPECT='{"nodes":["http-router","api-backend","httpserver","cron-job","kvredis","blobstore-fs","messaging-nats"],"edges":[["http-router","api-backend"],["http-router","kvredis"],["api-backend","kvredis"],["api-backend","messaging-nats"],["httpserver","http-router"],["cron-job","blobstore-fs"]]}'
export UI_NEW_LINK='{"source_id":"cron-job","target":"messaging-nats","name":"default","wit_namespace":"wasmcloud","wit_package":"messaging","interfaces":["consumer"],"source_config":[],"target_config":[]}'
export UI_CONFLICT_LINK='{"source_id":"cron-job","target":"kvredis","name":"default","wit_namespace":"wasmcloud","wit_package":"messaging","interfaces":["consumer"],"source_config":[],"target_config":[]}'
export UI_EXTERNAL_EDGE='["reporter","blobstore-fs"]'
node tests/ui/browser.mjs | while IFS= read -r line; do
    echo "$line"
    if [ "$line" = READY-FOR-EXTERNAL-WRITE ]; then
        # Another process writes a link; the page must show it live.
        "$BIN" link put --source reporter --target blobstore-fs --namespace wasi --package blobstore --interface blobstore >/dev/null
    fi
done
exit "${PIPESTATUS[0]}"
