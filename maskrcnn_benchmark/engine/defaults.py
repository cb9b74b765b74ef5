"""Glue shared by the ``tools/`` scripts of both stages: arguments, run setup, the standard hooks
and the training entry point ``do_train``."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Iterable, NoReturn, Optional, Sequence

import torch
from torch import nn

from maskrcnn_benchmark.config import save_config
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.utils.checkpoint import Checkpointer
from maskrcnn_benchmark.utils.comm import (broadcast_buffers, exit_process, get_local_rank, get_rank,
                                          get_world_size, init_distributed, is_main_process, synchronize)
from maskrcnn_benchmark.utils.logger import setup_logger
from maskrcnn_benchmark.utils.miscellaneous import resolve_device, seed_all

from .hooks import BestCheckpointer, EvalHook, MetricLogger, PeriodicCheckpointer, ProgressBar, TensorBoardWriter
from .trainer import HookBase, Trainer

logger = logging.getLogger("maskrcnn_benchmark")


class _ToolParser(argparse.ArgumentParser):
    """Flags written after the ``KEY VALUE`` overrides (``... SOLVER.MAX_ITER 10 --skip-test``)
    are recognised too instead of being swallowed as overrides."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns = super().parse_args(args, namespace)
        opts, rest = list(ns.opts), []
        while opts:  # keys sit at even positions; a key starting with "--" is a flag
            tok = opts.pop(0)
            if tok.startswith("--"):
                takes_value = tok in ("--config-file",) and opts
                ns = super().parse_args([tok] + ([opts.pop(0)] if takes_value else []), ns)
            else:
                rest += [tok] + opts[:1]
                opts = opts[1:]
        ns.opts = rest
        return ns


