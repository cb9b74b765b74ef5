"""The vectorised evaluator equals a literal, loop-by-loop transcription of SGB's rules on random
data (all modes, all metrics), and worker processes change nothing."""
import numpy as np
import pytest

from maskrcnn_benchmark.data.datasets.evaluation.vg import evaluate_relations

P, C, KS = 6, 5, (1, 5, 20, 100)


def _iou(a, b):
    f = np.float32
    iw = max(f(0), min(f(a[2]), f(b[2])) - max(f(a[0]), f(b[0])) + f(1))
    ih = max(f(0), min(f(a[3]), f(b[3])) - max(f(a[1]), f(b[1])) + f(1))
    area_a = (f(a[2]) - f(a[0]) + f(1)) * (f(a[3]) - f(a[1]) + f(1))
    area_b = (f(b[2]) - f(b[0]) + f(1)) * (f(b[3]) - f(b[1]) + f(1))
    return f(iw * ih) / (area_a + area_b - f(iw * ih))


def _reference(gts, preds, mode, zs, thr=0.5):
    rec = {k: [] for k in KS}
    ng = {k: [] for k in KS}
    zr = {k: [] for k in KS}
    ngz = {k: [] for k in KS}
    per_pred = {k: [[] for _ in range(P)] for k in KS}
    a_hit, a_cnt = {k: [] for k in KS}, {k: [] for k in KS}
    for gt, pr in zip(gts, preds):
        rels = gt["relations"].tolist()
        if not rels or len(pr["rel_pairs"]) == 0:
            continue
        gl, gb = gt["labels"].tolist(), gt["boxes"].tolist()
        if mode == "predcls":
            pb, pl, ps = gb, gl, [1.0] * len(gl)
        else:
            pb, pl, ps = pr["boxes"].tolist(), pr["labels"].tolist(), pr["scores"].tolist()
        pairs, rs = pr["rel_pairs"].tolist(), pr["rel_scores"]

        def hits(s, o, p):
            return [j for j, (gs, go, gp) in enumerate(rels)
                    if gp == p and gl[gs] == pl[s] and gl[go] == pl[o]
                    and _iou(gb[gs], pb[s]) >= thr and _iou(gb[go], pb[o]) >= thr]
        gc = [hits(s, o, int(np.argmax(rs[i, 1:])) + 1) for i, (s, o) in enumerate(pairs)]
        cand = [(-(np.float32(ps[s]) * np.float32(ps[o]) * rs[i, p]), i * P + p, i, p)
                for i, (s, o) in enumerate(pairs) for p in range(1, P)]
        ngc = [hits(pairs[i][0], pairs[i][1], p) for _, _, i, p in sorted(cand)[:100]]
        gt_pairs = {(s, o) for s, o, _ in rels}
        on_gt = [h for h, pair in zip(gc, pairs) if tuple(pair) in gt_pairs]
        zs_idx = {j for j, (s, o, p) in enumerate(rels) if (gl[s], gl[o], p) in zs}
        for k in KS:
            got = set().union(*gc[:k])
            rec[k].append(len(got) / len(rels))
            ng[k].append(len(set().union(*ngc[:k])) / len(rels))
            if zs_idx:
                zr[k].append(len(zs_idx & got) / len(zs_idx))
                ngz[k].append(len(zs_idx & set().union(*ngc[:k])) / len(zs_idx))
            for p in range(1, P):
                idx = [j for j, r in enumerate(rels) if r[2] == p]
                if idx:
                    per_pred[k][p].append(len(got & set(idx)) / len(idx))
            a_hit[k].append(len(set().union(*on_gt[:k])))
            a_cnt[k].append(len(rels))
    out = {}
    for k in KS:
        out[f"R@{k}"], out[f"ngR@{k}"] = np.mean(rec[k]), np.mean(ng[k])
        out[f"zR@{k}"], out[f"ng-zR@{k}"] = np.mean(zr[k]), np.mean(ngz[k])
        out[f"mR@{k}"] = sum(np.mean(v) if v else 0.0 for v in per_pred[k][1:]) / (P - 1)
        if mode != "sgdet":
            out[f"A@{k}"] = np.mean(a_hit[k]) / np.mean(a_cnt[k])
    return out


def _random_set(seed, mode, n_img=40):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n_img):
        n = int(rng.integers(2, 8))
        xy = rng.integers(0, 60, (n, 2))
        boxes = np.concatenate([xy, xy + rng.integers(4, 30, (n, 2))], 1).astype(np.float32)
        labels = rng.integers(1, C + 1, n)
        m = int(rng.integers(0, 7))
        rels = np.stack([rng.integers(0, n, m), rng.integers(0, n, m),
                         rng.integers(1, P, m)], 1) if m else np.zeros((0, 3), np.int64)
        rels = rels[rels[:, 0] != rels[:, 1]]
        gts.append({"boxes": boxes, "labels": labels, "relations": rels})
        nd = n + int(rng.integers(0, 4)) if mode == "sgdet" else n
        jitter = rng.integers(-3, 4, (n, 4)) if mode == "sgdet" else 0
        exy = rng.integers(0, 60, (nd - n, 2))
        extra = np.concatenate([exy, exy + 9], 1)
        pboxes = np.concatenate([boxes + jitter, extra]).astype(np.float32)
        plabels = np.concatenate([labels, rng.integers(1, C + 1, nd - n)])
        flip = rng.random(nd) < 0.2
        plabels[flip] = rng.integers(1, C + 1, flip.sum())
        all_pairs = np.array([(s, o) for s in range(nd) for o in range(nd) if s != o])
        r = int(rng.integers(0, min(len(all_pairs), 40) + 1))
        pairs = all_pairs[rng.permutation(len(all_pairs))[:r]]
        logits = rng.normal(size=(r, P)) * 2
        rel_scores = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
        preds.append({"boxes": pboxes, "labels": plabels,
                      "scores": rng.uniform(0.1, 1, nd).astype(np.float32),
                      "rel_pairs": pairs.reshape(-1, 2), "rel_scores": rel_scores})
    return gts, preds


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_equals_literal_sgb_rules(mode):
    gts, preds = _random_set(7, mode)
    zs = {(1, 2, 1), (2, 1, 3), (3, 3, 2), (4, 5, 5), (5, 1, 4)}
    ours = evaluate_relations(gts, preds, mode, P, ks=KS, zeroshot_triplets=np.array(sorted(zs)))
    ref = _reference(gts, preds, mode, zs)
    assert 0 < ref["R@100"] < 1 and 0 < ref["ngR@100"] < 1  # the data exercise hits and misses
    for key, value in ref.items():
        assert ours["metrics"][key] == pytest.approx(value, abs=1e-12), key


def test_workers_give_identical_results():
    gts, preds = _random_set(3, "sgdet", n_img=60)
    one = evaluate_relations(gts, preds, "sgdet", P, num_workers=0)
    two = evaluate_relations(gts, preds, "sgdet", P, num_workers=2)
    assert one == two
