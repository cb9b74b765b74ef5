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

from maskrcnn_benchmark.utils.comm import all_gather, get_world_size

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
    """Tensors (and ImageLists) inside lists/tuples/dicts -> ``device``, without blocking the host
    (the data loader pins the batches on CUDA machines; the stream orders the copies before use)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if hasattr(obj, "image_sizes"):
        tensors = obj.tensors.to(device, non_blocking=True)
        return obj if tensors is obj.tensors else type(obj)(tensors, obj.image_sizes)
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
        skip_nonfinite: on a NaN/inf loss skip the batch (True; decided at every iteration, one
            host sync each) or raise NonFiniteLossError (at the next :meth:`sync`).
        log_window: iterations the smoothed scalars cover (LOG_PERIOD).
        sync_period: iterations between two host syncs of the losses (default ``log_window``):
            the loop itself does not wait for the device in between (the float16 GradScaler does,
            once per step, to decide whether to skip it).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
                 max_iter: int, device: torch.device | str = "cpu", amp: bool = False,
                 grad_clip: float = 0.0, skip_nonfinite: bool = False, log_window: int = 20,
                 sync_period: Optional[int] = None) -> None:
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
        self.sync_period = max(1, int(sync_period or log_window))
        self._pending: list[tuple[int, dict[str, torch.Tensor], Optional[torch.Tensor]]] = []
        self._window_start: Optional[float] = None
        self._window_iters = 0

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
        if self._window_start is None:
            self._window_start = t0
        try:
            images, targets, _ = next(batches)
        except StopIteration:
            raise RuntimeError(f"the data loader ended after {self.iter - self.start_iter} batches; "
                               f"{self.max_iter - self.start_iter} were needed (MAX_ITER {self.max_iter}, "
                               f"start {self.start_iter})") from None
        images, targets = move_to_device(images, self.device), move_to_device(targets, self.device)
        data_time = time.perf_counter() - t0
        try:
            self._step(images, targets)
        except Exception:
            if get_world_size() == 1:  # (under torchrun the other ranks are not in a sync)
                self.sync()  # a non-finite loss of an earlier iteration (NaN weights since) is the cause
            raise
        self.storage.put_scalar("lr", self.optimizer.param_groups[0]["lr"], smoothing=False)
        if self.scheduler is not None:
            self.scheduler.step()
        self.storage.put_scalar("data_time", data_time)
        self._window_iters += 1
        if (self.iter + 1) % self.sync_period == 0 or self.iter + 1 >= self.max_iter:
            self.sync()

    def _step(self, images, targets) -> None:
        with autocast(self.device, self.amp):
            losses = self.model(images, targets)
        total = sum(losses.values())
        if self.skip_nonfinite and not self._all_finite(total):  # decided now: one sync per iteration
            self._nonfinite(losses)
            return
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        norm = None
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip).detach()
        self.scaler.step(self.optimizer)  # float16: skipped by the scaler when a gradient overflowed
        self.scaler.update()
        self._pending.append((self.iter, {k: v.detach() for k, v in losses.items()}, norm))

    def sync(self) -> None:
        """Bring the losses (and gradient norms) of the iterations since the last call to the host,
        averaged over the ranks, into ``storage``: one device sync and, under torchrun, one
        all-reduce, every ``sync_period`` iterations, at the end and before hooks save or evaluate
        (every rank calls it at the same iterations). Raises NonFiniteLossError, naming the first
        iteration whose loss was not finite, when there was one (nothing has been saved since)."""
        pending, self._pending = self._pending, []
        now = time.perf_counter()
        if self._window_iters:  # wall time per iteration: without per-step syncs a step's own
            per_iter = (now - self._window_start) / self._window_iters  # time is only launch time
            for _ in range(self._window_iters):
                self.storage.put_scalar("time", per_iter)
        self._window_start, self._window_iters = None, 0
        if not pending:
            return
        local = torch.stack([v.float().reshape(()) for _, losses, norm in pending
                             for v in [*losses.values(), *([norm] if norm is not None else [])]])
        values = local.clone()
        if get_world_size() > 1:
            torch.distributed.all_reduce(values)
            values /= get_world_size()
        values = values.tolist()  # the one host sync
        pos, it_now = 0, self.storage.iter
        for it, losses, norm in pending:
            n = len(losses) + (norm is not None)
            row = values[pos:pos + n]
            if not all(math.isfinite(v) for v in row[:len(losses)]):
                local_row = local[pos:pos + len(losses)].tolist()
                self._nonfinite_at(it, dict(zip(losses, local_row)))
            pos += n
            self.storage.iter = it
            self.storage.put_scalars(**dict(zip(losses, row)))
            self.storage.put_scalar("loss", sum(row[:len(losses)]))
            if norm is not None:
                self.storage.put_scalar("grad_norm", row[-1])
        self.storage.iter = it_now

    def _all_finite(self, total: torch.Tensor) -> bool:
        flag = torch.isfinite(total.detach()).to(torch.int32).reshape(1)
        if get_world_size() > 1:  # every rank must take the same branch
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def _nonfinite(self, losses: dict[str, torch.Tensor]) -> None:
        """SKIP_NONFINITE_LOSS: the loss of this iteration is not finite on some rank; skip it."""
        msg = self._describe(self.iter, {k: float(v.detach()) for k, v in losses.items()})
        self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        self.storage.put_scalar("skipped_batches", self.skipped, smoothing=False)
        logger.warning("%s: batch skipped (SOLVER.SKIP_NONFINITE_LOSS)", msg)

    def _nonfinite_at(self, it: int, losses: dict[str, float]) -> None:
        raise NonFiniteLossError(self._describe(it, losses) + ". Training stopped; nothing was saved after "
                                 "the last checkpoint. Lower SOLVER.BASE_LR, check the data, or set "
                                 "SOLVER.SKIP_NONFINITE_LOSS True")

    @staticmethod
    def _describe(it: int, losses: dict[str, float]) -> str:
        """"non-finite loss at iteration N: ..." with this rank's losses, or under torchrun those of
        the ranks whose losses are not finite (every rank is here)."""
        values = all_gather(losses)

        def fmt(d: dict[str, float]) -> str:
            return ", ".join(f"{k}={v:.4g}" for k, v in d.items())
        if len(values) == 1:
            detail = fmt(values[0])
        else:  # name the ranks whose losses are not finite (all of them if none is, e.g. inf - inf)
            bad = [r for r, d in enumerate(values) if not all(math.isfinite(v) for v in d.values())]
            detail = "; ".join(f"rank {r}: {fmt(values[r])}" for r in (bad or range(len(values))))
        return f"non-finite loss at iteration {it + 1}: {detail}"
