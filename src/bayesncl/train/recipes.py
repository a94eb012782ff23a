"""Recipes: the fit config of every (dataset, method) pair, as plain nested dicts.

``configs/<dataset>/<method>.yaml`` (in the package: ``bayesncl/configs``, so an installed wheel
has them; ``configs`` at the repository root points there) are written from these
(``python -m bayesncl.train.recipes src/bayesncl/configs``) and ``bayesncl reproduce`` builds its
runs from them, so the two never disagree. ``--config digits/bayesncl`` names one from any
directory (:func:`find_config`).
CIFAR and ImageNet-100 carry the official hyperparameters (reference spec §1.10); Fashion-MNIST
and digits are CPU-sized. Beside one config per method preset, each dataset has the training
protocols of :data:`PROTOCOLS`: ``<dataset>/finetune`` fine-tunes a pretrained backbone with CE.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from bayesncl.core.presets import PRESETS
from bayesncl.core.registry import get_objective

#: presets with a config per dataset (all of them; supervised ones get the supervised recipe)
CONFIG_PRESETS: tuple[str, ...] = tuple(PRESETS)


def is_supervised(method: str) -> bool:
    """Whether the preset trains on labels (its objective needs them: ce, nce, ...)."""
    return get_objective(PRESETS[method].objective).needs_labels


def supervised(cfg: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The supervised version of a dataset recipe (ncl-extras-spec §2.1, §2.4): one view per
    image with crop + flip only (the supervised baselines' augmentation), SGD with momentum,
    lr x0.1 at 60% and 80% of the epochs (Fig. 4's step at epoch 60 of 100), no warmup."""
    cfg = copy.deepcopy(cfg)
    cfg["data"]["num_views"] = 1
    cfg["data"]["augment"] = {"jitter_prob": 0.0, "grayscale_prob": 0.0, "blur_prob": 0.0}
    cfg["model"]["optim"] = {
        "name": "sgd",
        "lr": 0.1,
        "classifier_lr": 0.1,
        "gate_lr": None,
        "weight_decay": 5e-4 if cfg["data"]["dataset"] != "imagenet100" else 1e-4,
        "warmup_epochs": 0,
        "schedule": "step",
        "decay_at": [0.6, 0.8],
    }
    cfg["trainer"]["max_epochs"] = epochs
    return cfg


#: training protocols with a config per dataset beside the presets' (name -> the method preset
#: they train): ``finetune`` is full fine-tuning of a pretrained backbone with CE
#: (ncl-extras-spec §8.2); its configs set ``model.finetune: true``, so fit needs model.init_from
PROTOCOLS: dict[str, str] = {"finetune": "ce"}


