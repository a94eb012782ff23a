"""NCL recovers the latent classes; unconstrained spectral CL does not (ncl-extras-spec §6.2).

On the latent-class model (known optimum phi(x)_c = P(c|x) / sqrt(P(c))), compare:
  (a) the unconstrained optimum (top-m eigenvectors of A_bar) under a random rotation: same loss,
      dimensions mix classes (the paper's Theorem 1);
  (b) symmetric NMF by multiplicative updates;
  (c) NCL as an unconstrained feature model (UFM): a free embedding table E, f = ReLU(E) (with
      rep_relu's gradient, NCL's default), trained
      by Adam on sampled positive pairs with the minibatch spectral estimator (spec §3.2);
  (d) the same table without ReLU (spectral CL).
Per method: the NMF objective ||A_bar - F F^T||^2 reached, and the Hungarian-matched column
correlation with phi (1.0 = recovered up to permutation and scale). This is our own check of the
paper's theorem, not a number from the paper.

    python examples/nmf_identifiability.py [--seeds 3] [--out docs/results/nmf-identifiability.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bayesncl.core.nonneg import rep_relu
from bayesncl.core.spectral import spectral_loss
from bayesncl.theory import (
    feature_matrix,
    latent_class_model,
    matched_correlation,
    mf_objective,
    normalized_graph,
    symnmf,
)


def ufm(P: torch.Tensor, k: int, relu: bool, seed: int, steps: int = 4000, batch: int = 1024):
    """Free embedding table trained on sampled positive pairs; returns f (N x k)."""
    n = P.shape[0]
    g = torch.Generator().manual_seed(seed)
    table = (torch.rand(n, k, generator=g) * 0.5).requires_grad_(True)
    opt = torch.optim.Adam([table], lr=0.02)
    flat = P.flatten().float()
    mu = 1e4  # no clipping: the plain estimator of L_sp (times 1/mu, undone below)
    for step in range(steps):
        pairs = torch.multinomial(flat, batch, replacement=True, generator=g)
        x, xp = pairs // n, pairs % n
        f = rep_relu(table) if relu else table  # NCL's reparameterised ReLU (spec §1.5)
        loss = spectral_loss(f[x], f[xp], mu) * mu
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == steps * 3 // 4:
            for group in opt.param_groups:
                group["lr"] = 0.002
    with torch.no_grad():
        return (torch.relu(table) if relu else table).double()


def run(seed: int, m: int = 5, n: int = 200) -> dict[str, dict[str, float]]:
    model = latent_class_model(m=m, n=n, seed=seed)
    A_bar, p = normalized_graph(model.P)
    F_star = feature_matrix(model.phi, p)
    out: dict[str, dict[str, float]] = {}

    def score(name: str, F: torch.Tensor) -> None:
        out[name] = {
            "nmf_objective": float(mf_objective(F, A_bar)),
            "matched_corr": matched_correlation(F, F_star),
            "min_entry": float(F.min()),
        }

    score("optimum phi", F_star)
    vals, vecs = torch.linalg.eigh(A_bar)
    top = vecs[:, -m:] * vals[-m:].clamp_min(0).sqrt()
    q, _ = torch.linalg.qr(
        torch.randn(m, m, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    )
    score("eigen optimum, rotated (MF)", top @ q)
    score("SymNMF (multiplicative)", symnmf(A_bar, m, iters=3000, seed=seed))
    score("NCL-UFM (ReLU, sampled pairs)", feature_matrix(ufm(model.P, m, True, seed), p))
    score("SCL-UFM (no ReLU, sampled pairs)", feature_matrix(ufm(model.P, m, False, seed), p))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="docs/results/nmf-identifiability.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = [run(s) for s in range(args.seeds)]
    names = list(runs[0])
    summary = {}
    print(f"latent-class model, m=5 classes, N=200 points, {args.seeds} seeds (mean, min-max)")
    print(f"{'method':36s} {'||A - FF^T||^2':>22s} {'matched corr':>22s}")
    for name in names:
        objs = [r[name]["nmf_objective"] for r in runs]
        corrs = [r[name]["matched_corr"] for r in runs]
        summary[name] = {"nmf_objective": objs, "matched_corr": corrs}
        print(
            f"{name:36s} {sum(objs) / len(objs):10.2e} ({min(objs):.0e}-{max(objs):.0e})"
            f" {sum(corrs) / len(corrs):8.4f} ({min(corrs):.3f}-{max(corrs):.3f})"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"seeds": args.seeds, "m": 5, "n": 200, "runs": summary}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
