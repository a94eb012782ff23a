"""Batched RGB augmentation (hue included) against torchvision's per-image ops.

Two kinds of test: for the same drawn parameters each op equals torchvision's functional op on
each image (float32, atol 1e-5); and the drawn parameters follow the official distributions
(spec §3: crop scale 0.08-1 and ratio 3/4-4/3 by torchvision's sampler, jitter p 0.8 with
0.8/0.8/0.8/0.2 in a random order, grayscale p 0.2, blur p 0.5 with sigma 0.1-2, flip p 0.5).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT
from bayesncl.data.batch_augment import (
    BatchAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    solarize,
)

ATOL = 1e-5


def _aug(channels: int, size: int, **kw) -> BatchAugment:
    cfg = SIMCLR_AUGMENT if channels == 3 else GRAYSCALE_AUGMENT
    return BatchAugment(cfg, size, (0.5,) * channels, (0.25,) * channels, **kw)


def _reference_view(aug: BatchAugment, x: torch.Tensor, p: dict, i: int) -> torch.Tensor:
    """Image i through torchvision's functional ops, in the official order, with p's draws."""
    y = TF.resized_crop(
        x[i],
        int(p["top"][i]),
        int(p["left"][i]),
        int(p["height"][i]),
        int(p["width"][i]),
        [aug.size, aug.size],
        InterpolationMode.BICUBIC,
        antialias=True,
    ).clamp(0, 1)
    if p["flip"][i]:
        y = TF.horizontal_flip(y)
    if p["jitter"][i]:
        fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
        names = ["brightness", "contrast", "saturation", "hue"]
        for op in p["order"][i].tolist():
            if op in aug.jitter_ops(x.shape[1]):
                y = fns[op](y, float(p[names[op]][i]))
    if "gray" in p and p["gray"][i]:
        y = TF.rgb_to_grayscale(y, num_output_channels=3)
    if p["blur"][i]:
        k = aug.kernel
        y = TF.gaussian_blur(y, [k, k], [float(p["sigma"][i])] * 2)
    if "solarize" in p and p["solarize"][i]:
        y = TF.solarize(y, 128 / 255)
    return TF.normalize(y, aug.mean.flatten().tolist(), aug.std.flatten().tolist())


@pytest.mark.parametrize(
    ("channels", "side", "size"), [(3, 32, 32), (1, 28, 28), (3, 40, 16), (1, 20, 24)]
)
def test_crop_and_flip_equal_torchvision_resized_crop(channels, side, size):
    aug = _aug(channels, size)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, channels, side, side, generator=g)
    p = aug.sample(48, channels, g, x.device, side, side)
    assert p["flip"].any() and not p["flip"].all()
    assert (p["height"] < side).any()  # real crops, not only the full image
    want = []
    for i in range(48):
        y = TF.resized_crop(
            x[i],
            int(p["top"][i]),
            int(p["left"][i]),
            int(p["height"][i]),
            int(p["width"][i]),
            [size, size],
            InterpolationMode.BICUBIC,
            antialias=True,
        )
        want.append((TF.horizontal_flip(y) if p["flip"][i] else y).clamp(0, 1))
    torch.testing.assert_close(aug.crop_and_flip(x, p), torch.stack(want), rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    ("ours", "theirs", "lo", "hi"),
    [
        (adjust_brightness, TF.adjust_brightness, 0.2, 1.8),
        (adjust_contrast, TF.adjust_contrast, 0.2, 1.8),
        (adjust_saturation, TF.adjust_saturation, 0.2, 1.8),
        (adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
)
@pytest.mark.parametrize("quantised", [False, True])
def test_each_jitter_op_equals_torchvision_per_image(ours, theirs, lo, hi, quantised):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(32, 3, 8, 8, generator=g)
    if quantised:  # few levels: many ties between channels (hue's max-channel rule)
        x = (x * 3).round() / 3
    factor = lo + (hi - lo) * torch.rand(32, generator=g)
    want = torch.stack([theirs(x[i], float(factor[i])) for i in range(32)])
    torch.testing.assert_close(ours(x, factor), want, rtol=0, atol=ATOL)
    # one channel: contrast uses the image mean, saturation and hue do nothing (as torchvision)
    want1 = torch.stack([theirs(x[i, :1], float(factor[i])) for i in range(32)])
    torch.testing.assert_close(ours(x[:, :1], factor), want1, rtol=0, atol=ATOL)


def test_solarize_equals_torchvision():
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    apply = torch.arange(16) % 2 == 0
    want = torch.stack([TF.solarize(x[i], 128 / 255) if apply[i] else x[i] for i in range(16)])
    assert torch.equal(solarize(x, apply), want)


@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 28)])
def test_whole_view_equals_torchvision_composition(channels, size):
    """Every op at once (crop, flip, jitter in each image's order, grayscale, blur, solarize,
    normalise) equals the per-image torchvision composition with the same draws."""
    aug = _aug(channels, size, solarize_prob=0.3)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (40, channels, size, size), generator=g, dtype=torch.uint8)
    p = aug.sample(40, channels, g, x.device, size, size)
    assert p["jitter"].any() and p["blur"].any() and p["solarize"].any()
    got = aug.apply(x, p)
    xf = x.float() / 255
    want = torch.stack([_reference_view(aug, xf, p, i) for i in range(40)])
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL / 0.25)  # /std: normalised units


def _binomial_ok(flags: torch.Tensor, prob: float) -> bool:
    n = flags.numel()
    return abs(flags.float().mean().item() - prob) <= 4.5 * math.sqrt(prob * (1 - prob) / n)


def _uniform_ok(v: torch.Tensor, lo: float, hi: float) -> bool:
    """All draws in [lo, hi], mean within 4.5 standard errors of the midpoint, and the range
    covered to 1% at both ends."""
    sd = (hi - lo) / math.sqrt(12)
    mean_ok = abs(v.mean().item() - (lo + hi) / 2) <= 4.5 * sd / math.sqrt(v.numel())
    span = hi - lo
    return (
        mean_ok
        and v.min() >= lo
        and v.max() <= hi
        and v.min() <= lo + 0.01 * span
        and v.max() >= hi - 0.01 * span
    )


def test_parameter_distributions_match_the_official_settings():
    n = 20000
    aug = _aug(3, 32)
    p = aug.sample(n, 3, torch.Generator().manual_seed(4), torch.device("cpu"), 32, 32)
    assert _binomial_ok(p["flip"], 0.5)
    assert _binomial_ok(p["jitter"], 0.8)
    assert _binomial_ok(p["gray"], 0.2)
    assert _binomial_ok(p["blur"], 0.5)
    assert "solarize" not in p  # p = 0 in the symmetric recipe
    for name in ("brightness", "contrast", "saturation"):
        assert _uniform_ok(p[name], 0.2, 1.8), name
    assert _uniform_ok(p["hue"], -0.2, 0.2)
    assert _uniform_ok(p["sigma"], 0.1, 2.0)
    # jitter order: a permutation of the four ops per image, each op equally often in each slot
    assert torch.equal(p["order"].sort(1).values, torch.arange(4).expand(n, 4))
    for slot in range(4):
        for op in range(4):
            assert _binomial_ok(p["order"][:, slot] == op, 0.25)
    # the grayscale variant: no saturation, hue or grayscale; milder crops
    pg = _aug(1, 28).sample(n, 1, torch.Generator().manual_seed(5), torch.device("cpu"), 28, 28)
    assert _uniform_ok(pg["brightness"], 0.6, 1.4) and "gray" not in pg
    assert _aug(1, 28).jitter_ops(1) == [0, 1]


def _ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max |ECDF_a - ECDF_b| over all values."""
    grid = torch.cat([a, b]).unique()
    cdf_a = torch.searchsorted(a.sort().values, grid, right=True) / a.numel()
    cdf_b = torch.searchsorted(b.sort().values, grid, right=True) / b.numel()
    return (cdf_a - cdf_b).abs().max().item()


