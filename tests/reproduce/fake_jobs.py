"""Stand-ins for ``grid._run_job`` that spawned workers can import."""

import time
from pathlib import Path


def sleepy_job(row, seed, preset, root, extra, data_dir) -> Path:
    """Sleeps row.overrides["sleep"] seconds, then writes its end time."""
    time.sleep(row.overrides["sleep"])
    out = Path(root) / f"{row.name}.end"
    out.write_text(repr(time.time()))
    return out
