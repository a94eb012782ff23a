"""Cross-modal metrics of MMNCL (ncl-extras-spec §4.3): retrieval between the two modalities and
per-dimension agreement of the paired codes (is dimension k the same concept in both towers?)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(
            f"paired codes must have equal shape (n, K), got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _recall(
    queries: Tensor, keys: Tensor, ks: Sequence[int], chunk: int, groups: Tensor | None
) -> dict[int, float]:
    """Share of queries i whose partner i (or, with ``groups``, any key of i's group) is among
    the top k keys by cosine similarity.

    Rank = the number of keys j outside the group with sim(i, j) >= the best similarity of a
    key in the group: ties count against the query, so all-zero codes (every gate closed) score
    chance level, not a perfect recall. Without ``groups`` each pair is its own group.
    """
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    k = torch.nn.functional.normalize(keys.float(), dim=1)
    n = q.shape[0]
    ranks = torch.empty(n, dtype=torch.long)
    for start in range(0, n, chunk):
        sim = q[start : start + chunk] @ k.T
        rows = torch.arange(sim.shape[0])
        if groups is None:
            same = torch.zeros_like(sim, dtype=torch.bool)
            same[rows, rows + start] = True
        else:
            same = groups[start : start + chunk, None] == groups[None, :]
        best = sim.masked_fill(~same, float("-inf")).max(1).values
        ranks[start : start + chunk] = ((sim >= best[:, None]) & ~same).sum(1)
    return {kk: float((ranks < kk).float().mean()) for kk in ks}


def cross_modal_retrieval(
    a: Tensor,
    b: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    chunk: int = 1024,
    groups: Tensor | None = None,
    names: tuple[str, str] = ("a", "b"),
) -> dict[str, float]:
    """Recall@k of paired retrieval in both directions: row i of ``a`` should retrieve row i of
    ``b`` (``a_to_b/R@k``) and vice versa (``b_to_a/R@k``), cosine similarity, all rows as the
    gallery. Chance level is k / n.

    ``groups`` (n,): pairs with equal ids have interchangeable partners (e.g. identical
    captions): retrieving any of them counts, so duplicates do not cap the recall at
    1 / (number of copies). ``names``: how the keys call the two sides (``x_to_y/R@1`` for
    ``("x", "y")``).
    """
    _check_pair(a, b)
    n = a.shape[0]
    if not ks or min(ks) < 1 or max(ks) > n:
        raise ValueError(f"retrieval ks={list(ks)} must lie in 1..{n} (the number of pairs)")
    if groups is not None and groups.shape != (n,):
        raise ValueError(f"groups must have one id per pair ({n}), got {tuple(groups.shape)}")
    out = {}
    first, second = names
    for name, (q, g) in {f"{first}_to_{second}": (a, b), f"{second}_to_{first}": (b, a)}.items():
        for kk, value in _recall(q, g, ks, chunk, groups).items():
            out[f"{name}/R@{kk}"] = value
    return out


def dimension_agreement(a: Tensor, b: Tensor, eps: float = 1e-8) -> dict[str, float | Tensor]:
    """How far dimension k means the same in both modalities, for paired codes ``a``, ``b`` (n, K).

    * ``correlation`` (K,): Pearson correlation over the pairs of a[:, k] and b[:, k] (NaN where
      either is constant); ``mean_correlation``: its mean over the dimensions where it is defined.
    * ``share_both`` / ``share_one`` / ``share_none``: share of dimensions active (> eps in some
      sample) in both modalities, in exactly one, in neither.
    * ``support_jaccard``: mean over pairs of |S(a_i) & S(b_i)| / |S(a_i) | S(b_i)|, S = the
      active dimensions of a row (pairs with both rows empty count as 1).
    """
    _check_pair(a, b)
    a, b = a.float(), b.float()
    ca, cb = a - a.mean(0), b - b.mean(0)
    sa, sb = ca.pow(2).sum(0).sqrt(), cb.pow(2).sum(0).sqrt()
    defined = (sa > eps) & (sb > eps)
    corr = torch.full((a.shape[1],), float("nan"))
    corr[defined] = (ca * cb).sum(0)[defined] / (sa * sb)[defined]
    active_a, active_b = (a > eps).any(0), (b > eps).any(0)
    on_a, on_b = a > eps, b > eps
    union = (on_a | on_b).sum(1).float()
    jaccard = torch.where(union > 0, (on_a & on_b).sum(1) / union.clamp_min(1), torch.ones(()))
    return {
        "correlation": corr,
        "mean_correlation": float(corr[defined].mean()) if defined.any() else float("nan"),
        "share_both": float((active_a & active_b).float().mean()),
        "share_one": float((active_a ^ active_b).float().mean()),
        "share_none": float((~active_a & ~active_b).float().mean()),
        "support_jaccard": float(jaccard.mean()),
    }
