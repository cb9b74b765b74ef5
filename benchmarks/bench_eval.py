"""Speed of the SGG evaluator on SGDet-sized random predictions (VG150 test: 26,446 images).

Per image: 2..25 GT boxes and up to 1.5x as many GT relations (duplicate pairs included), 80
predicted boxes (most near a GT box, 80% with the right class), R ranked pairs with 51 predicate
scores. R = 100 is our default (TEST.RELATION.TOPK_TRIPLETS). The headline is the whole SGDet
metric set of ``do_vg_evaluation`` on ``--images`` images in one process: relation metrics at
R = 100 (R, mR, ngR, ng-mR, zR, ng-zR, HEAD/BODY/TAIL) + detection AP (faster-coco-eval, no
size breakdown, as SGDet evaluation runs it). Wall and CPU seconds are printed: on a shared
machine the CPU time of the process is the steadier figure. Also timed: relations with
``--workers`` processes, detection AP with COCO's size breakdown (the detector's evaluation),
and R = 6000 (SGB's "all pairs of 80 boxes"; it does not fit in memory for 26k images, so it
runs on ``--sample`` images and is extrapolated).

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


class _Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _fmt(t: _Timer, n: int, full: int, cpu: bool = True) -> str:
    scale = f" -> full VG150 test ({full}) ~ {full * t.wall / n:6.1f} s" if n != full else ""
    cpu_s = f", {t.cpu:7.2f} s CPU" if cpu else ""
    return f"{t.wall:7.2f} s wall{cpu_s} = {n / t.wall:7.0f} images/s{scale}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=26446,
                    help="images at R = 100 and for detection AP")
    ap.add_argument("--sample", type=int, default=500, help="images at R = 6000, extrapolated")
    ap.add_argument("--workers", type=int, default=2,
                    help="also time the relation metrics with this many processes")
    args = ap.parse_args()
    full, n = 26446, args.images
    rng = np.random.default_rng(1)
    zs = np.stack([rng.integers(1, C, 6000), rng.integers(1, C, 6000), rng.integers(1, P, 6000)], 1)
    groups = {"head": list(range(1, 8)), "body": list(range(8, 29)), "tail": list(range(29, 51))}

    def relations(gts, preds, workers: int) -> _Timer:
        with _Timer() as t:
            evaluate_relations(gts, preds, "sgdet", P, zeroshot_triplets=zs,
                               predicate_groups=groups, num_workers=workers)
        return t

    with _Timer() as gen:
        gts, preds = make_images(n, 100)
    print(f"SGDet evaluation, {n} images (data generation {gen.wall:.1f} s, not counted), P = {P}")
    rel = relations(gts, preds, 0)
    print(f"  relation metrics (R, mR, ngR, ng-mR, zR, ng-zR, HEAD/BODY/TAIL), R = 100 pairs\n"
          f"    {'one process':<44}{_fmt(rel, n, full)}")
    with _Timer() as det:
        evaluate_detections(gts, preds, C, size_breakdown=False)
    print(f"  detection AP (faster-coco-eval), 80 boxes/image\n"
          f"    {'no size breakdown (SGDet evaluation)':<44}{_fmt(det, n, full)}")
    total = _Timer()
    total.wall, total.cpu = rel.wall + det.wall, rel.cpu + det.cpu
    print(f"  {'= full SGDet metric set, one process':<46}{_fmt(total, n, full)}   (target < 60 s)")
    with _Timer() as coco:
        evaluate_detections(gts, preds, C)
    print(f"  {'detection AP, COCO size breakdown (detector)':<46}"
          f"{_fmt(coco, n, full)}")
    if args.workers > 1:
        print(f"  {f'relation metrics, {args.workers} worker processes':<46}"
              f"{_fmt(relations(gts, preds, args.workers), n, full, cpu=False)}")
    del gts, preds

    gts, preds = make_images(args.sample, 6000)
    print(f"R = 6000 pairs (SGB keeps every pair), {args.sample} images")
    print(f"  {'relation metrics, one process':<46}"
          f"{_fmt(relations(gts, preds, 0), args.sample, full)}")


if __name__ == "__main__":
    main()
