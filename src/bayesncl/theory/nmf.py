"""The NCL <-> symmetric NMF equivalence on a finite augmentation graph (ncl-extras-spec §1, §6).

P (N x N, symmetric, non-negative, sums to 1) is the joint probability of positive pairs; p its
marginal, A_bar = D^{-1/2} P D^{-1/2}. With F_x = sqrt(p(x)) f(x):

    L_sp(f) + ||A_bar||^2 = ||A_bar - F F^T||^2          (exact, any f; spec §1)

so minimising the spectral loss over non-negative f (NCL) is symmetric NMF of A_bar. Under the
latent-class model P(x, x') = sum_c P(c) P(x|c) P(x'|c) the optimum is known:
phi(x)_c = P(c|x) / sqrt(P(c)) (up to a permutation of c), with zero NMF loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def _check_joint(P: Tensor) -> None:
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be square, got {tuple(P.shape)}")
    if (P < 0).any() or not torch.allclose(P, P.T):
        raise ValueError("P must be symmetric and non-negative")


def normalized_graph(P: Tensor) -> tuple[Tensor, Tensor]:
    """(A_bar = D^{-1/2} P D^{-1/2}, marginal p) of a joint positive-pair matrix P."""
    _check_joint(P)
    p = P.sum(dim=1)
    s = p.rsqrt()
    return s[:, None] * P * s[None, :], p


def feature_matrix(f: Tensor, p: Tensor) -> Tensor:
    """F_x = sqrt(p(x)) f(x) (rows of f are the features of the N points)."""
    return p.sqrt()[:, None] * f


def population_spectral_loss(f: Tensor, P: Tensor) -> Tensor:
    """L_sp(f) = -2 sum P(x,x') f(x).f(x') + sum p(x) p(x') (f(x).f(x'))^2 (spec §1)."""
    p = P.sum(dim=1)
    gram = f @ f.T
    return -2.0 * (P * gram).sum() + (p[:, None] * p[None, :] * gram.square()).sum()


def mf_objective(F: Tensor, A_bar: Tensor) -> Tensor:
    """||A_bar - F F^T||_F^2 (symmetric NMF when F >= 0)."""
    return (A_bar - F @ F.T).square().sum()


def symnmf(A_bar: Tensor, k: int, iters: int = 2000, beta: float = 0.5, seed: int = 0) -> Tensor:
    """Symmetric NMF by multiplicative updates (Ding et al.):
    H <- H * (1 - beta + beta (A H) / (H H^T H)); returns H (N x k) >= 0."""
    g = torch.Generator().manual_seed(seed)
    H = torch.rand(A_bar.shape[0], k, generator=g, dtype=A_bar.dtype) * A_bar.mean().sqrt()
    for _ in range(iters):
        H = H * (1 - beta + beta * (A_bar @ H) / (H @ (H.T @ H)).clamp_min(1e-30))
    return H


@dataclass
class LatentClassModel:
    """Assumption 1 of the NCL paper with known parts (spec §1)."""

    P: Tensor  # joint positive-pair probabilities, N x N
    prior: Tensor  # P(c), m
    posterior: Tensor  # P(c|x), N x m
    phi: Tensor  # the optimal NCL representation P(c|x) / sqrt(P(c)), N x m


def latent_class_model(
    m: int = 5, n: int = 200, pure: float = 0.3, seed: int = 0, dtype=torch.float64
) -> LatentClassModel:
    """m latent classes over n points: a share ``pure`` of the points belongs to one class only
    (the identifiability condition of the paper's Theorem 5); the others mix 2-3 classes."""
    rng = np.random.default_rng(seed)
    post = np.zeros((n, m))
    for x in range(n):
        if x < m or rng.random() < pure:  # at least one pure point per class
            post[x, x % m if x < m else rng.integers(m)] = 1.0
        else:
            cs = rng.choice(m, size=rng.integers(2, 4), replace=False)
            post[x, cs] = rng.dirichlet(np.ones(len(cs)))
    px = rng.dirichlet(np.full(n, 5.0))  # marginal of the points
    joint_xc = post * px[:, None]  # P(x, c)
    prior = joint_xc.sum(axis=0)
    cond = joint_xc / prior  # P(x|c), columns sum to 1
    P = (cond * prior) @ cond.T
    P = (P + P.T) / 2
    phi = post / np.sqrt(prior)
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return LatentClassModel(t(P), t(prior), t(post), t(phi))


def matched_correlation(a: Tensor, b: Tensor) -> float:
    """Mean Pearson correlation of the columns of ``a`` and ``b`` after the best one-to-one
    matching (Hungarian on the correlation matrix): 1.0 means equal up to permutation/scale."""
    x = a - a.mean(0)
    y = b - b.mean(0)
    x = x / x.norm(dim=0).clamp_min(1e-30)
    y = y / y.norm(dim=0).clamp_min(1e-30)
    corr = (x.T @ y).double().numpy()
    rows, cols = linear_sum_assignment(-corr)
    return float(corr[rows, cols].mean())
