"""Backbones: torchvision ResNet-18/50 with the CIFAR or ImageNet stem, and a small ConvNet for
28x28 (or smaller) grayscale images. Every backbone returns pooled features h (n x feature_dim)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import torchvision
from torch import nn

Stem = Literal["cifar", "imagenet", "auto"]

#: ``auto`` picks the CIFAR stem for images up to this size, the ImageNet stem above
SMALL_IMAGE = 64


def resolve_stem(stem: str, image_size: int) -> str:
    """``auto`` -> ``cifar`` for small images (<= 64 px: a stride-4 ImageNet stem would leave a
    2x2 map at 28 px), ``imagenet`` otherwise; other values pass through."""
    if stem == "auto":
        return "cifar" if image_size <= SMALL_IMAGE else "imagenet"
    return stem


def resnet(
    depth: Literal[18, 50] = 18, stem: Stem = "cifar", cifar_padding: int = 2, in_channels: int = 3
) -> tuple[nn.Module, int]:
    """torchvision ResNet with random init and the fc layer removed (spec §1.1).

    CIFAR stem: conv1 = 3x3, stride 1, padding ``cifar_padding`` (official 2, giving a 34x34 first
    map for 32x32 input; 1 is the common alternative), no bias, max-pool removed.
    """
    net = torchvision.models.resnet18() if depth == 18 else torchvision.models.resnet50()
    if stem == "cifar":
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=cifar_padding, bias=False)
        net.maxpool = nn.Identity()
    elif stem == "imagenet":
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    else:
        raise ValueError(f"stem={stem!r}; use 'cifar', 'imagenet' or 'auto'")
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def convnet(
    in_channels: int = 1, width: int = 32, norm: Literal["batch", "group"] = "batch"
) -> tuple[nn.Module, int]:
    """Small ConvNet for 28x28 grayscale (trains in minutes on a CPU): three 3x3 conv-norm-ReLU
    blocks (widths w, 2w, 4w; the last two with stride 2) and global average pooling.
    ``norm="group"`` (GroupNorm, 8 groups) makes every sample's features independent of its batch."""

    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        layer = nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(min(8, cout), cout)
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), layer, nn.ReLU(inplace=True)]

    layers = [
        *block(in_channels, width, 1),
        *block(width, 2 * width, 2),
        *block(2 * width, 4 * width, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers), 4 * width


def _resnet(depth: Literal[18, 50], *, stem, cifar_padding, in_channels, width, norm):
    return resnet(depth, stem, cifar_padding, in_channels)


def _convnet(*, stem, cifar_padding, in_channels, width, norm):
    return convnet(in_channels, width, norm)


#: backbone name -> builder(stem=, cifar_padding=, in_channels=, width=, norm=) -> (net, dim)
BACKBONES: dict[str, Callable[..., tuple[nn.Module, int]]] = {
    "resnet18": partial(_resnet, 18),
    "resnet50": partial(_resnet, 50),
    "convnet": _convnet,
}


def build_backbone(
    name: str,
    stem: Stem = "cifar",
    cifar_padding: int = 2,
    in_channels: int = 3,
    width: int = 32,
    norm: Literal["batch", "group"] = "batch",
    image_size: int = 32,
) -> tuple[nn.Module, int]:
    """Backbone by name (a key of :data:`BACKBONES`) and its feature width."""
    if name not in BACKBONES:
        raise ValueError(f"backbone={name!r}; use one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](
        stem=resolve_stem(stem, image_size),
        cifar_padding=cifar_padding,
        in_channels=in_channels,
        width=width,
        norm=norm,
    )
