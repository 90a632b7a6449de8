"""Data-parallel training across processes, on torch's own engine, when launched by torchrun.

    torchrun --nproc_per_node=4 -m kws train --dataset synth

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; without them everything
here is a no-op and kws trains in one process. Each rank trains on its own shard of every batch;
DistributedDataParallel averages the gradients, so the model sees the same global batch as a
single process would. Only rank 0 writes checkpoints, logs and pictures.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(device: str) -> None:
    """Join the process group torchrun prepared, on the engines `backend` names."""
    if world_size() <= 1 or dist.is_initialized():
        return
    name = backend(device)
    if "nccl" in name:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(name)


def backend(device: str) -> str:
    """The process group's engines: nccl for the gradients on GPUs, and gloo beside it for the few
    CPU tensors the ranks agree on (a stop flag, an epoch's sums), which nccl cannot carry."""
    return "cpu:gloo,cuda:nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"


def local_device(device: torch.device) -> torch.device:
    """On GPUs, each rank drives the GPU torchrun assigned it."""
    if device.type == "cuda" and active():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    if active():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (a download, a corpus build), then the other ranks run it and
    find its work done on disk; in one process, just the block."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's value, on every rank (a run folder name, say)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across(values: list[float]) -> list[float]:
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def any_across(flag: bool) -> bool:
    """True on every rank when any rank says so: a Ctrl-C seen by one rank stops all at the same step,
    instead of leaving the others waiting forever in the next gradient all-reduce."""
    if not active():
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch; every rank gets the same count, so their random
    augmentation draws stay in step (the few samples over a multiple of the world size are left out)."""
    if not active():
        return indices
    n = dist.get_world_size()
    usable = len(indices) - len(indices) % n
    return indices[:usable][dist.get_rank()::n]


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def cleanup(finished: bool) -> None:
    """Leave the group. After a finished run every rank first waits for the others: a rank that tears
    its gloo connections down while rank 0 is still writing can abort ("terminate called without an
    active exception")."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished and active():
        dist.barrier()
    dist.destroy_process_group()
