"""Where a grid's numbers come from: versions, commit, machine, times; atomic JSON files.

A leaf module: :mod:`.grid` writes this provenance into results.json and :mod:`.report` prints
it, neither imports the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any


def utc_now() -> str:
    """The time as results.json records it: ``2026-11-22 20:39 UTC``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def environment(commit: str | None = None) -> dict[str, Any]:
    """Versions, commit, machine and start time, stored in results.json by ``bayesncl reproduce``."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    import torch

    env: dict[str, Any] = {"started": utc_now()}
    for pkg in ("torch", "torchvision", "lightning", "bayesncl"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = None
    if commit is None:
        here = Path(__file__).parent
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, check=True, cwd=here,
            ).stdout.strip()  # fmt: skip
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, check=True, cwd=here,
            ).stdout.strip()  # fmt: skip
            if changed:
                commit += "-dirty"  # uncommitted changes: the runs are not exactly this commit
        except (OSError, subprocess.CalledProcessError):
            commit = None
    env.update(
        commit=commit,
        python=platform.python_version(),
        cpu=platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
    return env


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` all or nothing: a temporary file in the same folder,
    flushed to disk, then renamed over ``path`` (a kill leaves the old file or the new one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def describe_budget(budget: dict[str, list[Any]]) -> str:
    """results.json's ``settings.budget`` in words: ``trainer.max_epochs 3; data.train_subset
    None`` (``a or b`` where the runs differ)."""
    return "; ".join(f"{k} {' or '.join(map(str, v))}" for k, v in budget.items() if v)
