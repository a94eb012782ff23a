"""SimCLR views of a whole batch at once, on whatever device the batch is on.

Per-image torchvision transforms cost about 0.5 ms per 28x28 view here, more than the small
ConvNet's own step; the same augmentation applied to a (n, C, H, W) batch with separable
crop-resize matmuls, broadcast colour ops and one grouped convolution costs a few ms per batch
(measured by ``benchmarks/run.py`` and ``benchmarks/peers.py``).

The ops and their parameter distributions are those of the per-image pipeline
(:func:`bayesncl.data.augment.view_transform`, torchvision v2; official order, spec §3):

1. random resized crop: torchvision's box sampler (area fraction U[scale_min, 1], log aspect
   ratio U[log 3/4, log 4/3], ten tries then a centre crop; integer box, uniform position),
   resized by antialiased bicubic interpolation, with the horizontal flip folded into the same
   resize (the flip commutes with every later op);
2. colour jitter with probability p: brightness, contrast, saturation factors U[max(0, 1-s), 1+s],
   hue shift U[-h, h], applied in a random order drawn per image (``torchvision ColorJitter``
   permutes its four ops for every call, and so does solo-learn's official recipe through it);
3. random grayscale (ITU-R 601 weights 0.2989, 0.587, 0.114, as torchvision);
4. Gaussian blur with sigma U[0.1, 2] and a kernel of about 10% of the side, reflect padding;
5. solarize (invert pixels >= 128/255) with ``solarize_prob`` (0 in the symmetric recipes);
6. normalise.

For the same drawn parameters each op equals torchvision's functional op on each image to float
rounding (``tests/data/test_batch_augment_rgb.py``). One difference is deliberate: the
per-image path works on uint8 images and rounds after every op; this one stays in float.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bayesncl.data.augment import AugmentConfig

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
_SOLARIZE_THRESHOLD = 128 / 255  # PIL ImageOps.solarize default, on [0, 1] images
_CROP_TRIES = 10  # torchvision RandomResizedCrop.get_params
_RATIO = (3 / 4, 4 / 3)
#: colour-jitter op ids, in ColorJitter's numbering (its random permutation indexes these)
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _gray(x: Tensor) -> Tensor:
    """(n, 1, H, W) luma of an RGB batch (the batch itself when it has one channel)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (r * _GRAY[0] + g * _GRAY[1] + b * _GRAY[2]).unsqueeze(1)