def default_argument_parser(description: str) -> argparse.ArgumentParser:
    """``--config-file FILE [--no-resume] [--skip-test] [KEY VALUE ...]`` (SGB's form)."""
    p = _ToolParser(description=description)
    p.add_argument("--config-file", default="", metavar="FILE", help="YAML experiment file")
    p.add_argument("--no-resume", action="store_true",
                   help="ignore OUTPUT_DIR/last_checkpoint and start from MODEL.WEIGHT / scratch")
    p.add_argument("--skip-test", action="store_true", help="no test-set evaluation after training")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def launch(main: Callable[[], int]) -> NoReturn:
    """End the process with a tool's ``main()``'s exit code; a user error (unknown config key,
    missing or broken dataset, unreadable or mismatched checkpoint, missing file) ends it with that
    one message on stderr and exit code 2 instead of a traceback. Under torchrun the process ends
    through :func:`~maskrcnn_benchmark.utils.comm.exit_process` (why: see there)."""
    from maskrcnn_benchmark.config import ConfigError
    from maskrcnn_benchmark.data.errors import DatasetError
    from maskrcnn_benchmark.utils.checkpoint import CheckpointError

    try:
        code = main()
    except (ConfigError, DatasetError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    exit_process(code)


def default_setup(cfg, log_name: str = "log.txt", config_name: str = "config.yaml") -> torch.device:
    """Process group (under torchrun; NCCL on CUDA, gloo on CPU; DIST_TIMEOUT_MINUTES), CUDA
    settings (CUDNN_BENCHMARK), output folder, logger (file on rank 0), resolved config in
    ``OUTPUT_DIR/<config_name>`` (rank 0), seeding with ``SEED`` (+ rank); returns the device
    (``MODEL.DEVICE``, CPU fallback; ``cuda:LOCAL_RANK`` under torchrun)."""
    on_cuda = cfg.MODEL.DEVICE.startswith("cuda") and torch.cuda.is_available()
    distributed = init_distributed("cuda" if on_cuda else "cpu", cfg.DIST_TIMEOUT_MINUTES)
    if on_cuda:
        configure_cuda(cfg.CUDNN_BENCHMARK)
    rank = get_rank()
    if cfg.OUTPUT_DIR:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger("maskrcnn_benchmark", cfg.OUTPUT_DIR, rank, filename=log_name)
    if cfg.OUTPUT_DIR and is_main_process():
        save_config(cfg, os.path.join(cfg.OUTPUT_DIR, config_name))
        logger.info("resolved config written to %s", os.path.join(cfg.OUTPUT_DIR, config_name))
    seed_all(cfg.SEED, rank)
    device = resolve_device(cfg.MODEL.DEVICE)
    if distributed and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", get_local_rank())
    logger.info("torch %s, device %s, %d process(es), output %s", torch.__version__, device,
                get_world_size(), cfg.OUTPUT_DIR)
    return device


def configure_cuda(fast: bool) -> None:
    """CUDNN_BENCHMARK: cuDNN's autotuner and TF32 matrix products / convolutions (on), or
    cuDNN's default algorithms and full float32 (off)."""
    torch.backends.cudnn.benchmark = bool(fast)
    torch.backends.cuda.matmul.allow_tf32 = bool(fast)
    torch.backends.cudnn.allow_tf32 = bool(fast)


def dataset_vocabulary(cfg, split: str = "train") -> dict[str, list[str]]:
    """``{"obj_classes", "rel_classes"}`` of the DATASETS.<split> dataset's dictionary file (index 0
    ``__background__``): what checkpoints record and loading compares (``utils.checkpoint``)."""
    from maskrcnn_benchmark.data.build import dataset_args
    from maskrcnn_benchmark.data.datasets.visual_genome import load_info

    classes, predicates, _ = load_info(dataset_args(cfg, split)[1]["dict_file"])
    return {"obj_classes": list(classes), "rel_classes": list(predicates)}


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
             extra_hooks: Sequence[HookBase] = (), checkpoint_extra: Optional[dict] = None,
             find_unused_parameters: bool = False) -> Trainer:
    """Train ``model`` (already on ``device``) as the config says, either stage.

    Resumes from ``OUTPUT_DIR/last_checkpoint`` when there is one (unless ``resume`` is False),
    else starts from MODEL.WEIGHT (model weights only) when set. ``make_train_loader(start_iter)``
    returns the iteration-based training loader; ``eval_fn()`` returns validation numbers.
    ``checkpoint_extra``: entries written into every checkpoint (e.g.
    ``engine.export.checkpoint_metadata(cfg, statistics)``, which makes relation checkpoints
    self-contained for ``tools/sgg_infer.py``).
    Under torchrun the model is wrapped in DistributedDataParallel for training (each rank one
    shard of every global batch; gradients averaged); ``find_unused_parameters``: set it when a
    batch may leave trainable parameters out of the loss (the relation head on images without
    pairs). ``model`` itself stays unwrapped, for ``eval_fn`` and the checkpoints. After training
    every rank holds rank 0's buffers (BatchNorm statistics), so evaluation is the same everywhere.
    Returns the trainer (``trainer.completed``, ``trainer.storage`` for the final numbers).
    """
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    trainer = Trainer.from_config(cfg, model, optimizer, scheduler, device)
    checkpointer = Checkpointer(model, optimizer, scheduler, save_dir=cfg.OUTPUT_DIR,
                                scaler=trainer.scaler, config=cfg, extra=checkpoint_extra)
    start_iter = checkpointer.resume_or_load(cfg.MODEL.WEIGHT, resume=resume, ignore_prefixes=ignore_prefixes)
    trainer.model = wrap_distributed(model, device, find_unused_parameters)
    trainer.register_hooks(build_train_hooks(cfg, checkpointer, eval_fn, best_metric) + list(extra_hooks))
    if start_iter >= trainer.max_iter:
        logger.info("already trained to iteration %d (SOLVER.MAX_ITER %d): nothing to do",
                    start_iter, trainer.max_iter)
        trainer.iter = trainer.start_iter = start_iter
        trainer.completed = True
        return trainer
    trainer.train(make_train_loader(start_iter), start_iter)
    broadcast_buffers(model)
    synchronize()  # rank 0 has written its checkpoints before any rank reads them
    return trainer


def wrap_distributed(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` in DistributedDataParallel when running under torchrun (else ``model``).
    Parameters with ``requires_grad=False`` (the frozen detector of stage 2) are not synchronised."""
    if get_world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index if device.index is not None else get_local_rank()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None,
                                   find_unused_parameters=find_unused_parameters)
