"""Load a pretraining checkpoint back into the model that wrote it (weights-only, strict)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bayesncl.core.presets import from_legacy
from bayesncl.train.module import PretrainModule
from bayesncl.train.optim import OptimConfig


class CheckpointError(ValueError):
    """The file is missing, unreadable, or not a bayesncl pretraining checkpoint."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict of a ``bayesncl fit`` checkpoint, read weights-only (no code is unpickled);
    :class:`CheckpointError` when it is missing, unreadable or not bayesncl's."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist (look in RUN_DIR/checkpoints/last.ckpt)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch file: {err}") from err
    if not isinstance(ckpt, dict) or "bayesncl" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(
            f"{path} is not a bayesncl pretraining checkpoint (no 'bayesncl' section)"
        )
    return ckpt


def checkpoint_task(ckpt: dict[str, Any]) -> str:
    """The ``bayesncl fit`` task that wrote a checkpoint (:func:`read_checkpoint`'s dict):
    ``pretrain`` or ``multimodal``."""
    return str(ckpt["bayesncl"].get("task", "pretrain"))


def load_pretrained(path: str | Path, ckpt: dict[str, Any] | None = None):
    """(PretrainModule in eval mode, the run config dict) from a ``bayesncl fit`` checkpoint
    (``ckpt``: its dict, when :func:`read_checkpoint` has read it already)."""
    path = Path(path)
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    if checkpoint_task(ckpt) == "multimodal":
        raise CheckpointError(
            f"{path} is a two-tower (multimodal) checkpoint: `bayesncl evaluate` reads it "
            "(bayesncl.evaluate.multimodal.load_two_tower in Python); this command takes "
            "single-encoder checkpoints"
        )
    hp: dict[str, Any] = dict(ckpt["hyper_parameters"])
    run_config = ckpt["bayesncl"].get("config") or {}
    if isinstance(hp.get("method"), str):  # format 1: preset name + flat method_overrides
        hp["method"] = from_legacy(hp["method"], hp.pop("method_overrides", None)).to_dict()
        model_cfg = run_config.get("model", {})
        if isinstance(model_cfg.get("method"), str):
            model_cfg.pop("method_overrides", None)
            model_cfg["method"] = hp["method"]
    hp.pop("init_from", None)  # the weights below replace the fine-tuning start point
    hp.pop("finetune", None)  # likewise: no start point needed to rebuild the model
    try:
        hp["optim"] = OptimConfig(**hp.get("optim", {}))
        model = PretrainModule(**hp)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{path} does not match the model its settings describe: {err}"
        ) from err
    model.eval()
    return model, run_config
