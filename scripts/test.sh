#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the checks CI runs: ruff lint, ruff format, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# the feature browser's tests drive a real headless browser (tests/browse)
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } ||
    echo "[test] could not install chromium: the browser tests will be skipped"
fi
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/python -m pytest -q "$@"
