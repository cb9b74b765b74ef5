"""Glue shared by the ``tools/`` scripts of both stages: arguments, run setup, the standard hooks
and the training entry point ``do_train``."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Callable, Iterable, NoReturn, Optional, Sequence

import torch
from torch import nn

from maskrcnn_benchmark.config import config_changes, save_config
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer, restore_solver, solver_snapshot
from maskrcnn_benchmark.utils.checkpoint import Checkpointer
from maskrcnn_benchmark.utils.comm import (all_gather, broadcast_buffers, exit_process, get_local_rank, get_rank,
                                          get_world_size, init_distributed, is_main_process, synchronize)
from maskrcnn_benchmark.utils.logger import setup_logger
from maskrcnn_benchmark.utils.miscellaneous import resolve_device, seed_all
from maskrcnn_benchmark.utils.output_dir import OutputDirError, describe_write_error, lock_output_dir

from .hooks import (BestCheckpointer, EvalHook, MetricLogger, PairlessBatchWarning, PeriodicCheckpointer, ProgressBar,
                    TensorBoardWriter)
from .trainer import HookBase, Trainer

logger = logging.getLogger("maskrcnn_benchmark")


_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


class _ToolParser(argparse.ArgumentParser):
    """Options and ``KEY VALUE`` overrides in any order (``--splits val test SOLVER.X 1``,
    ``SOLVER.X 1 --skip-test``): every token that is not one of the parser's options, or a value
    of one, starts a KEY VALUE pair. A ``nargs="+"`` option takes values while they are among its
    choices (or, without choices, while they do not look like a config key)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        tokens = list(sys.argv[1:] if args is None else args)
        options: list[str] = []
        overrides: list[str] = []
        while tokens:
            tok = tokens.pop(0)
            action = self._option_string_actions.get(tok.split("=", 1)[0]) if tok.startswith("-") else None
            if action is None:
                if tok.startswith("--"):
                    options.append(tok)  # an unknown option: argparse's error names it
                else:
                    overrides += [tok] + tokens[:1]
                    del tokens[:1]
                continue
            options.append(tok)
            if "=" in tok or action.nargs == 0:
                continue
            if action.nargs in ("+", "*"):
                while tokens and not tokens[0].startswith("--") and (
                        tokens[0] in action.choices if action.choices else not _CONFIG_KEY.match(tokens[0])):
                    options.append(tokens.pop(0))
            else:
                options += tokens[:action.nargs if isinstance(action.nargs, int) else 1]
                del tokens[:action.nargs if isinstance(action.nargs, int) else 1]
        ns = super().parse_args(options, namespace)
        ns.opts = overrides
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


def eval_argument_parser(description: str, weight_help: str) -> argparse.ArgumentParser:
    """``--config-file FILE [--splits val test] [--weight FILE] [KEY VALUE ...]``, in any order."""
    p = _ToolParser(description=description)
    p.add_argument("--config-file", default="", metavar="FILE", help="YAML experiment file")
    p.add_argument("--splits", nargs="+", default=["test"], choices=["val", "test"])
    p.add_argument("--weight", default="", metavar="FILE", help=weight_help)
    p.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def launch(main: Callable[[], int]) -> NoReturn:
    """End the process with a tool's ``main()``'s exit code; a user error (unknown config key,
    missing or broken dataset, unreadable or mismatched checkpoint, missing file, unusable or busy
    OUTPUT_DIR, full disk) ends it with that
    one message on stderr and exit code 2 instead of a traceback. Under torchrun the process ends
    through :func:`~maskrcnn_benchmark.utils.comm.exit_process` (why: see there)."""
    from maskrcnn_benchmark.config import ConfigError
    from maskrcnn_benchmark.data.errors import DatasetError
    from maskrcnn_benchmark.utils.checkpoint import CheckpointError

    try:
        code = main()
    except (ConfigError, DatasetError, CheckpointError, OutputDirError, FileNotFoundError) as e:
        print(f"error: {user_error_message(e)}", file=sys.stderr)
        code = 2
    exit_process(code)


