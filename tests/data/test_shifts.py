"""Distribution-shifted sets: deterministic, identity at severity 0, harsher with severity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bayesncl.data.shifts import CORRUPTIONS, FAMILIES, SHIFT_KINDS, shifted


def _images(rgb: bool = False, n: int = 12, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.zeros((n, size, size, 3 if rgb else 1), np.uint8)
    x[:, 6:22, 8:20] = rng.integers(80, 255, (n, 16, 12, x.shape[3]))  # a bright object
    return x, np.arange(n) % 3


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_same_seed_same_bytes_identity_at_zero_shape_kept(kind: str, rgb: bool) -> None:
    x, y = _images(rgb)
    a, b = shifted(x, y, kind, 3, seed=1), shifted(x, y, kind, 3, seed=1)
    assert np.array_equal(a, b) and a.shape == x.shape and a.dtype == np.uint8
    assert shifted(x, y, kind, 0) is x


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_distance_from_clean_grows_with_severity(kind: str) -> None:
    x, y = _images(n=16)
    d = [np.abs(shifted(x, y, kind, s).astype(float) - x).mean() for s in range(1, 6)]
    assert d[4] > d[0], d
    # glass blur: its published CIFAR-10-C table is not monotone (sigma .4 then .25); pixelate:
    # on these block images the error depends on how the blocks meet the pixel grid
    # (monotone on Fashion-MNIST: 3.2, 3.9, 6.5, 8.4, 12.6 grey levels for 1,000 test images)
    if kind not in ("glass_blur", "pixelate"):
        # on average: a step may dip a little (a fresh random draw per severity; pixel grids)
        assert all(b >= 0.9 * a for a, b in itertools.pairwise(d)), d


def test_families_cover_the_corruptions_and_errors_name_the_valid_values() -> None:
    assert sorted(sum(FAMILIES.values(), ())) == sorted(CORRUPTIONS) and len(CORRUPTIONS) == 14
    x, y = _images()
    with pytest.raises(ValueError, match="use one of: gaussian_noise"):
        shifted(x, y, "frost", 1)
    with pytest.raises(ValueError, match="severity=6"):
        shifted(x, y, "contrast", 6)


def test_sketch_is_edges_and_stylized_keeps_the_silhouette() -> None:
    x, y = _images()
    edges = shifted(x, y, "sketch", 1)
    assert set(np.unique(edges)) <= {0, 255} and edges[:, 0, 0].max() == 0
    style = shifted(x, y, "stylized", 1)
    assert np.array_equal(style > 0, x > 20)  # shape kept, texture from another image


def test_written_sets_load_as_datasets_of_the_clean_kind(tmp_path) -> None:
    from bayesncl.data.shifts import ShiftedSet, write_shift_sets

    x, y = _images(n=6)
    files = write_shift_sets(x, y, tmp_path, severities=(2,))
    assert len(files) == 14 + 2 and all(f.is_file() for f in files)
    ds = ShiftedSet(tmp_path / "fog-2.npz")
    img, label = ds[3]
    assert img.shape == (1, 28, 28) and img.dtype == torch.uint8 and label == y[3]
    assert np.array_equal(ds.images, shifted(x, y, "fog", 2))
    mtime = files[0].stat().st_mtime_ns
    write_shift_sets(x, y, tmp_path, severities=(2,))  # written once
    assert files[0].stat().st_mtime_ns == mtime


def test_a_sketch_depends_on_its_own_image_only():
    """Each image's edge map alone: a blank image beside a square stays blank, and a batch gives
    the sketches of its images one by one (scipy's n-d sobel smoothed across the batch axis and
    drew the square's edges into both blank neighbours)."""
    x = np.zeros((3, 28, 28, 1), np.uint8)
    x[1, 8:20, 8:20] = 255
    batch = shifted(x, np.zeros(3), "sketch", 1)
    assert not batch[0].any() and not batch[2].any() and batch[1].any()
    for i in range(3):
        assert np.array_equal(batch[i], shifted(x[i : i + 1], np.zeros(1), "sketch", 1)[0])
