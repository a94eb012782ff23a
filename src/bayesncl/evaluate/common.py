"""Small helpers every evaluation shares: a writable output folder, progress lines and the
metrics.md table."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bayesncl._output import verbosity


def writable_dir(path: Path, option: str) -> Path:
    """Create ``path`` and check a file can be written there; ``ValueError`` naming it if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".bayesncl-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"cannot write to {path} ({type(err).__name__}: {err.strerror or err}): pass "
            f"{option} with a writable directory"
        ) from None
    return path


@contextlib.contextmanager
def progress(what: str) -> Iterator[None]:
    """``[evaluate] what ... 3.2 s`` on stderr (nothing with -q): evaluation is never silent."""
    if verbosity() < 0:
        yield
        return
    print(f"[evaluate] {what} ...", end="", file=sys.stderr, flush=True)
    start = time.monotonic()
    yield
    print(f" {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


def format_value(value: float, scale: float = 1) -> str:
    """``value * scale`` to 4 significant digits; NaN and Inf as ``nan`` / ``inf`` (e.g. the
    consistency of a matrix with no active dimension), never as a plausible number."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v * scale:.4g}"


def _md(text: str) -> str:
    """Text for a markdown table cell: ``|`` escaped (labels such as "mean |corr|")."""
    return text.replace("|", "\\|")


def metrics_table(
    metrics: dict[str, Any], title: str, rows: Sequence[tuple[str, str, float]]
) -> str:
    """``metrics`` as a two-column markdown table: one line per (key, label, scale) of ``rows``
    whose key is present, values by :func:`format_value`."""
    lines = [f"### {title}", "", "| metric | value |", "|---|---|"]
    for key, label, scale in rows:
        if key in metrics and metrics[key] is not None:
            lines.append(f"| {_md(label)} | {format_value(metrics[key], scale)} |")
    return "\n".join(lines) + "\n"
