"""The pure-torch MMNCL training loop on synthetic pairs (ncl-extras-spec §4.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayesncl.data.paired import PairedTensors, fmnist_caption_pairs
from bayesncl.metrics.crossmodal import cross_modal_retrieval, dimension_agreement
from bayesncl.models.text import Tokenizer
from bayesncl.train.multimodal import encode_pairs, train_two_tower


def linear_pairs(n: int = 128) -> PairedTensors:
    """Modality B is a fixed linear view of A plus noise: pairs are recoverable."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = x @ torch.randn(8, 6, generator=g) + 0.05 * torch.randn(n, 6, generator=g)
    return PairedTensors(x, y)


def test_training_learns_cross_modal_retrieval():
    data = linear_pairs()
    run = train_two_tower(
        data, "ncl", steps=80, batch_size=32, lr=3e-3, width=32, hidden_dim=32, out_dim=16
    )
    losses = [h["clip"] for h in run.history]
    assert len(losses) == 80 and set(run.history[0]) == {"clip"}
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    a, b, labels = encode_pairs(run.model, data)
    assert a.shape == b.shape == (128, 16) and (a >= 0).all() and (b >= 0).all()
    assert (labels == -1).all()
    got = cross_modal_retrieval(a, b, ks=(1, 10))
    assert got["a_to_b/R@10"] > 0.7 and got["b_to_a/R@10"] > 0.7  # chance: 10 / 128
    agreement = dimension_agreement(a, b)
    assert agreement["mean_correlation"] > 0.6


def test_captions_train_with_gates_and_a_tokenizer():
    rng = np.random.default_rng(0)
    images = np.zeros((32, 28, 28), np.uint8)
    labels = np.arange(32) % 4
    for i, y in enumerate(labels):
        h, w = (20, 6) if y % 2 else (6, 20)
        images[i, 2 : 2 + h, 2 : 2 + w] = rng.integers(40, 250)
    data = fmnist_caption_pairs(images, labels)
    tok = Tokenizer.fit(data.pair, max_length=8)
    run = train_two_tower(
        data,
        ("bayesncl", "ncl"),
        steps=3,
        tokenizer=tok,
        batch_size=16,
        width=16,
        hidden_dim=16,
        out_dim=16,
        temperature="learnable",
    )
    assert set(run.history[-1]) == {"clip", "x_kl"}
    a, b, got_labels = encode_pairs(run.model, data, tok, batch_size=10)
    assert a.shape == b.shape == (32, 16) and got_labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match=r"pass tokenizer=Tokenizer\.fit"):
        train_two_tower(data, "ncl", steps=1, batch_size=16)


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="larger than the dataset"):
        train_two_tower(linear_pairs(8), "ncl", steps=1, batch_size=16)
