"""Edge maps of grayscale images, one image at a time: the Sobel operator shared by the M1 pairs
(``bayesncl.data.paired``) and the sketch shift (``bayesncl.data.shifts``)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def as_float_images(images: Tensor | np.ndarray) -> Tensor:
    """(n, H, W) uint8 [0, 255] or float [0, 1] -> float (n, 1, H, W) in [0, 1]."""
    if not isinstance(images, Tensor):
        images = torch.tensor(np.asarray(images))  # a copy: the array may be read-only
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3:
        raise ValueError(f"expected grayscale images (n, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float().div(255).unsqueeze(1)
    return images.float().unsqueeze(1)


_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_edges(images: Tensor | np.ndarray) -> Tensor:
    """Sobel gradient magnitude of grayscale images, (n, 1, H, W) in [0, 1].

    ``sqrt(Gx^2 + Gy^2) / (4 sqrt 2)`` (the largest magnitude of a [0, 1] image), with
    replicated borders, so a flat image has no edges and the map needs no per-image scaling.
    """
    x = F.pad(as_float_images(images), (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1)
    grad = F.conv2d(x, kernels)
    return grad.pow(2).sum(1, keepdim=True).sqrt() / (4 * math.sqrt(2))
