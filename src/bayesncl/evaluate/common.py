"""Small helpers every evaluation shares: a writable output folder and progress lines."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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
