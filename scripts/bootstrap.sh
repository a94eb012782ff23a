#!/usr/bin/env bash
# Create ./.venv and install bayesncl with everything it needs. Safe to rerun: it reinstalls only
# when pyproject.toml changed. TORCH_SPEC overrides the PyTorch pin for other machines, e.g.
#   TORCH_SPEC="torch torchvision" bash scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.bayesncl-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $TORCH_SPEC"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bootstrap] installing PyTorch ($TORCH_SPEC); a few minutes the first time"
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --disable-pip-version-check $TORCH_SPEC
  echo "[bootstrap] installing bayesncl and its dependencies"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,tensorboard]"
  echo "$want" > "$stamp"
fi
