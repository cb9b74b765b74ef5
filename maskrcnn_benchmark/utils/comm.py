"""Distributed helpers that also work in a plain single process (torch.distributed absent,
unavailable or not initialised): rank 0 of a world of 1."""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def is_dist_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist_initialized() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all ranks (a no-op in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_gather(data: Any) -> list[Any]:
    """Gather any picklable object from every rank; returns ``[obj_rank0, obj_rank1, ...]``."""
    world = get_world_size()
    if world == 1:
        return [data]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, data)
    return out


def reduce_dict(values: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """Sum (or average) scalar tensors across ranks, for logging the same numbers everywhere.

    Args:
        values: name -> 0-dim tensor, the same names on every rank.
    """
    world = get_world_size()
    if world == 1 or not values:
        return values
    names = sorted(values)
    stacked = torch.stack([values[k].detach().float() for k in names])
    dist.all_reduce(stacked)
    if average:
        stacked /= world
    return dict(zip(names, stacked))
