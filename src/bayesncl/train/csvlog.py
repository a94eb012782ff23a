"""RUN_DIR/logs/metrics.csv that a resumed run continues (Lightning's CSVLogger deletes it).

Same file format as Lightning's CSVLogger (one row per logged step, the columns sorted, a ``step``
column). :meth:`RunCSVLogger.begin` is called once the checkpoint is chosen: a fresh run starts
a new file; a resumed run keeps the rows of the steps its checkpoint holds (``step`` below the
checkpoint's global step) and drops those a killed segment logged after its last checkpoint,
since the resumed run logs those steps again. A new column rewrites the file through a
temporary file and a rename; rows are otherwise appended.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

METRICS = "metrics.csv"


def _value(v: Any) -> Any:
    return v.item() if isinstance(v, torch.Tensor) else v


def _step_of(row: dict[str, str]) -> int | None:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None


class RunCSVLogger(Logger):
    """Metrics of every segment of a run in RUN_DIR/logs/metrics.csv."""

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self._dir = Path(log_dir)
        self.path = self._dir / METRICS
        self._rows: list[dict[str, Any]] = []
        self._header: list[str] | None = None

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return self._dir.name

    @property
    def root_dir(self) -> str:
        return str(self._dir.parent)

    @property
    def save_dir(self) -> str:
        return str(self._dir.parent)

    @property
    def log_dir(self) -> str:
        return str(self._dir)

    def _read(self) -> tuple[list[str] | None, list[dict[str, str]]]:
        if not self.path.is_file():
            return None, []
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return (list(reader.fieldnames) if reader.fieldnames else None), rows

    def _write_all(self, header: list[str], rows: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{METRICS}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)
        self._header = header

    @rank_zero_only
    def begin(self, resume_step: int | None) -> None:
        """Start a new file (``resume_step is None``) or keep the rows of steps below it."""
        self._dir.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.unlink(missing_ok=True)
            self._header = None
            return
        header, rows = self._read()
        if header is None:
            return
        kept = [r for r in rows if (s := _step_of(r)) is not None and s < resume_step]
        if len(kept) != len(rows):  # steps logged after the checkpoint, or a torn last line
            self._write_all(header, kept)
        self._header = header

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        row = {k: _value(v) for k, v in metrics.items()}
        row["step"] = step if step is not None else len(self._rows)
        self._rows.append(row)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: the run's settings are RUN_DIR/config.yaml."""

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        if self._header is None and self.path.is_file():
            self._header = self._read()[0]
        keys = set().union(*self._rows)
        if self._header is None or not keys <= set(self._header):
            header, old = self._read()
            self._write_all(sorted(set(header or []) | keys), [*old, *self._rows])
        else:
            with self.path.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._header, restval="")
                writer.writerows(self._rows)
        self._rows = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
