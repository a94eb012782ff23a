"""Checkpoints that survive a kill: atomic writes, the previous one kept, safe and checked loads.

Writing (:class:`AtomicCheckpointIO`, Lightning's ``CheckpointIO`` plugin): the checkpoint is
written to a temporary file *in the checkpoint directory* (never ``$TMPDIR``: a move across
filesystems is a copy, which truncates the old file first), flushed and fsynced, then renamed over
the target with ``os.replace`` (atomic on POSIX) and the directory fsynced. Before the rename the
current file is kept as ``<name>.prev.ckpt`` (a hard link, so ``last.ckpt`` exists at every
moment). A model state with a NaN or infinite weight is never written: the last finite checkpoint
stays in place. A kill at any moment therefore leaves ``last.ckpt`` (or, at worst, its previous
version) complete, and at most a ``.last.ckpt.tmp`` that the next ``fit`` removes.

Reading: always ``torch.load(..., weights_only=True)``, passed explicitly so that
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn it off (a checkpoint never runs code).
:func:`select_checkpoint` picks what ``--resume`` means and checks that the file is a bayesncl
checkpoint of this model; when the newest does not load it falls back to the previous one and
says so on stderr, else it stops with the fix.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Checkpoint

LAST = "last.ckpt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (corrupt, truncated, foreign or unsafe)."""


def prev_path(path: Path) -> Path:
    """``last.ckpt`` -> ``last.prev.ckpt``: the previous good version of a checkpoint."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def tmp_path(path: Path) -> Path:
    """The temporary file a checkpoint is written to, in the same directory."""
    return path.with_name(f".{path.name}.tmp")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def non_finite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of floating tensors of a state dict holding a NaN or an infinity."""
    return [
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(v.isfinite().all())
    ]


def _write(checkpoint: dict[str, Any], f) -> None:
    """Serialise into an open file (a separate function so tests can simulate a kill here)."""
    torch.save(checkpoint, f)


