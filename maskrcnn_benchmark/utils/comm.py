"""Distributed helpers that also work in a plain single process (torch.distributed absent,
unavailable or not initialised): rank 0 of a world of 1.

``init_distributed`` joins the process group that ``torchrun`` describes in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); without those
variables it does nothing, so the same script runs alone or under torchrun.
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os
import pickle
import sys
from typing import Any, Callable, NoReturn, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger("maskrcnn_benchmark")
T = TypeVar("T")


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


def init_distributed(device_type: str = "cpu", timeout_minutes: Optional[float] = None) -> bool:
    """Join torchrun's process group: NCCL when ``device_type`` is "cuda" (and CUDA is there),
    gloo otherwise; on CUDA each process uses the GPU ``LOCAL_RANK``. ``timeout_minutes``
    (DIST_TIMEOUT_MINUTES): how long a collective waits, e.g. the other ranks while rank 0
    evaluates or saves (default: torch's, 10 min for NCCL), before the run stops.

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
    timeout = datetime.timedelta(minutes=timeout_minutes) if timeout_minutes else None
    dist.init_process_group(backend="nccl" if use_nccl else "gloo", init_method="env://", timeout=timeout)
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


def gather(data: Any, dst: int = 0) -> list[Any]:
    """Gather any picklable object on rank ``dst`` only: ``[obj_rank0, obj_rank1, ...]`` there,
    ``[]`` on the other ranks (which then hold nothing of the others' data)."""
    world = get_world_size()
    if world == 1:
        return [data]
    out: Optional[list[Any]] = [None] * world if get_rank() == dst else None
    dist.gather_object(data, out, dst=dst)
    return out or []


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable)."""
    if get_world_size() == 1:
        return obj
    box = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class MainProcessError(RuntimeError):
    """Rank 0 failed in work the other ranks were waiting for (its message, for every rank)."""


def on_main_process(fn: Callable[[], T]) -> T:
    """Run ``fn()`` on rank 0 while the other ranks wait; every rank returns its result or raises
    its error (the same exception when it can be pickled, else :class:`MainProcessError`), so no
    rank is left blocked in a collective when rank 0 fails. A plain call in a single process."""
    if get_world_size() == 1:
        return fn()
    payload, original = None, None
    if is_main_process():
        try:
            payload = ("ok", fn())
        except Exception as e:  # noqa: BLE001 - handed to every rank, then raised everywhere
            original, sent = e, e
            try:
                pickle.loads(pickle.dumps(e))
            except Exception:  # noqa: BLE001 - an exception that does not survive pickling
                sent = MainProcessError(f"rank 0 failed: {type(e).__name__}: {e}")
            payload = ("error", sent)
    kind, value = broadcast_object(payload)
    if kind == "error":
        raise original if original is not None else value
    return value


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
