"""Distribution-shifted test sets, deterministic and offline (ncl-extras-spec §5.3).

Images are uint8 arrays N x H x W x C (C = 1 or 3). Three kinds of shift, as in the NCL paper's
out-of-distribution table (Corruption / Sketch / Stylized):

* **corruptions** (:data:`CORRUPTIONS`): the 15 core ImageNet-C types except frost (it needs
  photographs), severities 1-5 with the CIFAR-10-C parameter table (spec §5.2), which suits
  28-32 px images, or the ImageNet-C table (``table="imagenet"``, for 224 px images); on Fashion-MNIST this is "Fashion-MNIST-C (ours)". Our own implementations
  from the published parameters; where ours is simpler than Hendrycks' code it says so
  (glass blur: one vectorised random local shift per iteration instead of sequential swaps;
  snow and fog: our own flake and multi-scale-noise layers; elastic: a smooth random
  displacement field without the affine part).
* **sketch**: a Sobel edge map (gradient magnitude above the image's 80th percentile: white
  strokes on black), a simpler named stand-in for Canny / ImageNet-Sketch.
* **stylized-like** (an analogue of Stylized-ImageNet, ours): the shape is kept and the texture
  taken from an image of another class: grayscale images keep their silhouette (pixels > 20)
  filled with the other image's intensities; RGB images get the other image's per-channel pixel
  mean and standard deviation (a pixel-space AdaIN).

Every set is a function of (images, severity, seed); severity 0 returns the images unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset

from bayesncl.data.edges import sobel_edges

#: a corruption: (images, the severity's parameter from a table, random stream) -> images
Shift = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]

#: CIFAR-10-C parameters, severity 1..5 (Hendrycks & Dietterich's make_cifar_c, spec §5.2)
CIFAR_C: dict[str, list] = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "zoom_blur": [(1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)],
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "jpeg_compression": [80, 65, 58, 50, 40],
    # ours (see the module docstring): snow (flake density, blend), elastic (max shift / 28 px)
    "snow": [(0.01, 0.9), (0.015, 0.85), (0.02, 0.8), (0.03, 0.75), (0.04, 0.7)],
    "elastic_transform": [0.5, 1.0, 1.5, 2.0, 2.5],
}
#: ImageNet-C parameters, severity 1..5 (Hendrycks & Dietterich's imagenet_c corruptions.py),
#: for 224 px images; snow's and elastic's tuples are the published ones and are mapped onto
#: our implementations (:func:`snow`, :func:`elastic_transform`)
IMAGENET_C: dict[str, list] = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
    "shot_noise": [60, 25, 12, 5, 3],
    "impulse_noise": [0.03, 0.06, 0.09, 0.17, 0.27],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "zoom_blur": [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)],
    "fog": [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    "jpeg_compression": [25, 18, 15, 10, 7],
    # (loc, scale, zoom, threshold, motion radius, motion sigma, blend) of the snow layer
    "snow": [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ],
    # (alpha, sigma, affine) in pixels of 244 (sic: the published code's constant)
    "elastic_transform": [
        (244 * 2, 244 * 0.7, 244 * 0.1),
        (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02),
        (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02),
    ],
}
#: the parameter tables by name (``shifted(..., table=...)``)
TABLES: dict[str, dict[str, list]] = {"cifar": CIFAR_C, "imagenet": IMAGENET_C}
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}


def _f(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _per_image_filter(x: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    out = np.empty_like(x)
    for i, k in enumerate(kernels):
        out[i] = ndimage.convolve(x[i], k[:, :, None], mode="reflect")
    return out


def gaussian_noise(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    return _u8(_f(x) + rng.normal(0, c, x.shape))


def shot_noise(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    return _u8(rng.poisson(_f(x) * c) / c)


def impulse_noise(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    y = _f(x)
    u = rng.random(x.shape)
    y[u < c / 2] = 0.0
    y[(u >= c / 2) & (u < c)] = 1.0
    return _u8(y)


def _disk(radius: float, alias_sigma: float) -> np.ndarray:
    half = max(8, int(np.ceil(radius)))  # 17 x 17 as published, wider for larger radii
    r = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(r, r)
    k = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    k = ndimage.gaussian_filter(k / k.sum(), alias_sigma)
    return k / k.sum()


def defocus_blur(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    radius, alias = c
    k = _disk(radius, alias)
    return _u8(ndimage.convolve(_f(x), k[None, :, :, None], mode="reflect"))


def glass_blur(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    sigma, shift, iterations = c
    y = ndimage.gaussian_filter(_f(x), (0, sigma, sigma, 0))
    n, h, w, _ = y.shape
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    idx = np.arange(n)[:, None, None]
    for _ in range(iterations):  # each pixel takes a random neighbour within `shift` px
        dy = rng.integers(-shift, shift + 1, (n, h, w))
        dx = rng.integers(-shift, shift + 1, (n, h, w))
        y = y[idx, np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]
    return _u8(ndimage.gaussian_filter(y, (0, sigma, sigma, 0)))


def _line_kernel(radius: int, sigma: float, angle: float) -> np.ndarray:
    size = 2 * radius + 1
    k = np.zeros((size, size))
    t = np.arange(radius + 1)  # one-sided, as ImageMagick's motion blur
    weights = np.exp(-(t**2) / (2 * sigma**2))
    ys = np.rint(radius - t * np.sin(angle)).astype(int)
    xs = np.rint(radius + t * np.cos(angle)).astype(int)
    np.add.at(k, (ys, xs), weights)
    return k / k.sum()


def motion_blur(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = c
    angles = np.deg2rad(rng.uniform(-45, 45, len(x)))
    return _u8(_per_image_filter(_f(x), [_line_kernel(radius, sigma, a) for a in angles]))


def _zoom_centre(x: np.ndarray, z: float) -> np.ndarray:
    h = x.shape[1]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    crop = x[:, top : top + ch, top : top + ch]
    zoomed = ndimage.zoom(crop, (1, z, z, 1), order=1)
    t = (zoomed.shape[1] - h) // 2
    return zoomed[:, t : t + h, t : t + h]


def zoom_blur(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    y = _f(x)
    stop, step = c  # zoom factors 1 + step, 1 + 2 step, ... below stop (1 itself is the image)
    factors = np.arange(1, stop, step)[1:]
    out = y.copy()
    for z in factors:
        out += _zoom_centre(y, z)
    return _u8(out / (len(factors) + 1))


def _plasma(shape: tuple[int, ...], decay: float, rng: np.random.Generator) -> np.ndarray:
    """Multi-scale noise in [0, 1]: octaves of upsampled noise with amplitude 1 / decay^k."""
    n, h, w = shape
    out = np.zeros(shape)
    cell, amp = max(h, w), 1.0
    while cell >= 1:
        m = max(h // cell, 1) + 1
        noise = rng.random((n, m, m))
        out += amp * ndimage.zoom(noise, (1, h / m, w / m), order=1)[:, :h, :w]
        cell //= 2
        amp /= decay
    out -= out.min(axis=(1, 2), keepdims=True)
    return out / np.maximum(out.max(axis=(1, 2), keepdims=True), 1e-12)


def fog(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    strength, decay = c
    y = _f(x)
    peak = y.max(axis=(1, 2, 3), keepdims=True)
    y = y + strength * _plasma(y.shape[:3], decay, rng)[..., None]
    return _u8(y * peak / (peak + strength))


def snow_settings(c: Any, size: int) -> tuple[float, float, int, float, int]:
    """(flake density, blend, streak radius, streak sigma, flake size) of a snow parameter for
    ``size`` px images: ours ``(density, blend)`` (3 px streaks, 1 px flakes), or ImageNet-C's
    7-tuple mapped: density = P(N(loc, scale) > threshold) / zoom^2 (the published layer is
    thresholded Gaussian noise zoomed by ``zoom``), flakes ``zoom`` px and streaks of the
    published motion radius and sigma, all scaled by size / 224."""
    if len(c) == 2:
        return float(c[0]), float(c[1]), 3, 1.5, 1
    loc, scale, zoom, threshold, radius, sigma, blend = c
    from scipy.stats import norm

    density = float(norm.sf(threshold, loc=loc, scale=scale)) / zoom**2
    k = size / 224
    return (
        density,
        float(blend),
        max(1, round(radius * k)),
        max(0.5, sigma * k),
        max(1, round(zoom * k)),
    )


def snow(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    density, blend, radius, sigma, flake = snow_settings(c, x.shape[1])
    y = _f(x)
    flakes = (rng.random(y.shape[:3]) < density).astype(np.float64)
    if flake > 1:
        flakes = ndimage.maximum_filter(flakes, size=(1, flake, flake))
    angles = np.deg2rad(rng.uniform(-135, -45, len(y)))
    kernels = [_line_kernel(radius, sigma, a) for a in angles]
    flakes = _per_image_filter(flakes[..., None], kernels)
    flakes = np.clip(flakes * 3, 0, 1)
    gray = y.mean(axis=3, keepdims=True)
    y = blend * y + (1 - blend) * np.maximum(y, gray * 1.5 + 0.5)
    return _u8(y + flakes + np.rot90(flakes, 2, axes=(1, 2)))


def brightness(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    y = _f(x)
    if y.shape[3] == 1:
        return _u8(y + c)
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(y)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _u8(hsv_to_rgb(hsv))


def contrast(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    y = _f(x)
    mean = y.mean(axis=(1, 2, 3), keepdims=True)
    return _u8((y - mean) * c + mean)


def elastic_transform(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement field. ``c`` is ours, the largest shift per 28 px (a field
    smoothed with sigma 3 px and scaled to it), or ImageNet-C's ``(alpha, sigma, affine)``:
    uniform noise smoothed with sigma, times alpha, both scaled by size / 224 (the published
    random affine part is left out)."""
    n, h, w, ch = x.shape
    fields = []
    for _ in range(2):
        if isinstance(c, (tuple, list)):
            alpha, sigma = c[0] * h / 224, c[1] * h / 224
            noise = rng.uniform(-1, 1, (n, h, w))
            fields.append(ndimage.gaussian_filter(noise, (0, sigma, sigma), mode="reflect") * alpha)
            continue
        f = ndimage.gaussian_filter(rng.uniform(-1, 1, (n, h, w)), (0, 3, 3))
        f /= np.maximum(np.abs(f).max(axis=(1, 2), keepdims=True), 1e-12)
        fields.append(f * c * h / 28)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    y = _f(x)
    out = np.empty_like(y)
    for i in range(n):
        coords = [rows + fields[0][i], cols + fields[1][i]]
        for j in range(ch):
            out[i, :, :, j] = ndimage.map_coordinates(
                y[i, :, :, j], coords, order=1, mode="reflect"
            )
    return _u8(out)


