import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head.sampling import RelationSampler, unique_relations


def _target(n, rels, boxes=None, labels=None):
    boxes = boxes if boxes is not None else torch.arange(n, dtype=torch.float32)[:, None] * 20 + \
        torch.tensor([0., 0., 10., 10.])
    return {"boxes": boxes, "labels": labels if labels is not None else torch.arange(1, n + 1),
            "relation_tuples": torch.tensor(rels, dtype=torch.int64).view(-1, 3)}


def test_unique_relations_one_predicate_per_pair_no_self_pairs():
    torch.manual_seed(0)
    rels = torch.tensor([[0, 1, 3], [0, 1, 4], [1, 0, 2], [2, 2, 1], [0, 1, 3]])
    seen = set()
    for _ in range(30):
        u = unique_relations(rels, 3)
        assert sorted((s, o) for s, o, _ in u.tolist()) == [(0, 1), (1, 0)]
        seen.add(tuple(u[u[:, 0] == 0][0].tolist()))
    assert seen == {(0, 1, 3), (0, 1, 4)}  # the kept predicate is drawn at random


def test_gtbox_sampling_all_gt_fg_then_bg_capped():
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=True, batch_size_per_image=16, positive_fraction=0.25)
    rels = [[0, 1, 2], [1, 2, 3], [3, 0, 1]]
    (pairs,), (labels,) = sampler.gtbox_sample([6], [_target(6, rels)])
    assert pairs.shape == (16, 2) and labels.shape == (16,)
    fg = {tuple(p) + (int(l),) for p, l in zip(pairs.tolist(), labels) if l > 0}
    assert fg == {tuple(r) for r in rels}
    assert (labels[:3] > 0).all() and (labels[3:] == 0).all()  # foreground first
    bg = {tuple(p) for p, l in zip(pairs.tolist(), labels) if l == 0}
    assert len(bg) == 13 and not bg & {(0, 1), (1, 2), (3, 0)} and all(s != o for s, o in bg)


def test_gtbox_positive_fraction_and_small_images():
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=True, batch_size_per_image=8, positive_fraction=0.25)
    rels = [[i, j, 1] for i in range(4) for j in range(4) if i != j]
    (pairs, small, empty), (labels, small_lab, _) = sampler.gtbox_sample(
        [5, 2, 1], [_target(5, rels), _target(2, [[0, 1, 4]]), _target(1, [])])
    assert (labels > 0).sum() == 2 and pairs.shape[0] == 8  # 25% of 8 fg; 6 of the 8 non-GT pairs
    assert not {tuple(p) for p in pairs[labels == 0].tolist()} & {tuple(r[:2]) for r in rels}
    assert small.tolist() == [[0, 1], [1, 0]] and small_lab.tolist() == [4, 0]
    assert empty.shape == (0, 2)


def test_detect_sampling_matches_label_and_iou():
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=False, batch_size_per_image=32, positive_fraction=0.5,
                              num_sample_per_gt_rel=4)
    gt = _target(2, [[0, 1, 3]], boxes=torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]),
                 labels=torch.tensor([2, 5]))
    det = torch.tensor([[0., 0., 10., 10.],   # matches gt 0
                        [0., 0., 10., 11.],   # matches gt 0
                        [50., 50., 60., 60.],  # matches gt 1
                        [100., 100., 110., 110.],  # background
                        [51., 50., 60., 60.]])  # matches gt 1
    (obj_labels,), (pairs,), (labels,) = sampler.detect_sample([det], [gt])
    assert obj_labels.tolist() == [2, 2, 5, 0, 5]
    fg = {tuple(p) for p, l in zip(pairs.tolist(), labels) if l > 0}
    assert fg == {(0, 2), (0, 4), (1, 2), (1, 4)} and set(labels[labels > 0].tolist()) == {3}
    bg = {tuple(p) for p, l in zip(pairs.tolist(), labels) if l == 0}
    assert all(3 not in p for p in bg) and not bg & fg  # no pairs with background detections
    assert len(bg) == 4 * 3 - 4


