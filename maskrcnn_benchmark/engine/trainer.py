"""One iteration-based training loop for both stages; everything else is a hook.

The model in training mode maps ``(images, targets)`` to a dict of scalar losses; the loop sums
them, checks they are finite, back-propagates (mixed precision: ``engine.amp``), clips gradients, steps the
optimizer and the LR scheduler, and records scalars in :class:`EventStorage` for the hooks.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict, deque
from typing import Any, Iterable, Optional, Sequence

import torch
from torch import nn

from maskrcnn_benchmark.utils.comm import all_gather, get_world_size, reduce_dict

from .amp import autocast, autocast_dtype, grad_scaler

logger = logging.getLogger("maskrcnn_benchmark")


class EventStorage:
    """Scalars of the run: the latest value (and its iteration) and a window of recent ones."""

    def __init__(self, window: int = 20) -> None:
        self.iter = 0
        self._latest: dict[str, tuple[float, int]] = {}
        self._window: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self.smoothed: set[str] = set()

    def put_scalar(self, name: str, value: float, smoothing: bool = True) -> None:
        value = float(value)
        self._latest[name] = (value, self.iter)
        if smoothing:
            self.smoothed.add(name)
            self._window[name].append(value)

    def put_scalars(self, smoothing: bool = True, **values: float) -> None:
        for k, v in values.items():
            self.put_scalar(k, v, smoothing)

    def latest(self) -> dict[str, tuple[float, int]]:
        """name -> (value, iteration it was recorded at)."""
        return dict(self._latest)

    def median(self, name: str) -> float:
        vals = sorted(self._window[name])
        return vals[len(vals) // 2] if vals else float("nan")

    def global_avg(self, name: str) -> float:
        vals = self._window[name]
        return sum(vals) / len(vals) if vals else float("nan")


class HookBase:
    """Override any of these; ``self.trainer`` is set when the hook is registered.

    ``trainer.iter`` is the number of finished iterations (1..max_iter in ``after_step``).
    ``after_train`` runs even when training fails; writing hooks check ``trainer.completed``.
    """

    trainer: "Trainer"

    def before_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_train(self) -> None:
        pass


def move_to_device(obj: Any, device: torch.device) -> Any:
    """Tensors (and ImageLists) inside lists/tuples/dicts -> ``device``."""
    if isinstance(obj, torch.Tensor) or hasattr(obj, "image_sizes"):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device) for v in obj)
    return obj


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN/inf loss; nothing was saved after the last good checkpoint."""


