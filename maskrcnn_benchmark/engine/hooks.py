"""Training hooks: progress bar, console metrics, TensorBoard, checkpoints, validation."""
from __future__ import annotations

import datetime
import logging
import math
import os
import sys
import time
from typing import Any, Callable, Optional

import torch

from maskrcnn_benchmark.utils.checkpoint import Checkpointer, CheckpointError
from maskrcnn_benchmark.utils.comm import (all_gather, broadcast_buffers, get_rank, get_world_size, is_main_process,
                                           synchronize)

from .trainer import HookBase

logger = logging.getLogger("maskrcnn_benchmark")


def _flatten(results: Any, prefix: str = "") -> dict[str, float]:
    """Nested dicts of numbers -> {"a/b": value}; non-numbers are dropped."""
    out: dict[str, float] = {}
    if isinstance(results, dict):
        for k, v in results.items():
            out.update(_flatten(v, f"{prefix}{k}/"))
    elif isinstance(results, (int, float)) or (isinstance(results, torch.Tensor) and results.numel() == 1):
        out[prefix.rstrip("/")] = float(results)
    return out


class _Periodic(HookBase):
    def __init__(self, period: int) -> None:
        self.period = int(period)

    def _due(self) -> bool:
        t = self.trainer
        return (self.period > 0 and t.iter % self.period == 0) or t.iter == t.max_iter


class EvalHook(_Periodic):
    """Every ``period`` iterations and after the last one, call ``eval_fn() -> dict`` (e.g.
    ``{"mAP@0.5": 0.61}``) on every rank and record its numbers as ``val/<name>`` scalars.
    Under torchrun rank 0's buffers (BatchNorm statistics) are copied to every rank first. The
    model is put back into training mode afterwards."""

    def __init__(self, period: int, eval_fn: Callable[[], dict], prefix: str = "val") -> None:
        super().__init__(period)
        self.eval_fn = eval_fn
        self.prefix = prefix
        self.last_results: dict[str, float] = {}

    def after_step(self) -> None:
        if not self._due():
            return
        self.trainer.sync()  # a non-finite loss stops the run before it is evaluated
        t0 = time.perf_counter()
        broadcast_buffers(self.trainer.model)  # every rank evaluates rank 0's model
        results = _flatten(self.eval_fn() or {})
        self.trainer.model.train()
        synchronize()
        self.last_results = results
        for k, v in results.items():
            self.trainer.storage.put_scalar(f"{self.prefix}/{k}", v, smoothing=False)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in results.items())
        logger.info("validation at iteration %d (%.1fs): %s", self.trainer.iter, time.perf_counter() - t0, shown)


class PeriodicCheckpointer(_Periodic):
    """Save ``model_<iter:07d>`` every ``period`` iterations and ``model_final`` at the end
    (only when training completed: a failed run never overwrites the last good checkpoint).

    ``max_to_keep`` > 0 deletes the older periodic checkpoints this process wrote beyond the
    newest ``max_to_keep`` (each after its successor is on disk), so that a long run does not fill
    the disk; files it did not write (an earlier process's, ``model_best``, ``model_final``) stay.
    0 keeps every one, as SGB does."""

    def __init__(self, checkpointer: Checkpointer, period: int, max_to_keep: int = 0) -> None:
        super().__init__(period)
        self.checkpointer = checkpointer
        self.max_to_keep = max_to_keep
        self._written: list[str] = []

    def after_step(self) -> None:
        t = self.trainer
        if self.period > 0 and t.iter % self.period == 0 and t.iter < t.max_iter:
            t.sync()  # never save the weights of a run whose loss went non-finite
            path = self.checkpointer.save(f"model_{t.iter:07d}", iteration=t.iter)
            if path and self.max_to_keep > 0:
                self._written.append(path)
                while len(self._written) > self.max_to_keep:
                    old = self._written.pop(0)
                    try:
                        os.remove(old)
                    except OSError as e:  # a file someone moved or locked: keeping it is harmless
                        logger.warning("could not delete the old checkpoint %s: %s", old, e)

    def after_train(self) -> None:
        t = self.trainer
        if t.completed and t.iter > t.start_iter:
            self.checkpointer.save("model_final", iteration=t.iter)


