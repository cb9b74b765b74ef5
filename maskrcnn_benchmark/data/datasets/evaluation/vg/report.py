"""Results JSON and the plain-text table (SGB's ``SGG eval: ...`` layout, fractions to 4 places)."""
from __future__ import annotations

import json
import math
import os
from typing import Optional

RESULTS_FORMAT_VERSION = 1
_RULE = "=" * 100


def _f(v: Optional[float]) -> str:
    return "  n/a " if v is None else f"{v:.4f}"


def _line(metrics: dict, label: str, key: str, ks, mode: str, kind: str) -> str:
    body = "; ".join(f"{label} @ {k}: {_f(metrics.get(key.format(k=k)))}" for k in ks)
    return f"SGG eval: {body};  for mode={mode}, type={kind}.\n"


def format_table(results: dict, print_per_predicate: bool = True) -> str:
    """The evaluation report as text, in the layout SGB prints (plus our extra metrics)."""
    mode, m = results["mode"], results["metrics"]
    ks = results["settings"]["ks"]
    c = results["counts"]
    s = "\n" + _RULE + "\n"
    det = results.get("detection")
    if det is not None:
        s += f"Detection evaluation mAp={_f(det.get('mAP@0.5'))}  (COCO AP={_f(det.get('AP'))}, " \
             f"AP75={_f(det.get('AP75'))})\n" + _RULE + "\n"
    s += _line(m, "  R", "R@{k}", ks, mode, "Recall(Main)")
    s += _line(m, "ngR", "ngR@{k}", ks, mode, "No Graph Constraint Recall(Main)")
    if results["settings"].get("zeroshot"):
        s += _line(m, " zR", "zR@{k}", ks, mode, "Zero Shot Recall")
        s += _line(m, "ng-zR", "ng-zR@{k}", ks, mode, "No Graph Constraint Zero Shot Recall")
    s += _line(m, " mR", "mR@{k}", ks, mode, "Mean Recall")
    per = results["per_predicate"].get(f"R@{ks[-1]}", {})
    if print_per_predicate and per:
        s += " ".join(f"({n}:{_f(v) if v is not None else 'absent'})" for n, v in per.items())
        s += "\n"
    s += _line(m, "ng-mR", "ng-mR@{k}", ks, mode, "No Graph Constraint Mean Recall")
    if mode != "sgdet":
        s += _line(m, "  A", "A@{k}", ks, mode, "TopK Accuracy")
    groups = results.get("groups") or {}
    if groups:
        k = ks[-1]
        body = "; ".join(f"{g.upper()} mR@{k}: {_f(v.get(f'mR@{k}'))}" for g, v in groups.items())
        s += f"SGG eval: {body};  for mode={mode}, type=Long-tail Mean Recall.\n"
    s += _RULE + "\n"
    max_boxes = results["settings"]["max_boxes"]
    dropped = f"dropped (> {max_boxes} GT boxes): {c['dropped_max_boxes']}" if max_boxes > 0 \
        else "MAX_BOXES filter off"
    s += (f"images: {c['images']} | evaluated: {c['evaluated']} | {dropped} | "
          f"without GT relations: {c['no_gt_relations']} | without predicted pairs (skipped, as "
          f"SGB): {c['no_predicted_pairs']}\n")
    s += (f"GT relations: {c['gt_relations']} | predicate classes absent from the evaluated GT "
          f"(count 0 in mR, as SGB): {c['num_absent_predicates']}")
    s += (": " + ", ".join(c["absent_predicates"]) if c["absent_predicates"] else "") + "\n"
    if c.get("gt_pairs_without_prediction"):
        s += (f"GT pairs without any kept prediction: {c['gt_pairs_without_prediction']} (A@K "
              "counts them as misses; SGB keeps every pair)\n")
    if results["settings"].get("zeroshot"):
        s += (f"zero-shot GT relations: {c['zeroshot_relations']} in "
              f"{c['zeroshot_images']} images\n")
    s += _RULE + "\n"
    return s


def _clean(obj):
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_results(results: dict, path: str, **meta) -> dict:
    """Write ``results`` plus ``meta`` (e.g. dataset=, checkpoint=) as JSON, atomically.

    Returns the written dict: ``{"format_version", **meta, **results}``.
    """
    doc = _clean({"format_version": RESULTS_FORMAT_VERSION, **meta, **results})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)
    return doc
