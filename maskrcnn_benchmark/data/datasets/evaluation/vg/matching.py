"""Per-image matching of predicted relations to ground truth, as SGB's ``sgg_eval.py`` does it.

For every ground-truth relation the functions here return the *rank* of the first prediction that
hits it (or :data:`NO_HIT`). Recall at any K is then ``rank < K``, so every metric and every K
comes from one matching pass per image. All work is vectorised: IoUs are computed once per image
(GT boxes x predicted boxes) and the (GT relation x predicted pair) hit matrix is built by
indexing, with no Python loop over predictions.

Matching rule (SGB ``_compute_pred_matches``): a prediction hits a GT relation when subject class,
object class and predicate are equal and both the subject IoU and the object IoU are
``>= iou_threshold``. Several GT relations may share one (subject, object) pair (test ground truth
keeps duplicates); one prediction can hit all of those with its predicate.

IoU convention: SGB computes IoUs with ``boxlist_iou`` on ``BoxList``s, which uses the legacy
"+1 pixel" convention (width = x2 - x1 + 1, intersection width = min(x2) - max(x1) + 1, clamped
at 0), in float32. We do the same, in float32 and in the same order of operations, so that
borderline IoUs (e.g. exactly 0.5) fall on the same side as in SGB.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple, Optional

import numpy as np

MODES = ("predcls", "sgcls", "sgdet")
NO_HIT = np.iinfo(np.int64).max  # rank of a GT relation that no prediction hits
NG_TOP = 100  # SGB keeps the top 100 (pair, predicate) candidates for no-graph-constraint recall

# status of an image
OK, NO_GT_RELS, NO_PRED_PAIRS = "ok", "no_gt_relations", "no_predicted_pairs"


def box_iou_sgb(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes with SGB's "+1 pixel" convention, in float32.

    boxes1: [N, 4], boxes2: [M, 4] -> [N, M].
    """
    b1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    one = np.float32(1)
    area1 = (b1[:, 2] - b1[:, 0] + one) * (b1[:, 3] - b1[:, 1] + one)
    area2 = (b2[:, 2] - b2[:, 0] + one) * (b2[:, 3] - b2[:, 1] + one)
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.maximum(rb - lt + one, np.float32(0))
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def triplet_keys(sub_cls: np.ndarray, obj_cls: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Encode (subject class, object class, predicate) triplets as one int64 each (classes < 2**20)."""
    return (np.asarray(sub_cls, np.int64) << 40) | (np.asarray(obj_cls, np.int64) << 20) \
        | np.asarray(pred, np.int64)


class ImageMatches(NamedTuple):
    """Matching outcome of one image; arrays are per GT relation ([M])."""
    status: str  # OK | NO_GT_RELS | NO_PRED_PAIRS (SGB skips the last two entirely)
    predicates: np.ndarray  # int64[M] GT predicate
    rank: np.ndarray  # int64[M] first graph-constrained hit (rank in the given pair order)
    ng_rank: np.ndarray  # int64[M] first hit among the top NG_TOP (pair, predicate) candidates
    pair_rank: np.ndarray  # int64[M] first hit among predictions on GT pairs (A@K); PredCls/SGCls
    zeroshot: np.ndarray  # bool[M] triplet absent from training
    missing_gt_pairs: int = 0  # GT pairs (by index) without any prediction (PredCls/SGCls)


def _first_true(hit: np.ndarray) -> np.ndarray:
    """[M, R] bool -> [M] index of the first True per row, NO_HIT where none."""
    if hit.shape[1] == 0:
        return np.full(hit.shape[0], NO_HIT, np.int64)
    return np.where(hit.any(1), hit.argmax(1), NO_HIT).astype(np.int64)


def _top_desc(values: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` largest values, best first, ties in index order (stable)."""
    n = values.size
    if n <= top:
        return np.argsort(-values, kind="stable")
    kth = np.partition(values, n - top)[n - top]
    cand = np.flatnonzero(values >= kth)
    return cand[np.argsort(-values[cand], kind="stable")][:top]


def no_graph_candidates(rel_scores: np.ndarray, pair_scores: np.ndarray,
                        top: int = NG_TOP) -> tuple[np.ndarray, np.ndarray]:
    """Top ``top`` (pair, predicate) candidates by ``s_sub * s_obj * p(pred)``, background excluded.

    rel_scores: [R, P]; pair_scores: [R] (s_sub * s_obj >= 0). Returns (pair index [T],
    predicate [T]) best first, T = min(top, R * (P - 1)). Ties are broken by pair rank, then
    predicate index (SGB's unstable ``np.argsort`` leaves tie order unspecified).
    Only pairs whose best candidate reaches the ``top``-th best pair can own a top candidate
    (a pair below it is beaten by ``top`` candidates, one per better pair), so the candidates
    are formed on those pairs only: exact, and cheap for any R.
    """
    fg = rel_scores[:, 1:]
    if len(fg) > top:
        best = pair_scores * fg.max(1)  # == max over predicates of the products (monotone rounding)
        kth = np.partition(best, len(best) - top)[len(best) - top]
        rows = np.flatnonzero(best >= kth)
    else:
        rows = np.arange(len(fg))
    order = _top_desc((pair_scores[rows, None] * fg[rows]).ravel(), top)
    num_fg = fg.shape[1]
    return rows[order // num_fg], order % num_fg + 1


def _box_hit(obj_ok: np.ndarray, gs: np.ndarray, go: np.ndarray, ps: np.ndarray,
             po: np.ndarray) -> np.ndarray:
    """[M, R'] subject and object both match (class and IoU) for GT relations x predicted pairs."""
    return obj_ok[gs[:, None], ps[None]] & obj_ok[go[:, None], po[None]]


def match_image(gt: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray], mode: str,
                iou_threshold: float = 0.5, zeroshot_keys: Optional[np.ndarray] = None,
                ng_top: int = NG_TOP, max_rank: Optional[int] = None) -> ImageMatches:
    """Match one image's predictions to its ground truth (see the module docstring).

    gt: ``boxes`` [N, 4] xyxy, ``labels`` [N], ``relations`` [M, 3] (subject, object, predicate).
    pred: ``boxes`` [N', 4], ``labels`` [N'], ``scores`` [N'], ``rel_pairs`` [R, 2] ranked best
    first, ``rel_scores`` [R, P]. The given pair order is the ranking, as in SGB. Optional
    ``num_top_pairs`` T (default R): only the first T pairs count for R@K and ngR@K; the rows after
    them (PredCls/SGCls: the GT pairs ranked below the stored top K, see
    ``RelationPostProcessor``) count only for A@K, which ranks every prediction on a GT pair.
    In PredCls the predicted boxes, labels and scores are replaced by the GT boxes, GT labels and
    1.0, as SGB does. ``zeroshot_keys``: sorted :func:`triplet_keys` of zero-shot triplets.
    ``max_rank``: graph-constrained hits at rank >= max_rank are reported as NO_HIT (they count
    for no R@K with K <= max_rank), which saves work when R is large.
    """
    if mode not in MODES:
        raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {MODES}")
    gt_rels = np.asarray(gt["relations"], np.int64).reshape(-1, 3)
    m = gt_rels.shape[0]
    gs, go, gp = gt_rels[:, 0], gt_rels[:, 1], gt_rels[:, 2]
    empty = np.empty(0, np.int64)
    if m == 0:
        return ImageMatches(NO_GT_RELS, empty, empty, empty, empty, np.empty(0, bool))
    gt_labels = np.asarray(gt["labels"], np.int64).reshape(-1)
    gt_boxes = np.asarray(gt["boxes"]).reshape(-1, 4)
    zs = np.zeros(m, bool)
    if zeroshot_keys is not None and len(zeroshot_keys):
        keys = triplet_keys(gt_labels[gs], gt_labels[go], gp)
        pos = np.searchsorted(zeroshot_keys, keys)
        zs = zeroshot_keys[np.minimum(pos, len(zeroshot_keys) - 1)] == keys

    pairs = np.asarray(pred["rel_pairs"], np.int64).reshape(-1, 2)
    rel_scores = np.asarray(pred["rel_scores"])
    if rel_scores.ndim != 2 or rel_scores.shape[0] != pairs.shape[0]:
        raise ValueError(f"rel_scores must be [R, P] with R = len(rel_pairs) = {pairs.shape[0]}, "
                         f"got shape {rel_scores.shape}")
    if pairs.shape[0] == 0:
        none = np.full(m, NO_HIT, np.int64)
        return ImageMatches(NO_PRED_PAIRS, gp, none, none, none, zs)

    if mode == "predcls":
        n_pred = np.asarray(pred["boxes"]).reshape(-1, 4).shape[0]
        if n_pred != gt_boxes.shape[0]:
            raise ValueError(f"PredCls predictions must use the {gt_boxes.shape[0]} GT boxes, "
                             f"got {n_pred} boxes")
        boxes, labels = gt_boxes, gt_labels
        scores = np.ones(gt_labels.shape[0], np.float32)
    else:
        boxes = np.asarray(pred["boxes"]).reshape(-1, 4)
        labels = np.asarray(pred["labels"], np.int64).reshape(-1)
        scores = np.asarray(pred["scores"]).reshape(-1)
    if pairs.min() < 0 or pairs.max() >= boxes.shape[0]:
        raise ValueError(f"rel_pairs index boxes 0..{boxes.shape[0] - 1}, got indices "
                         f"{pairs.min()}..{pairs.max()}")
    top = int(pred.get("num_top_pairs", len(pairs)))
    if not 0 < top <= len(pairs):
        raise ValueError(f"num_top_pairs must be in 1..{len(pairs)} (the number of rel_pairs), "
                         f"got {top}")
    ps, po = pairs[:, 0], pairs[:, 1]

    # [N_gt, N_pred]: same class and IoU >= threshold (computed once per image)
    obj_ok = (box_iou_sgb(gt_boxes, boxes) >= iou_threshold) & (gt_labels[:, None] == labels[None])

    # graph constraint: one predicate per pair, the best non-background one. Only the first
    # min(top, max_rank) pairs can count for R@K, plus (A@K) every prediction on a GT pair.
    limit = top if max_rank is None else min(top, max_rank)
    rows = np.arange(limit)
    if mode != "sgdet":
        base = max(boxes.shape[0], gt_boxes.shape[0]) + 1
        gt_keys = np.unique(gs * base + go)
        on_gt_pair = np.isin(ps * base + po, gt_keys)
        missing = int(len(gt_keys) - np.isin(gt_keys, ps * base + po).sum())
        rows = np.union1d(rows, np.flatnonzero(on_gt_pair))
    pred_pred = rel_scores[rows, 1:].argmax(1) + 1
    hit = _box_hit(obj_ok, gs, go, ps[rows], po[rows]) & (gp[:, None] == pred_pred[None])
    rank = _first_true(hit[:, :limit])
    if mode != "sgdet":  # A@K: predictions on GT pairs (by index), ranked among themselves
        pair_rank = _first_true(hit[:, on_gt_pair[rows]])
    else:
        pair_rank, missing = np.full(m, NO_HIT, np.int64), 0

    # no graph constraint: top ng_top (pair, predicate) by s_sub * s_obj * p(pred)
    cand_pair, cand_pred = no_graph_candidates(rel_scores[:top], scores[ps[:top]] * scores[po[:top]],
                                               ng_top)
    ng_hit = _box_hit(obj_ok, gs, go, ps[cand_pair], po[cand_pair]) & (gp[:, None] == cand_pred[None])
    ng_rank = _first_true(ng_hit)
    return ImageMatches(OK, gp, rank, ng_rank, pair_rank, zs, missing)
