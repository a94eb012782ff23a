"""PretrainModule: the thin Lightning layer over the core (spec §1.1-§1.3).

backbone + NCL head (the core's representation path) + an online linear classifier on detached
backbone features (val top-1/top-5 during pretraining, as officially). Validation also streams
the interpretability metrics of the representation over the whole validation set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from bayesncl.core.config import MethodConfig
from bayesncl.core.losses import check_finite
from bayesncl.core.objectives import Batch
from bayesncl.core.presets import PRESETS, method_preset
from bayesncl.metrics.streaming import InterpretabilityMetrics
from bayesncl.models.backbones import Stem, build_backbone
from bayesncl.models.encoder import Encoder
from bayesncl.train.finite import FiniteGuard
from bayesncl.train.optim import OptimConfig, lightning_optimizers, param_groups

#: 2: ``hyper_parameters.method`` is a ``MethodConfig.to_dict()``; 1: a preset name plus flat
#: ``method_overrides`` (read by ``bayesncl.core.presets.from_legacy``)
CHECKPOINT_FORMAT = 2


def check_finetune(finetune: bool, init_from: str | None) -> None:
    """A fine-tuning config (``model.finetune: true``) needs the checkpoint it fine-tunes."""
    if finetune and not init_from:
        raise ValueError(
            "model.finetune=true (a finetune config) fine-tunes a pretrained backbone, but "
            "--model.init_from is not set: pass --model.init_from RUN_DIR/checkpoints/last.ckpt "
            "(a `bayesncl fit` checkpoint with the same backbone), or train from scratch with "
            "the supervised config (e.g. --config DATASET/ce)"
        )


class PretrainModule(FiniteGuard, pl.LightningModule):
    """Pretraining of one method: a :class:`MethodConfig` of the core's representation path.

    Args:
        method: the method config (nested: nonneg, topk_k, gate, objective, tau); a preset name
            (``bayesncl.core.presets.PRESETS``) or a ``to_dict()`` dict are accepted too.
        backbone: ``resnet18``, ``resnet50`` or ``convnet``.
        stem: ResNet stem, ``cifar`` (3x3, stride 1, no max-pool), ``imagenet``, or ``auto``
            (cifar for images up to 64 px, imagenet above).
        cifar_stem_padding: padding of the CIFAR stem conv (official 2).
        backbone_width: width of the ``convnet`` backbone.
        backbone_norm: normalisation of the ``convnet``: ``batch`` or ``group`` (batch-independent).
        in_channels, num_classes, image_size: set from the data module (``stem: auto`` uses the
            image size).
        proj_hidden_dim, proj_output_dim: projector H and K (CIFAR 2048/256, IN-100 16384/2048).
        optim: optimiser and schedule.
        batch_size_for_scaling: total batch (per process x processes) for the linear lr rule;
            filled in by ``bayesncl fit``.
        channels_last: NHWC memory format (faster convolutions on recent GPUs).
        compile: ``torch.compile`` the backbone's and the head's forward (in place, so
            checkpoint keys are unchanged); the first steps pay the compile time.
        finite_check_every: every this many steps, stop if any input, representation, loss term or
            gradient was NaN/Inf since the last check (one host sync; the flags are gathered on
            the device every step). Always checked before a checkpoint is written.
        seed: seed of the per-step randomness (Gumbel/logistic gate noise).
        init_from: a ``bayesncl fit`` checkpoint whose backbone weights start this run
            (fine-tuning, e.g. supervised NCE from an NCL checkpoint; loaded weights-only).
        finetune: this is a fine-tuning config (``configs/<dataset>/finetune.yaml``): without
            ``init_from`` it would train from scratch on a fine-tuning schedule, so that is an
            error (:func:`check_finetune`).
    """

    def __init__(
        self,
        method: MethodConfig = PRESETS["bayesncl"],
        backbone: str = "resnet18",
        stem: Stem = "cifar",
        cifar_stem_padding: int = 2,
        backbone_width: int = 32,
        backbone_norm: Literal["batch", "group"] = "batch",
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        proj_hidden_dim: int = 2048,
        proj_output_dim: int = 256,
        optim: OptimConfig = OptimConfig(),
        batch_size_for_scaling: int = 256,
        channels_last: bool = False,
        compile: bool = False,
        finite_check_every: int = 50,
        seed: int = 0,
        init_from: str | None = None,
        finetune: bool = False,
    ) -> None:
        check_finetune(finetune, init_from)
        super().__init__()
        if isinstance(method, str):
            method = method_preset(method)
        elif isinstance(method, Mapping):
            method = MethodConfig.from_dict(method)
        self.method = method
        self.optim_cfg = optim
        hp: dict[str, Any] = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        hp["method"] = method.to_dict()
        hp["optim"] = asdict(self.optim_cfg)
        self.save_hyperparameters(hp)
        if finite_check_every < 0:
            raise ValueError("model.finite_check_every must be >= 0 (0 disables the check)")
        net, dim = build_backbone(
            backbone,
            stem,
            cifar_stem_padding,
            in_channels,
            backbone_width,
            backbone_norm,
            image_size,
        )
        self.encoder = Encoder(net, dim, method, proj_hidden_dim, proj_output_dim, num_classes)
        self.classifier = nn.Linear(dim, num_classes)
        if channels_last:
            self.encoder.backbone.to(memory_format=torch.channels_last)
        if compile:
            self.encoder.backbone.compile()
            self.encoder.head.compile()
        self.val_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.val_interp = InterpretabilityMetrics(self.encoder.head.out_dim, num_classes)
        # objectives that classify (supervised CE/NCE) are scored on their own predictions too
        self.val_objective_acc1 = (
            MulticlassAccuracy(num_classes, top_k=1, average="micro")
            if hasattr(self.encoder.head.objective, "logits")
            else None
        )
        if init_from:
            self.init_backbone_from(init_from)
        self.run_config: dict[str, Any] | None = None
        self._epoch_keys: list[str] = []
        self._epoch_sums: Tensor | None = None
        self._epoch_steps = 0

    def init_backbone_from(self, path: str) -> None:
        """Load the backbone of another ``bayesncl fit`` checkpoint (weights only, strict)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"model.init_from={path!r}: no such checkpoint")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        except Exception as err:  # corrupt, foreign or pickled-code files: one clear message
            raise ValueError(
                f"model.init_from={path!r} is not a readable checkpoint: {err}"
            ) from None
        prefix = "encoder.backbone."
        backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            self.encoder.backbone.load_state_dict(backbone, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"model.init_from={path!r}: its backbone does not match this one "
                f"(same model.backbone and width needed): {err}"
            ) from None

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
        targets = labels.repeat(n_views)
        terms = self.encoder.head.loss(rep, Batch(indexes=idx.repeat(n_views), labels=targets))
        logits = self.classifier(rep.h.detach())
        ce = F.cross_entropy(logits, targets)
        self._flag_nonfinite(0, x)
        self._flag_nonfinite(1, rep.z)
        self._flag_nonfinite(2, terms.total)
        every = self.hparams.finite_check_every
        if every and self.global_step % every == 0:
            check_finite(terms)
            self.check_finite_training()
        logs = {"train/loss": terms.total}
        logs.update({f"train/{name}": value for name, value in terms.terms.items()})
        logs["train/online_ce"] = ce
        if rep.mask is not None:
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

    def epoch_means(self) -> dict[str, float]:
        """Means of this epoch's step values so far on this process (for progress lines)."""
        if self._epoch_sums is None or not self._epoch_steps:
            return {}
        means = (self._epoch_sums / self._epoch_steps).tolist()
        return dict(zip(self._epoch_keys, means, strict=True))

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
    def on_validation_epoch_start(self) -> None:
        self.check_finite_training()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        rep = self.encoder.represent(x)
        logits = self.classifier(rep.h)
        self.val_acc1.update(logits, y)
        self.val_acc5.update(logits, y)
        self.val_interp.update(rep.output, y)
        if self.val_objective_acc1 is not None:
            self.val_objective_acc1.update(self.encoder.head.objective.logits(rep), y)

    def on_validation_epoch_end(self) -> None:
        out = {"val/acc1": self.val_acc1.compute(), "val/acc5": self.val_acc5.compute()}
        out.update({f"val/{k}": v for k, v in self.val_interp.compute().items()})
        if self.val_objective_acc1 is not None:
            out["val/objective_acc1"] = self.val_objective_acc1.compute()
            self.val_objective_acc1.reset()
        self.log_dict(out, prog_bar=False)
        self.log("val_acc1", out["val/acc1"], prog_bar=True)
        for m in (self.val_acc1, self.val_acc5, self.val_interp):
            m.reset()

    # -------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_cfg
        scale = cfg.lr_scale(self.hparams.batch_size_for_scaling)
        gate_lr = cfg.gate_rate(scale)
        modules = {"backbone": (self.encoder.backbone, cfg.lr * scale, cfg.weight_decay)}
        modules.update(self.encoder.head.param_groups(cfg.lr * scale, cfg.weight_decay, gate_lr))
        modules["classifier"] = (self.classifier, cfg.classifier_lr * scale, 0.0)
        return lightning_optimizers(cfg, param_groups(modules), self.trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_finite_training()
        checkpoint["bayesncl"] = {"config": self.run_config, "format": CHECKPOINT_FORMAT}
