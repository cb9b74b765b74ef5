import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead


def _head(cfg, stats):
    torch.manual_seed(0)
    return ROIRelationHead.from_config(cfg, in_channels=32, statistics=stats)


def _sgdet_proposals(targets, seed=0):
    """Detections: the GT boxes slightly moved plus one stray box, with class logits."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in targets:
        b = torch.cat([t["boxes"] + 0.5, torch.tensor([[1., 1., 8., 8.]])])
        out.append({"boxes": b, "labels": torch.randint(1, 7, (b.shape[0],), generator=g),
                    "scores": torch.rand(b.shape[0], generator=g),
                    "class_logits": torch.randn(b.shape[0], 7, generator=g)})
    return out


def _batch(make_batch, mode, counts=(5, 3)):
    feats, sizes, targets, proposals = make_batch(mode, counts)
    if mode == "sgdet":
        proposals = _sgdet_proposals(targets)
    return feats, sizes, targets, proposals


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_training_losses_per_mode(mode, make_cfg, make_batch, stats):
    head = _head(make_cfg(mode), stats).train()
    feats, sizes, targets, proposals = _batch(make_batch, mode)
    losses = head(feats, proposals, sizes, targets)
    expected = {"loss_rel"} if mode == "predcls" else {"loss_rel", "loss_refine_obj"}
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v.requires_grad for v in losses.values())
    sum(losses.values()).backward()
    assert head.predictor.rel_compress.weight.grad.abs().sum() > 0
    assert head.union_feature_extractor.rect_conv[0].weight.grad.abs().sum() > 0
    assert head.box_feature_extractor.fc6.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_eval_results_ranked_and_complete(mode, make_cfg, make_batch, stats):
    cfg = make_cfg(mode)
    cfg.TEST.RELATION.TOPK_TRIPLETS = 10
    head = _head(cfg, stats).eval()
    feats, sizes, targets, proposals = _batch(make_batch, mode)
    with torch.no_grad():
        results = head(feats, proposals, sizes)
    assert len(results) == 2
    for r, p in zip(results, proposals):
        n = p["boxes"].shape[0]
        assert set(r) == {"boxes", "labels", "scores", "rel_pairs", "rel_scores"}
        assert r["boxes"].shape == (n, 4) and r["labels"].shape == (n,) and r["scores"].shape == (n,)
        k = min(10, n * (n - 1))
        assert r["rel_pairs"].shape == (k, 2) and r["rel_scores"].shape == (k, 5)
        assert (r["rel_pairs"][:, 0] != r["rel_pairs"][:, 1]).all()
        assert torch.allclose(r["rel_scores"].sum(1), torch.ones(k), atol=1e-5)
        triplet = r["rel_scores"][:, 1:].max(1).values * r["scores"][r["rel_pairs"]].prod(1)
        assert (triplet[:-1] >= triplet[1:] - 1e-7).all()
        assert ((r["labels"] >= 1) & (r["labels"] < 7)).all()
        if mode == "predcls":
            assert torch.equal(r["labels"], p["labels"]) and torch.allclose(r["scores"], torch.ones(n))
        if mode != "sgdet":
            assert torch.equal(r["boxes"], p["boxes"])


def test_sgdet_boxes_follow_refined_class_when_per_class_boxes_given(make_cfg, make_batch, stats):
    head = _head(make_cfg("sgdet"), stats).eval()
    feats, sizes, targets, proposals = _batch(make_batch, "sgdet")
    for p in proposals:
        p["boxes_per_cls"] = p["boxes"][:, None, :] + torch.arange(7.)[None, :, None]
    with torch.no_grad():
        results = head(feats, proposals, sizes)
    for r, p in zip(results, proposals):
        assert torch.equal(r["boxes"], p["boxes"] + r["labels"][:, None].float())


def test_all_sampled_pairs_in_topk_zero_and_images_without_objects(make_cfg, make_batch, stats):
    cfg = make_cfg("sgcls")
    cfg.TEST.RELATION.TOPK_TRIPLETS = 0  # keep all
    head = _head(cfg, stats)
    feats, sizes, targets, proposals = make_batch("sgcls", counts=(4, 0))
    losses = head.train()(feats, proposals, sizes, targets)
    assert torch.isfinite(losses["loss_rel"])
    with torch.no_grad():
        full, empty = head.eval()(feats, proposals, sizes)
    assert full["rel_pairs"].shape == (12, 2) and empty["rel_pairs"].shape == (0, 2)
    assert empty["rel_scores"].shape == (0, 5)


def test_without_vision_union_branch_is_unused(make_cfg, make_batch, stats):
    cfg = make_cfg("predcls")
    cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_VISION = False
    head = _head(cfg, stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    head(feats, proposals, sizes, targets)["loss_rel"].backward()
    assert head.predictor.up_dim is None
    assert head.union_feature_extractor.rect_conv[0].weight.grad is None


def test_wrong_inputs_raise_clear_errors(make_cfg, make_batch, stats):
    head = _head(make_cfg("sgcls"), stats).train()
    feats, sizes, targets, proposals = make_batch("sgcls")
    with pytest.raises(ValueError, match="class_logits"):
        head(feats, [{"boxes": p["boxes"], "labels": p["labels"]} for p in proposals], sizes, targets)
    with pytest.raises(ValueError, match="target"):
        head(feats, proposals, sizes)
    bad = [dict(proposals[0], boxes=proposals[0]["boxes"][:2], labels=proposals[0]["labels"][:2],
                class_logits=proposals[0]["class_logits"][:2]), proposals[1]]
    with pytest.raises(ValueError, match="ground-truth boxes"):
        head(feats, bad, sizes, targets)


@pytest.mark.parametrize("mode", ["predcls", "sgdet"])
def test_few_steps_on_a_fixed_batch_lower_the_loss(mode, make_cfg, make_batch, stats):
    head = _head(make_cfg(mode), stats).train()
    feats, sizes, targets, proposals = _batch(make_batch, mode)
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=0.02, momentum=0.9)

    def loss_at(step_seed):
        torch.manual_seed(step_seed)  # same pairs and dropout masks each time
        return sum(head(feats, proposals, sizes, targets).values())

    first = loss_at(0)
    for _ in range(15):
        opt.zero_grad()
        loss_at(0).backward()
        opt.step()
    assert loss_at(0).item() < 0.7 * first.item()


def test_post_processor_keeps_gt_pairs_below_the_top_k_in_rank_order():
    from maskrcnn_benchmark.modeling.roi_heads.relation_head.inference import RelationPostProcessor

    g = torch.Generator().manual_seed(0)
    n = 6
    pairs = torch.tensor([(i, j) for i in range(n) for j in range(n) if i != j])
    rel_logits = torch.randn(len(pairs), 5, generator=g)
    obj_logits = torch.randn(n, 7, generator=g)
    obj_preds = obj_logits.argmax(1)
    gt = torch.tensor([[0, 1], [4, 2], [3, 5], [0, 1], [5, 5]])  # a duplicate, a self pair
    post = RelationPostProcessor(topk=4)
    args = ([torch.rand(n, 4, generator=g)], obj_logits, obj_preds, rel_logits, [pairs])
    plain, = post(*args)
    kept, = post(*args, gt_pairs=[gt])
    everything, = RelationPostProcessor(topk=0)(*args)
    assert "num_top_pairs" not in plain and kept["num_top_pairs"].item() == 4
    assert torch.equal(kept["rel_pairs"][:4], plain["rel_pairs"])
    assert torch.equal(kept["rel_pairs"][:4], everything["rel_pairs"][:4])
    # below the top 4: exactly the GT pairs, in the order of the full ranking
    rest = [tuple(p) for p in everything["rel_pairs"][4:].tolist()]
    expected = [p for p in rest if p in {(0, 1), (4, 2), (3, 5)}]
    assert [tuple(p) for p in kept["rel_pairs"][4:].tolist()] == expected
    rows = [rest.index(p) + 4 for p in expected]
    assert torch.equal(kept["rel_scores"][4:], everything["rel_scores"][rows])
    assert len(expected) == 3 - sum(tuple(p) in {(0, 1), (4, 2), (3, 5)}
                                    for p in plain["rel_pairs"].tolist())


def test_eval_with_targets_keeps_gt_pairs_in_gt_box_modes(make_cfg, make_batch, stats):
    for mode in ("predcls", "sgcls"):
        cfg = make_cfg(mode)
        cfg.TEST.RELATION.TOPK_TRIPLETS = 3
        head = _head(cfg, stats).eval()
        feats, sizes, targets, proposals = _batch(make_batch, mode)
        with torch.no_grad():
            results = head(feats, proposals, sizes, targets)
        for r, t in zip(results, targets):
            assert r["num_top_pairs"].item() == 3
            stored = {tuple(p) for p in r["rel_pairs"].tolist()}
            assert {tuple(p) for p in t["relation_tuples"][:, :2].tolist()} <= stored


def test_triplet_score_is_predicate_times_subject_times_object_score():
    """SGCls / SGDet ranking, worked by hand: object scores 0.9, 0.2, 0.8 turn the predicate-only
    order (0,1) > (0,2) > (1,2) into (0,2) 0.432 > (0,1) 0.162 > (1,2) 0.08."""
    from maskrcnn_benchmark.modeling.roi_heads.relation_head.inference import RelationPostProcessor

    obj_prob = torch.tensor([[0.05, 0.9, 0.05], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8]])
    obj_preds = torch.tensor([1, 1, 2])  # object 1 keeps a label that is not its argmax (e.g. after NMS)
    pairs = torch.tensor([[0, 1], [0, 2], [1, 2]])
    rel_prob = torch.tensor([[0.05, 0.9, 0.05], [0.2, 0.2, 0.6], [0.3, 0.5, 0.2]])  # column 0: background
    r, = RelationPostProcessor(topk=0)([torch.zeros(3, 4)], obj_prob.log(), obj_preds, rel_prob.log(), [pairs])
    assert r["scores"].tolist() == pytest.approx([0.9, 0.2, 0.8])
    assert r["rel_pairs"].tolist() == [[0, 2], [0, 1], [1, 2]]
    assert torch.allclose(r["rel_scores"], rel_prob[[1, 0, 2]])
    top2, = RelationPostProcessor(topk=2)([torch.zeros(3, 4)], obj_prob.log(), obj_preds, rel_prob.log(), [pairs])
    assert top2["rel_pairs"].tolist() == [[0, 2], [0, 1]]
