"""Object detection mAP, as SGB's ``vg_eval.py`` computes it (also used by the detector).

SGB builds a COCO-style ground truth from the test boxes, converts xyxy to xywh with the legacy
"+1 pixel" width (w = x2 - x1 + 1), for ground truth and detections alike, and runs pycocotools'
``COCOeval``; its "Detection evaluation mAp" is ``COCOeval.stats[1]`` (AP at IoU 0.5, up to 100
detections per image). We run the same evaluation with ``faster-coco-eval`` (a C++ port of
``COCOeval``, same numbers; ``tests/evaluation/test_detection.py`` checks them against
pycocotools when it is installed). ``plus_one=True`` (the default) keeps SGB's convention;
``plus_one=False`` uses plain continuous widths (w = x2 - x1), as torchvision's COCO evaluation.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from faster_coco_eval import COCO
from faster_coco_eval.core.faster_eval_api import COCOeval_faster

_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
               "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def _quiet(*args, **kwargs) -> None:
    pass


def _xywh(boxes: np.ndarray, plus_one: bool) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    off = 1.0 if plus_one else 0.0
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0] + off, b[:, 3] - b[:, 1] + off], 1)


def _annotations(per_image: Sequence[Mapping[str, np.ndarray]], plus_one: bool,
                 scores: bool) -> list[dict]:
    """COCO annotation dicts of every image's boxes (image id = list position, ids from 1).

    ``area`` is w * h of the xywh box, as pycocotools' ``loadRes`` sets it for detections (a box
    with x2 < x1 gets a negative area and, unmatched, is ignored, as in pycocotools)."""
    counts = [len(np.asarray(p["labels"]).reshape(-1)) for p in per_image]
    if not sum(counts):
        return []
    boxes = _xywh(np.concatenate([np.asarray(p["boxes"]).reshape(-1, 4) for p in per_image]),
                  plus_one)
    labels = np.concatenate([np.asarray(p["labels"], np.int64).reshape(-1) for p in per_image])
    image = np.repeat(np.arange(len(per_image)), counts)
    areas = boxes[:, 2] * boxes[:, 3]
    anns = [{"id": k, "image_id": i, "category_id": c, "bbox": b, "area": a} for k, (i, c, b, a) in
            enumerate(zip(image.tolist(), labels.tolist(), boxes.tolist(), areas.tolist()), 1)]
    if scores:
        for ann, s in zip(anns, np.concatenate([np.asarray(p["scores"], np.float64).reshape(-1)
                                                for p in per_image]).tolist()):
            ann["score"] = s
    return anns


def evaluate_detections(gts: Sequence[Mapping[str, np.ndarray]],
                        preds: Sequence[Mapping[str, np.ndarray]], num_classes: int, *,
                        plus_one: bool = True, class_names: Sequence[str] | None = None,
                        size_breakdown: bool = True) -> dict:
    """COCO-style box AP of ``preds`` against ``gts`` (aligned lists, one entry per image).

    gts[i]: ``boxes`` [N, 4] xyxy, ``labels`` [N] in 1..num_classes-1.
    preds[i]: ``boxes`` [D, 4] xyxy, ``labels`` [D], ``scores`` [D].
    Returns ``{"mAP@0.5", "AP", "AP50", "AP75", ..., "AR100", ..., "per_class_AP50": {name:
    AP or None}, "num_images", "num_gt_boxes", "num_detections"}`` (fractions; COCOeval's -1
    becomes None). ``size_breakdown=False`` skips COCO's small/medium/large area ranges (their
    AP/AR become None; every other number is unchanged), about 2x faster.
    """
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth images but {len(preds)} detection results")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    for img_id, gt in enumerate(gts):
        labels = np.asarray(gt["labels"], np.int64).reshape(-1)
        if len(labels) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"image {img_id}: GT labels must be in 1..{num_classes - 1}, got "
                             f"{labels.min()}..{labels.max()}")
    anns = _annotations(gts, plus_one, scores=False)
    dets = _annotations(preds, plus_one, scores=True)
    out: dict = {"num_images": len(gts), "num_gt_boxes": len(anns), "num_detections": len(dets)}
    if not anns or not dets:
        out.update({k: None for k in ("mAP@0.5",) + _STAT_NAMES})
        out["per_class_AP50"] = {names[c]: None for c in range(1, num_classes)}
        return out
    images = [{"id": i} for i in range(len(gts))]
    categories = [{"id": c, "name": names[c]} for c in range(1, num_classes)]
    coco_gt, coco_dt = COCO(print_function=_quiet), COCO(print_function=_quiet)
    for coco, annotations in ((coco_gt, anns), (coco_dt, dets)):
        coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
        coco.createIndex()
    ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=_quiet)
    if not size_breakdown:
        ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    # stats: AP, AP50, AP75, AP per area range, AR1, AR10, AR100, AR per area range
    stats = [float(s) if s >= 0 else None for s in ev.stats]
    if not size_breakdown:
        stats = stats[:3] + [None] * 3 + stats[3:6] + [None] * 3
    out.update(dict(zip(_STAT_NAMES, stats)))
    out["mAP@0.5"] = out["AP50"]
    # precision: [T iou, R recall, K class, A area, M maxdets]; IoU 0.5, all areas, 100 dets
    prec = ev.eval["precision"][0, :, :, 0, -1]
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = prec[:, k]
        per_class[names[cat]] = float(p[p > -1].mean()) if (p > -1).any() else None
    out["per_class_AP50"] = per_class
    return out
