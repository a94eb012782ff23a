"""A real two-process (gloo) check: splitting the batch over ranks changes neither the loss nor
the gradients (the bug lightly and lightning-bolts shipped, ecosystem §2 item 3)."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bayesncl.core.pipeline import NCLHead


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(10, 12), nn.ReLU())
        self.head = NCLHead(12, 32, 24, "bayesncl")

    def forward(self, x, idx):
        return self.head.loss(self.head(self.backbone(x)), idx).total


def build():
    torch.manual_seed(0)
    model = Model()
    torch.manual_seed(1)
    n = 8
    return model, torch.randn(2 * n, 10), torch.arange(n).repeat(2)


def worker(rank, world, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model, x, idx = build()
    ddp = DistributedDataParallel(model)
    # interleaved halves: the two views of a sample may sit on different ranks
    rows = torch.arange(x.shape[0])[rank::world]
    loss = ddp(x[rows], idx[rows])
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    if rank == 0:
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        torch.save({"loss": total / world, "grads": grads}, out_path)
    dist.destroy_process_group()


def test_two_rank_loss_and_gradients_equal_single_process(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    got = torch.load(out)
    model, x, idx = build()
    loss = model(x, idx)
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name
        torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-4, atol=1e-7, msg=name)
