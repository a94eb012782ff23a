#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the checks CI runs: ruff lint, ruff format, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
