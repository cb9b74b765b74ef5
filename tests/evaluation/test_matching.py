"""Per-image matching: SGB's IoU convention, thresholds, duplicate GT pairs, graph constraint."""
import numpy as np
import pytest

from maskrcnn_benchmark.data.datasets.evaluation.vg.matching import NO_HIT, box_iou_sgb, \
    match_image, no_graph_candidates


def _gt(boxes, labels, rels):
    return {"boxes": np.asarray(boxes, np.float32), "labels": np.asarray(labels, np.int64),
            "relations": np.asarray(rels, np.int64).reshape(-1, 3)}


def _pred(boxes, labels, pairs, rel_scores, scores=None):
    n = len(labels)
    return {"boxes": np.asarray(boxes, np.float32), "labels": np.asarray(labels, np.int64),
            "scores": np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32),
            "rel_pairs": np.asarray(pairs, np.int64).reshape(-1, 2),
            "rel_scores": np.asarray(rel_scores, np.float32).reshape(len(pairs), -1)}


def test_iou_uses_sgb_plus_one_convention():
    # +1 convention: areas 10x10 and 10x20, intersection 10x10 -> exactly 0.5
    iou = box_iou_sgb(np.array([[0, 0, 9, 9]]), np.array([[0, 0, 9, 19], [0, 0, 9, 20],
                                                        [20, 20, 30, 30], [0, 0, 9, 9]]))
    assert iou.dtype == np.float32
    assert iou[0, 0] == 0.5  # the continuous convention would give 81 / 171
    assert iou[0, 1] == pytest.approx(100 / 210)
    assert iou[0, 2] == 0 and iou[0, 3] == 1


def test_iou_exactly_at_threshold_is_a_hit():
    gt = _gt([[0, 0, 9, 9], [50, 50, 59, 59]], [1, 2], [[0, 1, 1]])
    scores = [[0.1, 0.9]]
    at = match_image(gt, _pred([[0, 0, 9, 19], [50, 50, 59, 59]], [1, 2], [[0, 1]], scores),
                     "sgdet")
    below = match_image(gt, _pred([[0, 0, 9, 20], [50, 50, 59, 59]], [1, 2], [[0, 1]], scores),
                        "sgdet")
    assert at.rank.tolist() == [0]
    assert below.rank.tolist() == [NO_HIT] and below.ng_rank.tolist() == [NO_HIT]
    stricter = match_image(gt, _pred([[0, 0, 9, 19], [50, 50, 59, 59]], [1, 2], [[0, 1]],
                                     scores), "sgdet", iou_threshold=0.51)
    assert stricter.rank.tolist() == [NO_HIT]


def test_duplicate_gt_pairs_and_graph_constraint():
    boxes = [[0, 0, 10, 10], [20, 0, 30, 10]]
    # GT: (0,1,on=1), (0,1,has=2), (0,1,on=1) again: duplicate pairs and a duplicate triplet
    gt = _gt(boxes, [1, 2], [[0, 1, 1], [0, 1, 2], [0, 1, 1]])
    m = match_image(gt, _pred(boxes, [1, 2], [[0, 1]], [[0.0, 0.6, 0.4]]), "sgdet")
    assert m.rank.tolist() == [0, NO_HIT, 0]  # one predicate per pair: both "on" hit, "has" not
    assert m.ng_rank.tolist() == [0, 1, 0]  # no graph constraint: (0,1,on) then (0,1,has)
    assert m.predicates.tolist() == [1, 2, 1]


def test_labels_must_match_and_predcls_uses_gt_objects():
    boxes = [[0, 0, 10, 10], [20, 0, 30, 10]]
    gt = _gt(boxes, [1, 2], [[0, 1, 1]])
    wrong = _pred([[100, 100, 110, 110], [20, 0, 30, 10]], [3, 2], [[0, 1]], [[0.0, 1.0]],
                  scores=[0.5, 0.5])
    assert match_image(gt, wrong, "sgcls").rank.tolist() == [NO_HIT]
    assert match_image(gt, wrong, "predcls").rank.tolist() == [0]  # SGB: GT boxes and labels


def test_given_order_is_the_ranking_and_any_number_of_pairs():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(15)], np.float32)
    labels = np.arange(1, 16)
    gt = _gt(boxes, labels, [[0, 1, 1]])
    others = [(i, j) for i in range(15) for j in range(15) if i != j and (i, j) != (0, 1)]
    for n_before, expect in ((99, 99), (100, NO_HIT)):
        pairs = others[:n_before] + [(0, 1)]
        # every pair has the same score, the GT pair ranks last: ties keep the given order;
        # a second predicate at score 0 makes more than 100 (pair, predicate) candidates
        m = match_image(gt, _pred(boxes, labels, pairs, [[0.0, 1.0, 0.0]] * len(pairs)), "sgdet")
        assert m.rank.tolist() == [n_before]
        assert m.ng_rank.tolist() == [expect]  # SGB keeps only the top 100 candidates