class Trainer:
    """Iteration-based SGD loop with hooks.

    Args:
        model: training mode returns ``dict[str, 0-dim Tensor]`` of losses from
            ``model(images, targets)``; batches are ``(images, targets, indices)``.
        optimizer, scheduler: the scheduler is stepped once per iteration (also on skipped ones).
        max_iter: train until ``trainer.iter == max_iter``.
        device: batches are moved here.
        amp: mixed precision (SOLVER.AMP): float16 autocast + GradScaler on CUDA, bfloat16
            autocast on a CPU with native bf16, float32 otherwise (see ``engine.amp``).
        grad_clip: max global gradient norm (0: no clipping).
        skip_nonfinite: on a NaN/inf loss skip the batch (True) or raise NonFiniteLossError.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
                 max_iter: int, device: torch.device | str = "cpu", amp: bool = False,
                 grad_clip: float = 0.0, skip_nonfinite: bool = False, log_window: int = 20) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_iter = int(max_iter)
        self.device = torch.device(device)
        self.amp_dtype = autocast_dtype(self.device, bool(amp))
        self.amp = self.amp_dtype is not None
        self.scaler = grad_scaler(self.device, self.amp)
        self.grad_clip = float(grad_clip)
        self.skip_nonfinite = skip_nonfinite
        self.storage = EventStorage(log_window)
        self.hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.completed = False
        self.skipped = 0

    @classmethod
    def from_config(cls, cfg, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    device: torch.device) -> "Trainer":
        s = cfg.SOLVER
        return cls(model, optimizer, scheduler, max_iter=s.MAX_ITER, device=device, amp=s.AMP,
                   grad_clip=s.GRAD_NORM_CLIP, skip_nonfinite=s.SKIP_NONFINITE_LOSS, log_window=cfg.LOG_PERIOD)

    def register_hooks(self, hooks: Sequence[Optional[HookBase]]) -> None:
        """Append hooks (None entries are skipped); they run in list order."""
        for h in hooks:
            if h is not None:
                h.trainer = self
                self.hooks.append(h)

    def train(self, data_loader: Iterable, start_iter: int = 0) -> None:
        """Run iterations ``start_iter .. max_iter - 1``; ``data_loader`` must yield at least
        ``max_iter - start_iter`` batches (SGB's iteration-based loaders do exactly that)."""
        self.start_iter = self.iter = self.storage.iter = int(start_iter)
        self.completed = False
        self.model.train()
        logger.info("training from iteration %d to %d", self.start_iter, self.max_iter)
        try:
            for h in self.hooks:
                h.before_train()
            batches = iter(data_loader)
            while self.iter < self.max_iter:
                for h in self.hooks:
                    h.before_step()
                self.run_step(batches)
                self.iter += 1
                self.storage.iter = self.iter
                for h in self.hooks:
                    h.after_step()
            self.completed = True
        finally:
            for h in self.hooks:
                h.after_train()

    def run_step(self, batches) -> None:
        t0 = time.perf_counter()
        try:
            images, targets, _ = next(batches)
        except StopIteration:
            raise RuntimeError(f"the data loader ended after {self.iter - self.start_iter} batches; "
                               f"{self.max_iter - self.start_iter} were needed (MAX_ITER {self.max_iter}, "
                               f"start {self.start_iter})") from None
        images, targets = move_to_device(images, self.device), move_to_device(targets, self.device)
        data_time = time.perf_counter() - t0
        with autocast(self.device, self.amp):
            losses = self.model(images, targets)
        total = sum(losses.values())
        if not self._all_finite(total):
            self._nonfinite(losses)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if self.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
                norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                self.storage.put_scalar("grad_norm", norm.item())
            self.scaler.step(self.optimizer)
            self.scaler.update()
            logged = reduce_dict({k: v.detach() for k, v in losses.items()})
            self.storage.put_scalars(**{k: v.item() for k, v in logged.items()})
            self.storage.put_scalar("loss", sum(v.item() for v in logged.values()))
        self.storage.put_scalar("lr", self.optimizer.param_groups[0]["lr"], smoothing=False)
        if self.scheduler is not None:
            self.scheduler.step()
        self.storage.put_scalars(data_time=data_time, time=time.perf_counter() - t0)

    def _all_finite(self, total: torch.Tensor) -> bool:
        flag = torch.isfinite(total.detach()).to(torch.int32).reshape(1)
        if get_world_size() > 1:  # every rank must take the same branch
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def _nonfinite(self, losses: dict[str, torch.Tensor]) -> None:
        values = all_gather({k: float(v.detach()) for k, v in losses.items()})  # every rank is here

        def fmt(d: dict[str, float]) -> str:
            return ", ".join(f"{k}={v:.4g}" for k, v in d.items())
        if len(values) == 1:
            detail = fmt(values[0])
        else:  # name the ranks whose losses are not finite (all of them if none is, e.g. inf - inf)
            bad = [r for r, d in enumerate(values) if not all(math.isfinite(v) for v in d.values())]
            detail = "; ".join(f"rank {r}: {fmt(values[r])}" for r in (bad or range(len(values))))
        msg = f"non-finite loss at iteration {self.iter + 1}: {detail}"
        if not self.skip_nonfinite:
            raise NonFiniteLossError(msg + ". Training stopped; nothing was saved after the last checkpoint. "
                                     "Lower SOLVER.BASE_LR, check the data, or set SOLVER.SKIP_NONFINITE_LOSS True")
        self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        self.storage.put_scalar("skipped_batches", self.skipped, smoothing=False)
        logger.warning("%s: batch skipped (SOLVER.SKIP_NONFINITE_LOSS)", msg)
