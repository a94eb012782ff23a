"""Backbones and the full encoder (backbone + NCL head) with its one ``represent`` path."""

from bayesncl.models.backbones import BACKBONES, build_backbone, convnet, resnet
from bayesncl.models.encoder import Encoder
from bayesncl.models.text import TextTower, Tokenizer

__all__ = [
    "BACKBONES",
    "Encoder",
    "TextTower",
    "Tokenizer",
    "build_backbone",
    "convnet",
    "resnet",
]
