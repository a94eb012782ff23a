"""Stand-ins for ``grid._run_job`` that spawned workers can import (no training)."""

import time
from pathlib import Path

#: seconds each fake row sleeps, by row key
SLEEP = {"fast": 0.1, "slow": 2.0}


def sleepy_job(row, seed, preset, root, extra, data_dir) -> Path:
    """Sleeps SLEEP[row.key] seconds, then writes its end time."""
    time.sleep(SLEEP[row.key])
    out = Path(root) / f"{row.key}.end"
    out.write_text(repr(time.time()))
    return out


def failing_job(row, seed, preset, root, extra, data_dir) -> Path:
    raise ValueError(f"{row.key} failed on purpose")
