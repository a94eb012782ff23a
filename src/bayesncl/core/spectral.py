"""Spectral contrastive learning (SCL, HaoChen et al. 2021) and its non-negative version
(ncl-extras-spec §1 and §3).

Population loss L_sp(f) = -2 E_{x,x+} f(x)^T f(x+) + E_{x,x-} (f(x)^T f(x-))^2. The minibatch
estimator of the reference code on two views z1, z2 (B x d), spec §3.2:
1. rows with ||z|| >= sqrt(mu) are rescaled to norm sqrt(mu);
2. part1 = -(2/B) sum_i z1_i . z2_i;
3. part2 = 1/(B(B-1)) sum_{i != j} (z1_i . z2_j)^2;
4. loss = (part1 + part2) / mu.
Non-negative SCL applies sigma_+ (ReLU) to the projector output first (the method's ``nonneg``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from bayesncl.core.losses import LossTerms, gather_with_grad, is_distributed
from bayesncl.core.objectives import Batch, Objective


def clip_rows(z: Tensor, max_norm: float) -> Tensor:
    """Rows with norm >= ``max_norm`` rescaled to that norm (spec §3.2 step 1)."""
    norm = z.norm(dim=1, keepdim=True)
    return torch.where(norm >= max_norm, z * (max_norm / norm.clamp_min(1e-12)), z)


def spectral_loss(z1: Tensor, z2: Tensor, mu: float = 1.0, *, gather: bool = True) -> Tensor:
    """(part1 + part2) / mu of spec §3.2 on the clipped rows; z1[i], z2[i] are a positive pair.

    Under ``torch.distributed`` the negatives z2_j come from every rank (autograd-aware
    all-gather), so each rank's loss averages over its own anchors and DDP's gradient average is
    the full-batch gradient. Needs at least two pairs in all.
    """
    if mu <= 0:
        raise ValueError(f"spectral loss mu={mu!r} must be > 0")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} must have one shape")
    with torch.autocast(z1.device.type, enabled=False):
        r = mu**0.5
        z1, z2 = clip_rows(z1.float(), r), clip_rows(z2.float(), r)
        b = z1.shape[0]
        part1 = -2.0 * (z1 * z2).sum(dim=1).mean()
        if gather and is_distributed():
            candidates = gather_with_grad(z2)
            offset = dist.get_rank() * b
        else:
            candidates, offset = z2, 0
        total = candidates.shape[0]
        if total < 2:
            raise ValueError("the spectral loss needs at least 2 pairs in a batch")
        sq = (z1 @ candidates.T).square()
        rows = torch.arange(b, device=z1.device)
        sq = sq.index_put((rows, rows + offset), torch.zeros((), device=z1.device))
        part2 = sq.sum() / (b * (total - 1))
        return (part1 + part2) / mu


class SpectralObjective(Objective):
    """SCL / non-negative SCL on ``rep.features`` (phi(z), not normalised; gated if a gate).

    Rows are two views stacked as [view 1 of the batch; view 2 of the batch] (the training
    layout). Term ``spectral``. ``mu``: the clipping radius squared and the loss scale (1 on
    CIFAR-10 in the reference).
    """

    def __init__(
        self, *, tau: float, out_dim: int, num_classes: int | None = None, mu: float = 1.0
    ) -> None:
        super().__init__(tau=tau, out_dim=out_dim, num_classes=num_classes)
        if mu <= 0:
            raise ValueError(f"method.objective_args.mu={mu!r} must be > 0")
        self.mu = mu

    def forward(self, rep, batch: Batch) -> LossTerms:
        feats = rep.features if rep.mask is None else rep.features * rep.mask
        n = feats.shape[0]
        half = n // 2
        if n % 2 or not torch.equal(batch.indexes[:half], batch.indexes[half:]):
            raise ValueError(
                "the spectral objective needs exactly 2 views stacked as [view 1; view 2] "
                "(data.num_views=2)"
            )
        return LossTerms.single("spectral", spectral_loss(feats[:half], feats[half:], self.mu))
