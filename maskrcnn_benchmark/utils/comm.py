"""Distributed helpers that also work in a plain single process (torch.distributed absent,
unavailable or not initialised): rank 0 of a world of 1.

``init_distributed`` joins the process group that ``torchrun`` describes in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); without those
variables it does nothing, so the same script runs alone or under torchrun.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger("maskrcnn_benchmark")


def is_dist_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist_initialized() else 0


def get_local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 when not launched by it)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    return get_rank() == 0


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise RuntimeError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer (set by torchrun)") from None


def init_distributed(device_type: str = "cpu") -> bool:
    """Join torchrun's process group: NCCL when ``device_type`` is "cuda" (and CUDA is there),
    gloo otherwise; on CUDA each process uses the GPU ``LOCAL_RANK``.

    A no-op returning False when WORLD_SIZE is unset or 1 (not launched by torchrun, or one
    process); idempotent. Returns True when running distributed.
    """
    if is_dist_initialized():
        return get_world_size() > 1
    if _env_world_size() <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE is {_env_world_size()} but {', '.join(missing)} is not set: launch "
                           "with torchrun (docs/multi_gpu.md)")
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build; run one process")
    use_nccl = device_type == "cuda" and torch.cuda.is_available()
    if use_nccl:
        local = get_local_rank()
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but this machine has {torch.cuda.device_count()} GPU(s): "
                               "use torchrun --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_nccl else "gloo", init_method="env://")
    atexit.register(_destroy)
    logger.info("distributed: rank %d of %d (local rank %d, %s)", get_rank(), get_world_size(),
                get_local_rank(), dist.get_backend())
    return True


def _destroy() -> None:
    if is_dist_initialized():
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End this process with exit status ``code``; in a process group, without Python's interpreter
    teardown (the exit handlers run and the standard streams are flushed first).

    Why: gloo's worker threads drop a collective's tensors a moment after the collective returns,
    which needs the GIL; a thread that asks for it once teardown has begun aborts the process
    ("terminate called without an active exception", PyTorch issue 190489), so a run that had
    finished and written everything would exit with SIGABRT. ``destroy_process_group`` does not
    stop those threads once a DistributedDataParallel model has existed (PyTorch 2.14).
    """
    if not is_dist_initialized():
        sys.exit(code)
    atexit._run_exitfuncs()  # logging.shutdown, _destroy, TensorBoard writers
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


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


@torch.no_grad()
def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics, which each rank updates
    from its own batches) to every rank, so all ranks evaluate the same model. No-op alone."""
    if get_world_size() == 1:
        return
    for buf in module.buffers():
        dist.broadcast(buf, src)
