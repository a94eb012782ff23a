"""Figures (matplotlib, PNG): top-activated samples per dimension (NCL paper Fig. 1), dimension
correlation of 20 random dimensions (NCL paper Fig. 3c), gate open rate vs activation frequency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from bayesncl.metrics.interpretability import dimension_correlation


def _to_numpy_image(image) -> np.ndarray:
    if isinstance(image, Tensor):
        arr = image.detach().cpu().numpy()
        return arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return np.asarray(image)


def top_activated_grid(
    features: Tensor,
    image_at: Callable[[int], Any],
    path: Path,
    dims: int = 8,
    per_dim: int = 8,
    title: str = "",
    labels: Tensor | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Rows: the ``dims`` dimensions with the largest activation mass; columns: the samples that
    activate each most strongly, each with its label (its name in ``class_names`` where given,
    e.g. "Trouser", else its index); a row's purity is the share of its shown samples in their
    most common class. ``image_at(i)`` gives sample i's image (only those shown are loaded)."""

    def name(y: int) -> str:
        if class_names is not None and 0 <= y < len(class_names):
            return str(class_names[y])
        return f"y={y}"

    mass = features.abs().sum(0)
    top_dims = mass.argsort(descending=True)[:dims].tolist()
    fig, axes = plt.subplots(
        len(top_dims), per_dim, figsize=(per_dim * 0.95, len(top_dims) * 1.1), squeeze=False
    )
    for r, d in enumerate(top_dims):
        order = features[:, d].argsort(descending=True)[:per_dim].tolist()
        shown = [int(labels[i]) for i in order] if labels is not None else []
        for c in range(per_dim):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(order):
                img = _to_numpy_image(image_at(order[c]))
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
                if shown:
                    ax.set_xlabel(name(shown[c]), fontsize=5, labelpad=1)
        row = f"dim {d}"
        if shown:
            purity = max(shown.count(y) for y in set(shown)) / len(shown)
            row += f", purity {100 * purity:.0f}%"
        axes[r][0].set_title(row, fontsize=6, loc="left")
    fig.suptitle(
        f"{title + ': ' if title else ''}the {per_dim} test images that activate each of the "
        f"{len(top_dims)} most active dimensions most (under each: its label)",
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def correlation_heatmap(
    features: Tensor, path: Path, dims: int = 20, seed: int = 0, title: str = ""
) -> Path:
    """|C_ij| of ``dims`` random active dimensions (column-normalised features)."""
    active = (features.abs().sum(0) > 0).nonzero().flatten()
    g = torch.Generator().manual_seed(seed)
    pick = active[torch.randperm(len(active), generator=g)[:dims]]
    pick = pick.sort().values
    corr = dimension_correlation(features[:, pick], keep_active=False).abs().numpy()
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(corr, vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(im, ax=ax, label="|correlation| over the test set")
    ticks = list(range(len(pick)))
    ax.set_xticks(ticks, [str(int(i)) for i in pick], fontsize=5, rotation=90)
    ax.set_yticks(ticks, [str(int(i)) for i in pick], fontsize=5)
    ax.set_xlabel("dimension (index in the representation)")
    ax.set_ylabel("dimension")
    ax.set_title(
        f"{title + ': ' if title else ''}{len(pick)} random active dimensions (seed {seed})",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gate_vs_frequency(
    mask: Tensor, features: Tensor, path: Path, eps: float = 1e-5, title: str = ""
) -> Path:
    """Per dimension: the share of samples whose gate is open against the share that activate
    it before gating. BayesNCL's claim: frequent (shared, background) dimensions get closed."""
    open_rate = mask.float().mean(0).numpy()
    freq = (features.abs() > eps).float().mean(0).numpy()
    fig, ax = plt.subplots(figsize=(4, 3.4))
    ax.scatter(freq, open_rate, s=8, alpha=0.6)
    ax.set_xlabel("activation frequency (before the gate)")
    ax.set_ylabel("gate open rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(
        f"{title + ': ' if title else ''}gate open rate vs frequency, per dim (test set)",
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gate_vs_nuisance(
    mask: Tensor,
    features: Tensor,
    nuisance_lift: Tensor,
    path: Path,
    eps: float = 1e-5,
    title: str = "",
) -> Path:
    """Per dimension: gate open rate against activation frequency (before the gate), coloured
    by the dimension's nuisance lift (how much more than chance its active samples share one
    background). The BayesNCL mechanism predicts frequent, nuisance-pure dimensions closed."""
    open_rate = mask.float().mean(0).numpy()
    freq = (features.abs() > eps).float().mean(0).numpy()
    lift = torch.nan_to_num(nuisance_lift.float(), nan=0.0).clamp(0, 1).numpy()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    points = ax.scatter(freq, open_rate, c=lift, cmap="viridis", vmin=0, vmax=1, s=10, alpha=0.8)
    fig.colorbar(points, ax=ax, label="nuisance lift (0: chance, 1: one background)")
    ax.set_xlabel("activation frequency (before the gate)")
    ax.set_ylabel("gate open rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(
        f"{title + ': ' if title else ''}gate vs frequency and background, per dim (test set)",
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
