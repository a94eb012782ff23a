import pytest
import torch

from bayesncl.metrics import rank_dimensions, retrieval_precision


def brute_force(f, y, ks):
    f = torch.nn.functional.normalize(f, dim=1)
    sim = f @ f.T
    sim.fill_diagonal_(-float("inf"))
    out = {}
    for k in ks:
        idx = sim.topk(k, dim=1).indices
        out[k] = (y[idx] == y[:, None]).float().mean().item()
    return out


def test_matches_brute_force_across_chunks():
    torch.manual_seed(0)
    f = torch.relu(torch.randn(150, 12))
    y = torch.randint(0, 3, (150,))
    got = retrieval_precision(f, y, chunk=32)
    assert got == pytest.approx(brute_force(f, y, (1, 3, 5, 10)), abs=1e-6)


def test_top_dims_and_self_exclusion():
    y = torch.tensor([0, 0, 1, 1])
    f = torch.tensor([[1.0, 0.0, 0.1], [1.0, 0.0, 0.2], [0.0, 1.0, 0.1], [0.0, 1.0, 0.3]])
    assert retrieval_precision(f, y, ks=(1,))[1] == 1.0
    assert rank_dimensions(f)[-1].item() == 2
    assert retrieval_precision(f, y, ks=(1,), num_dims=1)[1] == 0.5  # only dim 0 or 1 survives
    # duplicate rows: the official "drop the first neighbour" would drop the twin, not the query
    dup = torch.ones(4, 2)
    assert retrieval_precision(dup, torch.tensor([0, 0, 1, 1]), ks=(1,))[1] >= 0.0
    with pytest.raises(ValueError, match="retrieval k=10"):
        retrieval_precision(f, y)