class BestCheckpointer(HookBase):
    """Save ``model_best`` whenever the scalar ``metric`` (e.g. "val/mAP@0.5", written by an
    EvalHook registered before this one) improves; ``mode`` "max" or "min". ``last_checkpoint``
    keeps naming the latest periodic checkpoint.

    A resumed run (``start_iter > 0``) must beat the score of the ``model_best`` already in the
    output folder (``self.best``, ``self.best_iter`` are read from it), else a resume after a
    good validation would replace the best model by a worse one."""

    def __init__(self, checkpointer: Checkpointer, metric: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.checkpointer = checkpointer
        self.metric = metric
        self.mode = mode
        self.best: Optional[float] = None
        self.best_iter: Optional[int] = None
        self._seen = -1

    def before_train(self) -> None:
        self.best = self.best_iter = None
        if self.trainer.start_iter > 0:  # every rank takes rank 0's record: saving is a collective
            record = all_gather(self._stored_best() if is_main_process() else None)[0]
            if isinstance(record, str):  # raised on every rank, none is left waiting
                raise CheckpointError(record)
            if record is not None:
                self.best, self.best_iter = record
                logger.info("resumed: best %s = %.4f at iteration %d (model_best.pth) is the score to beat",
                            self.metric, self.best, self.best_iter)

    def _stored_best(self) -> Optional[tuple[float, int] | str]:
        """(score, iteration) of ``<save_dir>/model_best.pth`` for this metric, if there is one
        (an error message if it cannot be read)."""
        path = os.path.join(self.checkpointer.save_dir, "model_best.pth") if self.checkpointer.save_dir else ""
        if not path or not os.path.isfile(path):
            return None
        try:  # mmap: only the two small entries are read, not the weights
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            return (f"checkpoint {path} is unreadable ({type(e).__name__}: {e}), so the resumed run cannot "
                    "tell the best score so far: move it away (the next validation writes a new one) and rerun")
        value = (data.get("best_metric") or {}).get(self.metric) if isinstance(data, dict) else None
        if value is None:
            logger.warning("%s holds no %s score; the next validation replaces it", path, self.metric)
            return None
        return float(value), int(data.get("iteration", 0))

    def after_step(self) -> None:
        entry = self.trainer.storage.latest().get(self.metric)
        if entry is None or entry[1] == self._seen:
            return
        value, it = entry
        self._seen = it
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better and math.isfinite(value):
            self.best, self.best_iter = value, it
            self.checkpointer.save("model_best", iteration=it, tag_last=False,
                                   best_metric={self.metric: value})
            logger.info("new best %s = %.4f at iteration %d", self.metric, value, it)


class PairlessBatchWarning(_Periodic):
    """Every ``period`` iterations, a warning with the number of batches whose relation head had
    no pair to score (its losses are then exactly 0: nothing is learnt). In SGDet this happens
    when the detector finds no box, e.g. an untrained MODEL.PRETRAINED_DETECTOR_CKPT. A no-op for
    models without a relation head (the detector stage)."""

    def before_train(self) -> None:
        model = self.trainer.model
        model = model.module if hasattr(model, "module") else model
        from maskrcnn_benchmark.modeling.roi_heads.relation_head.relation_head import ROIRelationHead
        self.heads = [m for m in model.modules() if isinstance(m, ROIRelationHead)]
        self.empty = self.seen = 0

    def after_step(self) -> None:
        if not self.heads:
            return
        self.seen += 1
        self.empty += int(getattr(self.heads[0], "pairs_in_batch", 1) == 0)
        if self._due():
            if self.empty:
                logger.warning("%d of the last %d batches had no relation pair to train on (their losses are 0)%s; "
                               "in SGDet the detector found no box: check MODEL.PRETRAINED_DETECTOR_CKPT",
                               self.empty, self.seen, f" on rank {get_rank()}" if get_world_size() > 1 else "")
            self.empty = self.seen = 0


class MetricLogger(_Periodic):
    """Every ``period`` iterations, one log line: iteration, ETA, smoothed losses, lr, times."""

    def before_train(self) -> None:
        self._t0 = time.perf_counter()

    def after_step(self) -> None:
        t = self.trainer
        if not self._due() or not is_main_process():
            return
        s = t.storage
        done = t.iter - t.start_iter
        eta = (time.perf_counter() - self._t0) / max(done, 1) * (t.max_iter - t.iter)
        losses = "  ".join(f"{k} {s.median(k):.4f}" for k in sorted(s.smoothed)
                           if k.startswith("loss"))
        mem = ""
        if torch.cuda.is_available() and t.device.type == "cuda":
            mem = f"  max_mem {torch.cuda.max_memory_allocated() / 2 ** 20:.0f}M"
        logger.info("iter %d/%d  eta %s  %s  lr %.6g  time %.3f  data %.3f%s", t.iter, t.max_iter,
                    datetime.timedelta(seconds=int(eta)), losses, s.latest()["lr"][0],
                    s.median("time"), s.median("data_time"), mem)


class TensorBoardWriter(_Periodic):
    """Writes to ``log_dir`` (main process only): smoothed scalars (losses, times) every
    ``period`` iterations as their window median, other scalars (lr, validation metrics) as
    soon as they are recorded."""

    def __init__(self, log_dir: str, period: int = 20) -> None:
        super().__init__(period)
        self.log_dir = log_dir
        self.writer = None
        self._written: dict[str, int] = {}

    def before_train(self) -> None:
        if is_main_process():
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(self.log_dir)

    def after_step(self) -> None:
        if self.writer is None:
            return
        s, due = self.trainer.storage, self._due()
        for name, (value, it) in s.latest().items():
            if self._written.get(name) == it:
                continue
            if name in s.smoothed:
                if due:
                    self.writer.add_scalar(name, s.median(name), it)
                    self._written[name] = it
            elif name != "lr" or due:
                self.writer.add_scalar(name, value, it)
                self._written[name] = it

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ProgressBar(HookBase):
    """tqdm bar over iterations with rate and ETA, showing the smoothed loss and lr. While it is
    shown, console log lines are printed above it (not into it); without a terminal it redraws
    every 30 s only."""

    def __init__(self, refresh: int = 1) -> None:
        self.refresh = max(1, int(refresh))
        self.bar = None
        self._redirect = None

    def before_train(self) -> None:
        if is_main_process():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm
            t = self.trainer
            tty = sys.stderr.isatty()
            self.bar = tqdm(total=t.max_iter, initial=t.start_iter, desc="train", dynamic_ncols=True,
                            mininterval=1.0 if tty else 30.0)
            self._redirect = logging_redirect_tqdm([logger])
            self._redirect.__enter__()

    def after_step(self) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if self.trainer.iter % self.refresh == 0:
            s = self.trainer.storage
            shown = {"loss": f"{s.median('loss'):.3f}"} if "loss" in s.smoothed else {}  # known at each sync
            self.bar.set_postfix(**shown, lr=f"{s.latest()['lr'][0]:.2g}", refresh=False)

    def after_train(self) -> None:
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
