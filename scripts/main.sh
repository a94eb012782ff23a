#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv (scripts/bootstrap.sh), get Fashion-MNIST (the
# Debian package dataset-fashion-mnist, where apt is available), then run
#   bayesncl reproduce --preset quick
# and print its tables. Extra arguments go to `bayesncl reproduce` (e.g. --preset cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
have_fmnist() {
  compgen -G "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte*" >/dev/null \
    || compgen -G "data/FashionMNIST/raw/train-images-idx3-ubyte*" >/dev/null
}
if ! have_fmnist; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[main] installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
    apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  fi
fi
if ! have_fmnist; then
  echo "[main] Fashion-MNIST not found. Install it with 'sudo apt-get install dataset-fashion-mnist'," >&2
  echo "       or put the four IDX files in data/FashionMNIST/raw/ (or pass data.download=true online)." >&2
  exit 1
fi
exec .venv/bin/bayesncl reproduce --preset quick "$@"
