"""The saved-predictions file (``predictions.pt``): versioned, plain tensors, readable without us.

Written with ``torch.save`` and readable with ``torch.load(path, weights_only=True)``; a dict:

| key | value |
|---|---|
| ``format`` | ``"maskrcnn_benchmark.sgg_predictions"`` |
| ``version`` | ``2`` (version 1 files, without ``num_top_pairs``, are read too) |
| ``mode``, ``dataset``, ``checkpoint`` | str (``predcls`` / ``sgcls`` / ``sgdet``; dataset name) |
| ``num_predicates`` | int P (background included) |
| ``indices`` | int64[n] dataset index of each image (``ds.get_groundtruth(indices[i])``) |
| ``image_ids`` | int64[n] image ids (``ds.get_img_info(i)["image_id"]``) |
| ``num_boxes``, ``num_pairs`` | int64[n] N_i and R_i per image |
| ``num_top_pairs`` | int64[n] T_i <= R_i (see below) |
| ``boxes`` | float32[sum N_i, 4] xyxy, original image pixels |
| ``labels`` / ``scores`` | int64 / float32 [sum N_i] |
| ``rel_pairs`` | int64[sum R_i, 2] (subject, object) indices *within the image*, best first |
| ``rel_scores`` | float32[sum R_i, P] predicate distribution (column 0 background) |
| ``meta`` | dict of str -> str / int / float (free-form: config file, TOPK_TRIPLETS, ...) |

Image i's rows are the i-th consecutive blocks of N_i boxes and R_i pairs. Of an image's R_i
pairs, the first T_i are the top TEST.RELATION.TOPK_TRIPLETS by triplet score (R@K, ngR@K, A@K);
the R_i - T_i after them (PredCls / SGCls) are the GT pairs ranked below those, still in rank
order, kept so that A@K sees every prediction on a GT pair. Version 2 added ``num_top_pairs``;
a version 1 file is read with T_i = R_i.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

PREDICTIONS_FORMAT = "maskrcnn_benchmark.sgg_predictions"
PREDICTIONS_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_PER_BOX = ("boxes", "labels", "scores")
_PER_PAIR = ("rel_pairs", "rel_scores")


def _cat(arrays: list, dtype, width: Optional[int]) -> torch.Tensor:
    shape = (0,) if width is None else (0, width)
    arrs = [np.asarray(a, dtype).reshape((-1,) if width is None else (-1, width)) for a in arrays]
    return torch.from_numpy(np.concatenate(arrs, 0) if arrs else np.zeros(shape, dtype))


def save_predictions(path: str, predictions: Sequence[Mapping[str, np.ndarray]], *, mode: str,
                     dataset: str, num_predicates: int, indices: Optional[Sequence[int]] = None,
                     image_ids: Optional[Sequence[int]] = None, checkpoint: str = "",
                     meta: Optional[Mapping] = None) -> None:
    """Write per-image prediction dicts (docs/design.md "Evaluation") to ``path`` atomically."""
    n = len(predictions)
    indices = list(range(n)) if indices is None else list(indices)
    image_ids = list(indices) if image_ids is None else list(image_ids)
    if len(indices) != n or len(image_ids) != n:
        raise ValueError(f"{n} predictions but {len(indices)} indices / {len(image_ids)} image ids")
    num_top = []
    for i, p in enumerate(predictions):
        rs = np.asarray(p["rel_scores"])
        if len(p["rel_pairs"]) and (rs.ndim != 2 or rs.shape[1] != num_predicates):
            raise ValueError(f"image {i}: rel_scores must have {num_predicates} columns, "
                             f"got shape {rs.shape}")
        num_top.append(int(p.get("num_top_pairs", len(p["rel_pairs"]))))
        if not min(1, len(p["rel_pairs"])) <= num_top[-1] <= len(p["rel_pairs"]):
            raise ValueError(f"image {i}: num_top_pairs {num_top[-1]} is not in "
                             f"1..{len(p['rel_pairs'])} (the number of rel_pairs)")
    doc = {
        "format": PREDICTIONS_FORMAT, "version": PREDICTIONS_VERSION, "mode": str(mode),
        "dataset": str(dataset), "checkpoint": str(checkpoint),
        "num_predicates": int(num_predicates),
        "indices": torch.tensor(indices, dtype=torch.int64),
        "image_ids": torch.tensor(image_ids, dtype=torch.int64),
        "num_boxes": torch.tensor([len(p["labels"]) for p in predictions], dtype=torch.int64),
        "num_pairs": torch.tensor([len(p["rel_pairs"]) for p in predictions], dtype=torch.int64),
        "num_top_pairs": torch.tensor(num_top, dtype=torch.int64),
        "boxes": _cat([p["boxes"] for p in predictions], np.float32, 4),
        "labels": _cat([p["labels"] for p in predictions], np.int64, None),
        "scores": _cat([p["scores"] for p in predictions], np.float32, None),
        "rel_pairs": _cat([p["rel_pairs"] for p in predictions], np.int64, 2),
        "rel_scores": _cat([p["rel_scores"] for p in predictions], np.float32, num_predicates),
        "meta": {str(k): v for k, v in (meta or {}).items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(doc, tmp)
    os.replace(tmp, path)


def load_predictions(path: str) -> tuple[list[dict], dict]:
    """Read a predictions file -> (per-image prediction dicts of numpy arrays, info).

    info: every non-array key (``mode``, ``dataset``, ``checkpoint``, ``num_predicates``,
    ``version``, ``meta``) plus ``indices`` and ``image_ids`` as lists.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"predictions file not found: {path}")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a broken file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"cannot read predictions file {path} ({type(e).__name__}: {first}); "
                         "it is truncated or not a file written by save_predictions") from e
    if not isinstance(doc, dict) or doc.get("format") != PREDICTIONS_FORMAT:
        raise ValueError(f"{path} is not a predictions file (expected format "
                         f"{PREDICTIONS_FORMAT!r}); write one with save_predictions")
    if doc.get("version") not in _READABLE_VERSIONS:
        raise ValueError(f"{path} has predictions format version {doc.get('version')}; this "
                         f"code reads versions {', '.join(map(str, _READABLE_VERSIONS))}: "
                         "upgrade maskrcnn_benchmark")
    nb, nr = doc["num_boxes"].numpy(), doc["num_pairs"].numpy()
    arrays = {k: doc[k].numpy() for k in _PER_BOX + _PER_PAIR}
    if nb.sum() != len(arrays["boxes"]) or nr.sum() != len(arrays["rel_pairs"]):
        raise ValueError(f"{path} is inconsistent: num_boxes / num_pairs do not add up to the "
                         "stored rows; the file is corrupted")
    top = doc["num_top_pairs"].numpy() if "num_top_pairs" in doc else nr  # version 1: all
    if len(top) != len(nr) or (top > nr).any() or (top < 0).any():
        raise ValueError(f"{path} is inconsistent: num_top_pairs must be in 0..num_pairs per "
                         "image; the file is corrupted")
    box_ends, pair_ends = np.cumsum(nb), np.cumsum(nr)
    preds = []
    for i in range(len(nb)):
        b0, b1 = box_ends[i] - nb[i], box_ends[i]
        r0, r1 = pair_ends[i] - nr[i], pair_ends[i]
        preds.append({**{k: arrays[k][b0:b1] for k in _PER_BOX},
                      **{k: arrays[k][r0:r1] for k in _PER_PAIR}})
        if top[i] != nr[i]:
            preds[-1]["num_top_pairs"] = int(top[i])
    info = {k: v for k, v in doc.items() if k not in _PER_BOX + _PER_PAIR
            and not isinstance(v, torch.Tensor)}
    info["indices"] = doc["indices"].tolist()
    info["image_ids"] = doc["image_ids"].tolist()
    return preds, info
