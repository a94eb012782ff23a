"""NCL is symmetric NMF (ncl-extras-spec §6.2): exact identity, unbiased estimator, known optimum."""

import pytest
import torch

from bayesncl import theory as T
from bayesncl.core.spectral import spectral_loss


def random_joint(n=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, n, generator=g, dtype=torch.float64) ** 4
    P = a + a.T
    return P / P.sum()


@pytest.mark.parametrize("relu", [False, True])
def test_spectral_loss_plus_norm_is_the_mf_objective(relu):
    P = random_joint()
    A_bar, p = T.normalized_graph(P)
    f = torch.randn(50, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if relu:
        f = torch.relu(f)
    lhs = T.population_spectral_loss(f, P) + A_bar.square().sum()
    rhs = T.mf_objective(T.feature_matrix(f, p), A_bar)
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-12, abs=1e-12)


def test_minibatch_estimator_is_unbiased():
    """Mean of the §3.2 estimator over sampled batches -> the population L_sp (mu large: no
    clipping, and the estimate is rescaled by mu)."""
    P = random_joint(n=20, seed=2)
    f = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.5
    g = torch.Generator().manual_seed(4)
    pairs = torch.multinomial(P.flatten(), 16 * 4000, replacement=True, generator=g)
    x, xp = pairs // 20, pairs % 20
    mu = 1e6
    est = torch.stack(
        [
            spectral_loss(f[x[i : i + 16]], f[xp[i : i + 16]], mu) * mu
            for i in range(0, x.numel(), 16)
        ]
    )
    want = T.population_spectral_loss(f, P).item()
    se = est.std().item() / est.numel() ** 0.5
    assert abs(est.mean().item() - want) < 4 * se


def test_latent_class_optimum_has_zero_nmf_loss_and_symnmf_recovers_it():
    model = T.latent_class_model(m=4, n=80, seed=0)
    A_bar, p = T.normalized_graph(model.P)
    F_star = T.feature_matrix(model.phi, p)
    assert T.mf_objective(F_star, A_bar).item() < 1e-20
    H = T.symnmf(A_bar, 4, iters=3000)
    assert T.mf_objective(H, A_bar).item() < 1e-6
    assert T.matched_correlation(H / p.sqrt()[:, None], model.phi) > 0.99
    # a rotation of the optimum has the same loss but mixes the classes (Theorem 1)
    q, _ = torch.linalg.qr(
        torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )
    rotated = F_star @ q
    assert T.mf_objective(rotated, A_bar).item() < 1e-20
    assert T.matched_correlation(rotated, F_star) < 0.9
