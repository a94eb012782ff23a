"""Scenes: Fashion-MNIST garments on textured backgrounds, a dataset with a *known* shared feature.

The BayesNCL paper explains its gate by features shared across classes (the "blue sky" behind
birds and airplanes): positives pull them together, negatives push them apart, and the gate
learns to close them (its Theorem 4.5: a dimension whose frequency pi_k -> 1 is switched off).
Fashion-MNIST has a plain black background, so that mechanism cannot be seen there. Here every
garment is composited onto one of :data:`TEXTURES`, and each image carries two labels: its class
(the garment) and its *nuisance* label (the background texture).

Sharing (:class:`ScenesConfig`):

* class-independent (``group=None``): each image gets the shared texture with probability
  ``pi``, otherwise one of the other textures uniformly; the background says nothing about
  the class.
* class-group (``group=(0, 2, 4, 6)``, the tops): images of the group's classes get the shared
  texture with probability ``pi``, the other classes never; like sky, shared by a group of
  classes (overall frequency pi x the group's share of the data).

Compositing: alpha = clip(g / 64, 0, 1) from the garment's own intensity g, then
x = alpha * g + (1 - alpha) * b, with the texture b at amplitude ``contrast`` x 255 (each image
draws a random phase and an amplitude factor in [0.8, 1]). Deterministic from ``seed``; the
test split draws with another stream than the training split (independent draws).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from bayesncl.data.augment import GRAYSCALE_AUGMENT
from bayesncl.data.datasets import DATASETS, SPEC_RESOLVERS, DatasetSpec, TensorImages

#: background textures; the nuisance label of an image is its index here
TEXTURES: tuple[str, ...] = ("plain", "stripes", "checks", "dots", "diagonal")
#: the Fashion-MNIST tops (T-shirt/top, Pullover, Coat, Shirt): the default shared group
TOPS: tuple[int, ...] = (0, 2, 4, 6)
ALPHA_FULL = 64.0  # garment intensity at which the garment fully covers the background


@dataclass(frozen=True)
class ScenesConfig:
    """How backgrounds are drawn.

    pi: probability of the shared texture (for every image, or for images of ``group``).
    shared: name of the shared texture (one of :data:`TEXTURES`).
    group: classes that share it (None: all classes, independently of the class).
    contrast: texture amplitude as a fraction of 255 (0: every background black).
    seed: the draw; the same seed gives the same bytes.
    """

    pi: float = 0.8
    shared: str = "stripes"
    group: tuple[int, ...] | None = None
    contrast: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.pi <= 1.0:
            raise ValueError(f"scenes pi={self.pi} must be in [0, 1]")
        if self.shared not in TEXTURES:
            raise ValueError(f"scenes shared={self.shared!r}; use one of: {', '.join(TEXTURES)}")
        if not 0.0 <= self.contrast <= 1.0:
            raise ValueError(f"scenes contrast={self.contrast} must be in [0, 1]")
        if self.group is not None and not self.group:
            raise ValueError("scenes group=() shares with no class: use None (all classes)")

    @property
    def shared_index(self) -> int:
        return TEXTURES.index(self.shared)


class SceneImages(TensorImages):
    """:class:`TensorImages` with a second label per image: ``nuisance`` (the texture index)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, nuisance: np.ndarray) -> None:
        super().__init__(images, labels)
        if len(nuisance) != len(labels):
            raise ValueError(f"{len(nuisance)} nuisance labels for {len(labels)} images")
        self.nuisance = torch.from_numpy(np.asarray(nuisance, dtype=np.int64))
        self.nuisance_names = list(TEXTURES)


def draw_backgrounds(
    labels: np.ndarray, config: ScenesConfig, rng: np.random.Generator
) -> np.ndarray:
    """The texture index of each image (see the module docstring for the two sharing modes)."""
    n = len(labels)
    others = np.array([i for i in range(len(TEXTURES)) if i != config.shared_index])
    eligible = np.ones(n, bool) if config.group is None else np.isin(labels, config.group)
    shared = eligible & (rng.random(n) < config.pi)
    out = others[rng.integers(0, len(others), n)]
    out[shared] = config.shared_index
    return out


