"""The run's output folder: created with a clear error when it cannot be, and locked, so that
two runs never write into one folder at the same time.

The lock is ``flock`` on ``OUTPUT_DIR/.<name>.lock``: the kernel releases it when the holding
process ends, however it ends (SIGKILL included), so a killed run never leaves a lock behind.
The file also records the holder (host, pid, start time) for the message a second run prints.
"""
from __future__ import annotations

import errno
import logging
import fcntl
import os
import shutil
import socket
import time
from typing import IO

__all__ = ["OutputDirError", "describe_write_error", "lock_output_dir"]

logger = logging.getLogger("maskrcnn_benchmark")
_HELD: dict[str, IO] = {}  # realpath of the lock file -> its open file (locked while open)


class OutputDirError(OSError):
    """OUTPUT_DIR cannot be used: not a folder, not writable, full, or in use by another run."""


def describe_write_error(path: str, e: BaseException) -> str:
    """One line for a failed write of ``path``: the error, the free space, and the fix."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
        space = f"; {free / 2 ** 20:.0f} MiB free on its disk"
    except OSError:
        space = ""
    full = " (the disk is full)" if getattr(e, "errno", None) == errno.ENOSPC else ""
    return (f"cannot write {path}{full}: {type(e).__name__}: {first}{space}. Free some space or fix the folder's "
            "permissions (or set OUTPUT_DIR elsewhere) and rerun; the last complete checkpoint is intact")


def _make_dir(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputDirError(f"OUTPUT_DIR {path} exists and is not a folder: remove it or set OUTPUT_DIR elsewhere")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"cannot create OUTPUT_DIR {path} ({e.strerror or e}): set OUTPUT_DIR to a folder "
                             "you can write to") from e


def lock_output_dir(path: str, name: str = "train") -> None:
    """Create ``path`` if needed and take its lock ``.<name>.lock`` for the rest of this process.

    Raises :class:`OutputDirError` naming the holder when another live process holds it, or
    when the folder cannot be created or written. Taking a lock this process already holds is a
    no-op (tools called one after the other in one process, as the tests do).
    """
    _make_dir(path)
    lock = os.path.join(path, f".{name}.lock")
    key = os.path.realpath(lock)
    if key in _HELD:
        return
    try:
        f = open(lock, "a+")
    except OSError as e:
        raise OutputDirError(f"OUTPUT_DIR {path} is not writable ({e.strerror or e}): fix its permissions or set "
                             "OUTPUT_DIR elsewhere") from e
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):  # e.g. ENOLCK on some network disks
            logger.warning("cannot lock %s (%s): nothing stops a second run from writing into %s", lock,
                           e.strerror or e, path)
            return
        raise OutputDirError(f"OUTPUT_DIR {path} is in use by another {name} run ({holder}): wait for it to end, "
                             "or give this run another OUTPUT_DIR") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"host {socket.gethostname()}, pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
    except OSError as e:
        f.close()
        raise OutputDirError(describe_write_error(lock, e)) from e
    _HELD[key] = f
