"""Backbones and the full encoder (backbone + NCL head) with its one ``represent`` path."""

from bayesncl.models.backbones import BACKBONES, build_backbone, convnet, resnet
from bayesncl.models.encoder import Encoder

__all__ = ["BACKBONES", "Encoder", "build_backbone", "convnet", "resnet"]
