"""The scenes dataset: label frequencies as asked, determinism, compositing, registry names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from bayesncl.data import get_dataset_spec
from bayesncl.data.scenes import (
    TEXTURES,
    TOPS,
    ScenesConfig,
    composite,
    draw_backgrounds,
    make_scenes,
    nuisance_labels,
    parse_scenes_name,
    render_textures,
)


def _garments(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 8:20, 10:18] = rng.integers(100, 255, (n, 12, 8))  # a bright garment
    return images, rng.integers(0, 10, n)


@pytest.mark.parametrize("pi", [0.2, 0.5, 0.8])
def test_class_independent_frequency_is_pi_and_independent_of_the_class(pi: float) -> None:
    _, labels = _garments(20000)
    kinds = draw_backgrounds(labels, ScenesConfig(pi=pi), np.random.default_rng(1))
    shared = kinds == TEXTURES.index("stripes")
    assert abs(shared.mean() - pi) < 0.015
    for c in range(10):  # the background says nothing about the class
        assert abs(shared[labels == c].mean() - pi) < 0.04
    others = np.bincount(kinds[~shared], minlength=len(TEXTURES)) / max((~shared).sum(), 1)
    np.testing.assert_allclose(np.delete(others, 1), 0.25, atol=0.03)


def test_group_sharing_only_within_the_group() -> None:
    _, labels = _garments(20000)
    kinds = draw_backgrounds(labels, ScenesConfig(pi=0.8, group=TOPS), np.random.default_rng(1))
    shared = kinds == TEXTURES.index("stripes")
    in_group = np.isin(labels, TOPS)
    assert abs(shared[in_group].mean() - 0.8) < 0.02
    assert shared[~in_group].sum() == 0


def test_same_seed_same_bytes_and_splits_drawn_independently() -> None:
    images, labels = _garments(500)
    a = make_scenes(images, labels, ScenesConfig(seed=3), train=True)
    b = make_scenes(images, labels, ScenesConfig(seed=3), train=True)
    assert torch.equal(a.images, b.images) and torch.equal(a.nuisance, b.nuisance)
    c = make_scenes(images, labels, ScenesConfig(seed=4), train=True)
    assert not torch.equal(a.nuisance, c.nuisance)
    test = make_scenes(images, labels, ScenesConfig(seed=3), train=False)
    assert not torch.equal(a.nuisance, test.nuisance)  # another stream than the training split
    assert a.images.dtype == torch.uint8 and a.images.shape == (500, 1, 28, 28)


def test_composite_keeps_the_garment_and_shows_the_texture_around_it() -> None:
    images, _ = _garments(8)
    backgrounds = render_textures(
        np.full(8, TEXTURES.index("checks")), 28, 0.5, np.random.default_rng(0)
    )
    out = composite(images, backgrounds)
    garment = images >= 64  # alpha = 1: the garment's own pixels
    assert np.array_equal(out[garment], images[garment])
    outside = images == 0
    np.testing.assert_allclose(out[outside], np.rint(backgrounds[outside]), atol=0.5)
    assert backgrounds.max() <= 0.5 * 255 + 1e-9 and len(np.unique(out[outside])) > 2
    black = composite(images, render_textures(np.zeros(8, int), 28, 0.0, np.random.default_rng(0)))
    assert np.array_equal(black, images)  # contrast 0: the original images


def test_names_and_registry() -> None:
    assert parse_scenes_name("scenes-pi35") == ScenesConfig(pi=0.35)
    assert parse_scenes_name("scenes-group-pi50") == ScenesConfig(pi=0.5, group=TOPS)
    assert parse_scenes_name("fashion-mnist") is None
    spec = get_dataset_spec("scenes-pi35")  # a family resolved on demand
    assert spec.name == "scenes-pi35" and spec.num_classes == 10 and spec.in_channels == 1
    assert get_dataset_spec("scenes-group").load.config.group == TOPS
    with pytest.raises(ValueError, match=r"pi=1\.5 must be in"):
        ScenesConfig(pi=1.5)
    with pytest.raises(ValueError, match="use one of: plain"):
        ScenesConfig(shared="sky")


def test_nuisance_labels_follow_subsets() -> None:
    images, labels = _garments(50)
    ds = make_scenes(images, labels, ScenesConfig(), train=True)
    sub = Subset(ds, [4, 2, 7])
    assert torch.equal(nuisance_labels(sub), ds.nuisance[[4, 2, 7]])
    assert nuisance_labels(Subset(torch.utils.data.TensorDataset(torch.zeros(3)), [0])) is None
