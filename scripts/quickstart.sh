#!/usr/bin/env bash
# Install flowyard into .venv, start the platform in the background, then run two end-to-end
# examples: a Kubernetes Job (apply -> wait for Complete -> logs) and a KFP pipeline
# (`flowyard run`, with a live task view). The server keeps running afterwards.
#   FLOWYARD_PORT (default 8731) and FLOWYARD_HOME (default ~/.flowyard) are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PORT="${FLOWYARD_PORT:-8731}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "installing flowyard into .venv ..."
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e . >.venv/install.log 2>&1; then
  cat .venv/install.log; exit 1
fi
export PATH="$PWD/.venv/bin:$PATH"
export FLOWYARD_HOME="${FLOWYARD_HOME:-$HOME/.flowyard}"
export FLOWYARD_URL="http://127.0.0.1:$PORT"
mkdir -p "$FLOWYARD_HOME/logs"

if ! curl -sf "$FLOWYARD_URL/healthz" >/dev/null 2>&1; then
  nohup flowyard up --port "$PORT" >"$FLOWYARD_HOME/logs/server.log" 2>&1 &
  echo "started flowyard (pid $!), log: $FLOWYARD_HOME/logs/server.log"
fi
for _ in $(seq 1 600); do
  curl -sf "$FLOWYARD_URL/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$FLOWYARD_URL/readyz" >/dev/null || {
  echo "flowyard did not become ready"; cat "$FLOWYARD_HOME/logs/server.log"; exit 1; }

flowyard delete job pi --ignore-not-found >/dev/null
flowyard apply -f examples/quickstart-job.yaml
flowyard wait job/pi --for=condition=Complete --timeout=60s
flowyard get jobs
flowyard logs job/pi
echo
flowyard run examples/quickstart_pipeline.py -p n=200
flowyard get runs
echo
echo "flowyard is running at $FLOWYARD_URL (token in $FLOWYARD_HOME/credentials)."
echo "Try: flowyard describe job pi; flowyard describe run <name>; flowyard logs run/<name> -c fit"
