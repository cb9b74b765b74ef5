"""Speed of the SGG evaluator on SGDet-sized random predictions (VG150 test: 26,446 images).

Per image: 2..25 GT boxes and up to 1.5x as many GT relations (duplicate pairs included), 80
predicted boxes (most near a GT box, 80% with the right class), R ranked pairs with 51 predicate
scores. R = 100 is our default (TEST.RELATION.TOPK_TRIPLETS); R = 6000 is SGB's "all pairs of 80
boxes" size and does not fit in memory for 26k images, so it runs on a sample and is extrapolated.
Detection mAP (pycocotools) is timed on a sample and extrapolated too.

    python benchmarks/bench_eval.py                 # everything, defaults below
    python benchmarks/bench_eval.py --images 2000 --sample 200 --workers 2
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from maskrcnn_benchmark.data.datasets.evaluation.vg import evaluate_detections, \
    evaluate_relations

P, C = 51, 151


def make_images(n: int, num_pairs: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n):
        ng = int(rng.integers(2, 26))
        xy = rng.uniform(0, 500, (ng, 2))
        boxes = np.hstack([xy, xy + rng.uniform(10, 300, (ng, 2))]).astype(np.float32)
        labels = rng.integers(1, C, ng)
        m = int(rng.integers(1, int(1.5 * ng) + 1))
        sub, obj = rng.integers(0, ng, m), rng.integers(0, ng, m)
        obj = np.where(sub == obj, (obj + 1) % ng, obj)
        gts.append({"boxes": boxes, "labels": labels,
                    "relations": np.stack([sub, obj, rng.integers(1, P, m)], 1)})
        nd = 80
        src = rng.integers(0, ng, nd)
        pboxes = boxes[src] + rng.normal(0, 8, (nd, 4)).astype(np.float32)
        plabels = np.where(rng.random(nd) < 0.8, labels[src], rng.integers(1, C, nd))
        pairs = rng.integers(0, nd, (num_pairs, 2))
        pairs[:, 1] = np.where(pairs[:, 0] == pairs[:, 1], (pairs[:, 1] + 1) % nd, pairs[:, 1])
        logits = rng.standard_normal((num_pairs, P), dtype=np.float32) * 2
        e = np.exp(logits)
        preds.append({"boxes": pboxes, "labels": plabels,
                      "scores": rng.uniform(0.05, 1, nd).astype(np.float32), "rel_pairs": pairs,
                      "rel_scores": e / e.sum(1, keepdims=True)})
    return gts, preds


def _time_rel(gts, preds, workers: int, zs: np.ndarray, groups: dict) -> float:
    t = time.perf_counter()
    evaluate_relations(gts, preds, "sgdet", P, zeroshot_triplets=zs, predicate_groups=groups,
                       num_workers=workers)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=26446, help="images at R = 100")
    ap.add_argument("--sample", type=int, default=500, help="images at R = 6000, extrapolated")
    ap.add_argument("--det-sample", type=int, default=1000, help="images for detection mAP")
    ap.add_argument("--workers", type=int, default=2, help="also time this many processes")
    args = ap.parse_args()
    full = 26446
    rng = np.random.default_rng(1)
    zs = np.stack([rng.integers(1, C, 6000), rng.integers(1, C, 6000), rng.integers(1, P, 6000)], 1)
    groups = {"head": list(range(1, 8)), "body": list(range(8, 29)), "tail": list(range(29, 51))}

    print(f"relation metrics (R, mR, ngR, ng-mR, zR, ng-zR, HEAD/BODY/TAIL), SGDet, P = {P}")
    for num_pairs, n in ((100, args.images), (6000, args.sample)):
        t = time.perf_counter()
        gts, preds = make_images(n, num_pairs)
        gen = time.perf_counter() - t
        for workers in sorted({0, args.workers}):
            sec = _time_rel(gts, preds, workers, zs, groups)
            print(f"  R = {num_pairs:5d} pairs, {n:6d} images, workers {workers}: {sec:7.2f} s "
                  f"= {n / sec:8.0f} images/s -> full VG150 test ({full}) ~ "
                  f"{full * sec / n:6.1f} s   (data generation {gen:.1f} s, not counted)")
        del gts, preds

    gts, preds = make_images(args.det_sample, 1)
    for breakdown in (False, True):
        for workers in sorted({0, args.workers}):
            t = time.perf_counter()
            evaluate_detections(gts, preds, C, num_workers=workers, size_breakdown=breakdown)
            sec = time.perf_counter() - t
            what = "full COCO" if breakdown else "no size breakdown (SGDet eval)"
            print(f"detection AP (pycocotools, {what}), 80 boxes/image, {args.det_sample} "
                  f"images, workers {workers}: {sec:.2f} s = {args.det_sample / sec:.0f} "
                  f"images/s -> full test ~ {full * sec / args.det_sample:.0f} s")


if __name__ == "__main__":
    main()
