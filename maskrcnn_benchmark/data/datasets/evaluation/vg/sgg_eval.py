"""Scene-graph metrics over a dataset, computed exactly as SGB's evaluator computes them.

:func:`evaluate_relations` matches every image once (:func:`.matching.match_image`, optionally in
worker processes) and then reduces the per-relation first-hit ranks to every metric:

- ``R@K``: per image, hit GT relations / GT relations; mean over evaluated images.
- ``mR@K``: per predicate, the mean of per-image recall over the images containing it; then the
  mean over all P - 1 predicate classes, a predicate absent from the evaluated GT counting 0.
- ``ngR@K``, ``ng-mR@K``: the same with no graph constraint (top 100 (pair, predicate)).
- ``zR@K``, ``ng-zR@K``: per-image recall of zero-shot GT relations, mean over images having one.
- ``A@K`` (PredCls/SGCls): predictions on GT pairs only (every stored one, including the rows
  after ``num_top_pairs``), hits summed / GT relations summed (SGB: mean of hits / mean of counts).
- ``HEAD/BODY/TAIL mR@K``: mean per-predicate recall within each predicate group.

Evaluated images are SGB's: images with GT relations *and* at least one predicted pair (SGB skips
an image without predicted pairs rather than counting 0; the count is reported). Means are taken
over the same values in the same order as SGB (image order), so results are bit-identical to
SGB's for the same matches, whatever the number of worker processes.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Mapping, Optional, Sequence

import numpy as np

from .matching import MODES, NG_TOP, NO_GT_RELS, NO_PRED_PAIRS, OK, ImageMatches, match_image, \
    triplet_keys

KS = (20, 50, 100)

_WORK: dict = {}  # set before forking workers, inherited by them (no pickling of predictions)


def _match_range(bounds: tuple[int, int]) -> list[ImageMatches]:
    w = _WORK
    return [match_image(w["gts"][i], w["preds"][i], w["mode"], w["iou"], w["zs"], w["ng_top"],
                        w["max_rank"]) for i in range(*bounds)]


def match_all(groundtruths: Sequence[Mapping], predictions: Sequence[Mapping], mode: str,
              iou_threshold: float = 0.5, zeroshot_keys: Optional[np.ndarray] = None,
              ng_top: int = NG_TOP, num_workers: int = 0,
              max_rank: Optional[int] = None) -> list[ImageMatches]:
    """:func:`match_image` for every image, in order; ``num_workers > 1`` forks worker processes."""
    global _WORK
    _WORK = dict(gts=groundtruths, preds=predictions, mode=mode, iou=iou_threshold,
                 zs=zeroshot_keys, ng_top=ng_top, max_rank=max_rank)
    n = len(groundtruths)
    try:
        if num_workers <= 1 or n < 2 * num_workers or "fork" not in mp.get_all_start_methods():
            return _match_range((0, n))
        step = max(1, min(256, n // (4 * num_workers)))
        chunks = [(s, min(s + step, n)) for s in range(0, n, step)]
        with mp.get_context("fork").Pool(num_workers) as pool:
            return [r for part in pool.imap(_match_range, chunks) for r in part]
    finally:
        _WORK = {}


def _mean(values: np.ndarray) -> Optional[float]:
    return float(np.mean(values)) if len(values) else None


def _per_image_recall(img: np.ndarray, hit: np.ndarray, n_img: int,
                      mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Recall of each image (only images with at least one counted relation)."""
    if mask is not None:
        img, hit = img[mask], hit[mask]
    count = np.bincount(img, minlength=n_img)
    hits = np.bincount(img, weights=hit, minlength=n_img)
    keep = count > 0
    return hits[keep] / count[keep].astype(np.float64)


def _per_predicate_recall(img: np.ndarray, pred: np.ndarray, hit: np.ndarray, n_img: int,
                          num_predicates: int) -> list[Optional[float]]:
    """SGB mR: per predicate, mean over the images containing it of hits / count (None if absent)."""
    key = img * num_predicates + pred
    count = np.bincount(key, minlength=n_img * num_predicates).reshape(n_img, num_predicates)
    hits = np.bincount(key, weights=hit, minlength=n_img * num_predicates).reshape(
        n_img, num_predicates)
    out: list[Optional[float]] = [None]
    for p in range(1, num_predicates):
        has = count[:, p] > 0
        out.append(float(np.mean(hits[has, p] / count[has, p])) if has.any() else None)
    return out


