"""Detection AP through pycocotools: known answers, SGB's +1 widths, sharding changes nothing."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskrcnn_benchmark.data.datasets.evaluation.vg import evaluate_detections


def _gt(boxes, labels):
    return {"boxes": np.asarray(boxes, np.float32), "labels": np.asarray(labels, np.int64)}


def _det(boxes, labels, scores):
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "labels": np.asarray(labels, np.int64), "scores": np.asarray(scores, np.float32)}


def test_perfect_detections_give_ap_1():
    gts = [_gt([[0, 0, 50, 50], [60, 60, 90, 120]], [1, 2]), _gt([[10, 10, 40, 40]], [2])]
    r = evaluate_detections(gts, [_det(g["boxes"], g["labels"], [0.9] * len(g["labels"]))
                                  for g in gts], num_classes=4, class_names=["bg", "a", "b", "c"])
    assert r["mAP@0.5"] == pytest.approx(1.0) and r["AP"] == pytest.approx(1.0)
    assert r["per_class_AP50"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0), "c": None}
    assert r["num_gt_boxes"] == 3 and r["num_detections"] == 3


def test_known_answer_and_plus_one_widths():
    gts = [_gt([[0, 0, 9, 9], [100, 100, 199, 199]], [1, 1])]
    # a false positive ranked first, then a hit: precision 1/2 at recall 1/2 (other GT missed);
    # COCO 101-point interpolation: recall thresholds 0..0.5 (51 of 101) at precision 0.5
    dets = [_det([[300, 300, 310, 310], [100, 100, 199, 199]], [1, 1], [0.9, 0.8])]
    r = evaluate_detections(gts, dets, num_classes=2)
    assert r["mAP@0.5"] == pytest.approx(0.5 * 51 / 101)
    # IoU exactly 0.5 under SGB's +1 convention (continuous widths: 81 / 171 < 0.5)
    edge = [_det([[0, 0, 9, 19]], [1], [0.9])]
    one = [_gt([[0, 0, 9, 9]], [1])]
    assert evaluate_detections(one, edge, 2)["mAP@0.5"] == pytest.approx(1.0)
    assert evaluate_detections(one, edge, 2, plus_one=False)["mAP@0.5"] == pytest.approx(0.0)


def test_wrong_class_is_a_miss_and_empty_inputs():
    gts = [_gt([[0, 0, 9, 9]], [1])]
    assert evaluate_detections(gts, [_det([[0, 0, 9, 9]], [2], [0.9])], 3)["mAP@0.5"] == 0.0
    empty = evaluate_detections(gts, [_det(np.zeros((0, 4)), [], [])], 3)
    assert empty["mAP@0.5"] is None and empty["num_detections"] == 0
    with pytest.raises(ValueError, match="GT labels must be in 1..2"):
        evaluate_detections([_gt([[0, 0, 1, 1]], [3])], [_det([[0, 0, 1, 1]], [1], [1])], 3)


def test_sharded_equals_one_plain_cocoeval():
    rng = np.random.default_rng(0)
    gts, dets = [], []
    for _ in range(25):
        n, d = int(rng.integers(1, 6)), int(rng.integers(0, 12))
        xy = rng.uniform(0, 100, (n, 2))
        g = _gt(np.hstack([xy, xy + rng.uniform(5, 60, (n, 2))]), rng.integers(1, 6, n))
        src = rng.integers(0, n, d)
        boxes = g["boxes"][src] + rng.normal(0, 4, (d, 4)).astype(np.float32)
        labels = np.where(rng.random(d) < 0.8, g["labels"][src], rng.integers(1, 6, d))
        gts.append(g)
        dets.append(_det(boxes, labels, rng.random(d)))
    ours = evaluate_detections(gts, dets, 6)
    assert ours == evaluate_detections(gts, dets, 6, num_workers=2)
    # one plain pycocotools run over every (image, category), SGB-style +1 widths
    anns, res = [], []
    for i, (g, d) in enumerate(zip(gts, dets)):
        for b, c in zip(g["boxes"].tolist(), g["labels"].tolist()):
            w, h = b[2] - b[0] + 1, b[3] - b[1] + 1
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c,
                         "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        for b, c, s in zip(d["boxes"].tolist(), d["labels"].tolist(), d["scores"].tolist()):
            res.append([i, b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1, s, c])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i} for i in range(len(gts))],
                        "categories": [{"id": c} for c in range(1, 6)], "annotations": anns}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(np.array(res)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ours["AP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert ours["mAP@0.5"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert ours["AR100"] == pytest.approx(ev.stats[8], abs=1e-12)
    assert ours["AP_small"] == pytest.approx(ev.stats[3], abs=1e-12)
    quick = evaluate_detections(gts, dets, 6, size_breakdown=False)
    assert quick["AP_small"] is None and quick["AR_large"] is None
    assert {k: quick[k] for k in ("AP", "AP50", "AP75", "AR1", "AR100", "per_class_AP50")} == \
        {k: ours[k] for k in ("AP", "AP50", "AP75", "AR1", "AR100", "per_class_AP50")}