def user_error_message(e: BaseException) -> str:
    """The message of a user error on one line. An error raised in a DataLoader worker comes
    back as "Caught X in DataLoader worker process N. Original Traceback ...": its last line
    holds the message."""
    text = str(e).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = re.sub(rf"^[\w.]*\b{type(e).__name__}: ", "", last)  # "pkg.module.DatasetError: msg" -> msg
    return " ".join(text.split("\n"))


def default_setup(cfg, log_name: str = "log.txt", config_name: str = "config.yaml") -> torch.device:
    """Process group (under torchrun; NCCL on CUDA, gloo on CPU; DIST_TIMEOUT_MINUTES), CUDA
    settings (CUDNN_BENCHMARK), output folder locked for this run (rank 0; a second training,
    resp. test, run into the same OUTPUT_DIR is refused), logger (file on rank 0), seeding with
    ``SEED`` (+ rank); returns the device (``MODEL.DEVICE``, CPU fallback; ``cuda:LOCAL_RANK``
    under torchrun). The resolved config is written later, by :func:`write_run_config`, once the
    run has started well (a refused start keeps the previous run's ``config_name``)."""
    on_cuda = cfg.MODEL.DEVICE.startswith("cuda") and torch.cuda.is_available()
    distributed = init_distributed("cuda" if on_cuda else "cpu", cfg.DIST_TIMEOUT_MINUTES)
    if on_cuda:
        configure_cuda(cfg.CUDNN_BENCHMARK)
    rank = get_rank()
    if cfg.OUTPUT_DIR:
        error = ""
        if is_main_process():
            try:
                lock_output_dir(cfg.OUTPUT_DIR, "train" if config_name == "config.yaml" else "test")
            except OutputDirError as e:
                error = str(e)
        error = all_gather(error)[0]  # every rank stops with rank 0's reason
        if error:
            raise OutputDirError(error)
    setup_logger("maskrcnn_benchmark", cfg.OUTPUT_DIR, rank, filename=log_name)
    seed_all(cfg.SEED, rank)
    device = resolve_device(cfg.MODEL.DEVICE)
    if distributed and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", get_local_rank())
    logger.info("torch %s, device %s, %d process(es), output %s", torch.__version__, device,
                get_world_size(), cfg.OUTPUT_DIR)
    return device


def write_run_config(cfg, name: str = "config.yaml") -> None:
    """The resolved config into ``OUTPUT_DIR/<name>`` (rank 0), once the run is known to start."""
    if cfg.OUTPUT_DIR and is_main_process():
        path = os.path.join(cfg.OUTPUT_DIR, name)
        try:
            save_config(cfg, path)
        except OSError as e:
            raise OutputDirError(describe_write_error(path, e)) from e
        logger.info("resolved config written to %s", path)


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
    on ``best_metric`` (e.g. "val/mAP@0.5"), checkpoints every SOLVER.CHECKPOINT_PERIOD, a
    warning about batches without relation pairs, log lines and TensorBoard every LOG_PERIOD,
    and a progress bar, in that order."""
    hooks: list[HookBase] = []
    if eval_fn is not None and cfg.SOLVER.TO_VAL:
        hooks.append(EvalHook(cfg.SOLVER.VAL_PERIOD, eval_fn))
        if best_metric:
            hooks.append(BestCheckpointer(checkpointer, best_metric))
    hooks += [PeriodicCheckpointer(checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, cfg.SOLVER.CHECKPOINTS_TO_KEEP),
              PairlessBatchWarning(cfg.LOG_PERIOD),
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
    solver = solver_snapshot(optimizer, scheduler)
    start_iter = checkpointer.resume_or_load(cfg.MODEL.WEIGHT, resume=resume, ignore_prefixes=ignore_prefixes)
    if checkpointer.resumed is not None:  # this run's SOLVER settings, not the checkpoint's
        restore_solver(solver, optimizer, scheduler, start_iter)
        changes = config_changes(checkpointer.resumed.get("config"), cfg)
        if changes:
            logger.info("resumed at iteration %d with a config that differs from the checkpoint's: %s; this run "
                        "follows its own config (optimizer settings and LR schedule from iteration %d on, "
                        "momentum buffers kept)", start_iter, "; ".join(changes), start_iter)
    write_run_config(cfg)
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
