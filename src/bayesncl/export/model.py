"""A trained encoder outside Lightning: built from plain settings, loaded without unpickling code.

:func:`load` reads an export directory (``model.safetensors`` + ``config.json``, written by
``bayesncl export``) or a ``bayesncl fit`` checkpoint (``torch.load(weights_only=True)``: tensors
and plain containers only, so a file crafted to run code when unpickled is refused before any of
it runs). Either way the result is a :class:`TrainedEncoder` in eval mode whose ``encode`` is the
representation ``bayesncl evaluate`` measures: ``Encoder.represent(x).output`` with BatchNorm
running statistics and the deterministic gate, after the evaluation's preprocessing.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from bayesncl.core.config import MethodConfig
from bayesncl.core.pipeline import Representation
from bayesncl.core.presets import from_legacy
from bayesncl.data.datasets import get_dataset_spec
from bayesncl.models.backbones import build_backbone
from bayesncl.models.encoder import Encoder

#: ``config.json`` ``format`` of an export directory, and its version
EXPORT_FORMAT = "bayesncl-encoder"
EXPORT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class ModelFileError(ValueError):
    """A checkpoint or export directory that is missing, unreadable or not a bayesncl model."""


@dataclass(frozen=True)
class ModelSettings:
    """What builds the network (the architecture part of ``PretrainModule``'s settings)."""

    backbone: str = "resnet18"
    stem: str = "cifar"
    cifar_stem_padding: int = 2
    backbone_width: int = 32
    backbone_norm: str = "batch"
    in_channels: int = 3
    num_classes: int = 10
    proj_hidden_dim: int = 2048
    proj_output_dim: int = 256
    image_size: int = 32  # the training images' size (``stem: auto`` depends on it)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Preprocessing:
    """The evaluation transform of the training data (``bayesncl.data.augment.eval_transform``):
    optional Resize(``resize``) + CenterCrop(``image_size``), scale to [0, 1], normalise. Images
    of another size than ``image_size`` are resized and centre-cropped to it; images with other
    channels are converted (RGB -> luminance, or gray repeated)."""

    dataset: str
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None
    data_dir: str | None = None  # where the training data was (a default for encode/browse)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        d = dict(data)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @property
    def mode(self) -> str:
        """PIL mode the model reads: ``L`` or ``RGB``."""
        return "L" if self.in_channels == 1 else "RGB"

    def to_tensor(self, image: Any) -> Tensor:
        """One image (PIL image, file path, H x W[x C] array, or C x H x W tensor) as a
        C x H x W tensor (uint8, or float in [0, 1])."""
        if isinstance(image, (str, Path)):
            with Image.open(image) as im:
                image = im.convert(self.mode)
        if isinstance(image, Image.Image):
            image = image.convert(self.mode)
            return TF.pil_to_tensor(image)
        if isinstance(image, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(image))
            return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        if isinstance(image, Tensor):
            return image.unsqueeze(0) if image.ndim == 2 else image
        raise TypeError(f"cannot read an image from a {type(image).__name__}")

    def __call__(self, x: Tensor) -> Tensor:
        """(..., C, H, W) uint8 or [0, 1] float images -> the model's normalised input."""
        if x.is_floating_point() and x.numel() and float(x.max()) > 1.001:
            raise ValueError(
                f"float images must lie in [0, 1] (found values up to {float(x.max()):.4g}): "
                "give uint8 images, or divide by 255"
            )
        c = x.shape[-3]
        if c != self.in_channels:
            if self.in_channels == 1 and c in (3, 4):
                x = TF.rgb_to_grayscale(x[..., :3, :, :])
            elif self.in_channels == 3 and c == 1:
                x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
            else:
                raise ValueError(
                    f"images have {c} channels, the model reads {self.in_channels} "
                    f"({self.dataset}); give grayscale or RGB images"
                )
        size = self.image_size
        if self.resize is not None:
            x = TF.center_crop(TF.resize(x, [self.resize], antialias=True), [size, size])
        elif tuple(x.shape[-2:]) != (size, size):
            x = TF.center_crop(TF.resize(x, [size], antialias=True), [size, size])
        x = TF.to_dtype(x, torch.float32, scale=True)
        return TF.normalize(x, list(self.mean), list(self.std))

    def one(self, image: Any) -> Tensor:
        """One image -> its C x H x W model input (for a DataLoader's dataset)."""
        return self(self.to_tensor(image))


def preprocessing_from_run(
    data_cfg: Mapping[str, Any], in_channels: int, trained_size: int | None = None
) -> Preprocessing:
    """The evaluation preprocessing of a run's ``data`` config (as ``SSLDataModule``:
    ``image_size``, else the size the model was trained at, else the dataset's own, and its
    ``eval_resize``; image folders of the images' own size resize to it)."""
    spec = get_dataset_spec(data_cfg.get("dataset", "digits"))
    size = int(data_cfg.get("image_size") or spec.image_size or trained_size or 224)
    return Preprocessing(
        dataset=spec.name,
        in_channels=in_channels,
        image_size=size,
        mean=tuple(spec.mean),
        std=tuple(spec.std),
        resize=spec.eval_resize_for(size),
        data_dir=data_cfg.get("data_dir"),
    )


def build_encoder(settings: ModelSettings, method: MethodConfig) -> Encoder:
    """The network of ``PretrainModule`` (backbone + head incl. gate and objective), untrained."""
    net, dim = build_backbone(
        settings.backbone,
        settings.stem,  # type: ignore[arg-type]
        settings.cifar_stem_padding,
        settings.in_channels,
        settings.backbone_width,
        settings.backbone_norm,  # type: ignore[arg-type]
        settings.image_size,
    )
    return Encoder(
        net,
        dim,
        method,
        settings.proj_hidden_dim,
        settings.proj_output_dim,
        settings.num_classes,
    )


@dataclass
class TrainedEncoderParts:
    """Everything :class:`TrainedEncoder` is made of, as read from a file."""

    settings: ModelSettings
    method: MethodConfig
    preprocessing: Preprocessing
    state: dict[str, Tensor]
    info: dict[str, Any] = field(default_factory=dict)  # provenance: run, epochs, steps, ...


class TrainedEncoder(nn.Module):
    """A trained encoder in eval mode, with the evaluation's preprocessing.

    ``images`` (for :meth:`encode`, :meth:`represent`, :meth:`preprocess`) may be a batch tensor
    (N x C x H x W, or N x H x W grayscale; uint8, or float in [0, 1]), a NumPy array (N x H x W
    or N x H x W x C), or a sequence of PIL images, file paths, arrays or C x H x W tensors.
    With ``preprocessed=True`` the tensor is taken as the model's normalised input as it is.
    """

    def __init__(self, parts: TrainedEncoderParts) -> None:
        super().__init__()
        self.settings = parts.settings
        self.method = parts.method
        self.preprocessing = parts.preprocessing
        self.info = dict(parts.info)
        self.encoder = build_encoder(parts.settings, parts.method)
        try:
            self.encoder.load_state_dict(parts.state, strict=True)
        except RuntimeError as err:
            raise ModelFileError(
                f"the weights do not match the model the settings describe: {err}"
            ) from None
        self.eval()

    @property
    def dim(self) -> int:
        """K, the width of the representation."""
        return self.encoder.head.out_dim

    @property
    def has_gate(self) -> bool:
        return self.encoder.head.gate is not None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def train(self, mode: bool = True) -> TrainedEncoder:
        """Always eval: BatchNorm uses its running statistics and the gate is deterministic."""
        return super().train(False)

    def preprocess(self, images: Any) -> Tensor:
        """Images (see the class doc) -> the model's normalised input batch."""
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
            if images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] > 4:
                images = images.permute(0, 3, 1, 2)  # N x H x W x C -> N x C x H x W
        if isinstance(images, Tensor):
            if images.ndim == 2:  # one H x W image
                images = images[None, None]
            elif images.ndim == 3:  # one C x H x W colour image, or N x H x W grayscale
                rgb = self.settings.in_channels == 3 and images.shape[0] == 3
                images = images.unsqueeze(0) if rgb else images.unsqueeze(1)
            if images.ndim != 4:
                raise ValueError(f"expected N x C x H x W images, got shape {tuple(images.shape)}")
            return self.preprocessing(images)
        if isinstance(images, (Image.Image, str, Path)):
            images = [images]
        if isinstance(images, Iterable):
            batch = [self.preprocessing.one(im) for im in images]
            if not batch:
                raise ValueError("no images given")
            return torch.stack(batch)
        raise TypeError(f"cannot read images from a {type(images).__name__}")

    @torch.no_grad()
    def represent(
        self, images: Any, *, preprocessed: bool = False, soft_gate: bool = False
    ) -> Representation:
        """Every intermediate of the one representation path (h, z, features, normalized,
        output and, with a gate, logits, alpha, mask) for one batch."""
        x = images if preprocessed else self.preprocess(images)
        return self.encoder.represent(x.to(self.device), soft_gate=soft_gate)

    @torch.no_grad()
    def encode(
        self,
        images: Any,
        *,
        batch_size: int = 256,
        preprocessed: bool = False,
        soft_gate: bool = False,
    ) -> Tensor:
        """The representation v (N x K, on the CPU) that ``bayesncl evaluate`` measures."""
        if not preprocessed and not isinstance(images, (Tensor, np.ndarray)):
            images = list(images) if not isinstance(images, (Image.Image, str, Path)) else [images]
        n = len(images)
        out = []
        for start in range(0, n, batch_size):
            chunk = images[start : start + batch_size]
            rep = self.represent(chunk, preprocessed=preprocessed, soft_gate=soft_gate)
            out.append(rep.output.float().cpu())
        if not out:
            return torch.zeros(0, self.dim)
        return torch.cat(out)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised input batch -> v (as ``Encoder.forward``)."""
        return self.encoder(x)


# ------------------------------------------------------------------------------------ reading
def read_checkpoint(path: str | Path) -> TrainedEncoderParts:
    """The encoder of a ``bayesncl fit`` checkpoint, read weights-only (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist (look in RUN_DIR/checkpoints/)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelFileError(
            f"{path} holds objects other than tensors and plain data (refused, nothing of it was "
            f"run; a bayesncl checkpoint never does): {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise ModelFileError(f"checkpoint {path} is corrupt or not a PyTorch file: {err}") from None
    if not isinstance(ckpt, dict) or "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise ModelFileError(f"{path} is not a bayesncl fit checkpoint (no hyper_parameters)")
    if (ckpt.get("bayesncl") or {}).get("task") == "multimodal":
        raise ModelFileError(
            f"{path} is a two-tower (multimodal) checkpoint: `bayesncl evaluate` reads it "
            "(bayesncl.evaluate.multimodal.load_two_tower in Python); export, encode and browse "
            "take single-encoder checkpoints"
        )
    hp = dict(ckpt["hyper_parameters"])
    method = hp.get("method")
    if isinstance(method, str):  # format 1: preset name + flat method_overrides
        method = from_legacy(method, hp.get("method_overrides"))
    else:
        method = MethodConfig.from_dict(method or {})
    settings = ModelSettings.from_dict(hp)
    run_cfg = (ckpt.get("bayesncl") or {}).get("config") or {}
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    info = {
        "source": str(path),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "run_dir": run_cfg.get("run_dir"),
        "max_epochs": (run_cfg.get("trainer") or {}).get("max_epochs"),
        "seed": run_cfg.get("seed"),
    }
    pre = preprocessing_from_run(
        run_cfg.get("data") or {}, settings.in_channels, hp.get("image_size")
    )
    return TrainedEncoderParts(settings, method, pre, state, info)


def read_export(directory: str | Path) -> TrainedEncoderParts:
    """An export directory: ``config.json`` (JSON) and ``model.safetensors`` (tensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for p in (cfg_path, weights):
        if not p.is_file():
            raise ModelFileError(
                f"{p} is missing: an export directory holds {CONFIG_FILE} and {WEIGHTS_FILE} "
                "(write one with `bayesncl export CKPT OUT_DIR`)"
            )
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {err}") from None
    if not isinstance(cfg, dict) or cfg.get("format") != EXPORT_FORMAT:
        raise ModelFileError(f"{cfg_path} is not a bayesncl export (format != {EXPORT_FORMAT!r})")
    if int(cfg.get("format_version", 0)) > EXPORT_VERSION:
        raise ModelFileError(
            f"{cfg_path} has format_version {cfg['format_version']}, newer than this bayesncl "
            f"reads ({EXPORT_VERSION}): upgrade bayesncl"
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"{weights} is not a readable safetensors file: {err}") from None
    return TrainedEncoderParts(
        ModelSettings.from_dict(cfg["model"]),
        MethodConfig.from_dict(cfg["method"]),
        Preprocessing.from_dict(cfg["preprocessing"]),
        state,
        dict(cfg.get("training") or {}),
    )


def resolve_model_path(path: str | Path) -> Path:
    """An export directory, a checkpoint, or a run directory (-> its checkpoints/last.ckpt)."""
    p = Path(path)
    if p.is_dir() and not (p / CONFIG_FILE).is_file() and (p / "checkpoints/last.ckpt").is_file():
        return p / "checkpoints/last.ckpt"
    if not p.exists():
        raise ModelFileError(
            f"{p} does not exist: give an export directory (bayesncl export), a checkpoint "
            "(RUN_DIR/checkpoints/last.ckpt) or a run directory"
        )
    return p


def load(path: str | Path, device: str | torch.device = "cpu") -> TrainedEncoder:
    """A trained encoder from an export directory, a ``bayesncl fit`` checkpoint or a run
    directory; in eval mode, on ``device``. Never unpickles code::

        model = bayesncl.load("runs/digits/bayesncl/export")
        features = model.encode(images)  # N x K, what ``bayesncl evaluate`` measures
    """
    p = resolve_model_path(path)
    parts = read_export(p) if p.is_dir() else read_checkpoint(p)
    return TrainedEncoder(parts).to(device)


def describe(model: TrainedEncoder) -> str:
    """One line: method, dataset, K, gate."""
    gate = f", gate {model.method.gate.kind}" if model.method.gate is not None else ""
    return (
        f"{model.method.name} on {model.preprocessing.dataset} "
        f"({model.settings.backbone}, K={model.dim}{gate})"
    )
