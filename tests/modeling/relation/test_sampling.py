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
    p3, p1, p0 = RelationSampler.test_pairs([3, 1, 0])
    assert p3.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    assert p1.shape == (0, 2) and p0.shape == (0, 2)


def test_detect_sampling_draws_pairs_in_proportion_to_the_iou_product():
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
