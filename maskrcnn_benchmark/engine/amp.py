"""Mixed precision (SOLVER.AMP) in one place, for training and every evaluation path.

CUDA runs float16 autocast with a GradScaler; the CPU runs bfloat16 autocast (float32's
exponent range, so no loss scaling) where it has native bf16 matrix units, and float32 where it
has not (emulated bf16 is slower than float32). What stays float32 under autocast is the
model's business: losses, softmax, the alignment KL, box decoding, the frequency bias and RoI
boxes (see ``modeling``); the evaluator gets float32 copies of every output.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import platform
from typing import ContextManager, Optional

import torch

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["autocast", "autocast_dtype", "cpu_bf16_supported", "grad_scaler"]


@functools.lru_cache(maxsize=None)
def cpu_bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively: oneDNN with bf16 kernels and, on x86,
    AVX512-BF16 or AMX (without them oneDNN emulates bf16, slower than float32)."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
    except (AttributeError, RuntimeError):
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        native = [getattr(torch.cpu, f, None) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(f is not None and f() for f in native)
    return True


@functools.lru_cache(maxsize=None)
def _log_fallback(device_type: str) -> None:
    logger.info("SOLVER.AMP: this %s has no native bfloat16; running float32", device_type.upper())


def autocast_dtype(device: torch.device | str, enabled: bool = True) -> Optional[torch.dtype]:
    """The autocast dtype SOLVER.AMP means on ``device``: float16 on CUDA, bfloat16 on a CPU
    with native bf16, None (float32, said once in the log) elsewhere or when not ``enabled``."""
    if not enabled:
        return None
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and cpu_bf16_supported():
        return torch.bfloat16
    _log_fallback(kind)
    return None


def autocast(device: torch.device | str, enabled: bool = True) -> ContextManager:
    """``torch.autocast`` with :func:`autocast_dtype`'s dtype, or a no-op context for float32."""
    dtype = autocast_dtype(device, enabled)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: torch.device | str, enabled: bool = True) -> torch.amp.GradScaler:
    """A GradScaler that scales only float16 (CUDA) training; bf16 and float32 need none."""
    return torch.amp.GradScaler("cuda", enabled=autocast_dtype(device, enabled) == torch.float16)
