"""SimCLR views of a whole batch at once, on whatever device the batch is on.

Per-image torchvision transforms cost about 0.5 ms per 28x28 view here, more than the small
ConvNet's own step; the same augmentation applied to a (n, C, H, W) batch with one affine grid
sample, broadcast colour ops and one grouped convolution costs a few ms per batch (measured by
``benchmarks/run.py``). Ops, in the official order: random resized crop (scale, ratio 3/4..4/3)
with the horizontal flip folded into the same affine map -> brightness / contrast / saturation
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

    def crop_and_flip(self, x: Tensor, g: torch.Generator) -> Tensor:
        n, dev = x.shape[0], x.device
        scale = _uniform(n, self.cfg.crop_scale_min or 0.08, 1.0, g, dev)
        log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), g, dev)
        ratio = log_ratio.exp()
        w = (scale * ratio).sqrt().clamp(max=1.0)
        h = (scale / ratio).sqrt().clamp(max=1.0)
        cx = _uniform(n, -1.0, 1.0, g, dev) * (1 - w)
        cy = _uniform(n, -1.0, 1.0, g, dev) * (1 - h)
        flip = torch.where(
            torch.rand(n, generator=g, device=dev) < (self.cfg.flip_prob or 0.0), -1.0, 1.0
        )
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        grid = F.affine_grid(theta, [n, x.shape[1], self.size, self.size], align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def jitter(self, x: Tensor, g: torch.Generator) -> Tensor:
        c, n, dev = self.cfg, x.shape[0], x.device
        apply = (
            (torch.rand(n, generator=g, device=dev) < (c.jitter_prob or 0.0))
            .float()
            .view(n, 1, 1, 1)
        )
        b = (
            _uniform(n, 1 - (c.brightness or 0), 1 + (c.brightness or 0), g, dev)
            .clamp_min(0)
            .view(n, 1, 1, 1)
        )
        k = (
            _uniform(n, 1 - (c.contrast or 0), 1 + (c.contrast or 0), g, dev)
            .clamp_min(0)
            .view(n, 1, 1, 1)
        )
        s = (
            _uniform(n, 1 - (c.saturation or 0), 1 + (c.saturation or 0), g, dev)
            .clamp_min(0)
            .view(n, 1, 1, 1)
        )
        y = (x * b).clamp(0, 1)
        mean = _gray(y).mean((2, 3), keepdim=True)
        y = ((y - mean) * k + mean).clamp(0, 1)
        if x.shape[1] == 3:
            gray = _gray(y)
            y = ((y - gray) * s + gray).clamp(0, 1)
        return apply * y + (1 - apply) * x

    def grayscale(self, x: Tensor, g: torch.Generator) -> Tensor:
        p = self.cfg.grayscale_prob or 0.0
        if x.shape[1] == 1 or p == 0:
            return x
        apply = (torch.rand(x.shape[0], generator=g, device=x.device) < p).float().view(-1, 1, 1, 1)
        return apply * _gray(x).expand_as(x) + (1 - apply) * x

    def blur(self, x: Tensor, g: torch.Generator) -> Tensor:
        p = self.cfg.blur_prob or 0.0
        if p == 0:
            return x
        n, ch, hh, ww = x.shape
        apply = torch.rand(n, generator=g, device=x.device) < p
        sigma = _uniform(n, 0.1, 2.0, g, x.device)
        r = self.kernel // 2
        offsets = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
        k = k / k.sum(1, keepdim=True)
        delta = (offsets == 0).to(x.dtype).expand_as(k)
        k = torch.where(apply[:, None], k, delta).repeat_interleave(ch, 0)  # (n*ch, ksize)
        y = F.pad(x.reshape(1, n * ch, hh, ww), (r, r, r, r), mode="reflect")
        y = F.conv2d(y, k.view(n * ch, 1, 1, -1), groups=n * ch)
        y = F.conv2d(y, k.view(n * ch, 1, -1, 1), groups=n * ch)
        return y.view(n, ch, hh, ww)

    def __call__(self, images: Tensor, g: torch.Generator) -> Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = self.crop_and_flip(x, g)
        x = self.jitter(x, g)
        x = self.grayscale(x, g)
        x = self.blur(x, g)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)
