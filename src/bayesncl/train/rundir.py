"""The run directory of ``bayesncl fit``: writable, locked, and never continued with other settings.

- :func:`prepare_run_dir` creates RUN_DIR, ``checkpoints/`` and ``logs/`` and checks they are
  writable, at start-up (Lightning would swallow a ``PermissionError`` while saving and exit 0
  with no checkpoint).
- :class:`RunDirLock`: an exclusive ``flock`` on RUN_DIR/.lock for the whole run, with the
  holder's pid and host written in it. A second ``fit`` on the same directory is refused naming
  the holder. The kernel releases the lock when the holder dies (also by ``kill -9``), so a stale
  ``.lock`` file never blocks.
- :func:`config_changes`: what differs between RUN_DIR/config.yaml and the new resolved config,
  ignoring :data:`RESUMABLE_KEYS` (settings that do not change what is trained).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

#: Dotted keys that may differ between the segments of one run: they do not change the batches,
#: the model, the optimiser or the schedule (batches are a function of seed, epoch and position,
#: not of the number of loader workers), only where the run lives, how it is reported and how
#: often it is saved. Everything else (lr, tau, method, epochs, steps, data, devices, precision,
#: ...) is compared: an extension of ``trainer.max_epochs`` changes the learning-rate schedule of
#: the steps already done, so it is a different run (continue it on purpose with
#: ``--resume force``).
RESUMABLE_KEYS = frozenset(
    {
        "run_dir",
        "resume",
        "data.num_workers",
        "data.download",
        "data.val_batch_size",
        "data.val_subset",
        "trainer.limit_val_batches",
        "trainer.check_val_every_n_epoch",
        "trainer.log_every_n_steps",
        "trainer.enable_progress_bar",
        "trainer.checkpoint_every_n_steps",
        "trainer.profiler",
        "data.skip_corrupt",  # turned on to get past an unreadable file: same batches otherwise
    }
)


class RunDirError(ValueError):
    """A run directory that cannot be used (unwritable, in use, made with other settings)."""


def is_global_zero_process() -> bool:
    """False in the processes a distributed launcher starts for ranks > 0 (they rerun ``fit``
    with the same arguments; the run directory belongs to rank 0)."""
    return all(
        os.environ.get(k, "0") == "0"
        for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
    )


def check_writable(directory: Path) -> None:
    """Create ``directory`` (and parents) and check a file can be created in it."""
    fix = f"make it writable (chmod u+w {directory}) or choose another --run_dir"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next((p for p in [directory, *directory.parents] if p.is_file()), directory)
        raise RunDirError(
            f"cannot create the run directory {directory}: {blocker} is a file, not a directory; "
            "choose another --run_dir"
        ) from err
    except OSError as err:
        raise RunDirError(
            f"cannot create the run directory {directory} ({err.strerror}): choose another "
            "--run_dir or fix the permissions of its parent"
        ) from err
    if not directory.is_dir():
        raise RunDirError(f"{directory} is not a directory: choose another --run_dir")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RunDirError(f"{directory} is not writable: {fix}")
    probe = directory / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"{directory} is not writable ({err.strerror}): {fix}") from err


def prepare_run_dir(run_dir: Path) -> None:
    """RUN_DIR, RUN_DIR/checkpoints and RUN_DIR/logs exist and are writable (or RunDirError)."""
    for d in (run_dir, run_dir / "checkpoints", run_dir / "logs"):
        check_writable(d)


class RunDirLock:
    """Exclusive lock on RUN_DIR/.lock (``fcntl.flock``), held while ``fit`` runs."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: unlocked, as before
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise RunDirError(
                f"run directory {self.path.parent} is in use by another bayesncl fit ({holder}; "
                f"lock file {self.path}): wait for it to finish or stop it, or use another "
                "--run_dir"
            ) from err
        except OSError as err:  # a filesystem without locks (e.g. NFS without lockd)
            os.close(fd)
            print(
                f"bayesncl fit: warning: cannot lock {self.path} ({err.strerror}); make sure no "
                "other fit uses this run directory",
                file=sys.stderr,
            )
            return self
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()} on host {socket.gethostname()} since {stamp}\n".encode(), 0
        )
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


_ABSENT = "<absent>"


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every setting that differs, except
    :data:`RESUMABLE_KEYS`."""
    a, b = flatten(old), flatten(new)
    keys = sorted(set(a) | set(b))
    return [
        (k, a.get(k, _ABSENT), b.get(k, _ABSENT))
        for k in keys
        if k not in RESUMABLE_KEYS and a.get(k, _ABSENT) != b.get(k, _ABSENT)
    ]


def read_run_config(run_dir: Path) -> dict[str, Any] | None:
    """RUN_DIR/config.yaml as a dict, or None when there is none."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RunDirError(
            f"{path} is not valid YAML ({type(err).__name__}): delete it, or use another --run_dir"
        ) from err
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is not a fit config: delete it, or use another --run_dir")
    return data


def check_same_settings(
    run_dir: Path,
    new: dict[str, Any],
    resume: str,
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Refuse to continue a run made with other settings (unless ``resume == "force"``, which
    keeps the old config as ``config.<n>.yaml``). ``normalize`` resolves the stored config
    through today's parser (settings added since then take their defaults; the method format
    before the nested config is converted); if it cannot, the stored text is compared as is."""
    old = read_run_config(run_dir)
    if old is None:
        return
    if normalize is not None:
        with contextlib.suppress(Exception):  # unreadable today: compare the raw keys
            old = normalize(old)
    changes = config_changes(old, new)
    if not changes:
        return
    listed = "; ".join(f"{k}: {v0!r} -> {v1!r}" for k, v0, v1 in changes)
    if resume == "force":
        n = 1
        while (run_dir / f"config.{n}.yaml").exists():
            n += 1
        kept = run_dir / f"config.{n}.yaml"
        os.replace(run_dir / "config.yaml", kept)
        print(
            f"bayesncl fit: --resume force: continuing {run_dir} with changed settings ({listed}); "
            f"the previous config is kept as {kept.name}",
            file=sys.stderr,
        )
        return
    raise RunDirError(
        f"run directory {run_dir} holds a run made with other settings ({run_dir / 'config.yaml'}"
        f" -> now): {listed}. Start a new run with another --run_dir, or continue this one with "
        "the new settings on purpose with --resume force"
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory + rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