def pixelate(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[1:3]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    out = np.empty_like(x)
    for i, img in enumerate(x):
        im = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        im = im.resize(small, Image.BOX).resize((w, h), Image.BOX)
        out[i] = np.asarray(im).reshape(h, w, -1)
    return out


def jpeg_compression(x: np.ndarray, c: Any, rng: np.random.Generator) -> np.ndarray:
    quality = c
    out = np.empty_like(x)
    for i, img in enumerate(x):
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(
            buf, "JPEG", quality=quality
        )
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).reshape(img.shape)
    return out


CORRUPTIONS: dict[str, Shift] = {
    f.__name__: f
    for f in (
        gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur,
        zoom_blur, snow, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression,
    )
}  # fmt: skip


def _gray(x: np.ndarray) -> np.ndarray:
    return _f(x).mean(axis=3)


def sketch(x: np.ndarray) -> np.ndarray:
    """Sobel edge map: gradient magnitude above each image's 80th percentile, white on black.
    Each image on its own (``bayesncl.data.edges.sobel_edges``; scipy's n-d ``sobel`` would
    also smooth across neighbouring images of the batch)."""
    mag = sobel_edges(_gray(x))[:, 0].double().numpy()
    edges = mag > np.percentile(mag, 80, axis=(1, 2), keepdims=True)
    edges &= mag > 1e-6 / (4 * np.sqrt(2))  # not flat (the magnitude is scaled to [0, 1])
    return np.repeat(edges[..., None], x.shape[3], axis=3).astype(np.uint8) * 255


