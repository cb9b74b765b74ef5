"""Detection AP (faster-coco-eval): known answers, SGB's +1 widths, and the same numbers as
pycocotools' COCOeval (what SGB runs) when pycocotools is installed (the ``test`` extra)."""
import contextlib
import io

import numpy as np
import pytest

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


def _random_case(seed: int, n_images: int = 40, n_classes: int = 6):
    """Noisy detections of random GT boxes: wrong classes, boxes with x2 < x1 (negative area),
    duplicate scores, images without GT or without detections."""
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for i in range(n_images):
        n, d = int(rng.integers(0 if i % 7 == 0 else 1, 6)), int(rng.integers(0, 12))
        xy = rng.uniform(0, 100, (n, 2))
        g = _gt(np.hstack([xy, xy + rng.uniform(2, 130, (n, 2))]).reshape(-1, 4),
                rng.integers(1, n_classes, n))
        if n:
            src = rng.integers(0, n, d)
            boxes = g["boxes"][src] + rng.normal(0, 4, (d, 4)).astype(np.float32)
            labels = np.where(rng.random(d) < 0.8, g["labels"][src], rng.integers(1, n_classes, d))
        else:
            xy = rng.uniform(0, 100, (d, 2))
            boxes, labels = np.hstack([xy, xy + 10]), rng.integers(1, n_classes, d)
        scores = np.round(rng.random(d), 1)  # ties
        gts.append(g)
        dets.append(_det(boxes, labels, scores))
    return gts, dets


def _pycocotools(gts, dets, n_classes: int, plus_one: bool):
    """One plain pycocotools COCOeval run, SGB-style (vg_eval.py): xywh, loadRes of an array."""
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    off = 1.0 if plus_one else 0.0
    anns, res = [], []
    for i, (g, d) in enumerate(zip(gts, dets)):
        for b, c in zip(g["boxes"].astype(np.float64).tolist(), g["labels"].tolist()):
            w, h = b[2] - b[0] + off, b[3] - b[1] + off
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c,
                         "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        for b, c, s in zip(d["boxes"].astype(np.float64).tolist(), d["labels"].tolist(),
                           d["scores"].astype(np.float64).tolist()):
            res.append([i, b[0], b[1], b[2] - b[0] + off, b[3] - b[1] + off, s, c])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_mod.COCO()
        coco.dataset = {"images": [{"id": i} for i in range(len(gts))],
                        "categories": [{"id": c} for c in range(1, n_classes)],
                        "annotations": anns}
        coco.createIndex()
        ev = cocoeval_mod.COCOeval(coco, coco.loadRes(np.array(res)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize("seed,plus_one", [(0, True), (1, True), (2, False)])
def test_same_numbers_as_pycocotools(seed, plus_one):
    gts, dets = _random_case(seed)
    ev = _pycocotools(gts, dets, 6, plus_one)
    ours = evaluate_detections(gts, dets, 6, plus_one=plus_one)
    names = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
             "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
    for name, ref in zip(names, ev.stats):
        if ref < 0:
            assert ours[name] is None, name
        else:
            assert ours[name] == pytest.approx(ref, abs=1e-12), name
    assert ours["mAP@0.5"] == ours["AP50"]
    prec = ev.eval["precision"][0, :, :, 0, -1]
    for k, cat in enumerate(ev.params.catIds):
        p = prec[:, k]
        ref = p[p > -1].mean() if (p > -1).any() else None
        got = ours["per_class_AP50"][str(cat)]
        assert got == (None if ref is None else pytest.approx(ref, abs=1e-12)), cat
    assert 0 < ours["AP"] < ours["AP50"] < 1  # a non-trivial case


def test_size_breakdown_off_changes_only_the_area_ranges():
    gts, dets = _random_case(3)
    full = evaluate_detections(gts, dets, 6)
    quick = evaluate_detections(gts, dets, 6, size_breakdown=False)
    assert quick["AP_small"] is None and quick["AR_large"] is None
    assert full["AP_small"] is not None and full["AR_large"] is not None
    keys = ("AP", "AP50", "AP75", "AR1", "AR10", "AR100", "per_class_AP50", "num_detections")
    assert {k: quick[k] for k in keys} == {k: full[k] for k in keys}
