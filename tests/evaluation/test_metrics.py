"""Dataset-level metrics: hand-computed known answers for every metric, SGB's averaging rules."""
import numpy as np
import pytest

from maskrcnn_benchmark.data.datasets.evaluation.vg import evaluate_relations, format_table, \
    relation_triplets, zeroshot_triplets

P = 4  # background + 3 predicates; predicate 3 never appears in these test sets


def _box(i):
    return [i * 20, 0, i * 20 + 10, 10]


def _image(n_obj, rels):
    return {"boxes": np.array([_box(i) for i in range(n_obj)], np.float32),
            "labels": np.arange(1, n_obj + 1, dtype=np.int64),
            "relations": np.asarray(rels, np.int64).reshape(-1, 3)}


def _pred(gt, ranked):
    """Predictions on the GT objects; ``ranked``: [(subject, object, {predicate: score})]."""
    scores = np.full((len(ranked), P), 0.001, np.float32)
    for r, (_, _, dist) in enumerate(ranked):
        for p, s in dist.items():
            scores[r, p] = s
    return {"boxes": gt["boxes"].copy(), "labels": gt["labels"].copy(),
            "scores": np.ones(len(gt["labels"]), np.float32),
            "rel_pairs": np.array([(s, o) for s, o, _ in ranked], np.int64).reshape(-1, 2),
            "rel_scores": scores}


def _dataset():
    # image 0: (0,1,p1) x2 (a duplicate triplet), (1,2,p2); image 1: (0,1,p1); image 2: none
    gts = [_image(3, [[0, 1, 1], [0, 1, 1], [1, 2, 2]]), _image(2, [[0, 1, 1]]), _image(2, [])]
    preds = [
        _pred(gts[0], [(1, 2, {2: 0.9}), (0, 2, {1: 0.8}), (0, 1, {2: 0.5, 1: 0.4})]),
        _pred(gts[1], [(1, 0, {1: 0.9}), (0, 1, {2: 0.6, 1: 0.3})]),
        _pred(gts[2], [(0, 1, {1: 0.9})]),
    ]
    return gts, preds


def _eval(gts, preds, mode="predcls", **kw):
    kw.setdefault("ks", (1, 2, 3, 20))
    return evaluate_relations(gts, preds, mode, P, predicate_names=["bg", "on", "has", "at"], **kw)


