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


def load_pretrained(path: str | Path):
    """(PretrainModule in eval mode, the run config dict) from a ``bayesncl fit`` checkpoint."""
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
    if ckpt["bayesncl"].get("task") == "multimodal":
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