def render_textures(
    kinds: np.ndarray, size: int, contrast: float, rng: np.random.Generator
) -> np.ndarray:
    """Backgrounds (n x size x size, float in [0, 255]) of the given texture indices, each with a
    random phase and amplitude factor in [0.8, 1]."""
    n = len(kinds)
    y = np.arange(size)[None, :, None]
    x = np.arange(size)[None, None, :]
    py = rng.integers(0, 8, n)[:, None, None]
    px = rng.integers(0, 8, n)[:, None, None]
    amp = (contrast * 255.0 * rng.uniform(0.8, 1.0, n))[:, None, None]
    patterns = {
        "plain": np.full((1, size, size), 0.5),
        "stripes": (((y + py) // 2) % 2).astype(float) + 0 * x,
        "checks": ((((y + py) // 3) + ((x + px) // 3)) % 2).astype(float),
        "dots": ((((y + py) % 5) < 2) & (((x + px) % 5) < 2)).astype(float),
        "diagonal": (((x + y + px) // 2) % 2).astype(float),
    }
    out = np.zeros((n, size, size))
    for index, name in enumerate(TEXTURES):
        sel = kinds == index
        if sel.any():
            pat = np.broadcast_to(patterns[name], (n, size, size))[sel]
            out[sel] = pat * amp[sel]
    return out


def composite(garments: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """x = alpha g + (1 - alpha) b with alpha = clip(g / 64, 0, 1); uint8."""
    g = garments.astype(np.float64)
    alpha = np.clip(g / ALPHA_FULL, 0.0, 1.0)
    return np.clip(np.rint(alpha * g + (1 - alpha) * backgrounds), 0, 255).astype(np.uint8)


def make_scenes(
    images: np.ndarray, labels: np.ndarray, config: ScenesConfig, train: bool
) -> SceneImages:
    """Composite ``images`` (n x H x W uint8 garments on black) onto drawn textures."""
    rng = np.random.default_rng([config.seed, 0 if train else 1])
    kinds = draw_backgrounds(labels, config, rng)
    backgrounds = render_textures(kinds, images.shape[-1], config.contrast, rng)
    return SceneImages(composite(images, backgrounds), labels, kinds)


@lru_cache(maxsize=4)
def _cached(config: ScenesConfig, train: bool, data_dir: str, download: bool) -> SceneImages:
    from bayesncl.data.datasets import load_fashion_mnist

    base = load_fashion_mnist(train, Path(data_dir), download)
    assert isinstance(base, TensorImages)
    return make_scenes(base.images[:, 0].numpy(), base.targets.numpy(), config, train)


@dataclass(frozen=True)
class ScenesLoader:
    """The ``load(train, data_dir, download)`` of a scenes dataset spec (Fashion-MNIST from
    wherever the fashion-mnist dataset finds it); generated once per process."""

    config: ScenesConfig

    def __call__(self, train: bool, data_dir: Path, download: bool) -> Dataset:
        return _cached(self.config, train, str(data_dir), download)


#: named settings of the ``scenes`` grid (class-independent pi, and the tops sharing stripes)
NAMED: dict[str, ScenesConfig] = {
    "scenes": ScenesConfig(pi=0.8),
    "scenes-pi20": ScenesConfig(pi=0.2),
    "scenes-pi50": ScenesConfig(pi=0.5),
    "scenes-pi80": ScenesConfig(pi=0.8),
    "scenes-group": ScenesConfig(pi=0.8, group=TOPS),
}
_PATTERN = re.compile(r"^scenes(-group)?-pi(\d{1,3})$")


def parse_scenes_name(name: str) -> ScenesConfig | None:
    """The config of a scenes dataset name: a :data:`NAMED` one, or ``scenes-piNN`` /
    ``scenes-group-piNN`` for pi = NN / 100; None for other names."""
    if name in NAMED:
        return NAMED[name]
    m = _PATTERN.match(name)
    if m is None:
        return None
    return ScenesConfig(pi=int(m.group(2)) / 100, group=TOPS if m.group(1) else None)


def nuisance_labels(ds: Dataset) -> torch.Tensor | None:
    """The second label (``nuisance``) of each item of ``ds``, following ``Subset`` and wrappers
    with a ``base`` attribute; None when the dataset has none."""
    if isinstance(ds, Subset):
        inner = nuisance_labels(ds.dataset)
        return None if inner is None else inner[torch.as_tensor(list(ds.indices))]
    if hasattr(ds, "nuisance"):
        return torch.as_tensor(ds.nuisance)
    base = getattr(ds, "base", None)
    return nuisance_labels(base) if isinstance(base, Dataset) else None


def nuisance_names(ds: Dataset) -> list[str] | None:
    """The names of the nuisance labels, where the dataset (or the one it wraps) has them."""
    while True:
        names = getattr(ds, "nuisance_names", None)
        if names is not None:
            return list(names)
        inner = getattr(ds, "dataset", None) or getattr(ds, "base", None)
        if not isinstance(inner, Dataset):
            return None
        ds = inner


#: per-pixel mean and std of the composited images (Fashion-MNIST train, contrast 0.5: 0.404 / 0.309 at pi 0.8,
#: 0.391 / 0.310 at pi 0.2): the normalisation of every scenes spec
SCENES_MEAN, SCENES_STD = (0.40,), (0.31,)


def scenes_spec(name: str) -> DatasetSpec | None:
    """The :class:`DatasetSpec` of a scenes dataset name (see :func:`parse_scenes_name`)."""
    config = parse_scenes_name(name)
    if config is None:
        return None
    return DatasetSpec(
        name=name,
        num_classes=10,
        in_channels=1,
        image_size=28,
        mean=SCENES_MEAN,
        std=SCENES_STD,
        augment=GRAYSCALE_AUGMENT,
        load=ScenesLoader(config),
    )


# registration: the named settings, and any scenes-piNN name on demand
DATASETS.update({name: spec for name in NAMED if (spec := scenes_spec(name)) is not None})
SPEC_RESOLVERS.append(scenes_spec)
