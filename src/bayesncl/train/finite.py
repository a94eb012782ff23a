"""Non-finite guards shared by the Lightning modules (PretrainModule, TwoTowerModule).

Every step, whether the input, the representation, the loss or the gradients held a NaN/Inf is
recorded on the device (no host sync). ``check_finite_training`` reads the flags and the
weights: every ``finite_check_every`` steps, before validation and before every checkpoint is
written, so no checkpoint holds non-finite weights (the last finite one is kept).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: what each flag slot records, in order
SLOTS = ("input images", "representation", "loss", "gradients")


class FiniteGuard:
    """Mixin for a LightningModule with ``hparams.finite_check_every`` and ``optim_cfg``.

    ``finite_hint``: what to try when neither the data nor the optimisation is the cause.
    """

    finite_hint = "lower the learning rate, raise method.tau, or check the gate settings"
    _nonfinite: Tensor | None = None

    def _flag_nonfinite(self, slot: int, value: Tensor) -> None:
        """Record on the device (no host sync) whether ``value`` (slot of :data:`SLOTS`) has a
        NaN/Inf; nothing with ``finite_check_every`` 0."""
        if not self.hparams.finite_check_every:  # type: ignore[attr-defined]
            return
        if self._nonfinite is None:
            self._nonfinite = torch.zeros(len(SLOTS), dtype=torch.bool, device=value.device)
        self._nonfinite[slot] |= ~torch.isfinite(value.detach()).all()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]  # type: ignore[attr-defined]
        if grads:
            self._flag_nonfinite(3, torch.nn.utils.get_total_norm(grads))

    def check_finite_training(self) -> None:
        """Raise ``FloatingPointError`` naming what went non-finite and the likely cause."""
        flags = [False] * len(SLOTS) if self._nonfinite is None else self._nonfinite.tolist()
        params = [p.detach() for p in self.parameters()]  # type: ignore[attr-defined]
        bad_weights = bool(params) and not bool(
            torch.stack([torch.isfinite(p).all() for p in params]).all()
        )
        if not any(flags) and not bad_weights:
            return
        what = [name for name, flag in zip(SLOTS, flags, strict=True) if flag]
        if bad_weights:
            what.append("weights")
        if flags[0]:
            cause = "the data contain NaN/Inf values: check the dataset files and normalisation"
        elif flags[3] or bad_weights:
            lr = self.optim_cfg.lr  # type: ignore[attr-defined]
            cause = (
                f"the optimisation diverged: lower the learning rate (optim.lr={lr}) "
                "or use trainer.precision=32-true / bf16-mixed instead of 16-mixed"
            )
        else:
            cause = self.finite_hint
        raise FloatingPointError(
            f"training stopped at step {self.global_step}: non-finite {', '.join(what)}. "  # type: ignore[attr-defined]
            f"Likely cause: {cause}. No checkpoint was written with these values; the last "
            "finite checkpoint is kept."
        )
