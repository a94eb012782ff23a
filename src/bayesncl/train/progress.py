"""A line per epoch when the output is not a terminal (logs, grids, CI): progress without a bar."""

from __future__ import annotations

import sys
import time
from typing import Any

from lightning.pytorch.callbacks import Callback


def _fmt(value: Any) -> str:
    return f"{float(value):.4g}"


class EpochLine(Callback):
    """``[run] epoch 3/10  step 702  loss 5.123  val acc1 81.2%  cons 55.1%  41 s, ~2 min left``"""

    def __init__(self, name: str) -> None:
        self.name = name
        self._start = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.monotonic()
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs
        parts = [f"[{self.name}] epoch {epoch}/{total}", f"step {trainer.global_step}"]
        means = pl_module.epoch_means() if hasattr(pl_module, "epoch_means") else {}
        if "train/loss" in means:
            parts.append(f"loss {_fmt(means['train/loss'])}")
        if "val/acc1" in m:
            parts.append(f"val acc1 {100 * float(m['val/acc1']):.1f}%")
        if "val/consistency" in m:
            parts.append(f"cons {100 * float(m['val/consistency']):.1f}%")
        elapsed = time.monotonic() - self._start
        done = epoch - self._first_epoch
        left = (total - epoch) * elapsed / max(done, 1) if total and total > 0 else 0.0
        parts.append(f"{elapsed:.0f} s" + (f", ~{left / 60:.1f} min left" if left else ""))
        print("  ".join(parts), file=sys.stdout, flush=True)
