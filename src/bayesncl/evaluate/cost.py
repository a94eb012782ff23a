"""Cost report: parameters, multiply-accumulates in the BayesNCL paper's convention, step time.

The paper's "FLOPs" are thop-style MAC counts of one forward pass of a two-view pair through
backbone + projector + online classifier (+ gate head) (reference spec §2.12): convolutions and
linear layers count one MAC per multiply (taken from ``torch.utils.flop_counter``, which counts
2 FLOPs per MAC), affine BatchNorm 4 per element (thop: 2 without affine), adaptive average pooling (window + 1) per
output, ReLU / max-pool / residual additions nothing.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from bayesncl.train.module import PretrainModule


def _extra_macs(model: nn.Module, x: Tensor) -> int:
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
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def forward_macs(module: nn.Module, x: Tensor) -> int:
    """MACs of ``module(x)`` in the thop convention described above."""
    was_training = module.training
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    macs = counter.get_total_flops() // 2 + _extra_macs(module, x)
    module.train(was_training)
    return int(macs)


class _PairForward(nn.Module):
    """backbone -> (projector, classifier, gate head) on already-stacked views: what the
    paper's FLOPs column counts."""

    def __init__(self, model: PretrainModule) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        enc = self.model.encoder
        h = enc.backbone(x)
        out = enc.head.projector(h).sum() + self.model.classifier(h).sum()
        if enc.head.gate is not None:
            out = out + enc.head.gate.head(h).sum()
        return out


def cost_report(
    model: PretrainModule, image_shape: tuple[int, int, int], batch: int = 32, repeats: int = 3
) -> dict[str, float]:
    """Parameters, GMACs of one two-view pair, and the measured time of a training step
    (forward + backward, ``batch`` images x 2 views) on the model's device."""
    device = next(model.parameters()).device
    pair = torch.zeros(2, *image_shape, device=device)
    macs = forward_macs(_PairForward(model), pair)
    params = sum(p.numel() for p in model.parameters())
    gate_params = (
        sum(p.numel() for p in model.encoder.head.gate.parameters())
        if model.encoder.head.gate
        else 0
    )
    x = torch.randn(2 * batch, *image_shape, device=device)
    idx = torch.arange(batch, device=device).repeat(2)
    model.train()
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        rep = model.encoder.represent(x)
        model.encoder.head.loss(rep, idx).total.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    model.eval()
    return {
        "params": float(params),
        "gate_params": float(gate_params),
        "gmacs_pair": macs / 1e9,
        "step_seconds": sorted(times)[len(times) // 2],
        "step_batch": float(batch),
    }
