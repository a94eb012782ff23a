"""Recipes: the fit config of every (dataset, method) pair, as plain nested dicts.

``configs/<dataset>/<method>.yaml`` are written from these (``python -m bayesncl.train.recipes
configs``) and ``bayesncl reproduce`` builds its runs from them, so the two never disagree.
CIFAR and ImageNet-100 carry the official hyperparameters (reference spec §1.10); Fashion-MNIST
and digits are CPU-sized.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from bayesncl.core.presets import PRESETS


def _lars(lr: float, classifier_lr: float, warmup_epochs: int) -> dict[str, Any]:
    """LARS with the official gate lr (0.1, unscaled) and weight decay (1e-4)."""
    return {
        "name": "lars",
        "lr": lr,
        "classifier_lr": classifier_lr,
        "gate_lr": 0.1,
        "weight_decay": 1e-4,
        "warmup_epochs": warmup_epochs,
    }


_CIFAR: dict[str, Any] = {
    "model": {
        "backbone": "resnet18",
        "stem": "cifar",
        "cifar_stem_padding": 2,
        "proj_hidden_dim": 2048,
        "proj_output_dim": 256,
        "channels_last": True,
        "optim": _lars(0.4, 0.1, 10),
    },
    "data": {
        "data_dir": "data",
        "batch_size": 256,
        "num_workers": 4,
        "download": True,
        "augment_on": "sample",
    },
    "trainer": {
        "max_epochs": 200,
        "precision": "16-mixed",
        "sync_batchnorm": True,
        "checkpoint_every_n_steps": 500,
    },
}

RECIPES: dict[str, dict[str, Any]] = {
    "cifar10": {**copy.deepcopy(_CIFAR), "data": {**_CIFAR["data"], "dataset": "cifar10"}},
    "cifar100": {**copy.deepcopy(_CIFAR), "data": {**_CIFAR["data"], "dataset": "cifar100"}},
    "imagenet100": {
        "model": {
            "backbone": "resnet18",
            "stem": "imagenet",
            "proj_hidden_dim": 16384,
            "proj_output_dim": 2048,
            "channels_last": True,
            # official: lr 0.3 x 128/256 = 0.15 effective, classifier 0.1 unscaled (spec §1.10)
            "optim": _lars(0.3, 0.2, 10),
        },
        "data": {
            "dataset": "imagenet100",
            "data_dir": "data/imagenet100",
            "batch_size": 128,
            "num_workers": 8,
            "augment_on": "sample",
        },
        "trainer": {
            "max_epochs": 100,
            "precision": "16-mixed",
            "sync_batchnorm": True,
            "checkpoint_every_n_steps": 500,
        },
    },
    "fashion-mnist": {
        "model": {
            "backbone": "convnet",
            "backbone_width": 16,
            "proj_hidden_dim": 512,
            "proj_output_dim": 128,
            "channels_last": True,
            "optim": _lars(0.4, 0.1, 1),
        },
        "data": {
            "dataset": "fashion-mnist",
            "data_dir": "data",
            "batch_size": 256,
            "num_workers": 0,
            "augment_on": "batch",
        },
        "trainer": {"max_epochs": 10, "precision": "32-true", "checkpoint_every_n_steps": 100},
    },
    "digits": {
        "model": {
            "backbone": "convnet",
            "backbone_width": 16,
            "proj_hidden_dim": 256,
            "proj_output_dim": 64,
            "optim": _lars(0.4, 0.1, 2),
        },
        "data": {"dataset": "digits", "batch_size": 128, "num_workers": 0, "augment_on": "batch"},
        "trainer": {"max_epochs": 30, "precision": "32-true"},
    },
}

#: method settings that differ by dataset (official: relu on ImageNet-100, rep_relu on CIFAR)
_DATASET_METHOD: dict[str, dict[str, Any]] = {
    "imagenet100": {"nonneg": "relu", "topk_k": 256},
    "fashion-mnist": {"topk_k": 16},
    "digits": {"topk_k": 8},
}


def recipe(dataset: str, method: str) -> dict[str, Any]:
    """The fit config (nested dict) of ``method`` on ``dataset``."""
    if dataset not in RECIPES:
        raise ValueError(f"no recipe for dataset={dataset!r}; known: {', '.join(RECIPES)}")
    if method not in PRESETS:
        raise ValueError(f"method={method!r} is not a preset; use one of: {', '.join(PRESETS)}")
    cfg = copy.deepcopy(RECIPES[dataset])
    cfg["model"]["method"] = method
    preset = PRESETS[method]
    overrides = {}
    for key, value in _DATASET_METHOD.get(dataset, {}).items():
        if key == "nonneg" and preset.nonneg != "identity":
            overrides[key] = value
        if key == "topk_k" and preset.topk_k is not None:
            overrides[key] = value
    if overrides:
        cfg["model"]["method_overrides"] = overrides
    cfg["run_dir"] = f"runs/{dataset}/{method}"
    return cfg


def write_configs(root: str | Path) -> list[Path]:
    """Write configs/<dataset>/<method>.yaml for every recipe and preset."""
    written = []
    for dataset in RECIPES:
        for method in PRESETS:
            path = Path(root) / dataset / f"{method}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = f"# bayesncl fit --config {path.as_posix()}\n# generated by: python -m bayesncl.train.recipes configs\n"
            path.write_text(header + yaml.safe_dump(recipe(dataset, method), sort_keys=False))
            written.append(path)
    return written


if __name__ == "__main__":
    for p in write_configs(sys.argv[1] if len(sys.argv) > 1 else "configs"):
        print(p)
