import pytest
import torch

from bayesncl.evaluate.cost import _PairForward, forward_macs
from bayesncl.evaluate.probe import feature_selection_probe, knn_accuracy, linear_probe
from bayesncl.train.module import PretrainModule


def blobs(n=300, d=8, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    centers = torch.randn(c, d, generator=g) * 4
    return centers[y] + torch.randn(n, d, generator=g), y


def test_linear_probe_and_knn_on_separable_data():
    x, y = blobs(n=600)
    x, y, xt, yt = x[:300], y[:300], x[300:], y[300:]
    assert linear_probe(x, y, xt, yt, epochs=200, batch_size=64)["top1"] > 0.95
    assert knn_accuracy(x, y, xt, yt, k=20)["top1"] > 0.95


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


def test_feature_selection_uses_the_most_active_dims():
    x, y = blobs(d=4)
    noise = torch.zeros(len(x), 6)  # inactive dims
    feats = torch.cat([noise, x.abs()], 1)
    res = feature_selection_probe(feats, y, feats, y, dims=4, epochs=200, batch_size=64)
    assert res["top1"] > 0.8


@pytest.mark.parametrize(
    "method,stem,hidden,out,shape,expected",
    [
        ("ncl", "cifar", 2048, 256, (3, 32, 32), 1.416),
        ("bayesncl", "cifar", 2048, 256, (3, 32, 32), 1.419),
        ("ncl", "imagenet", 16384, 2048, (3, 224, 224), 3.731),
        ("bayesncl", "imagenet", 16384, 2048, (3, 224, 224), 3.815),
    ],
)
def test_macs_reproduce_the_papers_flops_column(method, stem, hidden, out, shape, expected):
    """BayesNCL paper, compute table: CIFAR-100 1.416G/1.419G, IN-100 3.731G/3.815G (spec §2.12)."""
    model = PretrainModule(
        method=method, stem=stem, proj_hidden_dim=hidden, proj_output_dim=out, num_classes=100
    )
    gmacs = forward_macs(_PairForward(model), torch.zeros(2, *shape)) / 1e9
    assert round(gmacs, 3) == expected


def test_augmented_probe_keeps_the_backbone_frozen():
    from dataclasses import replace

    from bayesncl.evaluate.probe import PROTOCOLS, augmented_linear_probe
    from bayesncl.models.backbones import convnet

    torch.manual_seed(0)
    net, _ = convnet(1, 8)
    net.train()  # the probe must switch it to eval mode itself
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(64, 1, 8, 8), torch.arange(64) % 4
    train = list(zip(x, y))
    with torch.no_grad():
        test_h = net.eval()(x)
    net.train()
    for name in ("cifar", "imagenet100"):
        protocol = replace(PROTOCOLS[name], epochs=2, batch_size=16)
        res = augmented_linear_probe(net, train, test_h, y, 4, protocol)
        assert 0.0 <= res["top1"] <= 1.0
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BatchNorm statistics untouched