class AtomicCheckpointIO(CheckpointIO):
    """``CheckpointIO`` that writes atomically in the target directory and loads weights-only.

    ``preload(path, checkpoint)`` hands over a checkpoint :func:`select_checkpoint` has already
    read and checked, so the Trainer does not read the file a second time.
    """

    def __init__(self) -> None:
        self._preloaded: dict[str, dict[str, Any]] = {}

    def preload(self, path: str | Path, checkpoint: dict[str, Any]) -> None:
        self._preloaded[str(path)] = checkpoint

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            kept = (
                f"the last finite checkpoint {path} was kept"
                if path.exists()
                else f"no checkpoint was written to {path}"
            )
            raise FloatingPointError(
                f"the model has non-finite weights ({len(bad)} tensor(s), e.g. "
                f"{', '.join(bad[:3])}): not saving a checkpoint; {kept}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        try:
            with open(tmp, "wb") as f:
                _write(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            if path.exists():
                self._keep_previous(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():  # an exception (not a kill) before the rename
                tmp.unlink()
        _fsync_dir(path.parent)

    @staticmethod
    def _keep_previous(path: Path) -> None:
        """``path`` -> ``path.prev`` while ``path`` stays in place (hard link, then rename)."""
        prev, link = prev_path(path), path.with_name(f".{prev_path(path).name}.tmp")
        link.unlink(missing_ok=True)
        try:
            os.link(path, link)
            os.replace(link, prev)
        except OSError:  # no hard links on this filesystem: rename (path is briefly absent)
            os.replace(path, prev)

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable | str | torch.device | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Weights-only load, whatever ``weights_only`` the caller or the environment asks for."""
        pre = self._preloaded.pop(str(path), None)
        if pre is not None:
            return pre
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)

    def remove_checkpoint(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)


class LastCheckpoint(Checkpoint):
    """Saves ``DIR/last.ckpt`` at the end of every epoch and, when ``every_n_steps`` is set,
    every that many optimiser steps (mid-epoch resume). Public Trainer API only."""

    def __init__(self, dirpath: str | Path, every_n_steps: int | None = None) -> None:
        self.path = Path(dirpath) / LAST
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def _save(self, trainer: Any) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # full state: resumable
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        n, step = self.every_n_steps, trainer.global_step
        if n and step % n == 0 and step != self._saved_step:  # once per step when accumulating
            self._save(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._save(trainer)


def read_checkpoint(path: Path, model_state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Load ``path`` weights-only and check it is a bayesncl ``fit`` checkpoint of this model;
    :class:`CheckpointError` with the reason otherwise."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a zip, pickled code refused, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            reason = "it holds pickled objects a weights-only load refuses (possibly code)"
        raise CheckpointError(f"{path} does not load: {reason[:200]}") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "bayesncl" not in ckpt:
        raise CheckpointError(f"{path} is not a checkpoint written by bayesncl fit")
    state = ckpt["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} is not a checkpoint written by bayesncl fit")
    missing = [k for k in model_state if k not in state]
    extra = [k for k in state if k not in model_state]
    shape = [
        k
        for k in model_state
        if k in state
        and isinstance(state[k], torch.Tensor)
        and tuple(state[k].shape) != tuple(model_state[k].shape)
    ]
    if missing or extra or shape:
        first = (missing or extra or shape)[0]
        raise CheckpointError(
            f"{path} was written by another model ({len(missing)} weights missing, "
            f"{len(extra)} unexpected, {len(shape)} of another shape, e.g. {first!r})"
        )
    return ckpt


def _how_to_start_over(path: Path) -> str:
    return (
        f"delete it (rm {path}) to start this run over, or pass --resume never "
        "(or choose another --run_dir)"
    )


def select_checkpoint(
    run_dir: Path,
    resume: str,
    model_state: Mapping[str, torch.Tensor],
    io: AtomicCheckpointIO,
) -> tuple[Path, int] | None:
    """The checkpoint ``fit`` continues from and its global step, read, checked and preloaded
    into ``io``.

    ``never``: none. ``auto``/``force``: RUN_DIR/checkpoints/last.ckpt, or its previous version
    when the newest does not load (said on stderr; the bad file is kept as ``*.bad``), or none
    when neither exists. Otherwise ``resume`` is a path that must load.
    """
    if resume == "never":
        return None
    if resume not in ("auto", "force"):
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"resume={resume!r}: no such checkpoint")
        try:
            ckpt = read_checkpoint(path, model_state)
        except CheckpointError as err:
            raise CheckpointError(f"{err}: pass another --resume checkpoint") from err
        io.preload(path, ckpt)
        return path, int(ckpt.get("global_step", 0))
    last = run_dir / "checkpoints" / LAST
    prev = prev_path(last)
    if not last.exists() and not prev.exists():
        return None
    errors: list[str] = []
    if last.exists():
        try:
            ckpt = read_checkpoint(last, model_state)
        except CheckpointError as err:
            errors.append(str(err))
        else:
            io.preload(last, ckpt)
            return last, int(ckpt.get("global_step", 0))
    if prev.exists():
        try:
            ckpt = read_checkpoint(prev, model_state)
        except CheckpointError as err:
            errors.append(str(err))
        else:
            why = f"{errors[0]}" if errors else f"{last} is missing"
            if last.exists():
                bad = last.with_name(last.name + ".bad")
                os.replace(last, bad)
                why += f" (kept as {bad.name})"
            print(
                f"bayesncl fit: {why}; resuming from the previous checkpoint {prev.name} "
                f"(step {ckpt.get('global_step', '?')}, renamed to {last.name}) instead",
                file=sys.stderr,
            )
            os.replace(prev, last)  # it becomes the newest again: the rotation goes on
            io.preload(last, ckpt)
            return last, int(ckpt.get("global_step", 0))
    raise CheckpointError(
        f"cannot resume the run in {run_dir}: {'; '.join(errors)}. To continue anyway, "
        f"{_how_to_start_over(last)}"
    )


def remove_checkpoints(run_dir: Path) -> list[Path]:
    """Delete RUN_DIR's last/previous checkpoints (a ``--resume never`` restart: an old run's
    file must not become the new run's fallback). Returns what was removed."""
    ckpts = run_dir / "checkpoints"
    removed = []
    for p in (ckpts / LAST, prev_path(ckpts / LAST)):
        if p.exists():
            p.unlink()
            removed.append(p)
    return removed


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temporary files a killed writer left in RUN_DIR/checkpoints (only called under the run
    directory's lock, so no writer is active)."""
    ckpts = run_dir / "checkpoints"
    if ckpts.is_dir():
        for p in ckpts.glob(".*.tmp"):
            p.unlink(missing_ok=True)
