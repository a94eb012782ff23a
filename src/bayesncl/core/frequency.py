"""Frequency-aware pieces (issue "Where the gate matters"; BayesNCL paper §4, Theorem 4.5).

The BayesNCL paper derives that the optimal similarity weights each dimension by its inverse
frequency, s_IPW(z, z') = sum_k z_k z'_k / pi_k, calls pi_k intractable, and approximates the
weighting with the Bayesian gate. Both ways are built here on a running estimate pi_hat_k of
the share of samples on which dimension k is active (> 0):

* :class:`FrequencyEstimate`: pi_hat <- m pi_hat + (1 - m) (batch frequency), the batch
  frequency averaged over processes under DDP; a buffer, so it is saved in checkpoints.
* :class:`IPWNTXentObjective` (``nt_xent_ipw``): NT-Xent on v' = normalize(v / pi_hat^(beta/2)),
  so v'_i . v'_j is proportional to sum_k v_ik v_jk / pi_hat_k^beta (beta = 1: the paper's s_IPW).
* :class:`FrequencyGate` (gate kind ``frequency``): the Bayesian gate with one prior per dimension,
  rho_k = rho (1 - pi_hat_k)^gamma: a dimension active on (nearly) every sample, a shared
  "background" feature, is pulled closed, which is what Theorem 4.5 says the KL does in the limit
  pi_k -> 1; rare dimensions keep rho.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from bayesncl.core.gates import BayesianGate, GateConfig, GateOutput, bernoulli_kl
from bayesncl.core.losses import LossTerms, is_distributed, nt_xent
from bayesncl.core.norm import normalize_rows
from bayesncl.core.objectives import Batch, Objective


class FrequencyEstimate(nn.Module):
    """Moving average of each dimension's activation frequency (DDP-synchronised, checkpointed).

    ``update(active)`` with an (n x K) 0/1 or boolean matrix, in training only; the first update
    sets the estimate to the batch frequency.
    """

    def __init__(self, dim: int, momentum: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"frequency momentum={momentum!r} must be in [0, 1)")
        self.momentum = momentum
        self.register_buffer("pi", torch.full((dim,), 0.5))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, active: Tensor) -> Tensor:
        freq = active.float().mean(dim=0)
        if is_distributed():  # equal batch sizes per rank: the mean of means is the global mean
            dist.all_reduce(freq)
            freq /= dist.get_world_size()
        m = self.momentum if int(self.updates) > 0 else 0.0
        self.pi.mul_(m).add_((1.0 - m) * freq)
        self.updates += 1
        return self.pi


class IPWNTXentObjective(Objective):
    """NT-Xent with the inverse-frequency weighted similarity (term ``nt_xent_ipw``).

    ``beta``: the power of 1/pi_hat (1 = the paper's s_IPW; 0 = plain NT-Xent). ``momentum`` of
    the frequency estimate. ``floor``: pi_hat is clamped to at least this (a dimension never active
    would get an infinite weight).
    """

    def __init__(
        self,
        *,
        tau: float,
        out_dim: int,
        num_classes: int | None = None,
        beta: float = 1.0,
        momentum: float = 0.99,
        floor: float = 0.01,
    ) -> None:
        super().__init__(tau=tau, out_dim=out_dim, num_classes=num_classes)
        if beta < 0 or not 0 < floor <= 1:
            raise ValueError(
                f"nt_xent_ipw needs beta >= 0 and 0 < floor <= 1 (got {beta}, {floor})"
            )
        self.beta, self.floor = beta, floor
        self.frequency = FrequencyEstimate(out_dim, momentum)

    def forward(self, rep, batch: Batch) -> LossTerms:
        if self.training:
            self.frequency.update(rep.output.detach() > 0)
        weight = self.frequency.pi.clamp_min(self.floor).pow(-self.beta / 2)
        v = normalize_rows(rep.output * weight)
        return LossTerms.single("nt_xent_ipw", nt_xent(v, batch.indexes, self.tau))


class FrequencyGate(BayesianGate):
    """Bayesian gate whose prior is rho_k = rho (1 - pi_hat_k)^gamma (gate kind ``frequency``).

    pi_hat_k is the activation frequency of dimension k of the representation it gates (before
    the gate), tracked in training by :class:`FrequencyEstimate`.
    """

    def __init__(self, in_dim: int, out_dim: int, config: GateConfig, hidden_dim: int) -> None:
        super().__init__(in_dim, out_dim, config, hidden_dim)
        self.frequency = FrequencyEstimate(out_dim, config.freq_momentum)

    def forward(
        self, h: Tensor, features: Tensor | None = None, *, soft: bool = False
    ) -> GateOutput:
        if self.training and features is not None:
            self.frequency.update(features.detach() > 0)
        return super().forward(h, features, soft=soft)

    def priors(self) -> Tensor:
        """rho_k of every dimension."""
        return (
            self.config.prior * (1.0 - self.frequency.pi).clamp_min(0.0) ** self.config.freq_power
        )

    def kl(self, logits: Tensor) -> Tensor:
        c = self.config
        rho = self.priors().clamp(1e-4, 1 - 1e-4)
        return bernoulli_kl(logits, rho, c.temperature, c.kl_clamp)
