from .hooks import BestCheckpointer, EvalHook, MetricLogger, PeriodicCheckpointer, ProgressBar, TensorBoardWriter
from .trainer import EventStorage, HookBase, NonFiniteLossError, Trainer

__all__ = ["BestCheckpointer", "EvalHook", "MetricLogger", "PeriodicCheckpointer", "ProgressBar",
           "TensorBoardWriter", "EventStorage", "HookBase", "NonFiniteLossError", "Trainer"]
