"""SimCLR view augmentations (reference spec §3) and evaluation transforms, torchvision v2.

The official pipeline (CIFAR and ImageNet-100): RandomResizedCrop(scale 0.08-1, bicubic) ->
ColorJitter(0.8, 0.8, 0.8, 0.2) p 0.8 -> RandomGrayscale p 0.2 -> GaussianBlur(sigma 0.1-2) p 0.5
-> HorizontalFlip p 0.5 -> Normalize. Grayscale datasets use a variant without saturation, hue
and grayscale (see :data:`GRAYSCALE_AUGMENT`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentConfig:
    """View augmentation settings. ``None`` fields take the dataset's default."""

    crop_scale_min: float | None = None
    jitter_prob: float | None = None
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    grayscale_prob: float | None = None
    blur_prob: float | None = None
    flip_prob: float | None = None

    def merged_over(self, base: AugmentConfig) -> AugmentConfig:
        """These settings where set, ``base``'s elsewhere."""
        return replace(
            base,
            **{
                f.name: getattr(self, f.name)
                for f in fields(self)
                if getattr(self, f.name) is not None
            },
        )


#: the official SimCLR views (spec §3).
SIMCLR_AUGMENT = AugmentConfig(
    crop_scale_min=0.08,
    jitter_prob=0.8,
    brightness=0.8,
    contrast=0.8,
    saturation=0.8,
    hue=0.2,
    grayscale_prob=0.2,
    blur_prob=0.5,
    flip_prob=0.5,
)

#: grayscale variant (Fashion-MNIST, digits): milder crops (a 28x28 image has little to spare),
#: brightness/contrast only, rarer blur. ``digits`` also sets flip_prob = 0 (a flipped digit is
#: another digit).
GRAYSCALE_AUGMENT = AugmentConfig(
    crop_scale_min=0.3,
    jitter_prob=0.8,
    brightness=0.4,
    contrast=0.4,
    saturation=0.0,
    hue=0.0,
    grayscale_prob=0.0,
    blur_prob=0.2,
    flip_prob=0.5,
)


def view_transform(
    cfg: AugmentConfig, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> v2.Compose:
    """One random view: crop -> jitter -> grayscale -> blur -> flip -> float tensor -> normalise."""
    kernel = max(3, (size // 10) | 1)  # odd, about 10% of the image side
    ops: list[v2.Transform] = [
        v2.ToImage(),
        v2.RandomResizedCrop(
            size,
            scale=(cfg.crop_scale_min or 0.08, 1.0),
            interpolation=v2.InterpolationMode.BICUBIC,
            antialias=True,
        ),
    ]
    if cfg.jitter_prob:
        jitter = v2.ColorJitter(
            cfg.brightness or 0, cfg.contrast or 0, cfg.saturation or 0, cfg.hue or 0
        )
        ops.append(v2.RandomApply([jitter], p=cfg.jitter_prob))
    if cfg.grayscale_prob:
        ops.append(v2.RandomGrayscale(p=cfg.grayscale_prob))
    if cfg.blur_prob:
        ops.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=cfg.blur_prob))
    if cfg.flip_prob:
        ops.append(v2.RandomHorizontalFlip(p=cfg.flip_prob))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(ops)


def eval_transform(
    size: int, mean: tuple[float, ...], std: tuple[float, ...], resize: int | None = None
) -> v2.Compose:
    """Deterministic evaluation transform (Resize + CenterCrop when ``resize`` is given, as for
    ImageNet-100: 256 -> 224)."""
    ops: list[v2.Transform] = [v2.ToImage()]
    if resize is not None:
        ops += [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(ops)