def test_detect_sampling_caps_pairs_per_gt_relation():
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=False, batch_size_per_image=64, positive_fraction=0.5,
                              num_sample_per_gt_rel=2)
    gt = _target(2, [[0, 1, 3]], boxes=torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]),
                 labels=torch.tensor([2, 5]))
    heads = torch.tensor([[0., 0., 10., 10.]]).repeat(3, 1)
    heads[:, 3] += torch.arange(3.)  # three slightly different boxes on the subject
    det = torch.cat([heads, torch.tensor([[50., 50., 60., 60.]]).repeat(3, 1)])
    _, (pairs,), (labels,) = sampler.detect_sample([det], [gt])
    assert (labels > 0).sum() == 2


def test_test_pairs_all_ordered_pairs():
    boxes = [torch.tensor([[0., 0., 1., 1.], [5., 5., 6., 6.], [9., 9., 10., 10.]]), torch.zeros(1, 4),
             torch.zeros(0, 4)]
    p3, p1, p0 = RelationSampler(use_gt_box=True).test_pairs(boxes)
    assert p3.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    assert p1.shape == (0, 2) and p0.shape == (0, 2)


def _sgdet_sampler(**kw):
    return RelationSampler(use_gt_box=False, batch_size_per_image=64, positive_fraction=0.5, **kw)


def test_detect_sampling_needs_the_label_of_the_gt_box_not_only_its_overlap():
    """Detection 0 overlaps GT boxes 0 (IoU 0.90) and 1 (IoU 0.74) and takes label 2 from GT 0; it
    must not stand for GT 1 (label 5) in GT 1's relation, although their IoU is above 0.5."""
    gt = _target(3, [[1, 2, 4]], boxes=torch.tensor([[0., 0., 10., 10.], [2., 0., 12., 10.], [50., 50., 60., 60.]]),
                 labels=torch.tensor([2, 5, 3]))
    det = torch.tensor([[0.5, 0., 10.5, 10.],  # on GT 0 and GT 1
                        [2., 0., 12., 10.],  # GT 1 exactly
                        [50., 50., 60., 60.]])  # GT 2
    for seed in range(5):
        torch.manual_seed(seed)
        (obj_labels,), (pairs,), (labels,) = _sgdet_sampler().detect_sample([det], [gt])
        assert obj_labels.tolist() == [2, 5, 3]
        got = {tuple(p): int(l) for p, l in zip(pairs.tolist(), labels)}
        assert {p: l for p, l in got.items() if l > 0} == {(1, 2): 4}
        assert got[(0, 2)] == 0  # a background pair, not a second match of the relation


def test_detect_sampling_draws_pairs_in_proportion_to_the_iou_product():
    """Two detections match the subject (IoU 1 and 0.52), one the object, one pair is kept per GT
    relation: the IoU-weighted draw picks the exact box with probability 1 / 1.52 = 0.66 (a uniform
    draw: 0.5). 600 draws (200 copies of the scene side by side, 3 calls) with a fixed seed: the
    share is 0.66 +- 0.05, a margin of > 4 sd either way."""
    copies = 200
    shift = torch.arange(copies, dtype=torch.float32).repeat_interleave(2)[:, None] * torch.tensor([100., 0, 100, 0])
    gt_boxes = torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]).repeat(copies, 1) + shift
    gt = _target(2 * copies, [[2 * k, 2 * k + 1, 3] for k in range(copies)], boxes=gt_boxes,
                 labels=torch.tensor([2, 5]).repeat(copies))
    shift = shift[::2].repeat_interleave(3, 0)
    det = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 19.2], [50., 50., 60., 60.]]).repeat(copies, 1) + shift
    from torchvision.ops import box_iou
    assert box_iou(det[1:2], gt_boxes[:1]).item() == pytest.approx(0.52, abs=1e-3)
    sampler = RelationSampler(use_gt_box=False, batch_size_per_image=2 * copies, positive_fraction=0.5,
                              num_sample_per_gt_rel=1)
    torch.manual_seed(0)
    picks = []
    for _ in range(3):
        _, (pairs,), (labels,) = sampler.detect_sample([det], [gt])
        fg = pairs[labels > 0]
        assert len(fg) == copies and (fg[:, 1] % 3 == 2).all() and (fg[:, 1] - fg[:, 0] <= 2).all()
        picks += (fg[:, 0] % 3).tolist()
    share = picks.count(0) / len(picks)
    assert abs(share - 1 / 1.52) < 0.05, share


