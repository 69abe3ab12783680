"""Running under ``torchrun``: one process per device, gloo on CPU, NCCL on GPU.

``torchrun --nproc-per-node N -m zoo finetune ...`` (or ``--nnodes``) sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; the run then trains with DistributedDataParallel and a
distributed sampler, every process reads its share of each batch, and only rank 0 writes
files and prints. Without those variables everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist

from zoo.errors import ZooError


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: torch.device) -> torch.device:
    """Join the process group; each process takes the GPU of its LOCAL_RANK."""
    if not launched() or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    except (RuntimeError, ValueError) as error:
        raise ZooError(f"cannot join the torchrun process group: {error}") from None
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0, also after the process group is gone (the CLI prints the report then)."""
    return rank() == 0 if dist.is_initialized() else os.environ.get("RANK", "0") == "0"


def shard(items: Iterable[int]) -> list[int]:
    """This process's share: every world-th item, from its rank."""
    return list(items)[rank() :: world()]


def gather(values: list[Any]) -> list[Any]:
    """Every process's list, concatenated (the process's own list when alone)."""
    if world() == 1:
        return values
    gathered: list[list[Any]] = [[] for _ in range(world())]
    dist.all_gather_object(gathered, values)
    return [value for part in gathered for value in part]


def total(values: torch.Tensor) -> torch.Tensor:
    """The sum over processes of a small CPU tensor of counts."""
    if world() == 1:
        return values
    on_gpu = dist.get_backend() == "nccl"  # NCCL reduces GPU tensors only
    summed = (
        values.to(torch.device("cuda", torch.cuda.current_device())) if on_gpu else values.clone()
    )
    dist.all_reduce(summed)
    return summed.cpu()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