def stylized(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shape kept, texture from a random image of another class (see the module docstring)."""
    n = len(x)
    other = np.empty(n, dtype=int)
    for i in range(n):
        candidates = np.flatnonzero(labels != labels[i])
        other[i] = rng.choice(candidates) if len(candidates) else rng.integers(n)
    y, o = _f(x), _f(x[other])
    if x.shape[3] == 1:
        mask = x[..., 0] > 20
        omask = x[other][..., 0] > 20
        fill = (o[..., 0] * omask).sum((1, 2)) / np.maximum(omask.sum((1, 2)), 1)
        tex = np.where(omask, o[..., 0], fill[:, None, None])
        return _u8(np.where(mask, tex, 0.0)[..., None])
    mu, sd = y.mean((1, 2), keepdims=True), y.std((1, 2), keepdims=True) + 1e-6
    omu, osd = o.mean((1, 2), keepdims=True), o.std((1, 2), keepdims=True)
    return _u8((y - mu) / sd * osd + omu)


SHIFT_KINDS: tuple[str, ...] = (*CORRUPTIONS, "sketch", "stylized")


def check_table(table: str) -> dict[str, list]:
    """The parameter table named ``table`` (``cifar`` or ``imagenet``)."""
    if table not in TABLES:
        raise ValueError(f"corruption table {table!r}; use one of: {', '.join(TABLES)}")
    return TABLES[table]


def shifted(
    images: np.ndarray,
    labels: np.ndarray,
    kind: str,
    severity: int,
    seed: int = 0,
    table: str = "cifar",
) -> np.ndarray:
    """The ``kind`` shift of ``images`` (N x H x W x C uint8) at ``severity`` (1..5 for
    corruptions, with the parameters of ``table``: ``cifar`` (CIFAR-10-C, for 28-32 px images)
    or ``imagenet`` (ImageNet-C, for 224 px ones); sketch and stylized have one level, any
    severity >= 1); severity 0 returns the images unchanged. One fixed random stream per
    (kind, severity, seed)."""
    params = check_table(table)
    if kind not in SHIFT_KINDS:
        raise ValueError(f"shift {kind!r}; use one of: {', '.join(SHIFT_KINDS)}")
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 N x H x W x C, got {images.dtype} {images.shape}")
    if not 0 <= severity <= 5:
        raise ValueError(f"severity={severity}: use 0 (identity) to 5")
    if severity == 0:
        return images
    rng = np.random.default_rng([seed, SHIFT_KINDS.index(kind), severity])
    if kind == "sketch":
        return sketch(images)
    if kind == "stylized":
        return stylized(images, labels, rng)
    return CORRUPTIONS[kind](images, params[kind][severity - 1], rng)


def write_shift_sets(
    images: np.ndarray,
    labels: np.ndarray,
    out_dir: str | Path,
    severities: tuple[int, ...] = (1, 2, 3, 4, 5),
    seed: int = 0,
    table: str = "cifar",
) -> list[Path]:
    """Write every shifted set once, as ``OUT_DIR/<kind>-<severity>.npz`` (``images``,
    ``labels``; sketch and stylized at severity 1; ``<kind>-<severity>-imagenet.npz`` with the
    ImageNet-C table); a file already there is kept (the sets are deterministic, so it is the
    same). Returns the files."""
    check_table(table)
    tag = "" if table == "cifar" else f"-{table}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for kind in SHIFT_KINDS:
        for s in severities if kind in CORRUPTIONS else (1,):
            tag_here = tag if kind in CORRUPTIONS else ""
            path = out / f"{kind}-{s}{tag_here}.npz"
            if not path.is_file():
                tmp = path.with_suffix(".tmp.npz")
                np.savez_compressed(
                    tmp, images=shifted(images, labels, kind, s, seed, table), labels=labels
                )
                tmp.replace(path)
            files.append(path)
    return files


class ShiftedSet(Dataset):
    """A written shifted set (:func:`write_shift_sets`) as a dataset of the clean split's kind:
    (1 x H x W uint8 tensor, label) for grayscale images, (PIL image, label) for RGB ones, so the
    dataset's evaluation transform applies unchanged."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as data:
            self.images, self.labels = data["images"], data["labels"]
        self.path = Path(path)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        img = self.images[i]
        if img.shape[2] == 3:
            return Image.fromarray(img), int(self.labels[i])
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(self.labels[i])