def _col(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """factor * x + (1 - factor) * other, clipped to [0, 1] (torchvision ``_blend``)."""
    f = _col(factor)
    return (f * x + (1 - f) * other).clamp(0, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """Per-image ``adjust_brightness``: x * factor, clipped."""
    return (x * _col(factor)).clamp(0, 1)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Per-image ``adjust_contrast``: blend with the mean luma of each image."""
    return _blend(x, _gray(x).mean((1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Per-image ``adjust_saturation``: blend with the luma image (no-op on one channel)."""
    return x if x.shape[1] == 1 else _blend(x, _gray(x), factor)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Per-image ``adjust_hue``: rotate the HSV hue by ``shift`` (in turns, |shift| <= 0.5).

    Value (max) and chroma (max - min) are unchanged by a hue rotation, so RGB -> HSV -> RGB
    reduces to: hue h from the channel holding the max (ties: red, then green, as PIL and
    torchvision), h' = h + shift, and channel c = max - chroma * clip(min(k, 4 - k), 0, 1)
    with k = (n_c + 6 h') mod 6, n = 5, 3, 1 for r, g, b (the closed form of HSV -> RGB).
    """
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    minc, maxc = torch.aminmax(x, dim=1)
    chroma = maxc - minc
    inv = 1.0 / torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    # 6 h in [-1, 5); the "mod 6" below makes the offset irrelevant; grey pixels (chroma 0)
    # get any hue, as their ramp term is multiplied by chroma = 0
    h6 = torch.where(
        maxc == r,
        (g - b) * inv,
        torch.where(maxc == g, (b - r) * inv + 2.0, (r - g) * inv + 4.0),
    )
    h6 = h6.add_((6.0 * shift).view(-1, 1, 1)).unsqueeze(1)
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = (h6 + n).remainder_(6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return ramp.mul_(chroma.unsqueeze(1)).neg_().add_(maxc.unsqueeze(1)).clamp_(0, 1)


def solarize(x: Tensor, apply: Tensor, threshold: float = _SOLARIZE_THRESHOLD) -> Tensor:
    """Invert the pixels >= threshold of the images where ``apply`` (torchvision ``solarize``)."""
    return torch.where(_col(apply) & (x >= threshold), 1.0 - x, x)


_JITTER_OPS = {
    BRIGHTNESS: ("brightness", adjust_brightness),
    CONTRAST: ("contrast", adjust_contrast),
    SATURATION: ("saturation", adjust_saturation),
    HUE: ("hue", adjust_hue),
}


def _cubic(x: Tensor, a: float = -0.5) -> Tensor:
    """Keys' cubic kernel with a = -0.5, the one PyTorch's antialiased bicubic resize uses."""
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


class BatchAugment:
    """Callable ``(images, generator) -> views``; images uint8 or float in [0, 1], (n, C, H, W).

    ``solarize_prob`` defaults to ``cfg.solarize_prob`` when the config has that field, else 0.
    """

    def __init__(
        self,
        cfg: AugmentConfig,
        size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        solarize_prob: float | None = None,
    ) -> None:
        if cfg.hue is not None and not 0 <= cfg.hue <= 0.5:
            raise ValueError(f"data.augment.hue={cfg.hue}: the hue shift must be in [0, 0.5]")
        self.cfg, self.size = cfg, size
        if solarize_prob is None:
            solarize_prob = getattr(cfg, "solarize_prob", None) or 0.0
        self.solarize_prob = float(solarize_prob)
        self.mean, self.std = (
            torch.tensor(mean).view(1, -1, 1, 1),
            torch.tensor(std).view(1, -1, 1, 1),
        )
        self.kernel = max(3, (size // 10) | 1)

    # ---------------------------------------------------------------- parameters

    def jitter_ops(self, channels: int) -> list[int]:
        """The jitter ops that change an image with ``channels`` channels (strength > 0)."""
        c = self.cfg
        strength = {
            BRIGHTNESS: c.brightness,
            CONTRAST: c.contrast,
            SATURATION: c.saturation if channels == 3 else 0,
            HUE: c.hue if channels == 3 else 0,
        }
        return [op for op, s in strength.items() if s]

    def sample_crop(
        self, n: int, height: int, width: int, g: torch.Generator, device: torch.device
    ) -> dict[str, Tensor]:
        """torchvision ``RandomResizedCrop.get_params`` for n images at once: ten candidate
        boxes per image, the first that fits wins; none fits -> the centre crop at the nearest
        allowed aspect ratio. Returns integer-valued float ``top, left, height, width``."""
        smin = self.cfg.crop_scale_min or 0.08
        area = float(height * width)
        target = area * _uniform(n * _CROP_TRIES, smin, 1.0, g, device).view(n, _CROP_TRIES)
        log_lo, log_hi = math.log(_RATIO[0]), math.log(_RATIO[1])
        ratio = _uniform(n * _CROP_TRIES, log_lo, log_hi, g, device).view(n, _CROP_TRIES).exp()
        w = (target * ratio).sqrt().round()
        h = (target / ratio).sqrt().round()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.to(torch.uint8).argmax(1, keepdim=True)
        w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], fits.any(1)
        in_ratio = width / height
        if in_ratio < _RATIO[0]:
            fw, fh = width, round(width / _RATIO[0])
        elif in_ratio > _RATIO[1]:
            fw, fh = round(height * _RATIO[1]), height
        else:
            fw, fh = width, height
        w = torch.where(found, w, torch.full_like(w, fw))
        h = torch.where(found, h, torch.full_like(h, fh))
        u = torch.rand(2, n, generator=g, device=device)
        top_fb, left_fb = (height - fh) // 2, (width - fw) // 2
        top = torch.where(found, (u[0] * (height - h + 1)).floor().minimum(height - h), top_fb)
        left = torch.where(found, (u[1] * (width - w + 1)).floor().minimum(width - w), left_fb)
        return {"top": top, "left": left, "height": h, "width": w}

    def sample(
        self,
        n: int,
        channels: int,
        g: torch.Generator,
        device: torch.device,
        height: int | None = None,
        width: int | None = None,
    ) -> dict[str, Tensor]:
        """The random parameters of one view of n images (input side ``height`` x ``width``,
        default ``size``), one row per image, in the official op order."""
        c = self.cfg
        p = self.sample_crop(n, height or self.size, width or height or self.size, g, device)
        p["flip"] = torch.rand(n, generator=g, device=device) < (c.flip_prob or 0.0)
        p["jitter"] = torch.rand(n, generator=g, device=device) < (c.jitter_prob or 0.0)
        p["order"] = torch.rand(n, 4, generator=g, device=device).argsort(1)  # randperm(4) each
        for name in ("brightness", "contrast", "saturation"):
            s = getattr(c, name) or 0.0
            p[name] = _uniform(n, max(0.0, 1 - s), 1 + s, g, device)
        p["hue"] = _uniform(n, -(c.hue or 0.0), c.hue or 0.0, g, device)
        if channels == 3 and (c.grayscale_prob or 0.0) > 0:
            p["gray"] = torch.rand(n, generator=g, device=device) < c.grayscale_prob
        if (c.blur_prob or 0.0) > 0:
            p["blur"] = torch.rand(n, generator=g, device=device) < c.blur_prob
            p["sigma"] = _uniform(n, 0.1, 2.0, g, device)
        if self.solarize_prob > 0:
            p["solarize"] = torch.rand(n, generator=g, device=device) < self.solarize_prob
        return p

    # ---------------------------------------------------------------- ops

    def _interpolation(self, start: Tensor, length: Tensor, full: int) -> Tensor:
        """(n, size, full) weights of an antialiased bicubic resize of the pixels
        [start, start + length) of a side of ``full`` pixels to ``size`` pixels.

        PyTorch's ``interpolate(mode="bicubic", antialias=True)`` (what torchvision's resize
        calls): output i centred at c_i = scale (i + 1/2) in crop pixels, scale = length / size;
        input pixel t weighs cubic((t + 1/2 - c_i) / max(scale, 1)), taps outside the crop are
        dropped and each row is renormalised to sum 1. Only the taps that can be nonzero
        (|t + 1/2 - c_i| < 2 max(scale, 1)) are evaluated, then scattered into the dense matrix.
        """
        s, dev, dt = self.size, start.device, start.dtype
        scale = (length / s)[:, None, None]  # (n, 1, 1)
        stretch = scale.clamp(min=1.0)
        taps = math.ceil(4 * max(full / s, 1.0)) + 2
        centre = scale * (torch.arange(s, device=dev, dtype=dt) + 0.5)[None, :, None]
        first = (centre - 2 * stretch).floor()  # (n, size, 1), crop coordinates
        t = first + torch.arange(taps, device=dev, dtype=dt)[None, None, :]  # (n, size, taps)
        weights = _cubic((t + 0.5 - centre) / stretch)
        inside = (t >= 0) & (t < length[:, None, None])
        weights = torch.where(inside, weights, torch.zeros_like(weights))
        weights = weights / weights.sum(2, keepdim=True)
        index = (t + start[:, None, None]).clamp(0, full - 1).long()
        dense = torch.zeros(start.shape[0], s, full, device=dev, dtype=dt)
        return dense.scatter_add_(2, index, weights)

    def crop_and_flip(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """Random resized crop + horizontal flip, to ``size`` x ``size``, clipped to [0, 1].

        Equal to ``resized_crop(img, top, left, height, width, size, BICUBIC, antialias=True)``
        then ``horizontal_flip`` where drawn, per image, but computed separably as
        out = R_y X R_x^T with one (size x H) and one (size x W) interpolation matrix per image:
        two small batched matmuls, the same cost for any kernel (the matrices are dense). The
        flip reverses the rows of R_x. Bicubic overshoot is clipped, as the uint8 path saturates.
        """
        hh, ww = x.shape[-2:]
        r_y = self._interpolation(p["top"], p["height"], hh).to(x.dtype)  # (n, size, H)
        r_x = self._interpolation(p["left"], p["width"], ww).to(x.dtype)  # (n, size, W)
        r_x = torch.where(p["flip"][:, None, None], r_x.flip(1), r_x)
        return (r_y.unsqueeze(1) @ x @ r_x.unsqueeze(1).transpose(-1, -2)).clamp(0, 1)

    def jitter(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """Colour jitter on the images drawn for it, each image's four ops in its own drawn
        order: at stage k the images whose k-th op is o get op o (index_select/index_copy, so
        each op runs once per image, as in torchvision)."""
        ops = self.jitter_ops(x.shape[1])
        if not ops:
            return x
        apply = p["jitter"]
        x = x.clone()  # updated in place below
        for stage in range(4):
            for op in ops:
                idx = (apply & (p["order"][:, stage] == op)).nonzero().squeeze(1)
                if idx.numel() == 0:
                    continue
                name, fn = _JITTER_OPS[op]
                x.index_copy_(0, idx, fn(x.index_select(0, idx), p[name].index_select(0, idx)))
        return x

    def grayscale(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        if "gray" not in p or x.shape[1] == 1:
            return x
        return torch.where(_col(p["gray"]), _gray(x).expand_as(x), x)

    def blur(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """Gaussian blur (torchvision ``gaussian_blur``: kernel exp(-t^2 / 2 sigma^2) on
        t = -r..r, normalised; reflect padding), as one grouped separable convolution with a
        delta kernel for the images not drawn for it."""
        if "blur" not in p:
            return x
        n, ch, hh, ww = x.shape
        r = self.kernel // 2
        offsets = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (offsets[None, :] / p["sigma"][:, None].to(x.dtype)) ** 2)
        k = k / k.sum(1, keepdim=True)
        delta = (offsets == 0).to(x.dtype).expand_as(k)
        k = torch.where(p["blur"][:, None], k, delta).repeat_interleave(ch, 0)  # (n*ch, ksize)
        y = F.pad(x.reshape(1, n * ch, hh, ww), (r, r, r, r), mode="reflect")
        y = F.conv2d(y, k.view(n * ch, 1, 1, -1), groups=n * ch)
        y = F.conv2d(y, k.view(n * ch, 1, -1, 1), groups=n * ch)
        return y.view(n, ch, hh, ww)

    def apply(self, images: Tensor, p: dict[str, Tensor]) -> Tensor:
        """The view of ``images`` with parameters ``p`` (one row of every parameter per image)."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = self.crop_and_flip(x, p)
        x = self.jitter(x, p)
        x = self.grayscale(x, p)
        x = self.blur(x, p)
        if "solarize" in p:
            x = solarize(x, p["solarize"])
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, images: Tensor, g: torch.Generator) -> Tensor:
        """One view of the batch."""
        n, ch, hh, ww = images.shape
        return self.apply(images, self.sample(n, ch, g, images.device, hh, ww))

    def views(self, images: Tensor, g: torch.Generator, num_views: int) -> list[Tensor]:
        """``num_views`` views, equal to ``num_views`` calls in a row with the same generator,
        computed as one batch of num_views x n images (fewer, larger ops: 12.0 -> 8.6 ms for
        two views of 256 28x28 images here)."""
        n, ch, hh, ww = images.shape
        params = [self.sample(n, ch, g, images.device, hh, ww) for _ in range(num_views)]
        joined = {k: torch.cat([p[k] for p in params]) for k in params[0]}
        shape = (num_views,) + (1,) * (images.dim() - 1)
        return list(self.apply(images.repeat(shape), joined).chunk(num_views))
