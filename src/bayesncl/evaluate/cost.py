"""Cost report: parameters, multiply-accumulates in the BayesNCL paper's convention, step time.

The paper's "FLOPs" are thop-style MAC counts of one forward pass of a two-view pair through
backbone + head (projector and whatever gate the method has) + online classifier (reference spec
§2.12): convolutions and linear layers count one MAC per multiply (taken from
``torch.utils.flop_counter``, which counts 2 FLOPs per MAC), affine BatchNorm 4 per element (thop:
2 without affine), adaptive average pooling (window + 1) per output, ReLU / max-pool / residual
additions nothing. The objective's own MACs (its similarity matrix, class weights, ...) are
reported apart, as ``gmacs_objective``, so ``gmacs_pair`` stays the paper's number.

Everything runs on a deep copy of the encoder: evaluating never changes the model (a training
step in train mode would rewrite every BatchNorm running statistic and frequency estimate).
"""

from __future__ import annotations

import copy
import time

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from bayesncl.core.objectives import Batch
from bayesncl.models.encoder import Encoder


def _extra_macs(model: nn.Module, *args: object) -> int:
    """MACs thop counts that FLOP counters ignore: BatchNorm and adaptive average pooling."""
    total = 0

    def bn_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += (4 if getattr(module, "affine", False) else 2) * output.numel()

    def pool_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        window = (inputs[0].shape[-2] // output.shape[-2]) * (
            inputs[0].shape[-1] // output.shape[-1]
        )
        total += (window + 1) * output.numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_hook(bn_hook))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            handles.append(m.register_forward_hook(pool_hook))
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
    return total


def forward_macs(module: nn.Module, *args: object) -> int:
    """MACs of ``module(*args)`` in eval mode, in the thop convention described above (the
    module's train/eval mode is restored afterwards)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*args)
        return int(counter.get_total_flops() // 2 + _extra_macs(module, *args))
    finally:
        module.train(was_training)


class PairForward(nn.Module):
    """What the paper's FLOPs column counts, on already-stacked views: backbone, then the whole
    head (projector, non-negativity, top-k, the gate whatever its kind) and the online
    classifier on the backbone features."""

    def __init__(self, encoder: Encoder, classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder, self.classifier = encoder, classifier

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder.backbone(x)
        out = self.encoder.head(h).output.sum()
        if self.classifier is not None:
            out = out + self.classifier(h).sum()
        return out


class _ObjectiveOnly(nn.Module):
    """The head's loss (objective + gate penalty) on a fixed representation of a batch."""

    def __init__(self, encoder: Encoder, rep_input: Tensor, batch: Batch) -> None:
        super().__init__()
        self.encoder, self.batch = encoder, batch
        with torch.no_grad():
            self.rep = encoder.head(encoder.backbone(rep_input))

    def forward(self) -> Tensor:
        return self.encoder.head.loss(self.rep, self.batch).total


def _step_batch(encoder: Encoder, images: int, device: torch.device) -> Batch:
    """Indexes (two views per image) and labels for one training step of any objective."""
    idx = torch.arange(images, device=device).repeat(2)
    classes = getattr(encoder.head.objective, "num_classes", None) or 1
    return Batch(indexes=idx, labels=idx % classes)


def cost_report(
    encoder: Encoder,
    image_shape: tuple[int, ...],
    classifier: nn.Module | None = None,
    batch: int = 32,
    repeats: int = 3,
) -> dict[str, float]:
    """Parameters (encoder + ``classifier``), GMACs of one two-view pair (paper convention),
    GMACs of the objective on a step batch, and the measured time of a training step (forward +
    backward of represent + loss, ``batch`` images x 2 views) on the encoder's device.

    Works on deep copies: ``encoder`` and ``classifier`` are left bit-identical.
    """
    if batch < 1 or repeats < 1:
        raise ValueError(f"cost_report: batch={batch} and repeats={repeats} must be >= 1")
    enc = copy.deepcopy(encoder)
    clf = copy.deepcopy(classifier) if classifier is not None else None
    device = next(enc.parameters()).device
    pair = torch.zeros(2, *image_shape, device=device)
    macs = forward_macs(PairForward(enc, clf), pair)
    params = sum(p.numel() for p in enc.parameters())
    params += sum(p.numel() for p in clf.parameters()) if clf is not None else 0
    gate = enc.head.gate
    gate_params = sum(p.numel() for p in gate.parameters()) if gate is not None else 0
    x = torch.randn(2 * batch, *image_shape, device=device)
    step = _step_batch(enc, batch, device)
    enc.eval()
    objective_macs = forward_macs(_ObjectiveOnly(enc, x, step))
    enc.train()
    times = []
    with torch.enable_grad():
        for i in range(repeats + 1):
            start = time.perf_counter()
            rep = enc.represent(x)
            enc.head.loss(rep, step).total.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up
                times.append(time.perf_counter() - start)
    return {
        "params": float(params),
        "gate_params": float(gate_params),
        "gmacs_pair": macs / 1e9,
        "gmacs_objective": objective_macs / 1e9,
        "step_seconds": sorted(times)[len(times) // 2],
        "step_batch": float(batch),
    }
