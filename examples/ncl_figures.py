"""The NCL paper's Fig. 4 and Fig. 5 layouts from a ``bayesncl reproduce --preset ncl-cpu`` grid.

* ``ncl_fig4_curves.png``: test accuracy of the supervised classifier after every epoch
  (``val/objective_acc1`` of each run's logs/metrics.csv), CE against NCE, from scratch and
  fine-tuned, mean over seeds (the paper's Fig. 4: "NCE is ahead early").
* ``ncl_fig5_correlation.png``: SCL against non-negative SCL, the correlation matrix of 20 random
  dimensions, C_ij = E_x f~_i(x) f~_j(x) with f~_i = f_i / sqrt(sum_x f_i(x)^2), on the test set
  (seed 0 of each row; the paper's Fig. 5d). The other three panels of Fig. 5 (linear probe,
  consistency, sparsity) are the grid's table.

    python examples/ncl_figures.py results/ncl-cpu --out docs/figures
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import bayesncl
from bayesncl.export.encode import encode_source, image_source


def epoch_curve(run: Path) -> list[float]:
    """val/objective_acc1 per epoch of one run."""
    rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    by_epoch: dict[int, float] = {}
    for r in rows:
        if r.get("val/objective_acc1"):
            by_epoch[int(float(r["epoch"]))] = float(r["val/objective_acc1"])
    return [by_epoch[e] for e in sorted(by_epoch)]


def fig4(grid: Path, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, style in (
        ("ce", "CE", "C0--"),
        ("nce", "NCE", "C0-"),
        ("ce-ft", "CE, fine-tuned from NCL", "C1--"),
        ("nce-ft", "NCE, fine-tuned from NCL", "C1-"),
    ):
        curves = [epoch_curve(r) for r in sorted((grid / "runs" / key).glob("seed*"))]
        curves = [c for c in curves if c]
        if not curves:
            continue
        n = min(map(len, curves))
        mean = 100 * np.mean([c[:n] for c in curves], axis=0)
        ax.plot(range(1, n + 1), mean, style, marker="o", label=f"{label} ({len(curves)} seeds)")
    ax.set_xticks(range(1, n + 1))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy of the classifier (%)")
    ax.set_title("Fashion-MNIST, supervised CE vs NCE (no projector)")
    ax.legend()
    fig.tight_layout()
    path = out / "ncl_fig4_curves.png"
    fig.savefig(path, dpi=120)
    return path


def correlation(features: np.ndarray, dims: np.ndarray) -> np.ndarray:
    f = features[:, dims]
    f = f / np.sqrt((f**2).sum(0, keepdims=True)).clip(1e-12)
    return f.T @ f


def fig5(grid: Path, out: Path, n_dims: int = 20) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, (key, label) in zip(axes, (("scl", "SCL"), ("nscl", "non-negative SCL"))):
        model = bayesncl.load(grid / "runs" / key / "seed0")
        source = image_source(model.preprocessing)
        enc = encode_source(model, source, progress=False)
        dims = np.random.default_rng(0).choice(enc.features.shape[1], n_dims, replace=False)
        c = correlation(enc.features, np.sort(dims))
        im = ax.imshow(c, vmin=-1, vmax=1, cmap="RdBu_r")
        off = np.abs(c[~np.eye(n_dims, dtype=bool)]).mean()
        ax.set_title(f"{label}\nmean |C_ij| off the diagonal = {off:.2f}")
        ax.set_xticks(range(0, n_dims, 5))
        ax.set_yticks(range(0, n_dims, 5))
        ax.set_xlabel("dimension (20 drawn at random)")
    axes[0].set_ylabel("dimension")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle("Fashion-MNIST test set: correlation of 20 random dimensions (seed-0 runs)")
    path = out / "ncl_fig5_correlation.png"
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("grid", type=Path, help="the ncl-cpu grid's output folder")
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(fig4(args.grid, args.out))
    print(fig5(args.grid, args.out))


if __name__ == "__main__":
    main()