@pytest.mark.parametrize(("side", "scale_min"), [(32, 0.08), (28, 0.3)])
def test_crop_boxes_follow_torchvisions_sampler(side, scale_min):
    """Box area fraction and aspect ratio against RandomResizedCrop.get_params (torchvision's
    own draws): two-sample KS statistic below its 0.1% critical value 1.95 sqrt(2 / n); and the
    positions uniform over the free margin."""
    n = 6000
    cfg = replace(SIMCLR_AUGMENT, crop_scale_min=scale_min)
    aug = BatchAugment(cfg, side, (0.5,) * 3, (0.25,) * 3)
    p = aug.sample_crop(n, side, side, torch.Generator().manual_seed(6), torch.device("cpu"))
    torch.manual_seed(7)
    img = torch.zeros(3, side, side)
    boxes = torch.tensor(
        [RandomResizedCrop.get_params(img, [scale_min, 1.0], [3 / 4, 4 / 3]) for _ in range(n)],
        dtype=torch.float32,
    )  # (i, j, h, w)
    critical = 1.95 * math.sqrt(2 / n)
    area = _ks(p["height"] * p["width"], boxes[:, 2] * boxes[:, 3])
    ratio = _ks(p["width"] / p["height"], boxes[:, 3] / boxes[:, 2])
    assert area < critical and ratio < critical, (area, ratio, critical)
    assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= side).all()
    assert (p["left"] >= 0).all() and (p["left"] + p["width"] <= side).all()
    margin = side - p["height"]
    rel = (p["top"] + 0.5) / (margin + 1)  # uniform on (0, 1) for a uniform integer position
    assert abs(rel[margin > 0].mean().item() - 0.5) < 0.02
    # a sampler with the wrong scale range is caught by the same statistic
    wrong = BatchAugment(replace(cfg, crop_scale_min=scale_min + 0.1), side, (0.5,), (0.25,))
    pw = wrong.sample_crop(n, side, side, torch.Generator().manual_seed(6), torch.device("cpu"))
    assert _ks(pw["height"] * pw["width"], boxes[:, 2] * boxes[:, 3]) > critical


def test_hue_is_accepted_and_out_of_range_hue_is_rejected():
    aug = BatchAugment(SIMCLR_AUGMENT, 32, (0.5,) * 3, (0.25,) * 3)
    assert aug.jitter_ops(3) == [0, 1, 2, 3]
    out = aug(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.Generator())
    assert out.shape == (8, 3, 32, 32) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"data\.augment\.hue=0\.7"):
        BatchAugment(replace(SIMCLR_AUGMENT, hue=0.7), 32, (0.5,) * 3, (0.25,) * 3)


def test_views_run_on_the_batch_device_and_dtype_float64_input():
    aug = _aug(3, 16)
    x = torch.rand(6, 3, 16, 16, dtype=torch.float64)
    views = aug.views(x, torch.Generator().manual_seed(0), 2)
    assert len(views) == 2 and all(v.dtype == torch.float32 for v in views)