def test_known_answer_recall_mean_recall_and_no_graph():
    r = _eval(*_dataset())
    m, c = r["metrics"], r["counts"]
    # graph constrained: image 0: rank 0 hits (1,2,p2); (0,1) predicts p2 -> the p1s miss
    assert m["R@1"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["R@20"] == pytest.approx((1 / 3 + 0) / 2)
    # per predicate: p1: image 0 0/2, image 1 0/1 -> 0; p2: image 0 1/1 -> 1; p3 absent -> 0
    assert m["mR@20"] == pytest.approx((0 + 1 + 0) / 3)
    assert r["per_predicate"]["R@20"] == {"on": 0.0, "has": 1.0, "at": None}
    # no graph constraint, image 0 candidates: (1,2,p2).9 (0,2,p1).8 (0,1,p2).5 (0,1,p1).4
    #   -> (1,2,p2) at 0, both (0,1,p1) at 3; image 1: (1,0,p1).9 (0,1,p2).6 (0,1,p1).3 -> 2
    assert m["ngR@1"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["ngR@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["ngR@20"] == pytest.approx(1.0)
    assert m["ng-mR@3"] == pytest.approx(((0 / 2 + 1 / 1) / 2 + 1 + 0) / 3)
    assert m["ng-mR@20"] == pytest.approx(2 / 3)
    # A@K: only predictions on GT pairs, ranked among themselves: image 0: (1,2) p2 hit at 0,
    # (0,1) p2 misses; image 1: (0,1) p2 misses. hits 1 of 4 GT relations.
    assert m["A@1"] == pytest.approx((1 + 0) / 2 / ((3 + 1) / 2))
    assert c["evaluated"] == 2 and c["no_gt_relations"] == 1 and c["gt_relations"] == 4
    assert c["absent_predicates"] == ["at"] and c["num_absent_predicates"] == 1
    assert "zR@20" not in m


def test_a_at_k_absent_in_sgdet():
    r = _eval(*_dataset(), mode="sgdet")
    assert not any(k.startswith("A@") for k in r["metrics"])
    assert r["metrics"]["R@20"] == pytest.approx(1 / 6)


def test_image_without_predicted_pairs_is_skipped_as_sgb_does():
    gts, preds = _dataset()
    preds[1] = {**preds[1], "rel_pairs": np.zeros((0, 2), np.int64),
                "rel_scores": np.zeros((0, P), np.float32)}
    r = _eval(gts, preds)
    assert r["counts"]["no_predicted_pairs"] == 1 and r["counts"]["evaluated"] == 1
    assert r["metrics"]["R@20"] == pytest.approx(1 / 3)


def test_max_boxes_filter_drops_images_with_more_gt_boxes():
    gts, preds = _dataset()
    big = _image(41, [[0, 1, 1]])
    gts.append(big)
    preds.append(_pred(big, [(0, 1, {1: 0.9})]))  # a perfect image, R = 1
    kept = _eval(gts, preds, max_boxes=0)
    assert kept["metrics"]["R@20"] == pytest.approx((1 / 3 + 0 + 1) / 3)
    dropped = _eval(gts, preds, max_boxes=40)
    assert dropped["counts"]["dropped_max_boxes"] == 1
    assert dropped["metrics"]["R@20"] == pytest.approx((1 / 3 + 0) / 2)
    big40 = _image(40, [[0, 1, 1]])
    gts[-1], preds[-1] = big40, _pred(big40, [(0, 1, {1: 0.9})])
    assert _eval(gts, preds, max_boxes=40)["counts"]["dropped_max_boxes"] == 0


def test_zero_shot_recall_from_training_triplets():
    gts, preds = _dataset()
    # training saw (cls1, cls2, p1) only: (cls2, cls3, p2) in image 0 is zero-shot; image 1's
    # (cls1, cls2, p1) is not, so zR averages over image 0 alone
    train = [(np.array([1, 2]), np.array([[0, 1, 1]]))]
    z = zeroshot_triplets(train, ((g["labels"], g["relations"]) for g in gts))
    assert z.tolist() == [[2, 3, 2]]
    r = _eval(gts, preds, zeroshot_triplets=z)
    assert r["metrics"]["zR@1"] == 1.0 and r["metrics"]["ng-zR@1"] == 1.0
    assert r["counts"]["zeroshot_relations"] == 1 and r["counts"]["zeroshot_images"] == 1
    # a zero-shot relation that is missed: (cls1, cls2, p1) in image 1 at ng rank 2
    z2 = np.array([[1, 2, 1]])
    r2 = _eval(gts, preds, zeroshot_triplets=z2)
    assert r2["metrics"]["zR@20"] == 0.0
    assert r2["metrics"]["ng-zR@2"] == pytest.approx((0 / 2 + 0) / 2)
    assert r2["metrics"]["ng-zR@3"] == pytest.approx((0 / 2 + 1) / 2)
    assert r2["metrics"]["ng-zR@20"] == 1.0
    assert relation_triplets(train).tolist() == [[1, 2, 1]]


def test_predicate_groups():
    r = _eval(*_dataset(), predicate_groups={"head": [1], "tail": [2, 3]})
    assert r["groups"]["head"]["mR@20"] == 0.0
    assert r["groups"]["tail"]["mR@20"] == pytest.approx(0.5)  # p2 = 1, p3 absent = 0
    assert r["groups"]["head"]["ng-mR@20"] == 1.0
    assert r["counts"]["absent_per_group"] == {"head": 0, "tail": 1}
    assert "HEAD mR@20" in format_table(r)


def test_perfect_predictions_give_100():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(6):
        n = int(rng.integers(2, 6))
        pairs = [(s, o) for s in range(n) for o in range(n) if s != o]
        chosen = [pairs[i] for i in rng.choice(len(pairs), size=min(4, len(pairs)), replace=False)]
        rels = [(s, o, int(rng.integers(1, P))) for s, o in chosen]
        gt = _image(n, rels)
        gts.append(gt)
        preds.append(_pred(gt, [(s, o, {p: 0.9}) for s, o, p in rels]))
    gts.append(_image(2, [[0, 1, 1], [1, 0, 2], [0, 1, 3]]))
    preds.append(_pred(gts[-1], [(0, 1, {1: 0.9}), (1, 0, {2: 0.9}), (0, 1, {3: 0.8})]))
    for mode in ("predcls", "sgcls", "sgdet"):
        m = _eval(gts, preds, mode, ks=(20, 50, 100),
                  zeroshot_triplets=np.array([[1, 2, 1], [2, 1, 2]]))["metrics"]
        for key, value in m.items():
            assert value == 1.0, (mode, key)


def test_invariant_to_gt_relation_order():
    gts, preds = _dataset()
    base = _eval(gts, preds)
    gts[0] = {**gts[0], "relations": gts[0]["relations"][[2, 0, 1]]}
    again = _eval(gts, preds)
    assert again["metrics"] == base["metrics"]
    assert again["per_predicate"] == base["per_predicate"]


def test_errors_name_the_problem():
    gts, preds = _dataset()
    with pytest.raises(ValueError, match="aligned image by image"):
        _eval(gts, preds[:2])
    with pytest.raises(ValueError, match="num_predicates"):
        evaluate_relations(gts, preds, "predcls", P + 1)
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        _eval(gts, preds, mode="preddet")
    with pytest.raises(ValueError, match=r"group 'tail' has ids \[4\] outside 1..3"):
        _eval(gts, preds, predicate_groups={"tail": [3, 4]})


def test_train_triplets_from_a_dataset(tmp_path):
    from maskrcnn_benchmark.data.datasets.evaluation.vg import train_triplets, zeroshot_from_train

    class _Data:
        def __init__(self, gts):
            self.gts = gts

        def __len__(self):
            return len(self.gts)

        def get_groundtruth(self, i):
            return self.gts[i]

    gts, _ = _dataset()
    cache = tmp_path / "cache" / "train_triplets.npz"
    seen = train_triplets(_Data(gts), str(cache))
    assert seen.tolist() == [[1, 2, 1], [2, 3, 2]]
    assert not cache.exists()  # no annotation file to key a cache by (VGDataset: tests/data/test_zeroshot.py)
    assert train_triplets(_Data(gts[1:]), str(cache)).tolist() == [[1, 2, 1]]
    test = [_image(3, [[0, 1, 1], [2, 0, 2]])]
    assert zeroshot_from_train(seen, test).tolist() == [[3, 1, 2]]


def _all_pair_images(mode, seed=0, n_images=30, num_predicates=6):
    """Images with every ordered pair predicted (as the model does with GT boxes), ranked by a
    random triplet score; SGCls labels are sometimes wrong."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n_images):
        n = int(rng.integers(2, 12))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(5, 50, (n, 2))]).astype(np.float32)
        labels = rng.integers(1, 5, n)
        m = int(rng.integers(1, 2 * n))
        sub, obj = rng.integers(0, n, m), rng.integers(0, n, m)
        obj = np.where(sub == obj, (obj + 1) % n, obj)
        gts.append({"boxes": boxes, "labels": labels,
                    "relations": np.stack([sub, obj, rng.integers(1, num_predicates, m)], 1)})
        pairs = np.array([(i, j) for i in range(n) for j in range(n) if i != j], np.int64)
        rel = rng.dirichlet(np.full(num_predicates, 0.3), len(pairs)).astype(np.float32)
        pred_labels = labels if mode == "predcls" else \
            np.where(rng.random(n) < 0.8, labels, rng.integers(1, 5, n))
        scores = np.ones(n, np.float32) if mode == "predcls" else \
            rng.uniform(0.2, 1, n).astype(np.float32)
        order = np.argsort(-(rel[:, 1:].max(1) * scores[pairs[:, 0]] * scores[pairs[:, 1]]),
                           kind="stable")
        preds.append({"boxes": boxes.copy(), "labels": pred_labels, "scores": scores,
                      "rel_pairs": pairs[order], "rel_scores": rel[order]})
    return gts, preds


def _cut(gt, pred, top, keep_gt_pairs):
    """The top ``top`` pairs, plus (``keep_gt_pairs``) the GT pairs ranked below them, in order:
    what RelationPostProcessor stores with and without the targets' GT pairs."""
    pairs = pred["rel_pairs"]
    rows = np.arange(min(top, len(pairs)))
    if keep_gt_pairs:
        gt_keys = gt["relations"][:, 0] * 1000 + gt["relations"][:, 1]
        below = np.arange(len(rows), len(pairs))
        rows = np.concatenate([rows, below[np.isin(pairs[below, 0] * 1000 + pairs[below, 1],
                                                   gt_keys)]])
    out = {**pred, "rel_pairs": pairs[rows], "rel_scores": pred["rel_scores"][rows]}
    if keep_gt_pairs:
        out["num_top_pairs"] = min(top, len(pairs))
    return out


@pytest.mark.parametrize("mode", ["predcls", "sgcls"])
def test_accuracy_exact_with_gt_pairs_below_the_top_k(mode):
    """A@K ranks every prediction on a GT pair (SGB keeps all pairs). Storing the top T pairs
    plus the GT pairs below them (num_top_pairs = T) gives every metric at K <= T exactly as
    with all pairs; the top T alone loses A@K on images with more than T pairs."""
    gts, preds = _all_pair_images(mode)
    ks, top = (5, 10, 20), 20
    kw = dict(ks=ks, zeroshot_triplets=np.zeros((0, 3)))
    full = evaluate_relations(gts, preds, mode, 6, **kw)
    exact = evaluate_relations(gts, [_cut(g, p, top, True) for g, p in zip(gts, preds)], mode, 6,
                               **kw)
    topk_only = evaluate_relations(gts, [_cut(g, p, top, False) for g, p in zip(gts, preds)],
                                   mode, 6, **kw)
    assert exact["metrics"] == full["metrics"]
    assert exact["counts"]["gt_pairs_without_prediction"] == 0
    assert topk_only["counts"]["gt_pairs_without_prediction"] > 0
    for k in ks:
        assert topk_only["metrics"][f"R@{k}"] == full["metrics"][f"R@{k}"]
        assert topk_only["metrics"][f"ngR@{k}"] == full["metrics"][f"ngR@{k}"]
        assert topk_only["metrics"][f"A@{k}"] <= full["metrics"][f"A@{k}"]
    assert topk_only["metrics"]["A@20"] < full["metrics"]["A@20"]


def test_rows_after_num_top_pairs_count_only_for_accuracy():
    # one GT relation; its pair is stored after the top pair: not a graph-constrained hit
    gt = _image(3, [[0, 1, 1]])
    pred = _pred(gt, [(1, 2, {2: 0.9}), (0, 1, {1: 0.8})])
    both = evaluate_relations([gt], [pred], "predcls", P, ks=(1, 2))["metrics"]
    assert both["R@2"] == 1.0 and both["A@1"] == 1.0
    extra = evaluate_relations([gt], [{**pred, "num_top_pairs": 1}], "predcls", P,
                               ks=(1, 2))["metrics"]
    assert extra["R@2"] == 0.0 and extra["ngR@2"] == 0.0 and extra["A@1"] == 1.0
    with pytest.raises(ValueError, match="num_top_pairs must be in 1..2"):
        evaluate_relations([gt], [{**pred, "num_top_pairs": 3}], "predcls", P)
