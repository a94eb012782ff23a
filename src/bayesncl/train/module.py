"""PretrainModule: the thin Lightning layer over the core (spec §1.1-§1.3).

backbone + NCL head (the core's representation path) + an online linear classifier on detached
backbone features (val top-1/top-5 during pretraining, as officially). Validation also streams
the interpretability metrics of the representation over the whole validation set.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from bayesncl.core.losses import check_finite
from bayesncl.core.presets import MethodOverrides, resolve_method
from bayesncl.metrics.streaming import InterpretabilityMetrics
from bayesncl.models.backbones import Stem, build_backbone
from bayesncl.models.encoder import Encoder
from bayesncl.train.optim import OptimConfig, make_optimizer, make_scheduler, param_groups


class PretrainModule(pl.LightningModule):
    """Self-supervised pretraining of one method preset (``cl``, ``ncl``, ``bayesncl``, ...).

    Args:
        method: preset name (``bayesncl.core.presets.PRESETS``).
        method_overrides: typed changes to the preset (rho, lambda, T, head depth, ...).
        backbone: ``resnet18``, ``resnet50`` or ``convnet``.
        stem: ResNet stem, ``cifar`` (3x3, stride 1, no max-pool) or ``imagenet``.
        cifar_stem_padding: padding of the CIFAR stem conv (official 2).
        backbone_width: width of the ``convnet`` backbone.
        backbone_norm: normalisation of the ``convnet``: ``batch`` or ``group`` (batch-independent).
        in_channels, num_classes: set from the data module.
        proj_hidden_dim, proj_output_dim: projector H and K (CIFAR 2048/256, IN-100 16384/2048).
        optim: optimiser and schedule.
        batch_size_for_scaling: total batch (per process x processes) for the linear lr rule;
            filled in by ``bayesncl fit``.
        channels_last: NHWC memory format (faster convolutions on recent GPUs).
        finite_check_every: check the loss for NaN/Inf every this many steps (one host sync).
        seed: seed of the per-step randomness (Gumbel/logistic gate noise).
    """

    def __init__(
        self,
        method: str = "bayesncl",
        method_overrides: MethodOverrides = MethodOverrides(),
        backbone: str = "resnet18",
        stem: Stem = "cifar",
        cifar_stem_padding: int = 2,
        backbone_width: int = 32,
        backbone_norm: Literal["batch", "group"] = "batch",
        in_channels: int = 3,
        num_classes: int = 10,
        proj_hidden_dim: int = 2048,
        proj_output_dim: int = 256,
        optim: OptimConfig = OptimConfig(),
        batch_size_for_scaling: int = 256,
        channels_last: bool = False,
        finite_check_every: int = 50,
        seed: int = 0,
    ) -> None:
        super().__init__()
        method_cfg = resolve_method(method, method_overrides)
        self.optim_cfg = optim
        hp: dict[str, Any] = {
            k: v for k, v in locals().items() if k not in ("self", "__class__", "method_cfg")
        }
        hp["method_overrides"] = asdict(method_overrides)
        hp["optim"] = asdict(self.optim_cfg)
        self.save_hyperparameters(hp)
        if finite_check_every < 0:
            raise ValueError("model.finite_check_every must be >= 0 (0 disables the check)")
        net, dim = build_backbone(
            backbone, stem, cifar_stem_padding, in_channels, backbone_width, backbone_norm
        )
        self.encoder = Encoder(net, dim, method_cfg, proj_hidden_dim, proj_output_dim)
        self.classifier = nn.Linear(dim, num_classes)
        if channels_last:
            self.encoder.backbone.to(memory_format=torch.channels_last)
        self.val_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.val_interp = InterpretabilityMetrics(proj_output_dim, num_classes)
        self.run_config: dict[str, Any] | None = None
        self._epoch_keys: list[str] = []
        self._epoch_sums: Tensor | None = None
        self._epoch_steps = 0

    # ----------------------------------------------------------------- training
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # per-step randomness is a function of (seed, step): identical after a resume
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.global_step)

    def training_step(self, batch: tuple[Tensor, list[Tensor], Tensor], batch_idx: int) -> Tensor:
        idx, views, labels = batch
        n_views = len(views)
        x = torch.cat(views)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        rep = self.encoder.represent(x)
        terms = self.encoder.head.loss(rep, idx.repeat(n_views))
        logits = self.classifier(rep.h.detach())
        targets = labels.repeat(n_views)
        ce = F.cross_entropy(logits, targets)
        every = self.hparams.finite_check_every
        if every and self.global_step % every == 0:
            check_finite(terms)
        logs = {"train/loss": terms.total, "train/nce": terms.nce, "train/online_ce": ce}
        if rep.mask is not None:
            logs["train/kl"] = terms.kl
            logs["train/gate_open"] = rep.mask.detach().mean()
        logs["train/online_acc1"] = (logits.detach().argmax(1) == targets).float().mean()
        self._accumulate_epoch_logs(logs)
        # step values go to the loggers only every trainer.log_every_n_steps steps, so they are
        # handed to Lightning only then (each self.log costs Lightning bookkeeping)
        trainer = self._trainer
        if trainer is None or (self.global_step + 1) % max(trainer.log_every_n_steps, 1) == 0:
            self.log_dict(logs, on_step=True, on_epoch=False, batch_size=idx.shape[0])
        return terms.total + ce

    def _accumulate_epoch_logs(self, logs: dict[str, Tensor]) -> None:
        values = torch.stack([v.detach().float() for v in logs.values()])
        if self._epoch_sums is None:
            self._epoch_keys, self._epoch_sums = list(logs), torch.zeros_like(values)
        self._epoch_sums += values  # on the device: no host sync per step
        self._epoch_steps += 1

    def on_train_epoch_end(self) -> None:
        """Epoch means of the step values, averaged over processes once per epoch."""
        if self._epoch_sums is not None and self._epoch_steps:
            means = self._epoch_sums / self._epoch_steps
            self.log_dict(
                {f"{k}_epoch": v for k, v in zip(self._epoch_keys, means, strict=True)},
                sync_dist=True,
            )
        self._epoch_keys, self._epoch_sums, self._epoch_steps = [], None, 0

    # --------------------------------------------------------------- validation
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        rep = self.encoder.represent(x)
        logits = self.classifier(rep.h)
        self.val_acc1.update(logits, y)
        self.val_acc5.update(logits, y)
        self.val_interp.update(rep.output, y)

    def on_validation_epoch_end(self) -> None:
        out = {"val/acc1": self.val_acc1.compute(), "val/acc5": self.val_acc5.compute()}
        out.update({f"val/{k}": v for k, v in self.val_interp.compute().items()})
        self.log_dict(out, prog_bar=False)
        self.log("val_acc1", out["val/acc1"], prog_bar=True)
        for m in (self.val_acc1, self.val_acc5, self.val_interp):
            m.reset()

    # -------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_cfg
        scale = self.hparams.batch_size_for_scaling / 256 if cfg.lr_scaling == "linear" else 1.0
        gate_lr = (
            cfg.lr * scale
            if cfg.gate_lr is None
            else cfg.gate_lr * (scale if cfg.scale_gate_lr else 1.0)
        )
        modules = {
            "backbone": (self.encoder.backbone, cfg.lr * scale, cfg.weight_decay),
            "projector": (self.encoder.head.projector, cfg.lr * scale, cfg.weight_decay),
            "classifier": (self.classifier, cfg.classifier_lr * scale, 0.0),
        }
        if self.encoder.head.gate is not None:
            modules["gate"] = (self.encoder.head.gate, gate_lr, cfg.weight_decay)
        optimizer = make_optimizer(cfg, param_groups(modules))
        total = int(self.trainer.estimated_stepping_batches)
        batches = self.trainer.num_training_batches
        per_epoch = (
            max(1, math.ceil(batches / self.trainer.accumulate_grad_batches))
            if math.isfinite(batches)
            else total
        )
        scheduler = make_scheduler(optimizer, cfg, total, per_epoch)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["bayesncl"] = {"config": self.run_config, "format": 1}
