from .build import make_lr_scheduler, make_optimizer, restore_solver, solver_snapshot
from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR

__all__ = ["make_lr_scheduler", "make_optimizer", "restore_solver", "solver_snapshot", "WarmupCosineLR", "WarmupMultiStepLR"]