def evaluate_relations(groundtruths: Sequence[Mapping[str, np.ndarray]],
                       predictions: Sequence[Mapping[str, np.ndarray]], mode: str,
                       num_predicates: int, *, iou_threshold: float = 0.5,
                       ks: Sequence[int] = KS, zeroshot_triplets: Optional[np.ndarray] = None,
                       predicate_groups: Optional[Mapping[str, Sequence[int]]] = None,
                       predicate_names: Optional[Sequence[str]] = None, max_boxes: int = 0,
                       ng_top: int = NG_TOP, num_workers: int = 0) -> dict:
    """Every relation metric of a dataset, as fractions in [0, 1] (None where undefined).

    groundtruths[i]: ``boxes`` [N, 4], ``labels`` [N], ``relations`` [M, 3], original pixels.
    predictions[i]: ``boxes``, ``labels``, ``scores``, ``rel_pairs`` [R, 2], ``rel_scores`` [R, P]
    (see docs/design.md, "Evaluation"). ``zeroshot_triplets``: int64[Z, 3] (subject class, object
    class, predicate) never seen in training (:func:`.splits.zeroshot_triplets`); zR is skipped
    when None. ``predicate_groups``: e.g. ``{"head": [...], "body": [...], "tail": [...]}``.
    ``max_boxes > 0`` drops images with more GT boxes (TEST.RELATION.MAX_BOXES).
    Returns ``{"mode", "settings", "counts", "metrics", "per_predicate", "groups"}``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {MODES}")
    if len(groundtruths) != len(predictions):
        raise ValueError(f"{len(groundtruths)} ground-truth images but {len(predictions)} "
                         "predictions; they must be aligned image by image")
    for pred in predictions:
        if len(pred["rel_pairs"]):
            width = np.asarray(pred["rel_scores"]).shape[-1]
            if width != num_predicates:
                raise ValueError(f"rel_scores have {width} columns but num_predicates is "
                                 f"{num_predicates} (background included)")
            break
    names = list(predicate_names) if predicate_names is not None else \
        [str(p) for p in range(num_predicates)]
    if len(names) != num_predicates:
        raise ValueError(f"{len(names)} predicate names for {num_predicates} predicate classes")
    ks = tuple(int(k) for k in ks)
    for group, ids in (predicate_groups or {}).items():
        bad = [p for p in ids if not 1 <= p < num_predicates]
        if bad:
            raise ValueError(f"predicate group {group!r} has ids {bad} outside "
                             f"1..{num_predicates - 1}")

    keep = [i for i, gt in enumerate(groundtruths)
            if max_boxes <= 0 or len(gt["labels"]) <= max_boxes]
    zs_keys = None
    if zeroshot_triplets is not None:
        z = np.asarray(zeroshot_triplets, np.int64).reshape(-1, 3)
        zs_keys = np.unique(triplet_keys(z[:, 0], z[:, 1], z[:, 2]))
    matches = match_all([groundtruths[i] for i in keep], [predictions[i] for i in keep], mode,
                        iou_threshold, zs_keys, ng_top, num_workers, max(ks))
    ok = [mt for mt in matches if mt.status == OK]
    n_img = len(ok)
    sizes = np.array([len(mt.predicates) for mt in ok], np.int64)
    img = np.repeat(np.arange(n_img), sizes)

    def cat(field: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(mt, field) for mt in ok]).astype(dtype) if ok \
            else np.empty(0, dtype)

    pred, zs = cat("predicates", np.int64), cat("zeroshot", bool)
    ranks = {"": cat("rank", np.int64), "ng": cat("ng_rank", np.int64)}
    pair_rank = cat("pair_rank", np.int64)

    metrics: dict = {}
    per_predicate: dict = {}
    groups: dict = {}
    present = np.bincount(pred, minlength=num_predicates)[1:num_predicates] > 0
    for prefix, rank in ranks.items():
        tag = f"{prefix}-" if prefix else ""
        for k in ks:
            hit = (rank < k).astype(np.float64)
            metrics[f"{prefix}R@{k}"] = _mean(_per_image_recall(img, hit, n_img))
            per_pred = _per_predicate_recall(img, pred, hit, n_img, num_predicates)
            per_predicate[f"{prefix}R@{k}"] = {names[p]: per_pred[p]
                                                for p in range(1, num_predicates)}
            values = [v if v is not None else 0.0 for v in per_pred[1:]]
            metrics[f"{tag}mR@{k}"] = sum(values) / float(num_predicates - 1) if n_img else None
            if zs_keys is not None:
                metrics[f"{tag}zR@{k}"] = _mean(_per_image_recall(img, hit, n_img, zs))
            for group, ids in (predicate_groups or {}).items():
                vals = [per_pred[p] or 0.0 for p in ids]
                groups.setdefault(group, {})[f"{tag}mR@{k}"] = \
                    sum(vals) / len(vals) if n_img and vals else None
    if mode != "sgdet":
        counts_per_image = sizes.astype(np.float64)
        for k in ks:
            hits = np.bincount(img, weights=(pair_rank < k), minlength=n_img)
            metrics[f"A@{k}"] = float(np.mean(hits) / np.mean(counts_per_image)) if n_img else None

    status = [mt.status for mt in matches]
    absent = [names[p] for p in range(1, num_predicates) if not present[p - 1]]
    counts = {
        "images": len(groundtruths),
        "dropped_max_boxes": len(groundtruths) - len(keep),
        "no_gt_relations": status.count(NO_GT_RELS),
        "no_predicted_pairs": status.count(NO_PRED_PAIRS),
        "evaluated": n_img,
        "gt_relations": int(sizes.sum()),
        "zeroshot_relations": int(zs.sum()) if zs_keys is not None else None,
        "zeroshot_images": int(len(np.unique(img[zs]))) if zs_keys is not None else None,
        "gt_pairs_without_prediction": sum(mt.missing_gt_pairs for mt in ok)
        if mode != "sgdet" else None,
        "absent_predicates": absent,
        "num_absent_predicates": len(absent),
    }
    if predicate_groups:
        counts["absent_per_group"] = {g: sum(1 for p in ids if not present[p - 1])
                                      for g, ids in predicate_groups.items()}
    settings = {"iou_threshold": float(iou_threshold), "max_boxes": int(max_boxes), "ks": list(ks),
                "ng_top": int(ng_top), "num_predicates": int(num_predicates),
                "box_convention": "SGB +1 pixel (w = x2 - x1 + 1)",
                "zeroshot": zs_keys is not None}
    return {"mode": mode, "settings": settings, "counts": counts, "metrics": metrics,
            "per_predicate": per_predicate, "groups": groups}
