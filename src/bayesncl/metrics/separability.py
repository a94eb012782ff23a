"""SEPIN@k: how separately each dimension carries information (ncl-extras-spec §8.1).

Do & Tran (2020): the separated informativeness of dimension i is
SEPIN_i = I(x; z) - I(x; z_{-i}), the information lost when i is removed; SEPIN@k averages it
over the k dimensions with the largest informativeness I(x; z_i). A dimension that duplicates
another has SEPIN 0; one that carries information no other dimension has, SEPIN > 0.

The NCL paper's features are deterministic, so the mutual informations are estimated, as its
appendix does, with a contrastive bound. **Estimator (ours; the paper's exact one is unknown):**
the InfoNCE lower bound I >= log n - CE between the features of two augmented views of n images,
restricted to a set S of dimensions, with a bilinear critic s(a, b) = a^T W b on standardised
features (W: |S| x |S|, zero init, Adam lr 0.05, ``steps`` full-batch steps, fitted and
evaluated on the same n pairs, so it is an optimistic in-sample estimate bounded by log n).
Per-dimension I(x; z_i) uses 1 x 1 critics, fitted for all dimensions at once. Absolute values
depend on the estimator, n and the steps: compare methods under the same settings only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _standardise(x: Tensor) -> Tensor:
    return (x - x.mean(0)) / x.std(0).clamp_min(1e-6)


def infonce_mi(a: Tensor, b: Tensor, steps: int = 100, lr: float = 0.05) -> float:
    """InfoNCE estimate (nats) of I between paired rows of ``a`` and ``b`` (n x d), bilinear
    critic; deterministic (zero init, full batch)."""
    a, b = _standardise(a.float()), _standardise(b.float())
    n = a.shape[0]
    w = torch.zeros(a.shape[1], a.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    target = torch.arange(n)
    for _ in range(steps):
        loss = F.cross_entropy(a @ w @ b.T, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return math.log(n) - float(F.cross_entropy(a @ w @ b.T, target))


def per_dimension_mi(
    a: Tensor, b: Tensor, steps: int = 100, lr: float = 0.05, chunk: int = 16
) -> Tensor:
    """InfoNCE estimates of I(z_i) for every dimension i, with a 1 x 1 critic each."""
    a, b = _standardise(a.float()), _standardise(b.float())
    n, d = a.shape
    target = torch.arange(n)
    out = torch.empty(d)
    for start in range(0, d, chunk):
        sl = slice(start, min(start + chunk, d))
        ai, bi = a[:, sl].T, b[:, sl].T  # c x n
        w = torch.zeros(ai.shape[0], requires_grad=True)
        opt = torch.optim.Adam([w], lr=lr)

        def losses(w: Tensor, ai: Tensor = ai, bi: Tensor = bi) -> Tensor:
            scores = w[:, None, None] * ai[:, :, None] * bi[:, None, :]  # c x n x n
            return F.cross_entropy(scores.reshape(-1, n), target.repeat(ai.shape[0]), reduction="none").view(ai.shape[0], n).mean(1)  # fmt: skip

        for _ in range(steps):
            loss = losses(w).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            out[sl] = math.log(n) - losses(w)
    return out


def sepin_at_k(
    a: Tensor, b: Tensor, ks: tuple[int, ...] = (1, 10, 100), steps: int = 100
) -> dict[str, float | str]:
    """``sepin_at_<k>`` for each k (capped at the width) and ``sepin_at_all``, from two views
    ``a``, ``b`` (n x d) of the same n inputs; ``sepin_estimator`` names the estimator. Dimensions
    that are zero on every sample of both views carry nothing and are left out."""
    live = (a.abs().sum(0) > 0) | (b.abs().sum(0) > 0)
    a, b = a[:, live], b[:, live]
    d = a.shape[1]
    out: dict[str, float | str] = {
        "sepin_estimator": f"InfoNCE, bilinear critic, n={a.shape[0]}, {steps} Adam steps",
        "sepin_dims": d,
    }
    if d < 2:
        return out
    info = per_dimension_mi(a, b, steps)
    order = torch.argsort(info, descending=True)
    total = infonce_mi(a, b, steps)
    sep = []  # every live dimension, most informative first (SEPIN@all averages them all)
    for i in order.tolist():
        rest = torch.cat([torch.arange(i), torch.arange(i + 1, d)])
        sep.append(total - infonce_mi(a[:, rest], b[:, rest], steps))
    for k in ks:
        out[f"sepin_at_{k}"] = sum(sep[: min(k, d)]) / min(k, d)
    out["sepin_at_all"] = float(sum(sep) / len(sep))
    out["sepin_total_mi"] = total
    return out
