"""Per-iteration learning-rate schedules with linear (or constant) warmup.

Both return, at iteration ``it`` (``scheduler.last_epoch``, stepped once per iteration),
``base_lr * warmup(it) * decay(it)`` for every parameter group.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from typing import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def warmup_factor_at(it: int, warmup_iters: int, warmup_factor: float, method: str) -> float:
    """1 after warmup; before it, ``warmup_factor`` ("constant") or a linear ramp from
    ``warmup_factor`` at iteration 0 towards 1 ("linear")."""
    if it >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    if method == "linear":
        alpha = it / warmup_iters
        return warmup_factor * (1 - alpha) + alpha
    raise ValueError(f"SOLVER.WARMUP_METHOD must be 'constant' or 'linear', got {method!r}")


class _WarmupScheduler(LRScheduler):
    def __init__(self, optimizer: Optimizer, *, warmup_factor: float, warmup_iters: int,
                 warmup_method: str, last_epoch: int = -1) -> None:
        warmup_factor_at(0, warmup_iters, warmup_factor, warmup_method)  # validates the method
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def decay(self, it: int, base_lr: float) -> float:
        raise NotImplementedError

    def lr_at(self, it: int) -> list[float]:
        """The learning rate of every parameter group at iteration ``it``."""
        w = warmup_factor_at(it, self.warmup_iters, self.warmup_factor, self.warmup_method)
        return [w * self.decay(it, base) for base in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self.lr_at(self.last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        return self.lr_at(self.last_epoch)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the schedule and put the restored iteration's lr into the optimizer."""
        super().load_state_dict(state_dict)
        lrs = self.lr_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs


class WarmupMultiStepLR(_WarmupScheduler):
    """SGB's schedule: ``base_lr * gamma ** (number of milestones <= it)``, after warmup."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, *,
                 warmup_factor: float = 1.0 / 3, warmup_iters: int = 500, warmup_method: str = "linear",
                 last_epoch: int = -1) -> None:
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SOLVER.STEPS must be increasing, got {tuple(milestones)}")
        self.milestones = list(milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_factor=warmup_factor, warmup_iters=warmup_iters,
                         warmup_method=warmup_method, last_epoch=last_epoch)

    def decay(self, it: int, base_lr: float) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, it)


class WarmupCosineLR(_WarmupScheduler):
    """Cosine annealing from ``base_lr`` to ``min_lr`` over ``max_iters``, updated only every
    ``update_period`` iterations (the paper: every 1000 of 100k):
    ``min_lr + (base_lr - min_lr) * (1 + cos(pi * t / max_iters)) / 2`` with
    ``t = update_period * floor(it / update_period)``. Warmup, if any, ramps per iteration.
    """

    def __init__(self, optimizer: Optimizer, max_iters: int, *, min_lr: float = 0.0,
                 update_period: int = 1, warmup_factor: float = 1.0, warmup_iters: int = 0,
                 warmup_method: str = "linear", last_epoch: int = -1) -> None:
        if max_iters <= 0 or update_period <= 0:
            raise ValueError(f"WarmupCosineLR needs max_iters > 0 and update_period > 0, got "
                             f"{max_iters}, {update_period}")
        self.max_iters = max_iters
        self.min_lr = min_lr
        self.update_period = update_period
        super().__init__(optimizer, warmup_factor=warmup_factor, warmup_iters=warmup_iters,
                         warmup_method=warmup_method, last_epoch=last_epoch)

    def decay(self, it: int, base_lr: float) -> float:
        t = min(self.update_period * (it // self.update_period), self.max_iters)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t / self.max_iters))