def test_no_graph_candidates_order():
    rel = np.array([[0.1, 0.6, 0.3], [0.0, 0.2, 0.8]], np.float32)
    pair_idx, pred = no_graph_candidates(rel, np.array([1.0, 0.5], np.float32), top=3)
    # scores: (0,1)=.6 (0,2)=.3 (1,1)=.1 (1,2)=.4
    assert pair_idx.tolist() == [0, 1, 0] and pred.tolist() == [1, 2, 2]


def test_a_at_k_ranks_only_predictions_on_gt_pairs():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [20, 0, 30, 10]]  # boxes 0 and 1 coincide
    gt = _gt(boxes, [1, 1, 2], [[0, 2, 1]])
    # (1,2) matches the GT relation by IoU and class but is not a GT pair by index
    m = match_image(gt, _pred(boxes, [1, 1, 2], [[2, 0], [1, 2], [0, 2]],
                              [[0, 1.0], [0, 1.0], [0, 1.0]]), "predcls")
    assert m.rank.tolist() == [1]  # (1,2) hits first
    assert m.pair_rank.tolist() == [0]  # first among GT-pair predictions: (0,2)
    sgdet = match_image(gt, _pred(boxes, [1, 1, 2], [[1, 2]], [[0, 1.0]]), "sgdet")
    assert sgdet.pair_rank.tolist() == [NO_HIT]


def test_bad_inputs_raise_clear_errors():
    gt = _gt([[0, 0, 1, 1], [2, 2, 3, 3]], [1, 2], [[0, 1, 1]])
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        match_image(gt, _pred(gt["boxes"], [1, 2], [[0, 1]], [[0, 1.0]]), "phrdet")
    with pytest.raises(ValueError, match="rel_pairs index boxes"):
        match_image(gt, _pred(gt["boxes"], [1, 2], [[0, 5]], [[0, 1.0]]), "sgdet")
    with pytest.raises(ValueError, match="PredCls predictions must use the 2 GT boxes"):
        match_image(gt, _pred(gt["boxes"][:1], [1], [[0, 0]], [[0, 1.0]]), "predcls")


@pytest.mark.parametrize("quantize", [False, True])
def test_no_graph_prefilter_equals_brute_force_for_large_r(quantize):
    rng = np.random.default_rng(5)
    rel = rng.dirichlet(np.ones(8), size=700).astype(np.float32)
    pair_scores = rng.uniform(0.1, 1, 700).astype(np.float32)
    if quantize:  # many ties
        rel = (np.round(rel * 8) / 8).astype(np.float32)
        pair_scores = (np.round(pair_scores * 4) / 4).astype(np.float32)
    flat = (pair_scores[:, None] * rel[:, 1:]).ravel()
    brute = np.argsort(-flat, kind="stable")[:100]
    pair_idx, pred = no_graph_candidates(rel, pair_scores)
    assert pair_idx.tolist() == (brute // 7).tolist() and pred.tolist() == (brute % 7 + 1).tolist()


def test_max_rank_only_hides_ranks_beyond_it():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(30)], np.float32)
    labels = np.arange(1, 31)
    gt = _gt(boxes, labels, [[0, 1, 1], [2, 3, 1]])
    pairs = [(i, j) for i in range(30) for j in range(30) if i != j]
    pairs.remove((0, 1))
    pairs.remove((2, 3))
    pairs = [(2, 3)] + pairs[:150] + [(0, 1)] + pairs[150:]
    rel = np.tile([0.0, 0.6, 0.4], (len(pairs), 1))
    full = match_image(gt, _pred(boxes, labels, pairs, rel), "predcls")
    cut = match_image(gt, _pred(boxes, labels, pairs, rel), "predcls", max_rank=100)
    assert full.rank.tolist() == [151, 0] and cut.rank.tolist() == [NO_HIT, 0]
    assert full.pair_rank.tolist() == cut.pair_rank.tolist() == [1, 0]  # A@K sees all GT pairs
    assert full.missing_gt_pairs == 0
    short = match_image(gt, _pred(boxes, labels, pairs[:100], rel[:100]), "predcls")
    assert short.missing_gt_pairs == 1 and short.pair_rank.tolist() == [NO_HIT, 0]
    assert full.ng_rank.tolist() == cut.ng_rank.tolist()
