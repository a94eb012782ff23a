"""TwoTowerModule: the Lightning layer of MMNCL (ncl-extras-spec §4), as PretrainModule is for
the single-modality methods.

An image tower (the backbones of ``bayesncl.models.backbones``) and a partner tower (the same
kind of backbone for image partners such as edge maps, a :class:`~bayesncl.models.text.TextTower`
for captions), each with the core's head, trained with :func:`~bayesncl.core.multimodal.clip_loss`
plus each tower's gate penalty. Validation scores cross-modal retrieval, per-dimension agreement
and each tower's interpretability on the validation pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor

from bayesncl.core.config import MethodConfig
from bayesncl.core.losses import check_finite
from bayesncl.core.multimodal import TwoTower
from bayesncl.core.presets import PRESETS, method_preset
from bayesncl.metrics.crossmodal import cross_modal_retrieval, dimension_agreement
from bayesncl.metrics.streaming import InterpretabilityMetrics
from bayesncl.models.backbones import Stem, build_backbone
from bayesncl.models.text import TextTower, Tokenizer
from bayesncl.train.finite import FiniteGuard
from bayesncl.train.optim import OptimConfig, lightning_optimizers, param_groups

#: the tasks of ``bayesncl fit`` (the config's ``task`` key)
MULTIMODAL_TASK = "multimodal"


def _method(method: MethodConfig | Mapping[str, Any] | str) -> MethodConfig:
    if isinstance(method, str):
        return method_preset(method)
    if isinstance(method, Mapping):
        return MethodConfig.from_dict(method)
    return method


class TwoTowerModule(FiniteGuard, pl.LightningModule):
    """MMNCL / CLIP-style pretraining of two towers sharing the representation width K.

    Args:
        method: the image tower's method (non-negativity, top-k, gate; its objective is not
            used: the CLIP loss trains both towers). A preset name or ``to_dict()`` dict too.
        pair_method: the partner tower's method (None: the same as ``method``).
        temperature: a fixed tau (NCL's 0.2) or ``learnable`` (CLIP's, from 0.07, tau >= 0.01).
        backbone, stem, cifar_stem_padding, backbone_width, backbone_norm: the image backbone
            (as ``bayesncl fit``'s); image partners get a backbone of the same kind.
        text_embed_dim, text_hidden_dim, text_width: the text tower (caption partners).
        proj_hidden_dim, proj_output_dim: each tower's projector H and K.
        optim: optimiser and schedule (the temperature gets the base rate, no weight decay).
        finite_check_every: every this many steps, stop if an input image, a representation,
            the loss or a gradient was NaN/Inf (``bayesncl.train.finite``); the weights are
            always checked before a checkpoint is written.
        val_retrieval_limit: validation pairs scored by retrieval (the first ones; R@k depends
            on the gallery size, so it is fixed).
        in_channels, image_size, pair_kind, pair_channels, vocab_size, num_classes, tokenizer,
        class_names: set from the data module (stored, so a checkpoint rebuilds the model).
    """

    finite_hint = "lower the learning rate, or use a fixed model.temperature"

    def __init__(
        self,
        method: MethodConfig = PRESETS["ncl"],
        pair_method: MethodConfig | None = None,
        temperature: float | Literal["learnable"] = 0.2,
        backbone: str = "convnet",
        stem: Stem = "cifar",
        cifar_stem_padding: int = 2,
        backbone_width: int = 16,
        backbone_norm: Literal["batch", "group"] = "batch",
        text_embed_dim: int = 64,
        text_hidden_dim: int = 256,
        text_width: int = 256,
        proj_hidden_dim: int = 512,
        proj_output_dim: int = 128,
        optim: OptimConfig = OptimConfig(),
        batch_size_for_scaling: int = 256,
        finite_check_every: int = 50,
        val_retrieval_limit: int = 1000,
        seed: int = 0,
        in_channels: int = 1,
        image_size: int = 28,
        pair_kind: Literal["image", "text"] = "image",
        pair_channels: int = 1,
        vocab_size: int = 0,
        num_classes: int = 0,
        tokenizer: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        method = _method(method)
        pair = method if pair_method is None else _method(pair_method)
        self.method, self.pair_method, self.optim_cfg = method, pair, optim
        hp: dict[str, Any] = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        hp["method"], hp["pair_method"] = method.to_dict(), pair.to_dict()
        hp["optim"] = asdict(optim)
        del hp["pair"]
        self.save_hyperparameters(hp)
        if finite_check_every < 0 or val_retrieval_limit < 1:
            raise ValueError(
                "model.finite_check_every must be >= 0 and model.val_retrieval_limit >= 1"
            )
        net_x, dim_x = build_backbone(
            backbone, stem, cifar_stem_padding, in_channels, backbone_width, backbone_norm,
            image_size,
        )  # fmt: skip
        if pair_kind == "text":
            if tokenizer is None or vocab_size < 2:
                raise ValueError("caption partners need the data module's tokenizer and vocabulary")
            self.tokenizer: Tokenizer | None = Tokenizer.from_dict(tokenizer)
            net_y = TextTower(vocab_size, text_embed_dim, text_hidden_dim, text_width)
            dim_y = net_y.feature_dim
        else:
            self.tokenizer = None
            net_y, dim_y = build_backbone(
                backbone, stem, cifar_stem_padding, pair_channels, backbone_width,
                backbone_norm, image_size,
            )  # fmt: skip
        self.model = TwoTower(
            net_x, dim_x, net_y, dim_y, method, pair, proj_hidden_dim, proj_output_dim, temperature
        )
        k = self.model.out_dim
        self.val_x = InterpretabilityMetrics(k, max(num_classes, 1), spectral=False)
        self.val_y = InterpretabilityMetrics(k, max(num_classes, 1), spectral=False)
        self._val_codes: list[tuple[Tensor, Tensor]] = []
        self.run_config: dict[str, Any] | None = None

    # ----------------------------------------------------------------- training
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.global_step)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        _, x, pair, _ = batch
        rep_x, rep_y = self.model(x, pair)
        terms = self.model.loss_of(rep_x, rep_y)
        self._flag_nonfinite(0, x)
        self._flag_nonfinite(1, torch.cat([rep_x.z, rep_y.z]))
        self._flag_nonfinite(2, terms.total)
        every = self.hparams.finite_check_every
        if every and self.global_step % every == 0:
            check_finite(terms)
            self.check_finite_training()
        logs = {"train/loss": terms.total, "train/tau": torch.as_tensor(self.model.tau()).detach()}
        logs.update({f"train/{name}": value for name, value in terms.terms.items()})
        for name, rep in (("x", rep_x), ("y", rep_y)):
            if rep.mask is not None:
                logs[f"train/{name}_gate_open"] = rep.mask.detach().mean()
        trainer = self._trainer
        if trainer is None or (self.global_step + 1) % max(trainer.log_every_n_steps, 1) == 0:
            self.log_dict(logs, on_step=True, on_epoch=False, batch_size=x.shape[0])
        # the epoch's mean loss over all processes (equal batches: the full-batch loss's mean)
        self.log("train/loss_epoch", terms.total.detach(), on_step=False, on_epoch=True,
                 sync_dist=True, batch_size=x.shape[0])  # fmt: skip
        return terms.total

    # --------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self.check_finite_training()
        self._val_codes = []

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, pair, y = batch
        rep_x, rep_y = self.model(x, pair)
        if self.hparams.num_classes:
            self.val_x.update(rep_x.output, y)
            self.val_y.update(rep_y.output, y)
        held = sum(len(a) for a, _ in self._val_codes)
        if held < self.hparams.val_retrieval_limit:
            take = self.hparams.val_retrieval_limit - held
            self._val_codes.append((rep_x.output[:take].cpu(), rep_y.output[:take].cpu()))

    def on_validation_epoch_end(self) -> None:
        out: dict[str, Any] = {}
        if self._val_codes:
            a = torch.cat([c for c, _ in self._val_codes])
            b = torch.cat([c for _, c in self._val_codes])
            ks = [k for k in (1, 5, 10) if k <= len(a)]
            r = cross_modal_retrieval(a, b, ks, names=("x", "y"))
            out |= {f"val/{k}": v for k, v in r.items()}
            agree = dimension_agreement(a, b)
            out["val/mean_correlation"] = agree["mean_correlation"]
            out["val/share_both"] = agree["share_both"]
        if self.hparams.num_classes:
            for name, metric in (("x", self.val_x), ("y", self.val_y)):
                values = metric.compute()
                for key in ("consistency", "sparsity"):
                    out[f"val/{name}_{key}"] = values[key]
                metric.reset()
        out = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in out.items()}
        if out:
            self.log_dict(out)
        self._val_codes = []

    # -------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_cfg
        scale = cfg.lr_scale(self.hparams.batch_size_for_scaling)
        lr, gate_lr = cfg.lr * scale, cfg.gate_rate(scale)
        modules: dict[str, tuple[torch.nn.Module, float, float]] = {}
        for name, tower in (("x", self.model.tower_x), ("y", self.model.tower_y)):
            modules[f"{name}.backbone"] = (tower.backbone, lr, cfg.weight_decay)
            heads = tower.head.param_groups(lr, cfg.weight_decay, gate_lr)
            modules.update({f"{name}.{k}": v for k, v in heads.items()})
        if self.model.temperature is not None:
            modules["temperature"] = (self.model.temperature, lr, 0.0)
        return lightning_optimizers(cfg, param_groups(modules), self.trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from bayesncl.train.module import CHECKPOINT_FORMAT

        self.check_finite_training()
        checkpoint["bayesncl"] = {
            "config": self.run_config,
            "format": CHECKPOINT_FORMAT,
            "task": MULTIMODAL_TASK,
        }
