"""``model.compile``: the compiled backbone and head give the eager loss and gradients."""

from __future__ import annotations

import time

import pytest
import torch

from bayesncl.core.objectives import Batch
from bayesncl.train.module import PretrainModule


def _module(compile: bool) -> PretrainModule:
    torch.manual_seed(0)
    return PretrainModule(
        method="bayesncl",
        backbone="convnet",
        backbone_width=4,
        in_channels=1,
        num_classes=4,
        proj_hidden_dim=16,
        proj_output_dim=8,
        channels_last=True,
        compile=compile,
    )


def _step_one(model: PretrainModule, x: torch.Tensor, idx: torch.Tensor):
    """The loss of step 1 (both views in one forward, as training_step) and its gradients."""
    torch.manual_seed(1)
    rep = model.encoder.represent(x.contiguous(memory_format=torch.channels_last))
    loss = model.encoder.head.loss(rep, Batch(indexes=idx, labels=idx % 4)).total
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.encoder.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.slow
def test_compiled_step_one_loss_equals_eager():
    """Same weights and batch: loss to rtol 1e-5 / atol 1e-6 and gradients to atol 1e-5
    (inductor may reorder float32 sums); the compiled module keeps the checkpoint keys."""
    eager, compiled = _module(False), _module(True)
    assert compiled.hparams.compile is True and eager.hparams.compile is False
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=g)
    idx = torch.arange(8).repeat(2)
    t = time.perf_counter()
    loss_c, grads_c = _step_one(compiled, x, idx)
    assert time.perf_counter() - t < 120  # compiled, not hanging
    loss_e, grads_e = _step_one(eager, x, idx)
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
    assert grads_c.keys() == grads_e.keys()
    for k in grads_e:
        torch.testing.assert_close(grads_c[k], grads_e[k], rtol=1e-4, atol=1e-5, msg=k)


def test_compiled_step_one_loss_equals_eager_traced(monkeypatch):
    """The same check through dynamo + AOT autograd without inductor's code generation
    (``backend="aot_eager"``: seconds instead of the C++ build), so it runs in the fast suite;
    the inductor test above is marked slow. Tolerance as there."""
    original = torch.nn.Module.compile

    def aot_eager(self, *args, **kwargs):
        return original(self, *args, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch.nn.Module, "compile", aot_eager)
    torch._dynamo.reset()
    test_compiled_step_one_loss_equals_eager()
