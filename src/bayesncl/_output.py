"""What the commands print: one verbosity for the whole process (a leaf module, no imports of
the package).

* ``-q`` (-1): errors and final results only.
* default (0): one progress display per run (Lightning's bar in a terminal, a line per epoch
  otherwise); no Lightning banners, tips or model summaries; dependencies' deprecation
  warnings hidden.
* ``-v`` (1): also Lightning's own information and the model summary.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

_ENV = "BAYESNCL_VERBOSITY"  # inherited by the grid's worker processes


def set_verbosity(level: int) -> None:
    """Set the verbosity (-1, 0 or 1) for this process and the processes it starts."""
    os.environ[_ENV] = str(max(-1, min(1, level)))
    configure()


def verbosity() -> int:
    try:
        return int(os.environ.get(_ENV, "0"))
    except ValueError:
        return 0


def configure() -> None:
    """Apply the verbosity to the loggers and warning filters of the libraries we drive."""
    level = logging.INFO if verbosity() > 0 else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(level)
    if verbosity() <= 0:
        for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
        # Lightning's advice that does not apply to these runs (workers, logging interval)
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def interactive() -> bool:
    """Whether stdout is a terminal (progress bars) or a file/pipe (one line per epoch)."""
    return sys.stdout.isatty()
