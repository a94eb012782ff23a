"""The evaluation steps on a tiny encoder built by hand and on tensors with known answers (no
checkpoint, no Lightning)."""

import math
from dataclasses import replace
from functools import partial

import pytest
import torch
from torch import nn

from bayesncl.core.presets import method_preset
from bayesncl.data.splits import Transformed, eval_splits, subset
from bayesncl.evaluate import steps
from bayesncl.evaluate.extract import Extracted, extract
from bayesncl.evaluate.probe import PROTOCOLS
from bayesncl.evaluate.run import EvalConfig, markdown_table, run
from bayesncl.models.backbones import convnet
from bayesncl.models.encoder import Encoder

K = 8


def tiny_encoder(method: str = "bayesncl", **changes) -> Encoder:
    """Flatten -> Linear(16, 8) -> BatchNorm -> ReLU, then the head (H = 16, K = 8)."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU())
    cfg = method_preset(method).updated(changes) if changes else method_preset(method)
    return Encoder(backbone, 8, cfg, proj_hidden_dim=16, proj_output_dim=K, num_classes=3).eval()


def blobs(n=300, d=8, c=3, seed=0, spread=6.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    centers = torch.randn(c, d, generator=g) * spread
    return centers[y] + torch.randn(n, d, generator=g), y


def extracted(x, y, output=None):
    """An Extracted whose h and features are ``x`` (output: row-normalised x unless given)."""
    out = nn.functional.normalize(x, dim=1) if output is None else output
    return Extracted(h=x, features=x, output=out, labels=y)


def batches(x, y, size=16):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


# ---- gate statistics: equal to an independent computation ----------------------------------


def test_gate_open_rate_equals_the_mask_of_an_independent_pass():
    enc = tiny_encoder()
    last = enc.head.gate.head[-1]  # set the gate: dims 0-2 open on every sample, 3-7 closed
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([5.0] * 3 + [-5.0] * 5))
    x, y = torch.rand(40, 1, 4, 4), torch.arange(40) % 3
    ex = extract(enc, batches(x, y))
    stats = steps.gate_statistics(ex)
    with torch.no_grad():
        rep = enc.head(enc.backbone(x))  # the head called directly, in one batch
    assert stats["gate_open"] == pytest.approx(float(rep.mask.mean())) == pytest.approx(3 / 8)
    assert stats["gate_dims_never_open"] == 5
    assert stats["gate_alpha_mean"] == pytest.approx(
        float(torch.sigmoid(torch.tensor([5.0] * 3 + [-5.0] * 5)).mean())
    )


def test_gate_open_rate_of_a_trained_looking_gate_matches_the_formula():
    """Random gate weights: open rate = mean of 1[sigmoid(l / T) > t] over the extracted rows."""
    enc = tiny_encoder(gate={"temperature": 0.5, "threshold": 0.4})
    with torch.no_grad():
        enc.head.gate.head[-1].weight.normal_(0, 1)
        enc.head.gate.head[-1].bias.zero_()
    x, y = torch.rand(50, 1, 4, 4), torch.arange(50) % 3
    ex = extract(enc, batches(x, y, 7))
    with torch.no_grad():
        h = enc.backbone(x)
        logits = enc.head.gate(h).logits
    expected = (torch.sigmoid(logits / 0.5) > 0.4).float().mean()
    assert steps.gate_statistics(ex)["gate_open"] == pytest.approx(float(expected))
    assert 0.0 < float(expected) < 1.0  # a non-trivial case


def test_no_gate_no_gate_statistics():
    enc = tiny_encoder("ncl")
    ex = extract(enc, batches(torch.rand(20, 1, 4, 4), torch.arange(20) % 3))
    assert ex.mask is None and steps.gate_statistics(ex) == {}


# ---- probes on separable data ---------------------------------------------------------------


def test_probes_on_separable_data():
    x, y = blobs(n=600)
    train, val = extracted(x[:300], y[:300]), extracted(x[300:], y[300:])
    inputs = steps.ProbeInputs(train, val, num_classes=3, epochs=30)
    lin = steps.linear(inputs, "fast")
    assert lin["linear_protocol"] == "fast" and lin["linear_top1"] > 0.9
    assert lin["linear_top5"] == 1.0  # 3 classes: top-5 holds every class
    kn = steps.knn(train, val, 3, k=5, temperature=0.1)
    assert kn == {"knn_top1": 1.0, "knn_top5": 1.0, "knn_k": 5, "knn_temperature": 0.1}


def test_feature_selection_keeps_the_informative_dimensions():
    x, y = blobs(n=400, d=4)
    feats = torch.cat([torch.zeros(400, 6), x.abs() + 0.1], 1)  # 6 inactive dims first
    train, val = extracted(feats[:200], y[:200]), extracted(feats[200:], y[200:])
    out = steps.feature_selection(train, val, dims=[4], num_classes=3, epochs=30)
    assert set(out) == {"select4_top1"} and out["select4_top1"] > 0.9


def test_probe_registry_and_official_protocols_beat_chance():
    assert set(steps.PROBES) == {"fast", *PROTOCOLS}
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU())
    enc = Encoder(backbone, 16, method_preset("ncl"), 16, K).eval()
    y = torch.arange(96) % 4
    images = torch.rand(96, 1, 8, 8) * 0.2
    for i, c in enumerate(y.tolist()):  # class c: a bright quadrant c
        r, col = divmod(c, 2)
        images[i, 0, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4] = 1.0
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    val = extract(enc, batches(images, y))
    inputs = steps.ProbeInputs(
        val, val, 4, encoder=enc, train_images=list(zip(images, y)), train_augment=lambda t: t
    )
    for name in PROTOCOLS:  # the real optimisers and schedules, shortened, lr x batch/256 = 1
        short = replace(PROTOCOLS[name], epochs=5, batch_size=16, lr=16.0, warmup_epochs=1)
        assert steps.official_linear_probe(inputs, short)["top1"] > 0.9, name  # chance: 0.25
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BatchNorm statistics untouched
    with pytest.raises(ValueError, match="probe_protocol='nope'; use one of: fast, cifar"):
        steps.linear(inputs, "nope")


# ---- retrieval on a known matrix --------------------------------------------------------------


def test_retrieval_on_a_known_matrix():
    out = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0]])
    y = torch.tensor([0, 0, 1, 0])
    ex = Extracted(h=out, features=out, output=out, labels=y)
    r = steps.retrieval(ex, dims=[2])
    # P@1: rows 0,1 find each other (same class); rows 2,3 find each other (different classes)
    assert r["retrieval_p1"] == 0.5
    # P@3: every other row; same-class shares 2/3, 2/3, 0, 2/3
    assert r["retrieval_p3"] == pytest.approx(0.5)
    assert set(r) == {
        "retrieval_p1",
        "retrieval_p3",
        "retrieval_top2dims_p1",
        "retrieval_top2dims_p3",
    }
    # the two most active dimensions (0 and 1) hold everything: the same answers
    assert (r["retrieval_top2dims_p1"], r["retrieval_top2dims_p3"]) == (0.5, pytest.approx(0.5))


# ---- non-finite features ----------------------------------------------------------------------


def test_non_finite_features_are_refused_with_the_source_named():
    x = torch.rand(10, 4)
    x[2, 1] = float("nan")
    x[5, 0] = float("inf")
    ex = extracted(x, torch.arange(10) % 2, output=torch.rand(10, 4))
    with pytest.raises(ValueError, match=r"^run 7: the model's features contain 4 NaN/Inf values"):
        steps.check_finite(ex, "run 7")  # 2 in h + 2 in features (the same tensor twice)
    steps.check_finite(extracted(torch.rand(10, 4), torch.arange(10) % 2), "ok")


def test_a_nan_model_is_refused_before_any_metric(tmp_path):
    enc = tiny_encoder()
    with torch.no_grad():
        enc.backbone[1].weight.fill_(float("nan"))
    x, y = torch.rand(30, 1, 4, 4), torch.arange(30) % 3
    ex = extract(enc, batches(x, y))
    with pytest.raises(ValueError, match="the run diverged"):
        steps.check_finite(ex, "the model")


# ---- cost works on a copy ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bernoulli", "frequency"])
def test_cost_never_changes_the_model(kind):
    enc = tiny_encoder(gate={"kind": kind})
    clf = nn.Linear(8, 3)
    enc.train()  # even a model left in train mode keeps its state and mode
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    res = steps.cost(enc, (1, 4, 4), clf)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k  # BatchNorm statistics, frequency estimates
    assert enc.training and all(p.grad is None for p in enc.parameters())
    n_params = sum(p.numel() for p in enc.parameters()) + 8 * 3 + 3
    assert res["params"] == n_params
    assert res["gate_params"] == sum(p.numel() for p in enc.head.gate.parameters())
    # MACs of a pair: backbone 16x8, projector 8x16 + 16x8, gate head 8x16 + 16x8, classifier
    # 8x3 (per image, x2), BatchNorm1d 4 per element (x 8 features x 2 rows)
    per_image = 16 * 8 + (8 * 16 + 16 * 8) * 2 + 8 * 3
    assert res["gmacs_pair"] * 1e9 == pytest.approx(2 * per_image + 4 * 8 * 2)
    assert res["gmacs_objective"] > 0 and res["step_seconds"] > 0


# ---- the table, the options, the data ----------------------------------------------------------


def test_markdown_table_values_and_nan():
    m = {"consistency": 0.5, "entropy_sum": math.nan, "params": 1234567.0, "gmacs_pair": None,
         "knn_top1": 0.98765, "orthogonality": math.inf}  # fmt: skip
    assert markdown_table(m, "digits / x") == (
        "### digits / x\n\n| metric | value |\n|---|---|\n"
        "| Cons. (%) | 50 |\n"
        "| H_s, activation-weighted (nats) | nan |\n"
        "| mean \\|corr\\| between dims | inf |\n"
        "| kNN top-1 (%) | 98.77 |\n"
        "| parameters (M) | 1.235 |\n"
    )


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("knn_k", 0, r"--knn_k=0 is invalid: .*>= 1"),
        ("probe_epochs", 0, r"--probe_epochs=0 is invalid: must be >= 1"),
        ("select_dims", [0, 4], r"--select_dims=\[0, 4\] is invalid: every width must be in 1..K"),
        ("train_limit", 0, r"--train_limit=0 is invalid: must be >= 1"),
        ("train_limit", -5, r"--train_limit=-5 is invalid: must be >= 1"),
        ("batch_size", 0, r"--batch_size=0 is invalid: must be >= 1"),
        ("num_workers", -1, r"--num_workers=-1 is invalid: must be >= 0"),
        ("knn_temperature", 0.0, r"--knn_temperature=0.0 is invalid: must be > 0"),
        ("probe_protocol", "dino", r"--probe_protocol='dino' is invalid: use fast, cifar"),
        ("bn_mode", "test", r"--bn_mode='test' is invalid: use eval or train"),
    ],
)
def test_meaningless_options_are_errors(option, value, message):
    with pytest.raises(ValueError, match=message):
        EvalConfig(**{option: value})


def test_select_dims_above_k_names_the_range():
    with pytest.raises(ValueError, match=r"--select_dims=\[4, 9\] is invalid: every width .* 1..8"):
        EvalConfig(select_dims=[4, 9]).dims(8)
    assert EvalConfig().dims(8) == [1, 2, 4] and EvalConfig(select_dims=[3]).dims(8) == [3]


def test_eval_splits_read_the_data_section_only():
    data = {"dataset": "digits", "data_dir": "nowhere", "train_subset": 10, "batch_size": 3,
            "augment": {"flip_prob": 0.5}}  # fmt: skip
    splits = eval_splits(data)
    assert splits.spec.name == "digits" and splits.image_size == 8
    assert len(splits.load(False)) == 360  # whole splits: training subsets do not apply
    assert len(splits.load(True, 100)) == 100
    image, _ = splits.transformed(False)[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert eval_splits(None).spec.name == "digits"
    assert str(eval_splits({"dataset": "cifar10"}, data_dir="/elsewhere").data_dir) == "/elsewhere"
    with pytest.raises(ValueError, match="dataset='mnist'; use one of"):
        eval_splits({"dataset": "mnist"})
    with pytest.raises(ValueError, match=r"data.image_size=0 must be >= 1"):
        eval_splits({"dataset": "digits", "image_size": 0})


def test_subset_is_a_fixed_class_mixed_permutation():
    ds = list(range(50))
    a, b = subset(ds, 10), subset(ds, 10)
    assert list(a) == list(b) and len(a) == 10 and list(a) != list(range(10))
    assert subset(ds, None) is ds and subset(ds, 80) is ds
    with pytest.raises(ValueError, match="subset of 0 items"):
        subset(ds, 0)
    assert Transformed([(1, 0), (2, 1)], lambda v: v * 10)[1] == (20, 1)


# ---- run(): the steps composed, without Lightning ---------------------------------------------


def test_run_on_an_encoder_without_a_checkpoint(tmp_path, monkeypatch):
    """Dense CL features: every sample activates every dimension, so consistency = the largest
    class share (exactly 1/C when balanced: the papers' 10.00). The official protocol's entry of
    PROBES is dispatched (made short here)."""
    torch.manual_seed(0)
    net, dim = convnet(1, 8)
    enc = Encoder(net, dim, method_preset("cl"), 16, K).eval()
    splits = eval_splits({"dataset": "digits"})
    short = replace(PROTOCOLS["cifar"], epochs=1, batch_size=32)
    monkeypatch.setitem(steps.PROBES, "cifar", partial(steps.official_linear_probe, protocol=short))
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    config = EvalConfig(probe_epochs=2, train_limit=64, probe_protocol="cifar", figures=False,
                        select_dims=[4], knn_k=10)  # fmt: skip
    m = run(enc, splits, config, tmp_path, num_classes=10)
    labels = torch.tensor([y for _, y in splits.load(False)])
    assert m["consistency"] == pytest.approx(labels.bincount().max().item() / len(labels), abs=1e-6)
    assert m["sparsity"] == 0.0 and m["activation_ratio"] == 1.0
    assert m["linear_protocol"] == "cifar" and m["num_eval_samples"] == 360
    assert "gate_open" not in m and {"select4_top1", "knn_top1", "gmacs_pair"} <= set(m)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_objective_accuracy_of_a_classifying_objective():
    from bayesncl.core import NCLHead
    from bayesncl.evaluate.extract import Extracted
    from bayesncl.evaluate.steps import objective_accuracy

    head = NCLHead(4, 8, 4, "nce", num_classes=2)
    with torch.no_grad():
        head.objective.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))

    class Enc:
        pass

    enc = Enc()
    enc.head = head
    feats = torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0]])
    ex = Extracted(h=feats, features=feats, output=feats, labels=torch.tensor([0, 1, 0, 0]))
    assert objective_accuracy(enc, ex) == {"objective_top1": 0.75}
    enc.head = NCLHead(4, 8, 4, "ncl")
    assert objective_accuracy(enc, ex) == {}


def test_markdown_table_escapes_pipes_in_labels():
    from bayesncl.evaluate.run import markdown_table

    table = markdown_table({"orthogonality": 0.25}, "digits / ncl")
    assert "| mean \\|corr\\| between dims | 0.25 |" in table


def test_top_activated_figure_names_the_classes(tmp_path, monkeypatch):
    """Issue 16: each shown sample is captioned with its class name ("Trouser"), via
    ``steps.figures(..., class_names)``; without names, ``y=<label>`` as before."""
    import matplotlib.axes

    from bayesncl.data.datasets import FASHION_MNIST_CLASSES
    from bayesncl.evaluate import figures as fig

    captions: list[str] = []
    monkeypatch.setattr(
        matplotlib.axes.Axes, "set_xlabel", lambda self, text, **kw: captions.append(text)
    )
    feats = torch.zeros(4, 3)
    feats[:, 0] = torch.tensor([4.0, 3.0, 2.0, 1.0])  # dim 0: samples 0, 1, 2, 3 in this order
    labels = torch.tensor([1, 9, 1, 0])
    ex = Extracted(h=feats, features=feats, output=feats, labels=labels)
    image_at = lambda i: torch.zeros(1, 4, 4)  # noqa: E731
    steps.figures(ex, image_at, tmp_path, class_names=FASHION_MNIST_CLASSES)
    assert captions[:4] == ["Trouser", "Ankle boot", "Trouser", "T-shirt/top"]
    captions.clear()
    fig.top_activated_grid(feats, image_at, tmp_path / "t.png", dims=1, per_dim=2, labels=labels)
    assert captions == ["y=1", "y=9"]
