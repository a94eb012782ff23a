"""The steps of ``bayesncl evaluate``: each a small function over extracted tensors (or an encoder)
that returns a dict of metrics. ``bayesncl.evaluate.run`` composes them; any of them can be used
alone, without Lightning, on an :class:`~bayesncl.models.encoder.Encoder` and the
:class:`~bayesncl.evaluate.extract.Extracted` tensors of a dataset.

A new evaluation is one more function here (and its call in ``run``); a new linear-probe
protocol is one more entry in :data:`PROBES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from bayesncl.data.splits import Transformed
from bayesncl.evaluate import figures as fig
from bayesncl.evaluate.cost import cost_report
from bayesncl.evaluate.extract import Extracted
from bayesncl.evaluate.probe import (
    PROTOCOLS,
    ProbeProtocol,
    augmented_linear_probe,
    feature_selection_probe,
    knn_accuracy,
    linear_probe,
)
from bayesncl.metrics.nuisance import dimension_purity, nuisance_report
from bayesncl.metrics.retrieval import retrieval_precision
from bayesncl.metrics.streaming import interpretability_report
from bayesncl.models.encoder import Encoder

Metrics = dict[str, Any]


def check_finite(ex: Extracted, source: str) -> None:
    """``ValueError`` naming ``source`` if any extracted tensor holds NaN or Inf.

    A diverged model must not be measured: its NaN rows would otherwise read as a perfect
    entropy of 0 nats (reference spec §2; issue "Nothing silently wrong", item 5)."""
    tensors = {"h": ex.h, "features": ex.features, "output": ex.output, "alpha": ex.alpha}
    bad = {k: int((~torch.isfinite(t)).sum()) for k, t in tensors.items() if t is not None}
    n = sum(bad.values())
    if n:
        where = ", ".join(f"{k}: {v}" for k, v in bad.items() if v)
        raise ValueError(
            f"{source}: the model's features contain {n} NaN/Inf values: the run diverged; "
            "evaluate an earlier checkpoint (e.g. last.prev.ckpt beside it) or retrain with a "
            f"lower learning rate (non-finite values in {where})"
        )


def default_dims(k: int) -> list[int]:
    """Widths of top-dimension retrieval and of the feature-selection probe: K/8, K/4, K/2."""
    return sorted({max(1, k // 8), max(1, k // 4), max(1, k // 2)})


def interpretability(ex: Extracted, num_classes: int | None = None) -> Metrics:
    """Every interpretability metric of the evaluated representation v (spec §2.2-2.5)."""
    return dict(interpretability_report(ex.output, ex.labels, num_classes))


def retrieval(ex: Extracted, dims: list[int] | None = None) -> Metrics:
    """Precision@k (k = 1, 3, 5, 10 where there are enough samples) of cosine retrieval on v,
    and on its ``dims`` most active dimensions only (spec §2.6)."""
    n = min(10, len(ex.labels) - 1)
    ks = tuple(k for k in (1, 3, 5, 10) if k <= n)
    out: Metrics = {
        f"retrieval_p{k}": v for k, v in retrieval_precision(ex.output, ex.labels, ks).items()
    }
    for d in dims or []:
        for k, v in retrieval_precision(ex.output, ex.labels, ks, num_dims=d).items():
            out[f"retrieval_top{d}dims_p{k}"] = v
    return out


def gate_statistics(ex: Extracted) -> Metrics:
    """Of any gate that gives a mask: the open rate (mean of the mask over samples and
    dimensions), the mean keep-probability alpha, and the dimensions never open on any sample.
    Empty for methods without a gate."""
    if ex.mask is None:
        return {}
    out: Metrics = {
        "gate_open": float(ex.mask.mean()),
        "gate_dims_never_open": int((ex.mask.amax(0) <= 0).sum()),
    }
    if ex.alpha is not None:
        out["gate_alpha_mean"] = float(ex.alpha.mean())
    return out


@torch.no_grad()
def objective_accuracy(encoder: Encoder, ex: Extracted) -> Metrics:
    """Top-1 of the objective's own classifier, for objectives that classify (supervised CE /
    NCE: the NCL paper's Table 4 metric); empty for the others. The objective reads
    ``features`` and ``mask`` of the extracted rows, as in training."""
    logits_of = getattr(encoder.head.objective, "logits", None)
    if logits_of is None:
        return {}
    logits = logits_of(ex)
    return {"objective_top1": float((logits.argmax(1) == ex.labels).float().mean())}


@dataclass
class ProbeInputs:
    """What a linear-probe protocol may use. ``encoder`` and ``train_images`` (raw training
    (image, label) items) with ``train_augment`` are needed by the official protocols only,
    which train on augmented images through the frozen backbone."""

    train: Extracted
    val: Extracted
    num_classes: int
    epochs: int = 100
    encoder: Encoder | None = None
    train_images: Dataset | None = None
    train_augment: Callable[[Any], Tensor] | None = None
    num_workers: int = 0


def fast_linear_probe(inputs: ProbeInputs) -> dict[str, float]:
    """Linear probe on pre-extracted, un-augmented backbone features h (the CPU protocol)."""
    tr, va = inputs.train, inputs.val
    return linear_probe(tr.h, tr.labels, va.h, va.labels, inputs.num_classes, epochs=inputs.epochs)


def official_linear_probe(inputs: ProbeInputs, protocol: ProbeProtocol) -> dict[str, float]:
    """An official protocol (spec §2.8): augmented training images through the frozen backbone."""
    if inputs.encoder is None or inputs.train_images is None or inputs.train_augment is None:
        raise ValueError(
            "an official probe protocol needs the encoder and the raw training images with "
            "their augmentation (ProbeInputs.encoder, train_images, train_augment)"
        )
    train_set = Transformed(inputs.train_images, inputs.train_augment)
    return augmented_linear_probe(
        inputs.encoder.backbone, train_set, inputs.val.h, inputs.val.labels,
        inputs.num_classes, protocol, inputs.num_workers,
    )  # fmt: skip


#: linear-probe protocols by name: ``fast`` (frozen, un-augmented features; minutes on a CPU)
#: and the official ones of :data:`bayesncl.evaluate.probe.PROTOCOLS` (slow on a CPU)
PROBES: Mapping[str, Callable[[ProbeInputs], dict[str, float]]] = {
    "fast": fast_linear_probe,
    **{name: partial(official_linear_probe, protocol=p) for name, p in PROTOCOLS.items()},
}


def linear(inputs: ProbeInputs, protocol: str = "fast") -> Metrics:
    """``linear_top1`` / ``linear_top5`` of the probe protocol ``protocol`` (a key of PROBES)."""
    if protocol not in PROBES:
        raise ValueError(f"probe_protocol={protocol!r}; use one of: {', '.join(PROBES)}")
    result = PROBES[protocol](inputs)
    return {"linear_protocol": protocol, **{f"linear_{k}": v for k, v in result.items()}}


def knn(
    train: Extracted,
    val: Extracted,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.1,
) -> Metrics:
    """Weighted kNN top-1/top-5 on backbone features h (spec §2.8), with its settings."""
    res = knn_accuracy(train.h, train.labels, val.h, val.labels, k, temperature, num_classes)
    return {
        **{f"knn_{key}": v for key, v in res.items()},
        "knn_k": k,
        "knn_temperature": temperature,
    }


def feature_selection(
    train: Extracted,
    val: Extracted,
    dims: list[int],
    num_classes: int | None = None,
    epochs: int = 100,
) -> Metrics:
    """``select{d}_top1``: a linear probe on the d most active dimensions of phi(z) (spec §2.9)."""
    return {
        f"select{d}_top1": feature_selection_probe(
            train.features, train.labels, val.features, val.labels, d,
            num_classes=num_classes, epochs=epochs,
        )["top1"]
        for d in dims
    }  # fmt: skip


def cost(
    encoder: Encoder, image_shape: tuple[int, ...], classifier: nn.Module | None = None
) -> Metrics:
    """Parameters, GMACs and step time (``bayesncl.evaluate.cost``), on a copy of the model."""
    return dict(cost_report(encoder, image_shape, classifier))


def figures(
    ex: Extracted,
    image_at: Callable[[int], Any],
    out_dir: Path,
    title: str = "",
    class_names: Sequence[str] | None = None,
) -> Metrics:
    """The PNG figures: top-activated samples (labelled by ``class_names`` where given),
    dimension correlation, and for a gated model the gate open rate against activation
    frequency. ``figures``: their paths."""
    paths = [
        fig.top_activated_grid(
            ex.output,
            image_at,
            out_dir / "top_activated.png",
            title=title,
            labels=ex.labels,
            class_names=class_names,
        ),
        fig.correlation_heatmap(ex.output, out_dir / "correlation.png", title=title),
    ]
    if ex.mask is not None:
        paths.append(
            fig.gate_vs_frequency(
                ex.mask, ex.features, out_dir / "gate_vs_frequency.png", title=title
            )
        )
    return {"figures": [str(p) for p in paths]}


def nuisance(
    ex: Extracted,
    nuisance_labels: Tensor,
    num_classes: int | None = None,
    out_dir: Path | None = None,
    title: str = "",
) -> Metrics:
    """Metrics w.r.t. a second label (``bayesncl.metrics.nuisance``) on the evaluated v, and with
    a gate and ``out_dir`` the figure gate open rate vs frequency coloured by nuisance lift."""
    out: Metrics = dict(
        nuisance_report(ex.output, ex.labels, nuisance_labels, num_classes, mask=ex.mask)
    )
    if ex.mask is not None and out_dir is not None:
        lift = dimension_purity(ex.output, nuisance_labels).lift
        path = fig.gate_vs_nuisance(
            ex.mask, ex.features, lift, out_dir / "gate_vs_nuisance.png", title=title
        )
        out["figures_nuisance"] = [str(path)]
    return out


def nuisance_probe(
    train: Extracted, val: Extracted, train_nuisance: Tensor, val_nuisance: Tensor, epochs: int
) -> Metrics:
    """How much of the nuisance the model keeps: linear probes for the nuisance label on the
    backbone features h (``nuisance_linear_top1``) and on the evaluated v
    (``nuisance_linear_v_top1``); chance is ``nuisance_chance``."""
    n = int(max(train_nuisance.max(), val_nuisance.max())) + 1
    on_h = linear_probe(train.h, train_nuisance, val.h, val_nuisance, n, epochs=epochs)
    on_v = linear_probe(train.output, train_nuisance, val.output, val_nuisance, n, epochs=epochs)
    return {"nuisance_linear_top1": on_h["top1"], "nuisance_linear_v_top1": on_v["top1"]}


def export_features(ex: Extracted, path: str | Path) -> Metrics:
    """Write the evaluated matrix v (``features``) and ``labels`` to the .npz file ``path``:
    exactly what the interpretability metrics were computed on."""
    np.savez_compressed(path, features=ex.output.numpy(), labels=ex.labels.numpy())
    return {"features_file": str(path)}
