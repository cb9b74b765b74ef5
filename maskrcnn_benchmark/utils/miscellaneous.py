"""Small run-setup helpers: seeding and device selection."""
from __future__ import annotations

import logging
import random

import numpy as np
import torch

logger = logging.getLogger("maskrcnn_benchmark")


def seed_all(seed: int, rank: int = 0) -> int:
    """Seed python, numpy and torch (CPU and CUDA) with ``seed + rank``; returns that seed."""
    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % (2 ** 32))
    torch.manual_seed(s)
    return s


def resolve_device(name: str) -> torch.device:
    """``MODEL.DEVICE`` -> torch.device; "cuda" falls back to the CPU (with a log line) when
    CUDA is unavailable."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("MODEL.DEVICE is %r but CUDA is not available: running on the CPU", name)
        return torch.device("cpu")
    return torch.device(name)
