"""Optimizer and learning-rate scheduler from ``SOLVER``."""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR


def make_optimizer(cfg, model: nn.Module) -> torch.optim.SGD:
    """SGD with momentum over the parameters that require gradients.

    Biases get ``BASE_LR * BIAS_LR_FACTOR`` and ``WEIGHT_DECAY_BIAS``. ``SOLVER.BASE_LR`` is
    the learning rate used, whatever the batch size (SGB multiplied it by the batch; we do not).
    torch's default implementation: foreach (multi-tensor) on CUDA, the per-parameter loop on
    the CPU. Never the fused kernel: it fails (TypeError) when a parameter first gets a gradient
    after the first step (SGDet whose first batch has no pair leaves the union branch without
    one), and when GradScaler skips the first step for overflow it leaves the momentum buffers as
    uninitialised memory that the next step uses.
    """
    s = cfg.SOLVER
    if s.OPTIMIZER != "SGD":
        raise ValueError(f"SOLVER.OPTIMIZER {s.OPTIMIZER!r}: only 'SGD' is supported")
    weights, biases = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (biases if name.endswith(".bias") else weights).append(p)
    if not weights and not biases:
        raise ValueError("make_optimizer: the model has no parameter that requires a gradient")
    groups = [{"params": weights, "lr": s.BASE_LR, "weight_decay": s.WEIGHT_DECAY},
              {"params": biases, "lr": s.BASE_LR * s.BIAS_LR_FACTOR, "weight_decay": s.WEIGHT_DECAY_BIAS}]
    groups = [g for g in groups if g["params"]]
    return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, fused=False)


def make_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> LRScheduler:
    """``SOLVER.SCHEDULE.TYPE``: "WarmupMultiStepLR" (STEPS, GAMMA) or "WarmupCosineLR"
    (BASE_LR -> SCHEDULE.MIN_LR over MAX_ITER, changing every SCHEDULE.UPDATE_PERIOD)."""
    s = cfg.SOLVER
    warm = dict(warmup_factor=s.WARMUP_FACTOR, warmup_iters=s.WARMUP_ITERS, warmup_method=s.WARMUP_METHOD)
    kind = s.SCHEDULE.TYPE
    if kind == "WarmupMultiStepLR":
        return WarmupMultiStepLR(optimizer, s.STEPS, s.GAMMA, **warm)
    if kind == "WarmupCosineLR":
        return WarmupCosineLR(optimizer, s.MAX_ITER, min_lr=s.SCHEDULE.MIN_LR,
                              update_period=s.SCHEDULE.UPDATE_PERIOD, **warm)
    raise ValueError(f"SOLVER.SCHEDULE.TYPE {kind!r}: use 'WarmupMultiStepLR' or 'WarmupCosineLR'")


def solver_snapshot(optimizer: torch.optim.Optimizer, scheduler: LRScheduler) -> tuple[list[dict], dict]:
    """The optimizer's group settings (lr, momentum, weight decay, ...) and the scheduler's state
    as this run's config built them, taken before a checkpoint is loaded over them."""
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    return groups, scheduler.state_dict()


def restore_solver(snapshot: tuple[list[dict], dict], optimizer: torch.optim.Optimizer, scheduler: LRScheduler,
                   iteration: int) -> None:
    """After resuming at ``iteration``: put back this run's optimizer settings and schedule (a
    checkpoint's would silently win: a new SOLVER.BASE_LR, MAX_ITER, STEPS... would be ignored),
    keeping the loaded momentum buffers, and set the lr of ``iteration`` (the schedules are closed
    form, so an unchanged config resumes bit-identically)."""
    groups, state = snapshot
    for group, settings in zip(optimizer.param_groups, groups):
        group.update(settings)
    scheduler.load_state_dict(dict(state, last_epoch=int(iteration), _step_count=int(iteration) + 1))
