#!/usr/bin/env bash
# Runs browser.mjs against mock-server.mjs, playing the orchestrator: when the
# test prints READY-FOR-EXTERNAL-WRITE, "another host" writes the external
# link through the mock-only endpoint POST /mock/external.
set -euo pipefail
cd "$(dirname "$0")"
PORT="${PORT:-8099}"
export UI_URL="http://127.0.0.1:$PORT"
export UI_SCREENSHOT="${UI_SCREENSHOT:-$PWD/out/mock.png}"
export UI_EXPECT='{"nodes":["http-router","api-backend","httpserver","cron-job","kvredis","blobstore-fs","messaging-nats","legacy-billing","broken-app"],"edges":[["http-router","api-backend"],["http-router","kvredis"],["http-router","blobstore-fs"],["api-backend","kvredis"],["api-backend","messaging-nats"],["api-backend","legacy-billing"],["httpserver","http-router"]]}'
export UI_NEW_LINK='{"source_id":"cron-job","target":"messaging-nats","name":"default","wit_namespace":"wasmcloud","wit_package":"messaging","interfaces":["consumer"],"source_config":[],"target_config":[]}'
# Same source, ns:pkg, name and an overlapping interface as the link above, other target.
export UI_CONFLICT_LINK='{"source_id":"cron-job","target":"kvredis","name":"default","wit_namespace":"wasmcloud","wit_package":"messaging","interfaces":["consumer"],"source_config":[],"target_config":[]}'
export UI_EXTERNAL_EDGE='["reporter","blobstore-fs"]'
EXTERNAL_LINK='{"source_id":"reporter","target":"blobstore-fs","name":"default","wit_namespace":"wasi","wit_package":"blobstore","interfaces":["blobstore"]}'

MOCK_QUIET=1 node mock-server.mjs --port "$PORT" & mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "$UI_URL/api/snapshot" >/dev/null && break; sleep 0.1; done

node browser.mjs | while IFS= read -r line; do
  echo "$line"
  if [ "$line" = READY-FOR-EXTERNAL-WRITE ]; then
    curl -fs -X POST "$UI_URL/mock/external?delay=2000" -H 'content-type: application/json' -d "$EXTERNAL_LINK" >/dev/null
  fi
done
exit "${PIPESTATUS[0]}"
