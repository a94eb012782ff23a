"""Gates (registered in ``bayesncl.core.registry.GATES``), and the Bayesian gate of BayesNCL: head, Bernoulli masks and
the KL to the prior.

Reference spec §1.7 (STE and the official single-Gumbel noise) and §1.8 (soft gating, head depth,
detachment). Per dimension k of the K-dim representation, a head g_theta on the backbone features
h gives a logit l_k; alpha_k = sigmoid(l_k / T) is the probability that dimension k is kept.

A gate is an ``nn.Module`` built as ``GATES[config.kind](in_dim, out_dim, config, hidden_dim)``
(``bayesncl.core.registry``) with ``forward(h, features) -> GateOutput`` (logits, alpha, mask),
``penalty(out) -> LossTerms`` (its own regulariser, weighted) and ``param_groups(lr, wd)`` (its
optimiser groups). Adding a gate = one class + one entry in ``GATES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor, nn

from bayesncl.core.losses import LossTerms

GateMode = Literal["ste", "gumbel", "logistic", "soft"]
GATE_MODES: tuple[str, ...] = get_args(GateMode)


@dataclass(frozen=True)
class GateConfig:
    """Settings of the Bayesian gate. Defaults are the released CIFAR-100 values (spec §1.7).

    Args:
        kind: the gate class, a key of ``bayesncl.core.registry.GATES`` (``bernoulli``: the BayesNCL
            gate; ``frequency``: its prior scaled by each dimension's activation frequency).
        mode: ``ste`` hard 1[alpha > t] forward, straight-through backward (BayesNCL's default);
            ``gumbel`` the official noise eps = -log(-log(u + 1e-4) + 1e-4) (one Gumbel sample, mean
            +0.577, spec §5 quirk 8) before the threshold; ``logistic`` the textbook binary-concrete
            noise log u - log(1 - u); ``soft`` alpha itself is the mask (the soft-gating ablation).
        temperature: T in alpha = sigmoid(l / T); must be > 0 (the official default 0 freezes the gate).
        threshold: t in 1[alpha > t].
        prior: rho of the Bernoulli prior, in (0, 1). Note rho = 0.8 pulls gates *open* (spec §1.7).
        kl_weight: lambda >= 0, the weight of the KL term.
        kl_clamp: clamp of alpha and rho inside the KL (official (0.01, 0.99)); None computes the
            exact KL from the logits.
        head_depth: 1, 2 (official) or 3 linear layers in the gate head.
        head_hidden_dim: hidden width of the head; None means "same as the projector" (official).
        detach: the head sees h.detach() (official), so no gate-path gradient reaches the backbone;
            False is the paper's "remove detachment" ablation.
        freq_power, freq_momentum: ``frequency`` gate only: gamma in rho_k = rho (1 - pi_k)^gamma and
            the momentum of the moving average pi_k (``bayesncl.core.frequency``).
    """

    kind: str = "bernoulli"
    mode: GateMode = "ste"
    temperature: float = 1.0
    threshold: float = 0.5
    prior: float = 0.8
    kl_weight: float = 3e-5
    kl_clamp: tuple[float, float] | None = (0.01, 0.99)
    head_depth: int = 2
    head_hidden_dim: int | None = None
    detach: bool = True
    freq_power: float = 1.0
    freq_momentum: float = 0.99

    def __post_init__(self) -> None:
        if isinstance(self.kl_clamp, list):  # YAML / JSON give lists
            object.__setattr__(self, "kl_clamp", tuple(self.kl_clamp))
        if self.mode not in GATE_MODES:
            raise ValueError(
                f"gate mode={self.mode!r} is not known; use one of: {', '.join(GATE_MODES)}"
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(
                f"gate temperature={self.temperature!r} must be > 0 "
                "(T = 0, the official default, silently freezes the gate; the released value is 1.0)"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"gate threshold={self.threshold!r} must be in (0, 1)")
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"gate prior (rho)={self.prior!r} must be in (0, 1)")
        if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"gate kl_weight (lambda)={self.kl_weight!r} must be >= 0")
        if self.kl_clamp is not None:
            lo, hi = self.kl_clamp
            if not 0.0 < lo < hi < 1.0:
                raise ValueError(f"gate kl_clamp={self.kl_clamp!r} must satisfy 0 < low < high < 1")
        if self.head_depth not in (1, 2, 3):
            raise ValueError(f"gate head_depth={self.head_depth!r} must be 1, 2 or 3")
        if self.head_hidden_dim is not None and self.head_hidden_dim < 1:
            raise ValueError(f"gate head_hidden_dim={self.head_hidden_dim!r} must be >= 1")
        if not (math.isfinite(self.freq_power) and self.freq_power >= 0):
            raise ValueError(f"gate freq_power={self.freq_power!r} must be >= 0")
        if not 0.0 <= self.freq_momentum < 1.0:
            raise ValueError(f"gate freq_momentum={self.freq_momentum!r} must be in [0, 1)")


def make_gate_head(in_dim: int, out_dim: int, hidden_dim: int, depth: int) -> nn.Sequential:
    """Gate head with ``depth`` linear layers (spec §1.8).

    1: Linear(in, K). 2: Linear(in, H) ReLU Linear(H, K) (official). 3: Linear(in, H) ReLU
    Linear(H, H/2) ReLU Linear(H/2, K) (the "hidden_half" head of the official evaluation code).
    """
    if depth == 1:
        return nn.Sequential(nn.Linear(in_dim, out_dim))
    if depth == 2:
        return nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)
        )
    if depth == 3:
        half = max(1, hidden_dim // 2)
        return nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, half),
            nn.ReLU(),
            nn.Linear(half, out_dim),
        )
    raise ValueError(f"gate head_depth={depth!r} must be 1, 2 or 3")


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward value ``hard``, gradient of ``soft``: hard + soft - sg(soft)."""
    return hard + (soft - soft.detach())


def official_gumbel_noise(like: Tensor) -> Tensor:
    """The official noise: eps = -log(-log(u + 1e-4) + 1e-4), u ~ U[0, 1) (spec §1.7)."""
    u = torch.rand_like(like)
    return -torch.log(-torch.log(u + 1e-4) + 1e-4)


def logistic_noise(like: Tensor) -> Tensor:
    """Logistic noise g1 - g2 = log u - log(1 - u) of the binary-concrete relaxation."""
    u = torch.rand_like(like).clamp_(1e-6, 1.0 - 1e-6)
    return torch.log(u) - torch.log1p(-u)


#: noise added to the logits in training, by gate mode (None: no noise)
GATE_NOISE: dict[str, Callable[[Tensor], Tensor] | None] = {
    "ste": None,
    "gumbel": official_gumbel_noise,
    "logistic": logistic_noise,
    "soft": None,
}


def sample_mask(
    logits: Tensor, config: GateConfig, *, training: bool, soft: bool = False
) -> Tensor:
    """The gate mask m from the logits (spec §1.7 step 5).

    Training: ``ste`` 1[sigmoid(l/T) > t]; ``gumbel`` / ``logistic`` add noise to l first; all
    three pass the gradient straight through to the (noisy) probability. ``soft``: m = alpha.
    Evaluation is deterministic: 1[alpha > t], or alpha for ``soft`` models or when ``soft``.
    """
    t = config.temperature
    if config.mode == "soft" or soft:
        return torch.sigmoid(logits / t)
    noise = GATE_NOISE[config.mode]
    if training and noise is not None:
        logits = logits + noise(logits)
    prob = torch.sigmoid(logits / t)
    hard = (prob > config.threshold).to(prob.dtype)
    return straight_through(hard, prob) if training else hard


def bernoulli_kl(
    logits: Tensor,
    prior: float | Tensor,
    temperature: float = 1.0,
    clamp: tuple[float, float] | None = (0.01, 0.99),
) -> Tensor:
    """KL(Bern(alpha) || Bern(rho)) summed over dimensions, averaged over rows (spec §1.7 step 4).

    alpha = sigmoid(l / T). With ``clamp`` (official: (0.01, 0.99)) alpha and rho are clamped
    first, so the gradient is exactly zero where alpha leaves the clamp range. With ``clamp=None``
    the exact KL is computed from log-sigmoids (stable for any logit). ``prior`` may be a
    tensor of one rho per dimension.
    """
    scaled = logits.float() / temperature
    if clamp is not None:
        lo, hi = clamp
        a = torch.sigmoid(scaled).clamp(lo, hi)
        r = torch.as_tensor(prior, dtype=a.dtype, device=a.device).clamp(lo, hi)
        kl = a * torch.log(a / r) + (1 - a) * torch.log((1 - a) / (1 - r))
    else:
        a = torch.sigmoid(scaled)
        log_a = nn.functional.logsigmoid(scaled)
        log_1ma = nn.functional.logsigmoid(-scaled)
        r = torch.as_tensor(prior, dtype=a.dtype, device=a.device)
        kl = a * (log_a - torch.log(r)) + (1 - a) * (log_1ma - torch.log1p(-r))
    return kl.sum(dim=-1).mean()


class GateOutput(NamedTuple):
    logits: Tensor
    alpha: Tensor
    mask: Tensor


class BayesianGate(nn.Module):
    """The BayesNCL gate (``kind="bernoulli"``): head plus Bernoulli mask sampling,
    ``forward(h) -> (logits, alpha, mask)``, penalty lambda * KL(Bern(alpha) || Bern(rho))."""

    def __init__(self, in_dim: int, out_dim: int, config: GateConfig, hidden_dim: int) -> None:
        super().__init__()
        self.config = config
        self.head = make_gate_head(
            in_dim, out_dim, config.head_hidden_dim or hidden_dim, config.head_depth
        )

    def forward(
        self, h: Tensor, features: Tensor | None = None, *, soft: bool = False
    ) -> GateOutput:
        """Gate of the rows of ``h`` (``features``, the representation it gates, is unused here;
        gates that measure the representation use it)."""
        logits = self.head(h.detach() if self.config.detach else h)
        alpha = torch.sigmoid(logits / self.config.temperature)
        mask = sample_mask(logits, self.config, training=self.training, soft=soft)
        return GateOutput(logits, alpha, mask)

    def kl(self, logits: Tensor) -> Tensor:
        """The KL term (not yet weighted by lambda)."""
        c = self.config
        return bernoulli_kl(logits, c.prior, c.temperature, c.kl_clamp)

    def penalty(self, out: GateOutput) -> LossTerms:
        """Term ``kl`` (unweighted), added to the total with weight lambda (spec §1.7 step 7)."""
        kl = self.kl(out.logits)
        return LossTerms(self.config.kl_weight * kl, {"kl": kl})

    def param_groups(
        self, lr: float, weight_decay: float
    ) -> dict[str, tuple[nn.Module, float, float]]:
        """One optimiser group ``gate`` (the official gate lr is its own, see ``OptimConfig``)."""
        return {"gate": (self, lr, weight_decay)}