def test_detect_sampling_with_required_overlap():
    """REQUIRE_BOX_OVERLAP: background pairs are pairs of distinct intersecting detections (two
    detections on one box included, as in SGB), never a detection with itself; a GT relation
    between boxes that do not touch stays foreground."""
    gt = _target(3, [[0, 2, 1]], boxes=torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.], [50., 50., 60., 60.]]),
                 labels=torch.tensor([1, 2, 3]))
    det = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.], [50., 50., 60., 60.], [5., 0., 15., 10.],
                        [100., 100., 110., 110.]])  # the last one is background
    torch.manual_seed(0)
    (obj_labels,), (pairs,), (labels,) = _sgdet_sampler(require_overlap=True).detect_sample([det], [gt])
    assert obj_labels.tolist() == [1, 2, 3, 2, 0]
    got = {tuple(p): int(l) for p, l in zip(pairs.tolist(), labels)}
    assert len(got) == len(pairs)  # no pair twice
    assert {p for p, l in got.items() if l > 0} == {(0, 2)} and got[(0, 2)] == 1
    assert {p for p, l in got.items() if l == 0} == {(0, 1), (1, 0), (0, 3), (3, 0), (1, 3), (3, 1)}

def test_test_pairs_require_overlap_in_sgdet_only():
    # SGB's prepare_test_pairs: with TEST.RELATION.REQUIRE_OVERLAP, SGDet keeps the pairs whose
    # boxes overlap (boxlist_iou > 0, +1 pixel convention: boxes 0.5 px apart overlap)
    boxes = torch.tensor([[0., 0., 10., 10.], [5., 5., 15., 15.], [10.5, 0., 20., 4.5], [40., 40., 50., 50.]])
    everything = [[i, j] for i in range(4) for j in range(4) if i != j]
    assert RelationSampler(use_gt_box=False).test_pairs([boxes])[0].tolist() == everything
    (pairs,) = RelationSampler(use_gt_box=False, test_overlap=True).test_pairs([boxes])
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    # PredCls / SGCls (GT boxes) always score every pair, as SGB
    assert RelationSampler(use_gt_box=True, test_overlap=True).test_pairs([boxes])[0].tolist() == everything
    assert RelationSampler(use_gt_box=False, test_overlap=True).test_pairs([torch.zeros(0, 4)])[0].shape == (0, 2)


def test_detect_sampling_draws_one_pair_in_proportion_to_the_iou_product():
    """One pair per relation out of two candidates with IoU products 1 and 2/3: the first is
    drawn with probability 1 / (1 + 2/3) = 0.6, as torch.multinomial would."""
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=False, batch_size_per_image=64, positive_fraction=0.5,
                              num_sample_per_gt_rel=1)
    gt = _target(2, [[0, 1, 3]], boxes=torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]),
                 labels=torch.tensor([2, 5]))
    det = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 15.], [50., 50., 60., 60.]])  # IoU 1, 2/3; object
    picks = []
    for _ in range(600):
        _, (pairs,), (labels,) = sampler.detect_sample([det], [gt])
        (fg,) = pairs[labels > 0].tolist()
        assert fg[1] == 2 and labels[labels > 0].tolist() == [3]
        picks.append(fg[0])
    share = picks.count(0) / len(picks)
    assert abs(share - 0.6) < 0.06, share


def test_detect_sampling_several_relations_and_no_detections():
    torch.manual_seed(0)
    sampler = RelationSampler(use_gt_box=False, batch_size_per_image=64, positive_fraction=0.5,
                              num_sample_per_gt_rel=4)
    gt = _target(3, [[0, 1, 1], [1, 2, 2], [2, 0, 4]])
    det = gt["boxes"].repeat(2, 1) + torch.tensor([[0., 0., 0., 0.]] * 3 + [[0., 0., 0., 1.]] * 3)
    _, (pairs,), (labels,) = sampler.detect_sample([det], [gt])
    fg = {(h % 3, t % 3, int(lab)) for (h, t), lab in zip(pairs.tolist(), labels) if lab > 0}
    assert fg == {(0, 1, 1), (1, 2, 2), (2, 0, 4)} and (labels > 0).sum() == 12  # 2 x 2 per relation
    obj, (pairs,), (labels,) = sampler.detect_sample([torch.zeros(0, 4)], [gt])
    assert obj[0].shape == (0,) and pairs.shape == (0, 2) and labels.shape == (0,)
