# shellcheck shell=bash
# Shared by scripts/dev, scripts/test and scripts/bench: installs the local AWS stack into a cache
# outside the clone (idempotently), starts it on 127.0.0.1, health-checks it, and stops what it
# started. Sourced, never run.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${PORTAL_CACHE:-$HOME/.cache/inspection-portal}"
VENV="$CACHE/venv"
DDB_DIR="$CACHE/dynamodb-local"
DDB_SIMULATOR_VERSION="${DDB_SIMULATOR_VERSION:-2.9.30}"
PY_REQUIREMENTS="$ROOT/infra/requirements.txt"
mkdir -p "$CACHE"

# cargo reuses a target folder outside the clone, so a fresh clone on a warm machine builds in seconds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "need $* but apt-get is not available; install it by hand"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  command -v npm >/dev/null || missing+=(npm)
  command -v curl >/dev/null || missing+=(curl)
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  # pdftoppm renders generated reports to PNG in the tests.
  command -v pdftoppm >/dev/null || missing+=(poppler-utils)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup first"
}

# Amazon DynamoDB Local: the jar ships inside the npm package amplify-dynamodb-simulator.
# `npm pack` + tar is lighter than `npm install` (no dependency tree).
ensure_dynamodb_local() {
  if [ -f "$DDB_DIR/DynamoDBLocal.jar" ]; then return; fi
  log "installing DynamoDB Local (amplify-dynamodb-simulator@$DDB_SIMULATOR_VERSION) into $DDB_DIR"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "amplify-dynamodb-simulator@$DDB_SIMULATOR_VERSION" >/dev/null)
  tar xzf "$tmp"/amplify-dynamodb-simulator-*.tgz -C "$tmp"
  rm -rf "$DDB_DIR.partial" && mkdir -p "$DDB_DIR.partial"
  cp -r "$tmp/package/emulator/." "$DDB_DIR.partial/"
  rm -rf "$tmp" "$DDB_DIR" && mv "$DDB_DIR.partial" "$DDB_DIR"
}

# moto server (S3, SES), cfn-lint and aws-sam-translator in one venv, pinned by infra/requirements.txt.
ensure_python_tools() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$PY_REQUIREMENTS" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing Python tools into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$PY_REQUIREMENTS"
  echo "$want" > "$stamp"
}

# The AWS SAM CLI in a venv of its own (it pins its own dependencies), for `sam validate --lint`.
SAM_VENV="$CACHE/sam-venv"
ensure_sam_cli() {
  local stamp="$SAM_VENV/.requirements.sha256" want
  want="$(sha256sum "$ROOT/infra/requirements-sam.txt" | cut -d' ' -f1)"
  if [ -x "$SAM_VENV/bin/sam" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing the AWS SAM CLI into $SAM_VENV"
  [ -x "$SAM_VENV/bin/python" ] || python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/infra/requirements-sam.txt"
  echo "$want" > "$stamp"
}

# schemathesis (the contract run) in a venv of its own, pinned by tests/contract/requirements.txt.
CONTRACT_VENV="$CACHE/schemathesis-venv"
ensure_schemathesis() {
  local stamp="$CONTRACT_VENV/.requirements.sha256" want
  want="$(sha256sum "$ROOT/tests/contract/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$CONTRACT_VENV/bin/schemathesis" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing schemathesis into $CONTRACT_VENV"
  [ -x "$CONTRACT_VENV/bin/python" ] || python3 -m venv "$CONTRACT_VENV"
  "$CONTRACT_VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/contract/requirements.txt"
  echo "$want" > "$stamp"
}

# Headless Chromium (Debian's package) and playwright-core (npm, pinned by tests/browser's lock
# file) for the browser checks. The scripts are copied next to their node_modules to run.
BROWSER_DIR="$CACHE/browser"
ensure_browser() {
  command -v chromium >/dev/null || apt_install chromium
  local stamp="$BROWSER_DIR/.lock.sha256" want
  want="$(sha256sum "$ROOT/tests/browser/package-lock.json" | cut -d' ' -f1)"
  if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing playwright-core into $BROWSER_DIR"
    mkdir -p "$BROWSER_DIR"
    cp "$ROOT/tests/browser/package.json" "$ROOT/tests/browser/package-lock.json" "$BROWSER_DIR/"
    (cd "$BROWSER_DIR" && npm ci --silent --no-audit --no-fund)
    echo "$want" > "$stamp"
  fi
  cp "$ROOT"/tests/browser/*.mjs "$BROWSER_DIR/"
}

ensure_all() {
  ensure_system_tools
  ensure_dynamodb_local
  ensure_python_tools
  ensure_sam_cli
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

STARTED_PIDS=()
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    wait "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}

wait_http() { # url name seconds
  local i
  for ((i = 0; i < ${3:-30} * 10; i++)); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  die "$2 did not answer on $1"
}

# Starts DynamoDB Local and moto on 127.0.0.1 and exports the standard AWS endpoint variables, the
# only way the code reaches them. Ports: DDB_PORT / MOTO_PORT, free ones when unset.
start_stack() {
  local logs="$CACHE/logs"; mkdir -p "$logs"
  DDB_PORT="${DDB_PORT:-$(free_port)}"
  MOTO_PORT="${MOTO_PORT:-$(free_port)}"
  log "starting DynamoDB Local on 127.0.0.1:$DDB_PORT and moto on 127.0.0.1:$MOTO_PORT"
  java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" \
    -inMemory -port "$DDB_PORT" -disableTelemetry >"$logs/dynamodb-$DDB_PORT.log" 2>&1 &
  STARTED_PIDS+=("$!")
  # The fault tests pause and resume the emulators (SIGSTOP/SIGCONT) to see what a dependency that
  # stops answering does.
  export DYNAMODB_LOCAL_PID="$!"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$logs/moto-$MOTO_PORT.log" 2>&1 &
  STARTED_PIDS+=("$!")
  export MOTO_PID="$!"
  wait_http "http://127.0.0.1:$DDB_PORT" "DynamoDB Local" 60
  wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/data.json" "moto" 60
  # moto imports each service's backend on its first request (seconds on a busy machine): load
  # S3, SES and Secrets Manager now, so the first test to touch one does not pay for it.
  "$VENV/bin/python" - "http://127.0.0.1:$MOTO_PORT" <<'PY' >/dev/null
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
boto3.client("s3", **kw).list_buckets()
boto3.client("ses", **kw).list_identities()
boto3.client("secretsmanager", **kw).list_secrets()
PY

  export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
  export AWS_EC2_METADATA_DISABLED=true
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$MOTO_PORT"
  export AWS_ENDPOINT_URL_SES="http://127.0.0.1:$MOTO_PORT"
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$MOTO_PORT"
  export MOTO_URL="http://127.0.0.1:$MOTO_PORT"
}
