"""Glue shared by the ``tools/`` scripts of both stages: arguments, run setup, the standard hooks
and the training entry point ``do_train``."""
from __future__ import annotations

import argparse
import logging
import os
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import nn

from maskrcnn_benchmark.config import save_config
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.utils.checkpoint import Checkpointer
from maskrcnn_benchmark.utils.comm import get_rank, is_main_process
from maskrcnn_benchmark.utils.logger import setup_logger
from maskrcnn_benchmark.utils.miscellaneous import resolve_device, seed_all

from .hooks import BestCheckpointer, EvalHook, MetricLogger, PeriodicCheckpointer, ProgressBar, TensorBoardWriter
from .trainer import HookBase, Trainer

logger = logging.getLogger("maskrcnn_benchmark")


def default_argument_parser(description: str) -> argparse.ArgumentParser:
    """``--config-file FILE [--no-resume] [--skip-test] [KEY VALUE ...]`` (SGB's form)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config-file", default="", metavar="FILE", help="YAML experiment file")
    p.add_argument("--no-resume", action="store_true",
                   help="ignore OUTPUT_DIR/last_checkpoint and start from MODEL.WEIGHT / scratch")
    p.add_argument("--skip-test", action="store_true", help="no test-set evaluation after training")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def default_setup(cfg, log_name: str = "log.txt", config_name: str = "config.yaml") -> torch.device:
    """Output folder, logger (file on rank 0), resolved config in ``OUTPUT_DIR/<config_name>``,
    seeding with ``SEED`` (+ rank); returns the device (``MODEL.DEVICE``, CPU fallback)."""
    rank = get_rank()
    if cfg.OUTPUT_DIR:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger("maskrcnn_benchmark", cfg.OUTPUT_DIR, rank, filename=log_name)
    if cfg.OUTPUT_DIR and is_main_process():
        save_config(cfg, os.path.join(cfg.OUTPUT_DIR, config_name))
        logger.info("resolved config written to %s", os.path.join(cfg.OUTPUT_DIR, config_name))
    seed_all(cfg.SEED, rank)
    device = resolve_device(cfg.MODEL.DEVICE)
    logger.info("torch %s, device %s, output %s", torch.__version__, device, cfg.OUTPUT_DIR)
    return device


def build_train_hooks(cfg, checkpointer: Checkpointer, eval_fn: Optional[Callable[[], dict]] = None,
                      best_metric: Optional[str] = None) -> list[HookBase]:
    """Validation (every SOLVER.VAL_PERIOD when SOLVER.TO_VAL and ``eval_fn``), ``model_best``
    on ``best_metric`` (e.g. "val/mAP@0.5"), checkpoints every SOLVER.CHECKPOINT_PERIOD, log lines
    and TensorBoard every LOG_PERIOD, and a progress bar, in that order."""
    hooks: list[HookBase] = []
    if eval_fn is not None and cfg.SOLVER.TO_VAL:
        hooks.append(EvalHook(cfg.SOLVER.VAL_PERIOD, eval_fn))
        if best_metric:
            hooks.append(BestCheckpointer(checkpointer, best_metric))
    hooks += [PeriodicCheckpointer(checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD),
              MetricLogger(cfg.LOG_PERIOD),
              TensorBoardWriter(os.path.join(cfg.OUTPUT_DIR, "tensorboard"), cfg.LOG_PERIOD),
              ProgressBar()]
    return hooks


def do_train(cfg, model: nn.Module, device: torch.device, make_train_loader: Callable[[int], Iterable], *,
             eval_fn: Optional[Callable[[], dict]] = None, resume: bool = True,
             ignore_prefixes: Sequence[str] = (), best_metric: Optional[str] = None,
             extra_hooks: Sequence[HookBase] = (), checkpoint_extra: Optional[dict] = None) -> Trainer:
    """Train ``model`` (already on ``device``) as the config says, either stage.

    Resumes from ``OUTPUT_DIR/last_checkpoint`` when there is one (unless ``resume`` is False),
    else starts from MODEL.WEIGHT (model weights only) when set. ``make_train_loader(start_iter)``
    returns the iteration-based training loader; ``eval_fn()`` returns validation numbers.
    ``checkpoint_extra``: entries written into every checkpoint (e.g.
    ``engine.export.checkpoint_metadata(cfg, statistics)``, which makes relation checkpoints
    self-contained for ``tools/sgg_infer.py``).
    Returns the trainer (``trainer.completed``, ``trainer.storage`` for the final numbers).
    """
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    trainer = Trainer.from_config(cfg, model, optimizer, scheduler, device)
    checkpointer = Checkpointer(model, optimizer, scheduler, save_dir=cfg.OUTPUT_DIR,
                                scaler=trainer.scaler, config=cfg, extra=checkpoint_extra)
    start_iter = checkpointer.resume_or_load(cfg.MODEL.WEIGHT, resume=resume, ignore_prefixes=ignore_prefixes)
    trainer.register_hooks(build_train_hooks(cfg, checkpointer, eval_fn, best_metric) + list(extra_hooks))
    if start_iter >= trainer.max_iter:
        logger.info("already trained to iteration %d (SOLVER.MAX_ITER %d): nothing to do",
                    start_iter, trainer.max_iter)
        trainer.iter = trainer.start_iter = start_iter
        trainer.completed = True
        return trainer
    trainer.train(make_train_loader(start_iter), start_iter)
    return trainer
