"""Process group and device handling for training: one process, or many under ``torchrun``.

``torchrun --nproc_per_node N -m facemtl train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :meth:`Dist.from_env` reads them, and :func:`init` joins PyTorch's own process
group (gloo on CPU, NCCL on CUDA). Nothing here is a home-made scheme: gradients are averaged
by :class:`~torch.nn.parallel.DistributedDataParallel`, metrics by ``all_reduce``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``world == 1`` is plain single-process training."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, weights and logs."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when present (this process's GPU under torchrun), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def init(d: Dist, device: torch.device) -> None:
    """Join the process group torchrun set up (a no-op for a single process)."""
    if d.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes; the result is on ``t``'s device (``t`` itself for one process).
    NCCL reduces only GPU tensors, so small CPU tallies make a round trip through this GPU."""
    if not dist.is_initialized():
        return t
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    x = t.to(device)
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x.to(t.device)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average gradients of parameters outside the DDP-wrapped model (e.g. learned loss weights)."""
    if not dist.is_initialized():
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def all_gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` for a single process)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
