"""Distributed training under ``torchrun``: process-group set-up from the environment (NCCL on GPU, gloo on CPU)
and the collectives the methods need. Outside torchrun every helper is the single-process identity."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True under torchrun (WORLD_SIZE and RANK set)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device: torch.device) -> torch.device:
    """Joins the process group torchrun describes; returns this rank's device (cuda:LOCAL_RANK on GPUs)."""
    if not launched() or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated in rank order, differentiable (gradients flow back to the owner rank; with
    DDP's averaging the result is the exact full-batch gradient)."""
    if not active():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()))


@torch.no_grad()
def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over ranks."""
    return all_reduce_sum(x) / world_size() if active() else x


def shard(ds):
    """This rank's share of a dataset: samples rank, rank + N, rank + 2N, … (the whole dataset in one process)."""
    if not active():
        return ds
    from ssl_robustbench.data import subset

    return subset(ds, list(range(rank(), len(ds), world_size())))


def gather_shards(x: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of ``shard`` for per-sample results: every rank's rows put back in dataset order ([n, …])."""
    if not active():
        return x
    world, per = world_size(), -(-n // world_size())
    padded = torch.zeros(per, *x.shape[1:], dtype=x.dtype)
    padded[: len(x)] = x.cpu()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    out = torch.empty(n, *x.shape[1:], dtype=x.dtype)
    for r, part in enumerate(parts):
        out[r::world] = part[: len(range(r, n, world))]
    return out


@torch.no_grad()
def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over ranks (a copy; ``x`` itself outside torchrun)."""
    if not active():
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x


def sum_over_ranks(*values: int) -> tuple[int, ...]:
    """Integer counts summed over ranks."""
    if not active():
        return values
    return tuple(int(v) for v in all_reduce_sum(torch.tensor(values, dtype=torch.long)))


def barrier() -> None:
    if active():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
