"""Load a YAML experiment plus ``KEY VALUE`` overrides, failing loudly on unknown keys or types."""
from __future__ import annotations

import ast
import os
from typing import Sequence

import yaml
from yacs.config import CfgNode

from .defaults import _C


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


def get_cfg() -> CfgNode:
    """A fresh, mutable copy of the defaults (the defaults themselves are never modified)."""
    return _C.clone()


def _parse(value):
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _check_and_coerce(key: str, old, new):
    """Return ``new`` converted to the type of ``old`` or raise ConfigError naming ``key``."""
    if isinstance(old, CfgNode):
        raise ConfigError(f"config key {key} is a group of keys; override its members instead")
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
    elif isinstance(old, float) and isinstance(new, (int, float)) and not isinstance(new, bool):
        return float(new)
    elif isinstance(old, int) and isinstance(new, int) and not isinstance(new, bool):
        return new
    elif isinstance(old, (tuple, list)) and isinstance(new, (tuple, list, int, float, str)):
        new = list(new) if isinstance(new, (tuple, list)) else [new]
        if old and not all(isinstance(v, type(old[0])) or
                           (isinstance(old[0], float) and isinstance(v, int)) for v in new):
            raise ConfigError(f"config key {key}: expected a list of {type(old[0]).__name__}, "
                              f"got {new!r}")
        if old and isinstance(old[0], float):
            new = [float(v) for v in new]
        return type(old)(new)
    elif isinstance(old, str) and isinstance(new, str):
        return new
    raise ConfigError(f"config key {key}: expected {type(old).__name__} "
                      f"(default {old!r}), got {type(new).__name__} {new!r}")


# Keys that moved to SGB's name: old configs and the configs stored in older checkpoints still load.
RENAMED_KEYS = {
    "MODEL.ROI_RELATION_HEAD.LATER_NMS_PREDICTION_THRES": "TEST.RELATION.LATER_NMS_PREDICTION_THRES",
}


def _merge(cfg: CfgNode, key: str, value, source: str) -> None:
    key = RENAMED_KEYS.get(key, key)
    node = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, CfgNode) or part not in node:
            known = ", ".join(sorted(node.keys())) if isinstance(node, CfgNode) else ""
            where = ".".join(parts[:depth]) or "the top level"
            raise ConfigError(f"unknown config key {key} (from {source}); "
                              f"keys under {where}: {known}")
        if depth < len(parts) - 1:
            node = node[part]
    node[parts[-1]] = _check_and_coerce(key, node[parts[-1]], value)


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _read_yaml(path: str) -> CfgNode:
    try:
        with open(path) as f:
            return CfgNode.load_cfg(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {path}:{where}: YAML syntax error ({what}); fix the file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} cannot be read ({e})") from e


def merge_from_file(cfg: CfgNode, path: str, _chain: tuple[str, ...] = ()) -> None:
    """Merge a YAML file (after its ``_BASE_`` file, if any) into ``cfg``; unknown keys, wrong
    types, YAML syntax errors, missing or circular ``_BASE_`` files raise ConfigError."""
    if not os.path.isfile(path):
        referrer = f" (the _BASE_ of {_chain[-1]})" if _chain else ""
        raise ConfigError(f"config file not found: {path}{referrer}")
    real = os.path.realpath(path)
    if real in (os.path.realpath(p) for p in _chain):
        raise ConfigError("_BASE_ cycle: " + " -> ".join(_chain + (path,)) + "; remove one of these _BASE_ keys")
    loaded = _read_yaml(path)
    base = loaded.pop("_BASE_", None)
    if base:  # detectron2-style inheritance, the base path relative to this file
        merge_from_file(cfg, os.path.join(os.path.dirname(path), base), _chain + (path,))
    for key, value in _flatten(loaded):
        _merge(cfg, key, value, path)


def merge_from_list(cfg: CfgNode, opts: Sequence[str]) -> None:
    """Merge command-line ``KEY VALUE`` pairs into ``cfg``."""
    if len(opts) % 2:
        raise ConfigError(f"overrides must come as KEY VALUE pairs, got an odd count: {list(opts)}")
    for key, value in zip(opts[0::2], opts[1::2]):
        _merge(cfg, key, _parse(value), "the command line")


def load_config(config_file: str | None = None, opts: Sequence[str] = ()) -> CfgNode:
    """Defaults <- YAML file <- overrides, frozen."""
    cfg = get_cfg()
    if config_file:
        merge_from_file(cfg, config_file)
    merge_from_list(cfg, list(opts))
    cfg.freeze()
    return cfg


def save_config(cfg: CfgNode, path: str) -> None:
    """Write the resolved config so a run can be reproduced from its output directory alone."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cfg.dump())
    os.replace(tmp, path)


def config_changes(old_yaml, cfg: CfgNode) -> list[str]:
    """``["SOLVER.BASE_LR 1000000.0 -> 0.04", ...]``: the keys whose value in ``cfg`` differs from
    the YAML text ``old_yaml`` (a checkpoint's config); [] when it is missing or unreadable."""
    if not old_yaml:
        return []
    try:
        old = dict(_flatten(yaml.safe_load(old_yaml) or {}))
    except yaml.YAMLError:
        return []
    new = dict(_flatten(yaml.safe_load(cfg.dump())))
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return [f"{k} {old.get(k, '(absent)')} -> {v}" for k, v in new.items() if norm(old.get(k)) != norm(v)]
