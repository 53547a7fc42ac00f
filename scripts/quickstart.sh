#!/usr/bin/env bash
# Install flowyard into .venv, start the platform in the background, then run two end-to-end
# examples: a Kubernetes Job (apply -> wait for Complete -> logs) and a KFP pipeline
# (`flowyard run`, with a live task view). The server keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
export PATH="$PWD/.venv/bin:$PATH"
export FLOWYARD_HOME="${FLOWYARD_HOME:-$HOME/.flowyard}"
mkdir -p "$FLOWYARD_HOME/logs"

if ! curl -sf "http://127.0.0.1:8731/healthz" >/dev/null 2>&1; then
  nohup flowyard up >"$FLOWYARD_HOME/logs/server.log" 2>&1 &
  echo "started flowyard (pid $!), log: $FLOWYARD_HOME/logs/server.log"
fi
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:8731/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:8731/readyz" >/dev/null || { echo "flowyard did not become ready"; cat "$FLOWYARD_HOME/logs/server.log"; exit 1; }

flowyard delete job pi --ignore-not-found >/dev/null
flowyard apply -f examples/quickstart-job.yaml
flowyard wait job/pi --for=condition=Complete --timeout=60s
flowyard get jobs
flowyard logs job/pi
echo
flowyard run examples/quickstart_pipeline.py -p n=200
flowyard get runs
echo
echo "flowyard is running at http://127.0.0.1:8731 (token in $FLOWYARD_HOME/credentials)."
echo "Try: flowyard describe job pi; flowyard describe run <name>; flowyard logs run/<name> -c fit"
