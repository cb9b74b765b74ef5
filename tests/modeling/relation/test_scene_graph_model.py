import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.modeling.detector.scene_graph import SceneGraphModel, build_scene_graph_model


def _images(n=2, h=64, w=96):
    return ImageList(torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(7)), [(h, w)] * n)


def _model(cfg, stats):
    torch.manual_seed(0)
    return build_scene_graph_model(cfg, statistics=stats)


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_detector_frozen_relation_head_trains(mode, make_cfg, make_batch, stats):
    model = _model(make_cfg(mode), stats)
    assert isinstance(model, SceneGraphModel) and model.mode == mode
    _, _, targets, _ = make_batch(mode)
    model.train()
    assert not model.detector.training and model.relation_head.training
    assert all(not p.requires_grad for p in model.detector.parameters())
    before = {k: v.clone() for k, v in model.detector.state_dict().items()}
    # a random detector's detections rarely match the ground truth: in SGDet check the decoder
    trained = model.relation_head.predictor
    trained = trained.context_layer.decoder_rnn.out_obj.weight if mode == "sgdet" else trained.rel_compress.weight
    rel_before = trained.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    losses = model(_images(), targets)
    assert "loss_rel" in losses and (mode == "predcls") == ("loss_refine_obj" not in losses)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.detector.parameters())
    opt.step()
    after = model.detector.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(rel_before, trained)


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_eval_returns_one_scene_graph_per_image(mode, make_cfg, make_batch, stats):
    model = _model(make_cfg(mode), stats).eval()
    _, _, targets, _ = make_batch(mode)
    with torch.no_grad():
        results = model(_images(), targets if mode != "sgdet" else None)
    assert len(results) == 2
    for r, t in zip(results, targets):
        n = r["boxes"].shape[0]
        if mode != "sgdet":
            assert torch.equal(r["boxes"], t["boxes"])
        assert r["rel_pairs"].shape[0] == min(100, n * (n - 1)) and r["rel_scores"].shape[1] == 5


def test_sgcls_object_logits_come_from_the_detector_box_head(make_cfg, make_batch, stats):
    model = _model(make_cfg("sgcls"), stats).eval()
    _, _, targets, _ = make_batch("sgcls")
    images = _images()
    with torch.no_grad():
        outs = model._detector_outputs(images, targets)
        rh = model.detector.roi_heads
        for i, (o, t) in enumerate(zip(outs, targets)):
            feats = model.detector.features(ImageList(images.tensors[i:i + 1], images.image_sizes[i:i + 1]))
            expected, _ = rh.box_predictor(rh.box_features(feats, [t["boxes"]], images.image_sizes[i:i + 1]))
            assert torch.allclose(o["class_logits"], expected)


def test_relation_extractors_start_from_detector_box_head(make_cfg, stats):
    model = _model(make_cfg("predcls"), stats)
    box_head = model.detector.roi_heads.box_head
    head = model.relation_head
    for fe in (head.box_feature_extractor, head.union_feature_extractor.feature_extractor):
        assert torch.equal(fe.fc6.weight, box_head.fc6.weight) and torch.equal(fe.fc7.weight, box_head.fc7.weight)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.detector.state_dict().items()}
    model.load_pretrained_detector(state)
    assert torch.equal(model.relation_head.box_feature_extractor.fc6.weight, state["roi_heads.box_head.fc6.weight"])


def test_gt_box_modes_need_targets_in_eval(make_cfg, stats):
    model = _model(make_cfg("predcls"), stats).eval()
    with pytest.raises(ValueError, match="targets"):
        model(_images())


def test_saved_checkpoint_reevaluates_to_identical_predictions(tmp_path, make_cfg, make_batch, stats):
    from maskrcnn_benchmark.utils.checkpoint import Checkpointer

    cfg = make_cfg("sgcls")
    model = _model(cfg, stats)
    _, _, targets, _ = make_batch("sgcls")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    sum(model.train()(_images(), targets).values()).backward()
    opt.step()  # weights (and BatchNorm statistics) differ from any fresh model
    Checkpointer(model, save_dir=str(tmp_path)).save("model_best", iteration=1)
    torch.manual_seed(123)
    fresh = build_scene_graph_model(cfg)  # no statistics: the frequency bias comes from the file
    Checkpointer(fresh, save_dir=str(tmp_path)).load(str(tmp_path / "model_best.pth"), model_only=True)
    with torch.no_grad():
        a = model.eval()(_images(), targets)
        b = fresh.eval()(_images(), targets)
    for ra, rb in zip(a, b):
        for k in ra:
            assert torch.equal(ra[k], rb[k]), k


def test_sgdet_batches_without_pairs_are_counted_and_warned(make_cfg, make_batch, stats, caplog):
    """A detector that finds nothing (SCORE_THRESH 1): every loss is exactly 0, and the training
    loop says so once per log period with the count."""
    import logging

    from maskrcnn_benchmark.engine import Trainer
    from maskrcnn_benchmark.engine.hooks import PairlessBatchWarning
    cfg = make_cfg("sgdet")
    cfg.MODEL.ROI_HEADS.SCORE_THRESH = 1.0
    model = _model(cfg, stats)
    _, _, targets, _ = make_batch("sgdet")
    trainer = Trainer(model, torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1),
                      max_iter=3)
    trainer.register_hooks([PairlessBatchWarning(period=2)])
    log = logging.getLogger("maskrcnn_benchmark")
    propagate, log.propagate = log.propagate, True  # setup_logger may have turned it off
    try:
        with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark"):
            trainer.train([(_images(), targets, (0, 1))] * 3)
    finally:
        log.propagate = propagate
    assert model.relation_head.pairs_in_batch == 0
    assert trainer.storage.latest()["loss"][0] == 0.0
    warnings = [r.getMessage() for r in caplog.records if "no relation pair" in r.getMessage()]
    assert warnings[0].startswith("2 of the last 2 batches") and warnings[1].startswith("1 of the last 1 batches")
    assert len(warnings) == 2 and "MODEL.PRETRAINED_DETECTOR_CKPT" in warnings[0]
