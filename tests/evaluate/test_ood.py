"""``ood_metrics`` on a tiny encoder and tiny grayscale / RGB data (no checkpoint): every key,
the same items as the clean split, one probe, and severity 0 scoring exactly the clean set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from bayesncl.core.presets import method_preset
from bayesncl.data.datasets import ArrayImages, TensorImages
from bayesncl.data.splits import Transformed
from bayesncl.evaluate import shifted as ood
from bayesncl.evaluate.extract import extract
from bayesncl.models.encoder import Encoder

SIZE = 8


def _encoder(channels: int) -> Encoder:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(channels * SIZE * SIZE, 8), nn.ReLU())
    return Encoder(backbone, 8, method_preset("ncl"), 16, 8, num_classes=3).eval()


def _images(n: int, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright 3 x 3 block at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 40, (n, SIZE, SIZE, channels)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 1 + 2 * c : 4 + 2 * c, 1 + 2 * c : 4 + 2 * c] = 230
    return x, y


def _gray_tensor(t: torch.Tensor) -> torch.Tensor:
    return t.float() / 255


def _rgb_tensor(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


def _setup(rgb: bool):
    channels = 3 if rgb else 1
    (xtr, ytr), (xte, yte) = _images(60, channels, 0), _images(30, channels, 1)
    if rgb:
        train_raw = ArrayImages(xtr, ytr, ["a", "b", "c"])
        val_raw = ArrayImages(xte, yte, ["a", "b", "c"])
        transform = _rgb_tensor
    else:
        train_raw, val_raw = TensorImages(xtr[..., 0], ytr), TensorImages(xte[..., 0], yte)
        transform = _gray_tensor
    enc = _encoder(channels)
    train = extract(enc, DataLoader(Transformed(train_raw, transform), batch_size=32))
    return enc, train, val_raw, transform


@pytest.mark.parametrize("rgb", [False, True])
def test_items_round_trip_to_the_clean_kind(rgb: bool) -> None:
    _, _, val_raw, _ = _setup(rgb)
    images, labels, as_pil = ood.as_arrays(val_raw, 10)
    assert images.shape == (10, SIZE, SIZE, 3 if rgb else 1) and as_pil == rgb
    items = ood._Items(images, labels, as_pil)
    for i in range(10):
        a, b = items[i], val_raw[i]
        assert type(a[0]) is type(b[0]) and a[1] == b[1]
        assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))


@pytest.mark.parametrize("rgb", [False, True])
def test_every_key_and_one_probe_trained_once(rgb: bool, monkeypatch) -> None:
    calls = []
    fit = ood.fit_linear_probe
    monkeypatch.setattr(ood, "fit_linear_probe", lambda *a, **k: calls.append(1) or fit(*a, **k))
    enc, train, val_raw, transform = _setup(rgb)
    m = ood.ood_metrics(enc, train, val_raw, transform, 3, limit=12, severities=(2,), epochs=5)
    assert len(calls) == 1
    assert m["ood_limit"] == 12 and m["ood_severities"] == [2]
    assert sorted(m["ood_detail"]) == sorted(f"{k}@2" for k in ood.CORRUPTIONS)
    for key in ("clean", "corruption", "noise", "blur", "weather", "digital", "sketch", "stylized"):
        assert 0.0 <= m[f"ood_{key}_top1"] <= 1.0, key
    for key in ("corruption", "sketch", "stylized"):
        assert m[f"ood_{key}_drop"] == pytest.approx(m["ood_clean_top1"] - m[f"ood_{key}_top1"])
    assert m["ood_corruption_top1"] == pytest.approx(np.mean(list(m["ood_detail"].values())))


def test_severity_zero_scores_exactly_the_clean_set() -> None:
    enc, train, val_raw, transform = _setup(False)
    m = ood.ood_metrics(enc, train, val_raw, transform, 3, limit=30, severities=(0,), epochs=5)
    assert m["ood_clean_top1"] > 0.5  # the probe learned the block position
    assert set(m["ood_detail"].values()) == {m["ood_clean_top1"]}
    assert m["ood_corruption_top1"] == m["ood_clean_top1"] and m["ood_corruption_drop"] == 0.0
    for family in ood.FAMILIES:
        assert m[f"ood_{family}_top1"] == m["ood_clean_top1"], family
