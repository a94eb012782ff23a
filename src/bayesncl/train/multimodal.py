"""A minimal pure-torch training loop for MMNCL two-tower models (ncl-extras-spec §4), with no
Lightning: for demos, tests and notebooks. ``bayesncl fit`` integration is separate.

A paired dataset yields ``(x, pair, label)`` (``bayesncl.data.paired``); ``pair`` is a tensor
(e.g. an edge map) or a caption string, tokenised here with the given tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from bayesncl.core.config import MethodConfig
from bayesncl.core.losses import check_finite
from bayesncl.core.multimodal import TwoTower
from bayesncl.models.text import TextTower, Tokenizer


def mlp_backbone(in_shape: Sequence[int], width: int = 256) -> tuple[nn.Module, int]:
    """Flatten -> Linear -> ReLU: a small default backbone for tensor inputs of ``in_shape``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.ReLU()), width


@dataclass
class TwoTowerRun:
    """The trained model, the tokenizer it reads captions with (None for tensor pairs) and the
    loss terms of every step (floats)."""

    model: TwoTower
    tokenizer: Tokenizer | None
    history: list[dict[str, float]] = field(default_factory=list)


def _pair_tensor(pair: Any, tokenizer: Tokenizer | None) -> Tensor:
    if isinstance(pair, Tensor):
        return pair
    if tokenizer is None:
        raise ValueError("the dataset's pairs are captions: pass tokenizer=Tokenizer.fit(captions)")
    return tokenizer(list(pair))


def _default_backbone(
    sample: Any, tokenizer: Tokenizer | None, width: int
) -> tuple[nn.Module, int]:
    if isinstance(sample, str) or (isinstance(sample, Tensor) and not sample.is_floating_point()):
        if tokenizer is None:
            raise ValueError(
                "the dataset's pairs are captions/token ids: pass tokenizer=Tokenizer.fit(captions)"
            )
        tower = TextTower(tokenizer.vocab_size, width=width)
        return tower, tower.feature_dim
    if isinstance(sample, Tensor):
        return mlp_backbone(tuple(sample.shape), width)
    raise ValueError(f"no default backbone for inputs of type {type(sample).__name__}")


def train_two_tower(
    dataset: Dataset,
    method_configs: tuple[MethodConfig | str, MethodConfig | str] | MethodConfig | str = "ncl",
    steps: int = 100,
    *,
    backbones: tuple[tuple[nn.Module, int], tuple[nn.Module, int]] | None = None,
    tokenizer: Tokenizer | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    hidden_dim: int = 256,
    out_dim: int = 64,
    width: int = 256,
    temperature: float | str = 0.2,
    seed: int = 0,
) -> TwoTowerRun:
    """Train a :class:`TwoTower` with AdamW for ``steps`` steps on shuffled full batches.

    ``method_configs``: one method for both towers or a pair (x tower, pair tower).
    ``backbones``: ((module, feature width) for x, (module, width) for the pair); default: an
    MLP of ``width`` for tensors, a :class:`TextTower` for captions (needs ``tokenizer``).
    Every step is checked for a finite loss (``FloatingPointError`` naming the term).
    """
    if steps < 1 or batch_size < 2:
        raise ValueError(f"steps={steps!r} must be >= 1 and batch_size={batch_size!r} >= 2")
    if len(dataset) < batch_size:  # type: ignore[arg-type]
        raise ValueError(
            f"batch_size={batch_size} is larger than the dataset ({len(dataset)} pairs)"  # type: ignore[arg-type]
        )
    method_x, method_y = (
        method_configs if isinstance(method_configs, tuple) else (method_configs, method_configs)
    )
    torch.manual_seed(seed)
    if backbones is None:
        x0, pair0, _ = dataset[0]
        backbones = (
            _default_backbone(x0, None, width),
            _default_backbone(pair0, tokenizer, width),
        )
    (bx, dx), (by, dy) = backbones
    model = TwoTower(bx, dx, by, dy, method_x, method_y, hidden_dim, out_dim, temperature)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,  # equal batches: the CLIP loss's negatives are the batch
        generator=torch.Generator().manual_seed(seed),
    )
    run = TwoTowerRun(model, tokenizer)
    model.train()
    while len(run.history) < steps:
        for x, pair, _ in loader:
            terms = model.loss(x, _pair_tensor(pair, tokenizer))
            check_finite(terms)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            run.history.append({k: float(v.detach()) for k, v in terms.terms.items()})
            if len(run.history) >= steps:
                break
    model.eval()
    return run


@torch.no_grad()
def encode_pairs(
    model: TwoTower,
    dataset: Dataset,
    tokenizer: Tokenizer | None = None,
    batch_size: int = 256,
    soft_gate: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """The final codes of both modalities and the labels of every pair, in dataset order
    (eval mode, so gates are deterministic)."""
    was_training = model.training
    model.eval()
    codes_x, codes_y, labels = [], [], []
    for x, pair, label in DataLoader(dataset, batch_size=batch_size):
        rep_x, rep_y = model(x, _pair_tensor(pair, tokenizer), soft_gate=soft_gate)
        codes_x.append(rep_x.output)
        codes_y.append(rep_y.output)
        labels.append(torch.as_tensor(label))
    model.train(was_training)
    return torch.cat(codes_x), torch.cat(codes_y), torch.cat(labels)
