"""Evaluation subsets: zero-shot triplets (computed from the training data) and predicate groups.

Zero-shot triplets: a test triplet (subject class, object class, predicate) is zero-shot when no
training image has it. We compute the set from every training relation (duplicate pairs kept,
deterministic). SGB ships a fixed file (5,971 triplets) that it computed from one epoch of its
training loader, whose duplicate-pair filter picks one predicate per pair at random, so that file
cannot be reproduced exactly; ours is the deterministic definition of the same thing.

Predicate groups: a JSON file ``{"head": {"ids": [...], "names": [...]}, "body": ..., "tail": ...}``
(ids 1-based predicate indices, 0 = background), as ``data/resources/vg150_longtail_split.json``
(the BGNN / SGTR split of VG150 used for HEAD / BODY / TAIL mR@100).
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Optional, Sequence

import numpy as np

from .matching import triplet_keys

RESOURCES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "resources")
VG150_GROUPS_FILE = os.path.normpath(os.path.join(RESOURCES, "vg150_longtail_split.json"))
GROUPS_FILE_NAME = "predicate_groups.json"  # looked for beside a dataset's files (SynthVG writes it)


def _keys_of(items: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    keys = []
    for labels, relations in items:
        labels = np.asarray(labels, np.int64).reshape(-1)
        rels = np.asarray(relations, np.int64).reshape(-1, 3)
        if len(rels):
            keys.append(triplet_keys(labels[rels[:, 0]], labels[rels[:, 1]], rels[:, 2]))
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, np.int64)


def _decode(keys: np.ndarray) -> np.ndarray:
    mask = (1 << 20) - 1
    return np.stack([keys >> 40, (keys >> 20) & mask, keys & mask], 1).astype(np.int64)


def relation_triplets(items: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Distinct (subject class, object class, predicate) triplets of ``(labels [N], relations
    [M, 3])`` items, e.g. ``((g["labels"], g["relations"]) for g in gts)``. -> int64[T, 3], sorted.
    """
    return _decode(_keys_of(items))


def zeroshot_triplets(train_items: Iterable[tuple[np.ndarray, np.ndarray]],
                      test_items: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Triplets of ``test_items`` that no item of ``train_items`` has. -> int64[Z, 3], sorted.

    Items are ``(labels [N], relations [M, 3])``; for a dataset ``ds``:
    ``(ds.get_groundtruth(i)["labels"], ds.get_groundtruth(i)["relations"]) for i in range(len(ds))``.
    """
    train, test = _keys_of(train_items), _keys_of(test_items)
    return _decode(test[~np.isin(test, train)])


def dataset_items(dataset) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """``(labels, relations)`` of every image of a dataset with ``len`` and ``get_groundtruth``."""
    for i in range(len(dataset)):
        gt = dataset.get_groundtruth(i)
        yield gt["labels"], gt["relations"]


def load_predicate_groups(path: str, predicate_names: Optional[Sequence[str]] = None
                          ) -> dict[str, list[int]]:
    """Read a predicate-group JSON file -> ``{"head": [ids], "body": [...], "tail": [...]}``.

    With ``predicate_names`` (index 0 = background), the ids must be in range and, where the file
    lists names, the names must agree with the dataset's, else ValueError naming the file.
    """
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read predicate groups file {path}: {e}") from e
    groups: dict[str, list[int]] = {}
    seen: set[int] = set()
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "ids" not in entry:
            continue  # e.g. "description"
        ids = [int(i) for i in entry["ids"]]
        if seen.intersection(ids) or not ids:
            raise ValueError(f"predicate groups file {path}: group {name!r} is empty or "
                             "overlaps another group")
        seen.update(ids)
        if predicate_names is not None:
            bad = [i for i in ids if not 1 <= i < len(predicate_names)]
            if bad:
                raise ValueError(f"predicate groups file {path}: group {name!r} has ids {bad} "
                                 f"outside 1..{len(predicate_names) - 1}")
            listed = entry.get("names")
            if listed is not None and [predicate_names[i] for i in ids] != list(listed):
                raise ValueError(f"predicate groups file {path}: group {name!r} names do not "
                                 "match the dataset's predicate names; it was made for another "
                                 "dataset (put a matching predicate_groups.json beside the data)")
        groups[name] = ids
    if not groups:
        raise ValueError(f"predicate groups file {path} has no group with 'ids'")
    return groups


def find_predicate_groups(predicate_names: Sequence[str], data_files: Sequence[str] = ()
                          ) -> tuple[Optional[dict[str, list[int]]], Optional[str]]:
    """Groups for a dataset: ``predicate_groups.json`` beside one of ``data_files`` if present,
    else the VG150 split when the dataset's predicate names match it, else (None, None).
    Returns (groups, path)."""
    for data_file in data_files:
        candidate = os.path.join(os.path.dirname(data_file), GROUPS_FILE_NAME)
        if os.path.isfile(candidate):
            return load_predicate_groups(candidate, predicate_names), candidate
    if os.path.isfile(VG150_GROUPS_FILE):
        try:
            return load_predicate_groups(VG150_GROUPS_FILE, predicate_names), VG150_GROUPS_FILE
        except ValueError:
            return None, None
    return None, None
