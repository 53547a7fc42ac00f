#!/usr/bin/env bash
# Install flowyard with its test extras into .venv and run the whole suite:
# ruff, ruff format --check, mypy, pytest. Anything a test needs that pip cannot install
# (PostgreSQL, wrk, chromium) is installed by the scripts the tests call.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -m uv --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
fi
# uv needs pip's find-links (local wheels) passed explicitly; it does not read pip's config.
FIND_LINKS=$(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)
.venv/bin/python -m uv pip install -q --python .venv/bin/python ${FIND_LINKS:+--find-links "$FIND_LINKS"} -e '.[test]'

echo "== ruff"; .venv/bin/ruff check src tests benchmarks scripts
echo "== ruff format"; .venv/bin/ruff format --check src tests benchmarks scripts
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -q "$@"
