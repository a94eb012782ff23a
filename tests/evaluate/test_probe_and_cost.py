import pytest
import torch

from bayesncl.core.presets import method_preset
from bayesncl.evaluate.cost import PairForward, forward_macs
from bayesncl.evaluate.probe import feature_selection_probe, knn_accuracy, linear_probe
from bayesncl.train.module import PretrainModule


def blobs(n=300, d=8, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    centers = torch.randn(c, d, generator=g) * 4
    return centers[y] + torch.randn(n, d, generator=g), y


def test_knn_vote_matches_a_direct_computation():
    x, y = blobs(n=57)
    x, y, q, qy = x[:50], y[:50], x[50:], y[50:]
    got = knn_accuracy(x, y, q, qy, k=5, temperature=0.5, num_classes=3)
    xn, qn = torch.nn.functional.normalize(x, dim=1), torch.nn.functional.normalize(q, dim=1)
    correct = 0
    for i in range(len(q)):
        sims = qn[i] @ xn.T
        top = sims.topk(5)
        votes = torch.zeros(3)
        for s, j in zip(top.values, top.indices):
            votes[y[j]] += torch.exp(s / 0.5)
        correct += int(votes.argmax() == qy[i])
    assert got["top1"] == pytest.approx(correct / len(q))


@pytest.mark.parametrize(
    "method,stem,hidden,out,shape,expected",
    [
        ("ncl", "cifar", 2048, 256, (3, 32, 32), 1.416),
        ("bayesncl", "cifar", 2048, 256, (3, 32, 32), 1.419),
        # any gate is counted through the head's own forward, whatever its kind
        (
            method_preset("bayesncl").updated({"gate": {"kind": "frequency"}}),
            "cifar",
            2048,
            256,
            (3, 32, 32),
            1.419,
        ),
        ("ncl", "imagenet", 16384, 2048, (3, 224, 224), 3.731),
        ("bayesncl", "imagenet", 16384, 2048, (3, 224, 224), 3.815),
    ],
)
def test_macs_reproduce_the_papers_flops_column(method, stem, hidden, out, shape, expected):
    """BayesNCL paper, compute table: CIFAR-100 1.416G/1.419G, IN-100 3.731G/3.815G (spec §2.12)."""
    with torch.device("meta"):  # MACs depend on shapes only: no memory, no weight init
        model = PretrainModule(
            method=method, stem=stem, proj_hidden_dim=hidden, proj_output_dim=out, num_classes=100
        )
        pair = torch.zeros(2, *shape)
    gmacs = forward_macs(PairForward(model.encoder, model.classifier), pair) / 1e9
    assert round(gmacs, 3) == expected


def test_probe_functions_refuse_meaningless_settings():
    x, y = blobs(n=20)
    with pytest.raises(ValueError, match="epochs=0 and batch_size=1024 must be >= 1"):
        linear_probe(x, y, x, y, epochs=0)
    with pytest.raises(ValueError, match="k=0 must be >= 1"):
        knn_accuracy(x, y, x, y, k=0)
    with pytest.raises(ValueError, match=r"dims=9 must be in 1..8 \(K\)"):
        feature_selection_probe(x, y, x, y, dims=9)


def test_the_linear_probe_does_not_depend_on_the_global_generator():
    """Its initial weights come from its seed: the same features give the same accuracy
    whatever ran before (a re-evaluation in another order moved LP cells by tenths of a point)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 8, generator=g), torch.randint(0, 3, (300,), generator=g)
    torch.manual_seed(1)
    a = linear_probe(x[:200], y[:200], x[200:], y[200:], 3, epochs=3)
    torch.manual_seed(2)
    torch.rand(10)
    b = linear_probe(x[:200], y[:200], x[200:], y[200:], 3, epochs=3)
    assert a == b
    state = torch.random.get_rng_state()
    linear_probe(x[:200], y[:200], x[200:], y[200:], 3, epochs=1)
    assert torch.equal(state, torch.random.get_rng_state())  # nor does it move it
