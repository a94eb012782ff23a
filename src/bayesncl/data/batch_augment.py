"""SimCLR views of a whole batch at once, on whatever device the batch is on.

Per-image torchvision transforms cost about 0.5 ms per 28x28 view here, more than the small
ConvNet's own step; the same augmentation applied to a (n, C, H, W) batch with separable
crop-resize matmuls, broadcast colour ops and one grouped convolution costs a few ms per batch
(measured by ``benchmarks/run.py``). Ops, in the official order: random resized crop (scale,
ratio 3/4..4/3) with the horizontal flip in the same resize -> brightness / contrast / saturation
jitter with probability p -> random grayscale -> Gaussian blur (sigma 0.1..2) -> normalise.
Hue jitter is not supported here (use per-image augmentation for it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bayesncl.data.augment import AugmentConfig

_GRAY = (0.299, 0.587, 0.114)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


class BatchAugment:
    """Callable ``(images, generator) -> views``; images uint8 or float in [0, 1], (n, C, H, W)."""

    def __init__(
        self, cfg: AugmentConfig, size: int, mean: tuple[float, ...], std: tuple[float, ...]
    ) -> None:
        if cfg.hue:
            raise ValueError(
                "hue jitter is not available in batch augmentation; set data.augment.hue=0"
            )
        self.cfg, self.size = cfg, size
        self.mean, self.std = (
            torch.tensor(mean).view(1, -1, 1, 1),
            torch.tensor(std).view(1, -1, 1, 1),
        )
        self.kernel = max(3, (size // 10) | 1)

    def sample(self, n: int, channels: int, g: torch.Generator, device: torch.device) -> dict:
        """The random parameters of one view of n images, drawn in the official op order."""
        c = self.cfg
        p: dict[str, Tensor] = {}
        p["scale"] = _uniform(n, c.crop_scale_min or 0.08, 1.0, g, device)
        p["log_ratio"] = _uniform(n, math.log(3 / 4), math.log(4 / 3), g, device)
        p["cx"] = _uniform(n, -1.0, 1.0, g, device)
        p["cy"] = _uniform(n, -1.0, 1.0, g, device)
        p["flip"] = torch.rand(n, generator=g, device=device) < (c.flip_prob or 0.0)
        p["jitter"] = torch.rand(n, generator=g, device=device) < (c.jitter_prob or 0.0)
        p["brightness"] = _uniform(n, 1 - (c.brightness or 0), 1 + (c.brightness or 0), g, device)
        p["contrast"] = _uniform(n, 1 - (c.contrast or 0), 1 + (c.contrast or 0), g, device)
        p["saturation"] = _uniform(n, 1 - (c.saturation or 0), 1 + (c.saturation or 0), g, device)
        if channels == 3 and (c.grayscale_prob or 0.0) > 0:
            p["gray"] = torch.rand(n, generator=g, device=device) < c.grayscale_prob
        if (c.blur_prob or 0.0) > 0:
            p["blur"] = torch.rand(n, generator=g, device=device) < c.blur_prob
            p["sigma"] = _uniform(n, 0.1, 2.0, g, device)
        return p

    def crop_box(self, p: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Half-width w, half-height h and centre (cx, cy) of each crop, in [-1, 1] image
        coordinates; scale and log-ratio as drawn, the box kept inside the image."""
        ratio = p["log_ratio"].exp()
        w = (p["scale"] * ratio).sqrt().clamp(max=1.0)
        h = (p["scale"] / ratio).sqrt().clamp(max=1.0)
        return w, h, p["cx"] * (1 - w), p["cy"] * (1 - h)

    def crop_and_flip(self, x: Tensor, p: dict) -> Tensor:
        """Random resized crop + horizontal flip, resized to ``size`` bilinearly.

        Equal to ``F.grid_sample(x, affine_grid(box), "bilinear", "reflection",
        align_corners=False)`` (see :meth:`crop_and_flip_grid_sample`), computed separably as
        out = R_y X R_x^T with one (size x H) and one (size x W) interpolation matrix per image:
        two small batched matmuls instead of a per-pixel gather (1.2 against 2.9 ms for 512
        28x28 images here). The box lies inside the image, so reflection padding reduces to
        clipping sample positions to the border pixels.
        """
        hh, ww = x.shape[-2:]
        w, h, cx, cy = self.crop_box(p)
        flip = torch.where(p["flip"], -1.0, 1.0)
        r_x = self._interpolation(cx, w * flip, ww)  # (n, size, W)
        r_y = self._interpolation(cy, h, hh)  # (n, size, H)
        return r_y.unsqueeze(1) @ x @ r_x.unsqueeze(1).transpose(-1, -2)

    def _interpolation(self, centre: Tensor, half: Tensor, length: int) -> Tensor:
        """(n, size, length) bilinear weights: output j samples centre + half * u_j (u_j the
        normalised pixel centres of the output, align_corners=False), clipped to the image."""
        s = self.size
        u = (2 * torch.arange(s, device=centre.device, dtype=centre.dtype) + 1) / s - 1
        coord = centre[:, None] + half[:, None] * u[None, :]  # in [-1, 1]
        pos = (((coord + 1) * length - 1) / 2).clamp(0, length - 1)  # pixel coordinates
        lo = pos.floor()  # pos <= length - 1 already
        frac = pos - lo
        lo = lo.long()
        hi = (lo + 1).clamp(max=length - 1)
        weights = torch.zeros(centre.shape[0], s, length, device=centre.device, dtype=centre.dtype)
        weights.scatter_add_(2, lo.unsqueeze(2), (1 - frac).unsqueeze(2))
        weights.scatter_add_(2, hi.unsqueeze(2), frac.unsqueeze(2))
        return weights

    def crop_and_flip_grid_sample(self, x: Tensor, p: dict) -> Tensor:
        """The same crop as one affine ``grid_sample`` (the reference the separable form is
        tested against)."""
        n = x.shape[0]
        w, h, cx, cy = self.crop_box(p)
        flip = torch.where(p["flip"], -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        grid = F.affine_grid(theta, [n, x.shape[1], self.size, self.size], align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def jitter(self, x: Tensor, p: dict) -> Tensor:
        n = x.shape[0]
        apply = p["jitter"].float().view(n, 1, 1, 1)
        b = p["brightness"].clamp_min(0).view(n, 1, 1, 1)
        k = p["contrast"].clamp_min(0).view(n, 1, 1, 1)
        s = p["saturation"].clamp_min(0).view(n, 1, 1, 1)
        y = (x * b).clamp(0, 1)
        mean = _gray(y).mean((2, 3), keepdim=True)
        y = ((y - mean) * k + mean).clamp(0, 1)
        if x.shape[1] == 3:
            gray = _gray(y)
            y = ((y - gray) * s + gray).clamp(0, 1)
        return apply * y + (1 - apply) * x

    def grayscale(self, x: Tensor, p: dict) -> Tensor:
        if "gray" not in p or x.shape[1] == 1:
            return x
        apply = p["gray"].float().view(-1, 1, 1, 1)
        return apply * _gray(x).expand_as(x) + (1 - apply) * x

    def blur(self, x: Tensor, p: dict) -> Tensor:
        if "blur" not in p:
            return x
        n, ch, hh, ww = x.shape
        r = self.kernel // 2
        offsets = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (offsets[None, :] / p["sigma"][:, None]) ** 2)
        k = k / k.sum(1, keepdim=True)
        delta = (offsets == 0).to(x.dtype).expand_as(k)
        k = torch.where(p["blur"][:, None], k, delta).repeat_interleave(ch, 0)  # (n*ch, ksize)
        y = F.pad(x.reshape(1, n * ch, hh, ww), (r, r, r, r), mode="reflect")
        y = F.conv2d(y, k.view(n * ch, 1, 1, -1), groups=n * ch)
        y = F.conv2d(y, k.view(n * ch, 1, -1, 1), groups=n * ch)
        return y.view(n, ch, hh, ww)

    def apply(self, images: Tensor, p: dict) -> Tensor:
        """The view of ``images`` with parameters ``p`` (one row of every parameter per image)."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = self.crop_and_flip(x, p)
        x = self.jitter(x, p)
        x = self.grayscale(x, p)
        x = self.blur(x, p)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, images: Tensor, g: torch.Generator) -> Tensor:
        """One view of the batch."""
        return self.apply(images, self.sample(images.shape[0], images.shape[1], g, images.device))

    def views(self, images: Tensor, g: torch.Generator, num_views: int) -> list[Tensor]:
        """``num_views`` views, equal to ``num_views`` calls in a row with the same generator,
        computed as one batch of num_views x n images (fewer, larger ops: 12.0 -> 8.6 ms for
        two views of 256 28x28 images here)."""
        n, ch = images.shape[:2]
        params = [self.sample(n, ch, g, images.device) for _ in range(num_views)]
        joined = {k: torch.cat([p[k] for p in params]) for k in params[0]}
        shape = (num_views,) + (1,) * (images.dim() - 1)
        return list(self.apply(images.repeat(shape), joined).chunk(num_views))
