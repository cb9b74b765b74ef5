"""Logging setup: a console handler on every process, a file handler on rank 0 only."""
from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


def setup_logger(name: str = "maskrcnn_benchmark", save_dir: str = "", distributed_rank: int = 0,
                 filename: str = "log.txt", level: int = logging.INFO) -> logging.Logger:
    """Configure and return the logger ``name``.

    Rank 0 logs at ``level`` to stdout and, when ``save_dir`` is given, appends to
    ``save_dir/filename``; other ranks log warnings and errors only. Calling it again replaces
    the handlers it installed earlier (no duplicated lines).
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    logger.propagate = False
    for h in list(logger.handlers):
        if getattr(h, "_sgg_handler", False):
            logger.removeHandler(h)
            h.close()
    fmt = logging.Formatter(_FORMAT, datefmt="%H:%M:%S")
    console = logging.StreamHandler(stream=sys.stdout)
    console.setLevel(level if distributed_rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    console._sgg_handler = True
    logger.addHandler(console)
    if save_dir and distributed_rank == 0:
        os.makedirs(save_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(save_dir, filename))
        fh.setFormatter(fmt)
        fh._sgg_handler = True
        logger.addHandler(fh)
    return logger
