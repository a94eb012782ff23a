"""Use a trained model outside training: ``bayesncl export`` (safetensors + JSON + model card),
:func:`load` (export directory, checkpoint or run directory -> :class:`TrainedEncoder`, never
unpickling code) and ``bayesncl encode`` (images -> features.npz). No Lightning."""

from bayesncl.export.model import (
    ModelFileError,
    ModelSettings,
    Preprocessing,
    TrainedEncoder,
    load,
)

__all__ = ["ModelFileError", "ModelSettings", "Preprocessing", "TrainedEncoder", "load"]
