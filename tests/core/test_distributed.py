"""A real two-process (gloo) check: splitting the batch over ranks changes neither the loss nor
the gradients (the bug lightly and lightning-bolts shipped, ecosystem §2 item 3)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bayesncl.core.pipeline import NCLHead


class Model(nn.Module):
    def __init__(self, method: str) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(10, 12), nn.ReLU())
        self.head = NCLHead(12, 32, 24, method)

    def forward(self, x, idx):
        return self.head.loss(self.head(self.backbone(x)), idx).total


def build(method: str):
    torch.manual_seed(0)
    model = Model(method)
    torch.manual_seed(1)
    n = 8
    return model, torch.randn(2 * n, 10), torch.arange(n).repeat(2)


def rank_rows(layout: str, rank: int, world: int, n_rows: int) -> torch.Tensor:
    """``interleaved``: the two views of a sample may sit on different ranks (NT-Xent matches
    rows by index); ``per_sample``: as in training, each rank holds both views of its own
    samples, stacked [view 1; view 2] (the spectral loss pairs rows by position)."""
    if layout == "interleaved":
        return torch.arange(n_rows)[rank::world]
    n = n_rows // 2
    mine = torch.arange(n)[rank * n // world : (rank + 1) * n // world]
    return torch.cat([mine, mine + n])


def worker(rank, world, rdzv, out_path, method, layout):
    # a rendezvous file, not a TCP port: no race for a free port with other processes
    dist.init_process_group("gloo", init_method=f"file://{rdzv}", rank=rank, world_size=world)
    model, x, idx = build(method)
    ddp = DistributedDataParallel(model)
    rows = rank_rows(layout, rank, world, x.shape[0])
    loss = ddp(x[rows], idx[rows])
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    if rank == 0:
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        torch.save({"loss": total / world, "grads": grads}, out_path)
    # both ranks reach the teardown together: a rank that destroys its group while the other
    # still uses it can abort gloo ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize(
    "method,layout",
    [("bayesncl", "interleaved"), ("nscl", "per_sample")],  # NT-Xent + gate; non-negative SCL
)
def test_two_rank_loss_and_gradients_equal_single_process(tmp_path, method, layout):
    out = tmp_path / "ddp.pt"
    args = (2, str(tmp_path / "rdzv"), str(out), method, layout)
    mp.spawn(worker, args=args, nprocs=2, join=True)
    got = torch.load(out)
    model, x, idx = build(method)
    loss = model(x, idx)
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name
        torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-4, atol=1e-7, msg=name)


def frequency_worker(rank, world, rdzv, out_path):
    from bayesncl.core.frequency import FrequencyEstimate

    dist.init_process_group("gloo", init_method=f"file://{rdzv}", rank=rank, world_size=world)
    est = FrequencyEstimate(2, momentum=0.0)
    active = torch.tensor([[1, 0], [1, 0]]) if rank == 0 else torch.tensor([[1, 1], [0, 0]])
    est.update(active)
    torch.save(est.pi, f"{out_path}.{rank}")
    # both ranks reach the teardown together: a rank that destroys its group while the other
    # still uses it can abort gloo ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def test_frequency_estimate_is_synchronised_across_ranks(tmp_path):
    out = tmp_path / "pi"
    mp.spawn(frequency_worker, args=(2, str(tmp_path / "rdzv"), str(out)), nprocs=2, join=True)
    for rank in (0, 1):  # every rank holds the frequency of the whole batch
        torch.testing.assert_close(torch.load(f"{out}.{rank}"), torch.tensor([0.75, 0.25]))
