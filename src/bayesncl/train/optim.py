"""Optimiser, parameter groups and the warmup-cosine schedule of pretraining (spec §1.3)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn


@dataclass(frozen=True)
class OptimConfig:
    """Pretraining optimisation (defaults: the official CIFAR settings, spec §1.3 / §1.10).

    lr, classifier_lr: base rates, multiplied by batch_size x world_size / 256 when
        ``lr_scaling="linear"`` (the official rule).
    gate_lr: the gate head's own rate, *not* batch-scaled (official) unless ``scale_gate_lr``;
        None uses the (scaled) ``lr``.
    name: ``lars`` (timm's LARS, trust coefficient ``lars_eta``, clipped as officially), ``sgd``
        or ``adamw``. Biases and normalisation parameters get no weight decay and no LARS
        adaptation; the online classifier gets no weight decay.
    warmup_epochs: linear warmup from ``warmup_start_lr``, then the ``schedule``, per step:
        ``cosine`` to ``min_lr`` (pretraining, spec §1.3) or ``step``: x ``decay_rate`` at each
        fraction ``decay_at`` of the training steps (the supervised and fine-tuning schedules:
        [0.6, 0.8] is epochs 60 and 80 of 100 on ImageNet-100, ncl-extras-spec §2.1; fractions,
        so a shorter run keeps the shape).
    """

    name: Literal["lars", "sgd", "adamw"] = "lars"
    lr: float = 0.4
    classifier_lr: float = 0.1
    gate_lr: float | None = 0.1
    scale_gate_lr: bool = False
    weight_decay: float = 1e-4
    momentum: float = 0.9
    lars_eta: float = 0.02
    lars_clip: bool = True
    lr_scaling: Literal["linear", "none"] = "linear"
    warmup_epochs: float = 10.0
    warmup_start_lr: float = 3e-5
    min_lr: float = 0.0
    schedule: Literal["cosine", "step"] = "cosine"
    decay_at: tuple[float, ...] = ()
    decay_rate: float = 0.1

    def __post_init__(self) -> None:
        for key in ("lr", "classifier_lr"):
            if not getattr(self, key) > 0:
                raise ValueError(f"optim.{key}={getattr(self, key)!r} must be > 0")
        if self.gate_lr is not None and not self.gate_lr > 0:
            raise ValueError(
                f"optim.gate_lr={self.gate_lr!r} must be > 0 (or null to follow optim.lr)"
            )
        if self.weight_decay < 0:
            raise ValueError(f"optim.weight_decay={self.weight_decay!r} must be >= 0")
        if self.warmup_epochs < 0:
            raise ValueError(f"optim.warmup_epochs={self.warmup_epochs!r} must be >= 0")
        if self.min_lr < 0 or self.warmup_start_lr < 0:
            raise ValueError("optim.min_lr and optim.warmup_start_lr must be >= 0")
        if isinstance(self.decay_at, list):
            object.__setattr__(self, "decay_at", tuple(self.decay_at))
        if self.schedule == "step" and not self.decay_at:
            raise ValueError("optim.schedule=step needs optim.decay_at, e.g. [0.6, 0.8]")
        if list(self.decay_at) != sorted(self.decay_at) or any(
            not 0 < f < 1 for f in self.decay_at
        ):
            raise ValueError(
                f"optim.decay_at={list(self.decay_at)} must be fractions of training in (0, 1), "
                "ascending"
            )
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"optim.decay_rate={self.decay_rate!r} must be in (0, 1]")

    def lr_scale(self, total_batch: int) -> float:
        """The linear scaling rule's factor, total batch / 256 (1 with ``lr_scaling="none"``)."""
        return total_batch / 256 if self.lr_scaling == "linear" else 1.0

    def gate_rate(self, scale: float) -> float:
        """The gate's rate: ``lr x scale`` when ``gate_lr`` is None, else ``gate_lr`` (scaled
        too only with ``scale_gate_lr``, as officially it is not)."""
        if self.gate_lr is None:
            return self.lr * scale
        return self.gate_lr * (scale if self.scale_gate_lr else 1.0)


def no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases and normalisation weights (every 1-D tensor): no weight decay, no LARS."""
    return param.ndim <= 1


def param_groups(
    modules: dict[str, tuple[nn.Module, float, float]],
) -> list[dict]:
    """One group per (module, decay/no-decay). ``modules`` maps a name to (module, lr, wd)."""
    groups = []
    for name, (module, lr, wd) in modules.items():
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        decay = [p for n, p in params if not no_decay(n, p)]
        plain = [p for n, p in params if no_decay(n, p)]
        if decay:
            groups.append({"name": name, "params": decay, "lr": lr, "weight_decay": wd})
        if plain:
            groups.append(
                {"name": f"{name}.no_decay", "params": plain, "lr": lr, "weight_decay": 0.0}
            )
    return groups


def make_optimizer(cfg: OptimConfig, groups: Iterable[dict]) -> torch.optim.Optimizer:
    groups = list(groups)
    if cfg.name == "lars":
        from timm.optim import Lars

        # timm skips both the decay and the trust ratio for groups with weight_decay = 0,
        # which is the official exclude_bias_n_norm behaviour
        return Lars(
            groups,
            lr=cfg.lr,
            momentum=cfg.momentum,
            trust_coeff=cfg.lars_eta,
            trust_clip=cfg.lars_clip,
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"optim.name={cfg.name!r}; use lars, sgd or adamw")


def warmup_cosine(step: int, total: int, warmup: int, start: float, end: float) -> float:
    """Multiplier of the base lr at ``step``: linear from ``start`` to 1 over ``warmup`` steps,
    then cosine from 1 to ``end`` at ``total`` (start and end are ratios to the base lr)."""
    if warmup > 0 and step < warmup:
        return start + (1.0 - start) * step / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_step(
    step: int, warmup: int, start: float, milestones: tuple[int, ...], rate: float
) -> float:
    """Multiplier of the base lr: linear warmup from ``start`` to 1, then x ``rate`` at each
    milestone step passed."""
    if warmup > 0 and step < warmup:
        return start + (1.0 - start) * step / warmup
    return rate ** sum(step >= m for m in milestones)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warmup + cosine (or step decay) for every group, each from its own base lr
    (spec §1.3)."""
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    milestones = tuple(round(f * total_steps) for f in cfg.decay_at)
    lambdas: list[Callable[[int], float]] = []
    for group in optimizer.param_groups:
        base = group["lr"]
        start, end = cfg.warmup_start_lr / base, cfg.min_lr / base
        if cfg.schedule == "step":
            lambdas.append(
                lambda s, st=start: warmup_step(s, warmup, st, milestones, cfg.decay_rate)
            )
        else:
            lambdas.append(
                lambda s, st=start, en=end: warmup_cosine(s, total_steps, warmup, st, en)
            )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def lightning_optimizers(cfg: OptimConfig, groups: Iterable[dict], trainer: Any) -> dict[str, Any]:
    """``configure_optimizers``' answer: the optimiser of ``groups`` and its per-step schedule
    over the trainer's total steps (warmup counted in epochs of the trainer's batches)."""
    optimizer = make_optimizer(cfg, groups)
    total = int(trainer.estimated_stepping_batches)
    batches = trainer.num_training_batches
    per_epoch = (
        max(1, math.ceil(batches / trainer.accumulate_grad_batches))
        if math.isfinite(batches)
        else total
    )
    scheduler = make_scheduler(optimizer, cfg, total, per_epoch)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
