"""Running under ``torchrun``: process group set-up, rank helpers and metric averaging.

``torchrun --nproc_per_node N -m sparse.cli train CONFIG`` (or the ``sparse`` script) sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` then joins the process group with
``gloo`` on the CPU and ``nccl`` on CUDA devices. Without those variables everything here is a
no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import ConfigError
from .validate import device_problem

__all__ = ["MAX_DEFAULT_THREADS", "DistInfo", "all_reduce_sums", "barrier", "cleanup",
           "default_num_threads", "setup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "cpu") -> tuple[DistInfo, torch.device]:
    """Join the process group if launched by ``torchrun``; return the info and the device
    this process uses (``cuda:LOCAL_RANK`` for a CUDA run).

    Raises:
        ConfigError: ``device`` is not 'cpu', 'cuda' or 'cuda:N', or names a CUDA device this
            machine does not have.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    problem = device_problem(device, need_available=True)
    if problem is not None:
        raise ConfigError(f"train.device: {device!r}: {problem}")
    dev = torch.device(device)
    if dev.type == "cuda":
        if world > 1 or dev.index is None:
            dev = torch.device("cuda", local if world > 1 else 0)
        torch.cuda.set_device(dev)
    info = DistInfo(rank, world, local)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


#: The default never asks for more threads than this: past it the per-step parallel regions
#: cost more than they split (the compiled loop splits the batch, a few items per thread).
MAX_DEFAULT_THREADS = 16


def default_num_threads() -> int:
    """Threads for one training process when ``train.num_threads`` is null: the cores this
    process may run on (its CPU affinity, which also follows a job scheduler's allocation),
    shared among the processes ``torchrun`` started on this node (``LOCAL_WORLD_SIZE``), at
    least 1 and at most :data:`MAX_DEFAULT_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_DEFAULT_THREADS, cores // local_processes))


def all_reduce_sums(values: dict[str, float], info: DistInfo,
                    device: torch.device | str = "cpu") -> dict[str, float]:
    """Sum every value over all processes (each process passes its own sums and counts, so
    ratios formed afterwards are exact averages over the whole data, not means of means)."""
    if not info.enabled or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist(), strict=True))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
