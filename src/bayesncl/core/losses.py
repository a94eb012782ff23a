"""NT-Xent over index-matched views, correct under DDP (reference spec §1.2).

With u_i unit vectors and s_ij = exp(u_i . u_j / tau), for every anchor i
    P_i = sum of s_ij over j != i with the same index (its other views),
    Q_i = sum of s_ij over j with another index,
    L = -mean_i log(P_i / (P_i + Q_i)),
computed with log-sum-exp. Under ``torch.distributed`` the candidates j are gathered from every
rank with an autograd-aware all-gather, so each rank's loss is the mean over its own anchors and
DDP's gradient averaging gives exactly the gradient of the full-batch loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: Tensor) -> Tensor:
    """All-gather ``x`` (same shape on every rank) along dim 0, with the gradient flowing back to
    each rank's slice (``torch.distributed.nn.functional.all_gather``). Identity outside DDP."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def gather_no_grad(x: Tensor) -> Tensor:
    """All-gather a tensor that needs no gradient (e.g. the indexes)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def nt_xent(u: Tensor, indexes: Tensor, temperature: float = 0.2, *, gather: bool = True) -> Tensor:
    """NT-Xent of the unit-norm rows ``u`` (n x K); rows with equal ``indexes`` are positives.

    Any number of views: stack them row-wise and repeat the sample indexes. Every anchor needs at
    least one other row with its index, or its loss is +inf. The similarities and the log-sum-exp
    run in float32 with autocast disabled, so bf16/fp16 mixed precision does not round the logits
    (under CPU bf16 autocast the loss would otherwise differ in the third digit).
    """
    if temperature <= 0:
        raise ValueError(f"temperature (tau)={temperature!r} must be > 0")
    with torch.autocast(u.device.type, enabled=False):
        u = u.float()
        n = u.shape[0]
        if gather and is_distributed():
            candidates = gather_with_grad(u)
            all_indexes = gather_no_grad(indexes)
            offset = dist.get_rank() * n
        else:
            candidates, all_indexes, offset = u, indexes, 0
        logits = u @ candidates.T / temperature
        rows = torch.arange(n, device=u.device)
        is_self = torch.zeros_like(logits, dtype=torch.bool)
        is_self[rows, rows + offset] = True
        positive = (indexes[:, None] == all_indexes[None, :]) & ~is_self
        log_all = torch.logsumexp(logits.masked_fill(is_self, -math.inf), dim=1)
        log_pos = torch.logsumexp(logits.masked_fill(~positive, -math.inf), dim=1)
        return (log_all - log_pos).mean()


@dataclass
class LossTerms:
    """The training objective: ``total`` and its named, *unweighted* terms.

    ``total`` = sum of weight x term. Objectives and gates each return a ``LossTerms``; ``+``
    merges them. The training layer logs ``terms`` by name without knowing them.
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def single(cls, name: str, value: Tensor) -> LossTerms:
        """One term of weight 1."""
        return cls(value, {name: value})

    def add(self, name: str, value: Tensor, weight: float = 1.0) -> LossTerms:
        """A new ``LossTerms`` with ``weight * value`` added to the total and ``value`` logged."""
        if name in self.terms:
            raise ValueError(f"loss term {name!r} is defined twice")
        return LossTerms(self.total + weight * value, {**self.terms, name: value})

    def __add__(self, other: LossTerms) -> LossTerms:
        clash = set(self.terms) & set(other.terms)
        if clash:
            raise ValueError(f"loss terms {sorted(clash)} are defined twice")
        return LossTerms(self.total + other.total, {**self.terms, **other.terms})


#: what to try when a term is not finite, by term name (others get the generic hint)
FINITE_HINTS: dict[str, str] = {
    "nt_xent": "lower the learning rate, raise the temperature (tau) or use bf16 instead of fp16",
    "kl": "check gate.prior (rho) and gate.temperature (T), or set gate.kl_clamp",
}


def check_finite(terms: LossTerms) -> None:
    """Raise ``FloatingPointError`` naming the non-finite term (one host sync; call sparingly)."""
    for name, value in [*terms.terms.items(), ("total", terms.total)]:
        if not bool(torch.isfinite(value).all()):
            hint = FINITE_HINTS.get(name, "lower the learning rate (optim.lr)")
            raise FloatingPointError(f"the {name} loss is {value.float().mean().item()}: {hint}")
