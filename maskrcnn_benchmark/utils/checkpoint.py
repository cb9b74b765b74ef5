"""Checkpoints: atomic, relocatable, safe to load.

A checkpoint is a ``torch.save`` dict ``{"model", "optimizer", "scheduler", "scaler",
"iteration", "rng", "config", "format"}`` (plus ``"rng_per_rank"`` under torchrun, and the
run's ``extra`` entries such as the vocabularies) that loads with
``torch.load(weights_only=True)``.
Files are written to a temporary name and renamed, so a run killed at any moment leaves the
previous checkpoint intact; ``<save_dir>/last_checkpoint`` holds the newest file's name relative
to ``save_dir``, so output folders can move between machines. Only rank 0 writes. A checkpoint
that names its vocabularies (``"sgg_metadata"`` or ``"vocabulary"``: ``obj_classes`` /
``rel_classes``) is refused by a run on other classes, even when the shapes happen to match.
"""
from __future__ import annotations

import logging
import os
import pickle
import random
import re
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn

from .comm import all_gather, get_rank, get_world_size, is_main_process
from .output_dir import OutputDirError, describe_write_error

logger = logging.getLogger("maskrcnn_benchmark")
FORMAT = "maskrcnn_benchmark-checkpoint-v1"
LAST = "last_checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def atomic_write(path: str, write_fn) -> None:
    """Call ``write_fn(file)`` on a temporary file next to ``path``, fsync, then rename it over
    ``path``: readers see either the old file or the complete new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # full disk, read-only folder (torch.save raises RuntimeError)
        raise OutputDirError(describe_write_error(path, e)) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # directories cannot be fsynced on every platform
        pass


def read_checkpoint(path: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with errors that name the file and the fix.

    A bare state dict (tensors only, e.g. a torchvision file) is returned as ``{"model": it}``.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain containers; "
                              f"refusing to unpickle it (weights_only=True): {e}") from e
    except Exception as e:  # truncated / corrupted zip, or not a torch file at all
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); the file is "
                              f"truncated or corrupted: delete it (and fix {LAST} to name an earlier "
                              "checkpoint) or copy it again") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, not a dict")
    if "model" not in data:
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return {"model": data}
        raise CheckpointError(f"checkpoint {path} has no 'model' entry (keys: {sorted(data)[:10]})")
    return data


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _listing(names: list[str], limit: int = 20) -> str:
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], *,
                            ignore_prefixes: Iterable[str] = (), allow_missing_prefixes: Iterable[str] = (),
                            source: str = "checkpoint") -> None:
    """Load ``state`` into ``model``, refusing anything but an exact fit.

    ``ignore_prefixes``: keys starting with these are dropped from the checkpoint and may be
    missing from it (their parameters keep their current values). ``allow_missing_prefixes``:
    model keys starting with these may be absent from the checkpoint (e.g. a relation head when
    loading a detector). Any other missing key, unexpected key or shape mismatch raises a
    CheckpointError listing all of them.
    """
    ignore = tuple(ignore_prefixes)
    may_miss = ignore + tuple(allow_missing_prefixes)
    model = _unwrap(model)
    state = {k: v for k, v in _strip_module_prefix(state).items() if not k.startswith(ignore)}
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.startswith(may_miss))
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(f"{k} (checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)})"
                    for k, v in state.items() if k in own and v.shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{len(x)} {what}: {_listing(x)}" for what, x in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if x]
        raise CheckpointError(f"{source} does not fit the model (a checkpoint of another config, e.g. other "
                              f"classes or widths?): " + "; ".join(parts) +
                              ". Pass ignore_prefixes to skip parts on purpose.")
    model.load_state_dict(state, strict=False)


_VOCAB_KEYS = (("obj_classes", "object classes"), ("rel_classes", "predicate classes"))


def checkpoint_vocabulary(data: dict[str, Any]) -> dict[str, list[str]]:
    """The class names a checkpoint (or a Checkpointer's ``extra``) declares, from its
    ``"sgg_metadata"`` (relation checkpoints) or ``"vocabulary"`` (detector checkpoints) entry:
    ``{"obj_classes": [...], "rel_classes": [...]}``, only the lists present."""
    out: dict[str, list[str]] = {}
    for entry in (data.get("sgg_metadata"), data.get("vocabulary")):
        if isinstance(entry, dict):
            for key, _ in _VOCAB_KEYS:
                if entry.get(key) and key not in out:
                    out[key] = [str(c) for c in entry[key]]
    return out


def check_vocabulary(data: dict[str, Any], expected: dict[str, list[str]], source: str = "checkpoint") -> None:
    """Raise a CheckpointError listing the class names that differ between the checkpoint
    ``data`` and ``expected`` (``{"obj_classes": [...], "rel_classes": [...]}``); lists missing on
    either side are not compared."""
    stored = checkpoint_vocabulary(data)
    problems = []
    for key, what in _VOCAB_KEYS:
        a, b = stored.get(key), expected.get(key)
        if a is None or b is None or list(a) == [str(c) for c in b]:
            continue
        b = [str(c) for c in b]
        diffs = [f"{i}: {x!r} (checkpoint) vs {y!r}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(a) != len(b):
            diffs.insert(0, f"{len(a)} in the checkpoint vs {len(b)}")
        problems.append(f"{what} differ ({_listing(diffs, 8)})")
    if problems:
        raise CheckpointError(f"{source} was trained on another vocabulary: " + "; ".join(problems) +
                              ". Use a checkpoint trained on this dataset (DATASETS.*) or point the config "
                              "at the dataset the checkpoint was trained on.")


def get_rng_states() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states, in weights_only-loadable types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    ver, pystate, pygauss = random.getstate()
    return {"python": [ver, list(pystate), pygauss],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: dict[str, Any]) -> None:
    ver, pystate, pygauss = states["python"]
    random.setstate((ver, tuple(pystate), pygauss))
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class Checkpointer:
    """Saves and restores a training run in ``save_dir``.

    Args:
        model, optimizer, scheduler, scaler: the objects whose ``state_dict`` is saved (the last
            three optional; a DDP-wrapped model is unwrapped).
        save_dir: the run's output folder ("" disables saving).
        save_to_disk: default: only on the main process.
        config: the resolved CfgNode, saved as YAML text in every checkpoint.
        extra: entries added to every checkpoint (weights_only-loadable values), e.g. the
            vocabularies and statistics of ``engine.export.checkpoint_metadata``.
    """

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                 scheduler: Any = None, *, save_dir: str = "", save_to_disk: Optional[bool] = None,
                 scaler: Any = None, config: Any = None, extra: Optional[dict[str, Any]] = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.save_dir = save_dir
        self.save_to_disk = is_main_process() if save_to_disk is None else save_to_disk
        self.config = config
        self.extra = dict(extra or {})
        self.resumed: Optional[dict[str, Any]] = None  # the entries of the checkpoint resumed from

    def save(self, name: str, iteration: int, *, tag_last: bool = True, **extra: Any) -> Optional[str]:
        """Write ``<save_dir>/<name>.pth`` atomically and (if ``tag_last``) point
        ``last_checkpoint`` at it. Under torchrun every rank must call it (the RNG states of all
        ranks are gathered); rank 0 writes. Returns the path (None where this process does not write)."""
        if not self.save_dir:
            return None
        rng = all_gather(get_rng_states())  # a collective under torchrun: every rank calls save
        if not self.save_to_disk:
            return None
        data: dict[str, Any] = {"format": FORMAT, "iteration": int(iteration),
                                "model": _unwrap(self.model).state_dict(), "rng": rng[0]}
        if len(rng) > 1:
            data["rng_per_rank"] = rng
        for key, obj in (("optimizer", self.optimizer), ("scheduler", self.scheduler), ("scaler", self.scaler)):
            if obj is not None:
                data[key] = obj.state_dict()
        if self.config is not None:
            data["config"] = self.config.dump()
        data.update(self.extra)
        data.update(extra)
        fname = f"{name}.pth"
        path = os.path.join(self.save_dir, fname)
        atomic_write(path, lambda f: torch.save(data, f))
        if tag_last:
            atomic_write(os.path.join(self.save_dir, LAST), lambda f: f.write(fname.encode()))
        logger.info("saved checkpoint %s (iteration %d)", path, iteration)
        return path

    def get_checkpoint_file(self) -> str:
        """The file ``last_checkpoint`` names ("" when there is no checkpoint). Absolute names
        written by SGB on another machine fall back to the same file name inside ``save_dir``.
        Without ``last_checkpoint`` (or with an empty one) the newest readable ``model_*.pth``
        of ``save_dir`` is chosen, so a lost pointer never restarts a run over its checkpoints;
        a ``last_checkpoint`` that is not a file name is refused."""
        last = os.path.join(self.save_dir, LAST)
        if not self.save_dir:
            return ""
        name = ""
        if os.path.isfile(last):
            with open(last, "rb") as f:
                raw = f.read(4097)
            try:
                name = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                name = "\0"
            if len(raw) > 4096 or any(c in name for c in "\0\n\r"):
                raise CheckpointError(f"{last} does not hold a checkpoint file name (binary or garbled content): "
                                      "delete it to resume from the newest model_*.pth of the folder, or write "
                                      "the name of the checkpoint to resume from into it (e.g. model_final.pth)")
        if not name:
            newest = self.newest_checkpoint()
            if newest:
                logger.warning("%s is %s: resuming from the newest readable checkpoint of the folder, %s", last,
                               "empty" if os.path.isfile(last) else "missing", newest)
            return newest
        if os.path.isabs(name):
            return name if os.path.exists(name) else os.path.join(self.save_dir, os.path.basename(name))
        return os.path.join(self.save_dir, name)

    def newest_checkpoint(self) -> str:
        """The readable ``model_<iter>.pth`` / ``model_final.pth`` of ``save_dir`` with the highest
        iteration (``model_best.pth`` is never the latest state; "" when there is none)."""
        if not os.path.isdir(self.save_dir):
            return ""
        found = []
        for fname in os.listdir(self.save_dir):
            m = re.fullmatch(r"model_(\d+|final)\.pth", fname)
            if not m:
                continue
            path = os.path.join(self.save_dir, fname)
            try:
                data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                found.append((int(data["iteration"]), m.group(1) == "final", path))
            except Exception as e:  # noqa: BLE001 - an unreadable file is passed over, with its reason
                logger.warning("passing over %s: unreadable (%s: %s)", path, type(e).__name__, e)
        return max(found)[2] if found else ""

    def has_checkpoint(self) -> bool:
        return bool(self.get_checkpoint_file())

    def load(self, path: str, *, model_only: bool = False, ignore_prefixes: Iterable[str] = (),
             allow_missing_prefixes: Iterable[str] = (), restore_rng: bool = True,
             vocabulary: Optional[dict[str, list[str]]] = None) -> dict[str, Any]:
        """Load ``path`` into the model (and, unless ``model_only``, the optimizer, scheduler,
        scaler and RNG states: each rank its own when the checkpoint has them for this number of
        processes). ``vocabulary`` (default: the one in ``extra``) must match the checkpoint's,
        when it names one. Returns the remaining entries (``iteration``, ``config``, ...)."""
        data = read_checkpoint(path)
        check_vocabulary(data, checkpoint_vocabulary(self.extra) if vocabulary is None else vocabulary,
                         source=f"checkpoint {path}")
        load_state_dict_checked(self.model, data.pop("model"), ignore_prefixes=ignore_prefixes,
                                allow_missing_prefixes=allow_missing_prefixes, source=f"checkpoint {path}")
        if not model_only:
            for key, obj in (("optimizer", self.optimizer), ("scheduler", self.scheduler), ("scaler", self.scaler)):
                if obj is not None and key in data:
                    try:
                        obj.load_state_dict(data[key])
                    except (ValueError, KeyError, RuntimeError) as e:
                        raise CheckpointError(f"checkpoint {path}: its {key} state does not fit ({e})") from e
            if restore_rng:
                self._restore_rng(data, path)
        logger.info("loaded %s%s", path, " (model only)" if model_only else
                    f" (iteration {data.get('iteration', 0)})")
        return data

    @staticmethod
    def _restore_rng(data: dict[str, Any], path: str) -> None:
        per_rank, world, rank = data.get("rng_per_rank"), get_world_size(), get_rank()
        if per_rank and len(per_rank) == world:
            set_rng_states(per_rank[rank])
            return
        if per_rank or world > 1:
            logger.warning("checkpoint %s was written by %d process(es), this run has %d: random streams "
                           "continue from rank 0's state (rank 0) or the seed (other ranks), so the "
                           "run is not bit-identical to an uninterrupted one", path, len(per_rank or [0]), world)
        if "rng" in data and rank == 0:
            set_rng_states(data["rng"])

    def remove_stale_temp_files(self) -> None:
        """Delete the temporary files (``.<name>.tmp<pid>``) that writers killed in the middle of
        a save left in ``save_dir`` (main process; files of live processes are kept)."""
        if not (self.save_dir and self.save_to_disk and os.path.isdir(self.save_dir)):
            return
        for name in os.listdir(self.save_dir):
            m = re.fullmatch(r"\..+\.tmp(\d+)", name)
            if m and not _pid_alive(int(m.group(1))):
                os.remove(os.path.join(self.save_dir, name))
                logger.info("removed %s, left by a run killed while saving", name)

    def resume_or_load(self, weight: str = "", *, resume: bool = True,
                       ignore_prefixes: Iterable[str] = ()) -> int:
        """Resume from ``last_checkpoint`` (else the newest checkpoint of ``save_dir``) when there
        is one (and ``resume``), else load the model weights ``weight`` (if given). Returns the
        iteration to start from; ``self.resumed`` then holds the checkpoint's other entries. Under torchrun
        every rank must call it, and all must find the same checkpoint."""
        self.remove_stale_temp_files()
        path = self.get_checkpoint_file() if resume else ""
        seen = all_gather(path)
        if len(set(seen)) > 1:
            found = ", ".join(f"rank {r}: {p or 'none'}" for r, p in enumerate(seen))
            raise CheckpointError(f"the processes disagree on the checkpoint to resume from ({found}): OUTPUT_DIR "
                                  f"({self.save_dir}) must be one folder that every machine sees (a shared "
                                  "filesystem), or start over with --no-resume")
        if path:
            logger.info("resuming from %s", path)
            self.resumed = self.load(path, ignore_prefixes=ignore_prefixes)
            return int(self.resumed.get("iteration", 0))
        if weight:
            self.load(weight, model_only=True, ignore_prefixes=ignore_prefixes)
        return 0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
