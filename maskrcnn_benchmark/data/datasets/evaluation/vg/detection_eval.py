"""Object detection mAP via pycocotools, as SGB's ``vg_eval.py`` does it (also used by the detector).

SGB builds a COCO-style ground truth from the test boxes and converts xyxy to xywh with the
legacy "+1 pixel" width (w = x2 - x1 + 1), for ground truth and detections alike; its
"Detection evaluation mAp" is ``COCOeval.stats[1]`` (AP at IoU 0.5, up to 100 detections per
image). ``plus_one=True`` (the default) keeps that convention; ``plus_one=False`` uses plain
continuous widths (w = x2 - x1), which is what torchvision's own COCO evaluation does.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
from typing import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
               "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def _xywh(boxes: np.ndarray, plus_one: bool) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    off = 1.0 if plus_one else 0.0
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0] + off, b[:, 3] - b[:, 1] + off], 1)


def evaluate_detections(gts: Sequence[Mapping[str, np.ndarray]],
                        preds: Sequence[Mapping[str, np.ndarray]], num_classes: int, *,
                        plus_one: bool = True, class_names: Sequence[str] | None = None,
                        num_workers: int = 0, size_breakdown: bool = True) -> dict:
    """COCO-style box AP of ``preds`` against ``gts`` (aligned lists, one entry per image).

    gts[i]: ``boxes`` [N, 4] xyxy, ``labels`` [N] in 1..num_classes-1.
    preds[i]: ``boxes`` [D, 4] xyxy, ``labels`` [D], ``scores`` [D].
    Returns ``{"mAP@0.5", "AP", "AP50", "AP75", ..., "AR100", ..., "per_class_AP50": {name:
    AP or None}, "num_images", "num_gt_boxes", "num_detections"}`` (fractions; -1 from
    pycocotools becomes None). ``num_workers > 1`` evaluates category shards in forked processes
    (same numbers). ``size_breakdown=False`` skips pycocotools' small/medium/large area ranges
    (their AP/AR become None; every other number is unchanged), about 4x faster.
    """
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth images but {len(preds)} detection results")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    anns, dets = [], []
    for img_id, (gt, pred) in enumerate(zip(gts, preds)):
        labels = np.asarray(gt["labels"], np.int64).reshape(-1)
        if len(labels) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"image {img_id}: GT labels must be in 1..{num_classes - 1}, got "
                             f"{labels.min()}..{labels.max()}")
        for box, cls in zip(_xywh(gt["boxes"], plus_one).tolist(), labels.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cls,
                         "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        d_boxes = _xywh(pred["boxes"], plus_one)
        if len(d_boxes):
            d_scores = np.asarray(pred["scores"], np.float64).reshape(-1, 1)
            d_labels = np.asarray(pred["labels"], np.float64).reshape(-1, 1)
            dets.append(np.hstack([np.full((len(d_boxes), 1), img_id), d_boxes, d_scores,
                                   d_labels]))
    coco_gt = COCO()
    coco_gt.dataset = {"images": [{"id": i} for i in range(len(gts))],
                       "categories": [{"id": c, "name": names[c]} for c in range(1, num_classes)],
                       "annotations": anns}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    out: dict = {"num_images": len(gts), "num_gt_boxes": len(anns),
                 "num_detections": int(sum(len(d) for d in dets))}
    if not anns or not dets:
        out.update({k: None for k in ("mAP@0.5",) + _STAT_NAMES})
        out["per_class_AP50"] = {names[c]: None for c in range(1, num_classes)}
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(np.concatenate(dets, 0))
    coco_eval = _sharded_cocoeval(coco_gt, coco_dt, num_workers, size_breakdown)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.summarize()
    stats = [float(s) if s >= 0 else None for s in coco_eval.stats]
    out.update(dict(zip(_STAT_NAMES, stats)))
    out["mAP@0.5"] = out["AP50"]
    # precision: [T iou, R recall, K class, A area, M maxdets]; IoU 0.5, all areas, 100 dets
    prec = coco_eval.eval["precision"][0, :, :, 0, -1]
    per_class = {}
    for k, cat in enumerate(coco_eval.params.catIds):
        p = prec[:, k]
        per_class[names[cat]] = float(p[p > -1].mean()) if (p > -1).any() else None
    out["per_class_AP50"] = per_class
    return out


_COCO: dict = {}  # set before forking workers


def _set_areas(params, size_breakdown: bool) -> None:
    if not size_breakdown:
        params.areaRng, params.areaRngLbl = params.areaRng[:1], params.areaRngLbl[:1]  # "all"


def _eval_shard(cat_ids: list[int]) -> dict:
    """pycocotools evaluate + accumulate for some categories, on the images that have them.

    Restricting ``imgIds`` to images with a GT box or a detection of those categories gives the
    same per-category precision/recall as evaluating every image (pycocotools skips an (image,
    category) without either), while avoiding its loop over every (image, category) pair.
    """
    coco_gt, coco_dt = _COCO["gt"], _COCO["dt"]
    img_ids = sorted({i for c in cat_ids for i in coco_gt.catToImgs.get(c, [])}
                     | {i for c in cat_ids for i in coco_dt.catToImgs.get(c, [])})
    ev = COCOeval(coco_gt, coco_dt, "bbox")
    ev.params.catIds, ev.params.imgIds = list(cat_ids), img_ids or [-1]
    _set_areas(ev.params, _COCO["size_breakdown"])
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    return {k: ev.eval[k] for k in ("precision", "recall", "scores")}


def _sharded_cocoeval(coco_gt: COCO, coco_dt: COCO, num_workers: int,
                      size_breakdown: bool) -> COCOeval:
    """A COCOeval whose ``eval`` holds every category's accumulated results, ready to summarize."""
    global _COCO
    final = COCOeval(coco_gt, coco_dt, "bbox")
    cats = sorted(coco_gt.getCatIds())
    final.params.catIds, final.params.imgIds = cats, sorted(coco_gt.getImgIds())
    _set_areas(final.params, size_breakdown)
    shards = [cats[i::max(1, 4 * num_workers)] for i in range(max(1, 4 * num_workers))]
    shards = [s for s in shards if s]
    _COCO = {"gt": coco_gt, "dt": coco_dt, "size_breakdown": size_breakdown}
    try:
        if num_workers > 1 and "fork" in mp.get_all_start_methods():
            with mp.get_context("fork").Pool(num_workers) as pool:
                parts = pool.map(_eval_shard, shards)
        else:
            parts = [_eval_shard(s) for s in shards]
    finally:
        _COCO = {}
    p = final.params
    t, r, k, a, m = len(p.iouThrs), len(p.recThrs), len(cats), len(p.areaRng), len(p.maxDets)
    precision, scores = -np.ones((t, r, k, a, m)), -np.ones((t, r, k, a, m))
    recall = -np.ones((t, k, a, m))
    col = {c: j for j, c in enumerate(cats)}
    for shard, part in zip(shards, parts):
        idx = [col[c] for c in shard]
        precision[:, :, idx] = part["precision"]
        scores[:, :, idx] = part["scores"]
        recall[:, idx] = part["recall"]
    final.eval = {"params": p, "counts": [t, r, k, a, m], "precision": precision,
                  "recall": recall, "scores": scores}
    return final