def finetune_schedule(cfg: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The fine-tuning version of a supervised recipe (ncl-extras-spec §8.2, reference spec
    §2.11): the optimiser, epochs and batch of :data:`FINETUNE` and ``model.finetune: true`` (the
    backbone starts from ``model.init_from``, every weight trains). Augmentation stays the
    supervised one (crop + flip, one view), as solo-learn's linear/fine-tuning transform."""
    cfg = copy.deepcopy(cfg)
    optim, epochs, batch_size = FINETUNE[dataset]
    cfg["model"]["optim"] = copy.deepcopy(optim)  # gate_lr None: CE has no gate
    cfg["model"]["finetune"] = True
    cfg["trainer"]["max_epochs"] = epochs
    if batch_size is not None:
        cfg["data"]["batch_size"] = batch_size
    return cfg


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
        # the official views batched on the device (hue included): 22.8 vs 300.5 ms for two views
        # of 256 images per image (benchmarks/peers.py); ImageNet-100 stays per image (sizes vary)
        "augment_on": "batch",
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
    # Fashion-MNIST garments on textured backgrounds (bayesncl.data.scenes): a known shared
    # feature; `data.dataset: scenes-pi20 | scenes-pi50 | scenes-pi80 | scenes-group | scenes-piNN`
    "scenes": {
        "model": {
            "backbone": "convnet",
            "backbone_width": 16,
            "proj_hidden_dim": 512,
            "proj_output_dim": 128,
            "channels_last": True,
            "optim": _lars(0.4, 0.1, 1),
        },
        "data": {
            "dataset": "scenes-pi80",
            "data_dir": "data",
            "batch_size": 256,
            "num_workers": 0,
            "augment_on": "batch",
        },
        "trainer": {"max_epochs": 10, "precision": "32-true", "checkpoint_every_n_steps": 100},
    },
    # your own images: DATA_DIR/train/<class>/*, DATA_DIR/val/<class>/*; classes and image size
    # come from the folders; the ResNet stem follows the image size (CIFAR stem up to 64 px)
    "imagefolder": {
        "model": {
            "backbone": "resnet18",
            "stem": "auto",
            "proj_hidden_dim": 2048,
            "proj_output_dim": 256,
            "optim": _lars(0.4, 0.1, 10),
        },
        "data": {
            "dataset": "imagefolder",
            "data_dir": "data/images",
            "batch_size": 256,
            "num_workers": 4,
            "augment_on": "sample",
        },
        "trainer": {"max_epochs": 100, "precision": "32-true", "checkpoint_every_n_steps": 500},
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

#: epochs of the supervised recipes (ImageNet-100: Fig. 4's 100; CIFAR: the usual 200)
SUPERVISED_EPOCHS: dict[str, int] = {
    "cifar10": 200,
    "cifar100": 200,
    "imagenet100": 100,
    "fashion-mnist": 10,
    "scenes": 10,
    "digits": 30,
    "imagefolder": 100,
}

#: official CIFAR fine-tuning (PKU-ML/non_neg scripts/finetuning/cifar/simclr.yaml): LARS lr 0.4,
#: classifier lr 0.1, weight decay 1e-4, warmup_cosine, batch 256, 30 epochs. The yaml does not
#: set the warmup: 10 epochs (from 3e-5) is solo-learn's default, which its LinearModel applies
_FT_CIFAR = ({**_lars(0.4, 0.1, 10), "gate_lr": None, "schedule": "cosine"}, 30, 256)
#: CPU-sized (our choice, no official value): the CIFAR optimiser with 1 warmup epoch of 5
_FT_CPU = ({**_lars(0.4, 0.1, 1), "gate_lr": None, "schedule": "cosine"}, 5, None)

#: fine-tuning schedules: (model.optim, trainer.max_epochs, data.batch_size or None to keep)
FINETUNE: dict[str, tuple[dict[str, Any], int, int | None]] = {
    "cifar10": _FT_CIFAR,
    "cifar100": _FT_CIFAR,
    # official (scripts/finetuning/imagenet-100/simclr.yaml): SGD lr 1.0, weight decay 0, batch
    # 256, 30 epochs, step decay at epochs 60 and 80, i.e. never within 30 epochs: a constant lr
    # (decay_rate 1); no warmup (none in the yaml)
    "imagenet100": (
        {
            "name": "sgd",
            "lr": 1.0,
            "classifier_lr": 0.1,  # the online probe's rate (not in the yaml: the recipe's)
            "gate_lr": None,
            "weight_decay": 0.0,
            "warmup_epochs": 0,
            "schedule": "step",
            "decay_at": [0.5],
            "decay_rate": 1.0,
        },
        30,
        256,
    ),
    "fashion-mnist": _FT_CPU,
    "scenes": _FT_CPU,
    # CPU-sized (ours): the same optimiser over 10 epochs (a third of digits' supervised 30)
    "digits": ({**_lars(0.4, 0.1, 1), "gate_lr": None, "schedule": "cosine"}, 10, None),
    "imagefolder": _FT_CIFAR,  # your own images: the official CIFAR schedule
}

#: method settings that differ by dataset (official: relu on ImageNet-100, rep_relu on CIFAR)
_DATASET_NONNEG: dict[str, str] = {"imagenet100": "relu"}


#: multi-modal methods (``task: multimodal``, ncl-extras-spec §4): name -> the preset of both
#: towers (its objective is replaced by the CLIP loss)
MM_METHODS: dict[str, str] = {"clip": "cl", "mmncl": "ncl", "mmbayesncl": "bayesncl"}

_MM_CPU: dict[str, Any] = {
    "task": "multimodal",
    "model": {
        "temperature": 0.1,
        "backbone": "convnet",
        "backbone_width": 16,
        "proj_hidden_dim": 512,
        "proj_output_dim": 128,
        "optim": {
            "name": "adamw",
            "lr": 1e-3,
            "gate_lr": None,
            "weight_decay": 1e-4,
            "lr_scaling": "none",
            "warmup_epochs": 0.5,
        },
    },
    "data": {"data_dir": "data", "batch_size": 256, "num_workers": 0},
    "trainer": {"max_epochs": 10, "precision": "32-true", "checkpoint_every_n_steps": 100},
}

#: multi-modal recipes by paired dataset: M1 and M2 on Fashion-MNIST (CPU-sized), and ``pairs``
#: (your image-caption CSV/JSONL: a ResNet-18 image tower at 64 px, the GPU-sized projector)
MM_RECIPES: dict[str, dict[str, Any]] = {
    "fashion-mnist-edges": {**copy.deepcopy(_MM_CPU), "data": {**_MM_CPU["data"], "dataset": "fmnist-edges"}},
    "fashion-mnist-captions": {**copy.deepcopy(_MM_CPU), "data": {**_MM_CPU["data"], "dataset": "fmnist-captions"}},
    "pairs": {
        "task": "multimodal",
        "model": {
            "temperature": "learnable",
            "backbone": "resnet18",
            "stem": "auto",
            "proj_hidden_dim": 2048,
            "proj_output_dim": 256,
            "optim": {**_MM_CPU["model"]["optim"], "lr": 5e-4, "weight_decay": 0.1, "warmup_epochs": 1},
        },
        "data": {
            "dataset": "pairs",
            "pairs_file": "data/pairs/train.csv",
            "val_pairs_file": "data/pairs/val.csv",
            "mode": "RGB",
            "image_size": 64,
            "batch_size": 256,
            "num_workers": 4,
        },
        "trainer": {"max_epochs": 100, "precision": "32-true", "checkpoint_every_n_steps": 500},
    },
}  # fmt: skip


def mm_recipe(dataset: str, method: str) -> dict[str, Any]:
    """The fit config of the multi-modal ``method`` (:data:`MM_METHODS`) on the paired
    ``dataset`` (:data:`MM_RECIPES`); both towers take the method's preset."""
    if method not in MM_METHODS:
        raise ValueError(
            f"method={method!r} on the paired dataset {dataset!r}: use one of: "
            f"{', '.join(MM_METHODS)}"
        )
    cfg = copy.deepcopy(MM_RECIPES[dataset])
    preset = PRESETS[MM_METHODS[method]]
    cfg["model"] = {"method": preset.to_dict(), **cfg["model"]}
    cfg["run_dir"] = f"runs/{dataset}/{method}"
    return cfg


def recipe(dataset: str, method: str, finetune: bool = False) -> dict[str, Any]:
    """The fit config (nested dict) of ``method`` on ``dataset``.

    ``model.method`` is the preset's full nested config, with top-k's k = K/8 of this dataset's
    representation width K (``proj_output_dim``) and the dataset's non-negativity map.
    ``method`` may be a protocol of :data:`PROTOCOLS` (``finetune``: CE, fine-tuned);
    ``finetune``: a supervised preset with the fine-tuning schedule (:func:`finetune_schedule`).
    """
    if dataset in MM_RECIPES and not finetune:
        return mm_recipe(dataset, method)
    if dataset not in RECIPES:
        known = ", ".join([*RECIPES, *MM_RECIPES])
        raise ValueError(f"no recipe for dataset={dataset!r}; known: {known}")
    if method in PROTOCOLS:
        cfg = recipe(dataset, PROTOCOLS[method], finetune=True)
        cfg["run_dir"] = f"runs/{dataset}/{method}"
        return cfg
    if method not in PRESETS:
        raise ValueError(f"method={method!r} is not a preset; use one of: {', '.join(PRESETS)}")
    if finetune and not is_supervised(method):
        raise ValueError(
            f"method={method!r} is self-supervised: fine-tuning trains a supervised preset "
            "(ce, nce, ...) from a pretrained backbone"
        )
    cfg = copy.deepcopy(RECIPES[dataset])
    if is_supervised(method):
        cfg = supervised(cfg, SUPERVISED_EPOCHS[dataset])
    if finetune:
        cfg = finetune_schedule(cfg, dataset)
    preset = PRESETS[method]
    changes: dict[str, Any] = {}
    if preset.topk_k is not None:
        changes["topk_k"] = max(1, cfg["model"]["proj_output_dim"] // 8)
    if preset.nonneg != "identity" and dataset in _DATASET_NONNEG:
        changes["nonneg"] = _DATASET_NONNEG[dataset]
    cfg["model"] = {"method": preset.updated(changes).to_dict(), **cfg["model"]}
    cfg["run_dir"] = f"runs/{dataset}/{method}"
    return cfg


#: the shipped configs, inside the package
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def shipped_configs() -> list[str]:
    """Names ``<dataset>/<method>`` of every shipped config."""
    return sorted(
        p.relative_to(CONFIG_DIR).with_suffix("").as_posix() for p in CONFIG_DIR.glob("*/*.yaml")
    )


def find_config(name: str) -> Path | None:
    """The shipped config called ``name`` (``digits/bayesncl``, with or without ``.yaml`` or a
    leading ``configs/``), or None."""
    stem = name.removesuffix(".yaml").removeprefix("configs/")
    path = CONFIG_DIR / f"{stem}.yaml"
    return path if stem.count("/") == 1 and path.is_file() else None


def write_configs(root: str | Path) -> list[Path]:
    """Write configs/<dataset>/<method>.yaml for every recipe, preset and protocol, and every
    multi-modal recipe and method."""
    written = []
    pairs = [(d, m) for d in RECIPES for m in (*CONFIG_PRESETS, *PROTOCOLS)]
    pairs += [(d, m) for d in MM_RECIPES for m in MM_METHODS]
    for dataset, method in pairs:
        path = Path(root) / dataset / f"{method}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# bayesncl fit --config {dataset}/{method}\n"
            "# generated by: python -m bayesncl.train.recipes src/bayesncl/configs\n"
        )
        path.write_text(header + yaml.safe_dump(recipe(dataset, method), sort_keys=False))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_configs(sys.argv[1] if len(sys.argv) > 1 else CONFIG_DIR):
        print(p)
