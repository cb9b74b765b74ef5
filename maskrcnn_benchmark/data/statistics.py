"""Frequency statistics of the training split (SGB's ``get_dataset_statistics``), cached.

``fg_matrix[s, o, p]`` counts training relations (duplicate pairs kept), ``bg_matrix[s, o]``
counts ordered pairs of boxes with a positive intersection (all ordered pairs when an image has
none), plus one; then ``fg_matrix[:, :, 0] = bg_matrix`` and
``pred_dist = log(fg / fg.sum(-1) + 1e-3)``. Boxes are compared on the 1024 scale as SGB does.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np
import torch

from .build import dataset_args
from .datasets.visual_genome import VGDataset

logger = logging.getLogger("maskrcnn_benchmark.data")
_CACHE_VERSION = 1
_KEYS = ("fg_matrix", "bg_matrix", "pred_dist", "obj_classes", "rel_classes")


def overlapping_pairs(boxes: np.ndarray, must_overlap: bool = True) -> np.ndarray:
    """Ordered pairs (i, j), i != j, whose boxes intersect with a positive area; all ordered
    pairs when ``must_overlap`` is False or no pair intersects. boxes [N, 4] xyxy -> int64[K, 2]"""
    b = np.asarray(boxes, np.float64)
    n = len(b)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    overlaps = wh[..., 0] * wh[..., 1] > 0
    np.fill_diagonal(overlaps, False)
    if not must_overlap or not overlaps.any():
        overlaps = ~np.eye(n, dtype=bool)
    return np.argwhere(overlaps).astype(np.int64)


def compute_statistics(dataset: VGDataset, must_overlap: bool = True) -> dict:
    """Statistics of every image of ``dataset`` (build it with filter_duplicate_rels=False).

    -> {"fg_matrix": LongTensor[C, C, P], "bg_matrix": LongTensor[C, C],
        "pred_dist": FloatTensor[C, C, P] (log), "obj_classes": list[str],
        "rel_classes": list[str]}
    """
    num_obj, num_rel = len(dataset.ind_to_classes), len(dataset.ind_to_predicates)
    fg = np.zeros((num_obj, num_obj, num_rel), np.int64)
    bg = np.zeros((num_obj, num_obj), np.int64)
    for i in range(len(dataset)):
        boxes, labels, rels = dataset.raw_annotations(i)
        if len(rels):
            np.add.at(fg, (labels[rels[:, 0]], labels[rels[:, 1]], rels[:, 2]), 1)
        pairs = overlapping_pairs(boxes, must_overlap)
        if len(pairs):
            np.add.at(bg, (labels[pairs[:, 0]], labels[pairs[:, 1]]), 1)
    bg += 1
    fg[:, :, 0] = bg
    pred_dist = np.log(fg / fg.sum(2)[:, :, None] + 1e-3)
    return {"fg_matrix": torch.from_numpy(fg), "bg_matrix": torch.from_numpy(bg),
            "pred_dist": torch.from_numpy(pred_dist).float(),
            "obj_classes": list(dataset.ind_to_classes),
            "rel_classes": list(dataset.ind_to_predicates)}


def statistics_cache_key(args: dict, cfg) -> str:
    """Hash of the dataset files (absolute name, size, mtime) and the split/filter settings."""
    parts = {"version": _CACHE_VERSION, "num_im": cfg.DATASETS.NUM_IM,
             "num_val_im": cfg.DATASETS.NUM_VAL_IM, "train_fraction": cfg.DATASETS.TRAIN_FRACTION,
             "filter_empty_rels": cfg.DATASETS.FILTER_EMPTY_RELS, "must_overlap": True}
    for k in ("roidb_file", "dict_file", "image_file"):
        path = os.path.abspath(args[k])
        st = os.stat(path) if os.path.exists(path) else None
        parts[k] = [path, st.st_size if st else -1, st.st_mtime_ns if st else -1]
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def get_dataset_statistics(cfg) -> dict:
    """Statistics of the DATASETS.TRAIN training split, from
    ``OUTPUT_DIR/<name>_statistics_<key>.cache`` when a cache for exactly these files and
    settings exists, else computed and cached (written atomically). See compute_statistics."""
    name, args = dataset_args(cfg, "train")
    path = os.path.join(cfg.OUTPUT_DIR, f"{name}_statistics_{statistics_cache_key(args, cfg)}"
                                        ".cache")
    if os.path.isfile(path):
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(cached, dict) and all(k in cached for k in _KEYS):
                logger.info("frequency statistics loaded from %s", path)
                return cached
        except Exception as e:  # a broken cache is recomputed, never trusted
            logger.warning("ignoring unreadable statistics cache %s (%s)", path, e)
    dataset = VGDataset(split="train", img_dir=args["img_dir"], roidb_file=args["roidb_file"],
                        dict_file=args["dict_file"], image_file=args["image_file"],
                        filter_empty_rels=cfg.DATASETS.FILTER_EMPTY_RELS,
                        num_im=cfg.DATASETS.NUM_IM, num_val_im=cfg.DATASETS.NUM_VAL_IM,
                        filter_duplicate_rels=False, filter_non_overlap=False,
                        train_fraction=cfg.DATASETS.TRAIN_FRACTION)
    logger.info("computing frequency statistics of %d training images of %s", len(dataset), name)
    stats = compute_statistics(dataset)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save(stats, tmp)
    os.replace(tmp, path)
    return stats
