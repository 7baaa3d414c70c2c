"""Data-parallel training under ``torchrun``: process group, rank-sharded batches, shared stops.

``torchrun --standalone --nproc_per_node=N -m edgesep train CONFIG`` starts N processes with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set: that is torchrun's interface, read here and
nowhere else. Each process computes ``batch_size`` examples per step and DDP averages the
gradients, so a step sees ``N * batch_size`` examples. Example ``(step * N + rank) * batch_size +
j`` of an epoch goes to rank ``rank``: with N = 1 that is the single-process stream, and a
resumed run continues it exactly. Every rank validates (the weights are the same on all, so the
scores and the learning-rate and early-stop decisions are too); only rank 0 writes logs,
checkpoints and the best model. Time limits and signals are shared through an all-reduce, so all
ranks stop at the same step. Backends: gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # also collectives

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: torch.device) -> World:
    """Join torchrun's process group when started by torchrun with more than one process; the
    returned world's ``device`` is this rank's own GPU (``cuda:LOCAL_RANK``), or the CPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(int(os.environ["RANK"]), size, local_rank, device)


def batch_indices(step: int, batch_size: int, world: World) -> range:
    """The epoch's example indices that ``world.rank`` takes at (in-epoch) ``step``."""
    start = (step * world.size + world.rank) * batch_size
    return range(start, start + batch_size)


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is true on any."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
