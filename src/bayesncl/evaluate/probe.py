"""Accuracy on frozen features: linear probe, weighted kNN, feature-selection probe (spec §2.8-2.9).

These work on pre-extracted features (the backbone is never in the loop, so it can neither
train nor update BatchNorm statistics: ecosystem §2 item 5). The official probe trains with
augmentation for 50 epochs (LARS on CIFAR); this fast path trains a linear classifier on the
un-augmented features, the standard CPU protocol, and labels its numbers as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.augment import AugmentConfig, view_transform
from bayesncl.metrics.retrieval import rank_dimensions
from bayesncl.train.optim import OptimConfig, make_optimizer, make_scheduler, param_groups


def _topk_acc(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    out = {}
    for k in ks:
        k_ = min(k, logits.shape[1])
        hit = (logits.topk(k_, dim=1).indices == labels[:, None]).any(1).float().mean()
        out[f"top{k}"] = float(hit)
    return out


def fit_linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    num_classes: int,
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-5,
    batch_size: int = 1024,
    seed: int = 0,
) -> Callable[[Tensor], Tensor]:
    """Train a linear classifier on standardised frozen features (SGD + cosine lr); returns
    ``logits(x)``, which standardises ``x`` with the training statistics (the probe that
    out-of-distribution sets are scored with, trained once on clean features). A function of
    its inputs and ``seed`` alone (initial weights and batch order)."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(
            f"linear probe: epochs={epochs} and batch_size={batch_size} must be >= 1 "
            "(0 epochs would report an untrained classifier, i.e. chance)"
        )
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xtr = (train_x - mean) / std
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # its initial weights from ``seed`` too, not from
        torch.manual_seed(seed)  # whatever the global generator's state happens to be
        layer = torch.nn.Linear(xtr.shape[1], num_classes)
    opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = epochs * max(1, (len(xtr) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(layer(xtr[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    @torch.no_grad()
    def logits(x: Tensor) -> Tensor:
        return layer((x - mean) / std)

    return logits


def linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-5,
    batch_size: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 of a linear classifier on standardised frozen features (SGD + cosine lr)."""
    c = num_classes or int(max(train_y.max(), test_y.max())) + 1
    probe = fit_linear_probe(train_x, train_y, c, epochs, lr, weight_decay, batch_size, seed)
    return _topk_acc(probe(test_x), test_y)


def knn_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, k: int = 200, temperature: float = 0.1,
    num_classes: int | None = None, chunk: int = 1024,
) -> dict[str, float]:  # fmt: skip
    """Temperature-weighted cosine kNN (InstDisc vote: weight exp(sim / T)); defaults k = 200,
    T = 0.1 as in lightly's benchmarks."""
    if k < 1 or not temperature > 0:
        raise ValueError(f"kNN: k={k} must be >= 1 and temperature={temperature} > 0")
    c = num_classes or int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_x))
    tr = F.normalize(train_x.float(), dim=1)
    te = F.normalize(test_x.float(), dim=1)
    scores = []
    for i in range(0, len(te), chunk):
        sim, idx = (te[i : i + chunk] @ tr.T).topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], c).scatter_add_(
            1, train_y[idx], (sim / temperature).exp()
        )
        scores.append(votes)
    return _topk_acc(torch.cat(scores), test_y)


def feature_selection_probe(
    train_feats: Tensor, train_y: Tensor, test_feats: Tensor, test_y: Tensor, dims: int, **kwargs
) -> dict[str, float]:
    """Linear probe on the ``dims`` most active dimensions of the representation, ranked by
    activation mass on the training set (spec §2.9; ranked once, before training, unlike the
    official code, which re-ranks after epoch 0 and keeps the classifier's weights)."""
    if not 1 <= dims <= train_feats.shape[1]:
        raise ValueError(
            f"feature-selection probe: dims={dims} must be in 1..{train_feats.shape[1]} (K)"
        )
    keep = rank_dimensions(train_feats)[:dims]
    return linear_probe(train_feats[:, keep], train_y, test_feats[:, keep], test_y, **kwargs)


@dataclass(frozen=True)
class ProbeProtocol:
    """An official linear-probe protocol (reference spec §2.8): a linear layer on the frozen
    backbone features h of augmented training images (RandomResizedCrop 0.08-1 + flip)."""

    optimizer: Literal["lars", "sgd"]
    lr: float  # base lr, x batch_size / 256
    weight_decay: float
    epochs: int = 50
    batch_size: int = 256
    warmup_epochs: float = 0.0
    constant_lr: bool = False


#: CIFAR: LARS lr 0.4, wd 1e-4, 50 epochs, warmup-cosine (10 warmup epochs); ImageNet-100: SGD
#: lr 1.0, wd 0, 50 epochs at a constant lr (the official step schedule at 60/80 is never reached).
PROTOCOLS: dict[str, ProbeProtocol] = {
    "cifar": ProbeProtocol("lars", 0.4, 1e-4, warmup_epochs=10),
    "imagenet100": ProbeProtocol("sgd", 1.0, 0.0, constant_lr=True),
}


#: the official probes' training augmentation: RandomResizedCrop (scale 0.08-1) + horizontal flip
PROBE_AUGMENT = AugmentConfig(
    crop_scale_min=0.08, jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, flip_prob=0.5
)


def probe_augmentation(size: int, mean: tuple[float, ...], std: tuple[float, ...]):
    """The transform of the official protocols' training images (:data:`PROBE_AUGMENT`)."""
    return view_transform(PROBE_AUGMENT, size, mean, std)


def augmented_linear_probe(
    backbone: torch.nn.Module,
    train_set: Dataset,
    test_h: Tensor,
    test_y: Tensor,
    num_classes: int,
    protocol: ProbeProtocol,
    num_workers: int = 0,
    seed: int = 0,
) -> dict[str, float]:
    """Train a linear classifier on ``backbone`` features of augmented ``train_set`` batches
    (items: (augmented image tensor, label)); the backbone stays frozen and in eval mode, so
    neither its weights nor its BatchNorm statistics change. Evaluated on ``test_h``."""
    backbone.eval()
    device = next(backbone.parameters()).device
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        train_set,
        protocol.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        generator=g,
    )
    layer = torch.nn.Linear(test_h.shape[1], num_classes).to(device)
    lr = protocol.lr * protocol.batch_size / 256
    cfg = OptimConfig(
        name=protocol.optimizer, lr=lr, weight_decay=protocol.weight_decay, warmup_epochs=protocol.warmup_epochs,
        warmup_start_lr=lr if protocol.constant_lr else 3e-5, min_lr=lr if protocol.constant_lr else 0.0,
    )  # fmt: skip
    opt = make_optimizer(cfg, param_groups({"classifier": (layer, lr, protocol.weight_decay)}))
    sched = make_scheduler(opt, cfg, protocol.epochs * len(loader), len(loader))
    for _ in range(protocol.epochs):
        for x, y in loader:
            with torch.no_grad():
                h = backbone(x.to(device))
            loss = F.cross_entropy(layer(h), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return _topk_acc(layer(test_h.to(device)).cpu(), test_y)
