"""The VGG-16 Faster R-CNN: training losses, gradients, detections and box features."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.modeling.detector import GeneralizedRCNN, build_detection_model

LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


def test_full_size_model_follows_sgb_vgg_settings():
    m = build_detection_model(load_config(None, ["MODEL.DEVICE", "cpu"]), load_pretrained=False)
    assert m.backbone.out_channels == 512
    assert m.rpn.anchor_generator.num_anchors_per_location() == [20]  # 5 sizes x 4 ratios
    assert m.rpn._pre_nms_top_n == {"training": 12000, "testing": 6000}
    assert m.rpn._post_nms_top_n == {"training": 2000, "testing": 1000}
    h = m.roi_heads
    assert (h.score_thresh, h.nms_thresh, h.detections_per_img) == (0.01, 0.3, 80)
    assert tuple(h.box_roi_pool.output_size) == (7, 7) and h.box_roi_pool.sampling_ratio == 2
    assert h.box_head.fc6.in_features == 512 * 7 * 7 and h.box_head.fc7.out_features == 2048
    assert h.box_predictor.cls_score.out_features == 151
    assert h.box_predictor.bbox_pred.out_features == 151 * 4


def test_training_step_losses_and_gradients(tiny_cfg, batch):
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg)
    model.train()
    losses = model(*batch)
    assert set(losses) == LOSSES
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    assert losses["loss_classifier"] > 0 and losses["loss_objectness"] > 0
    sum(losses.values()).backward()
    for name in ("backbone.features.0.weight", "rpn.head.conv.0.0.weight",
                 "roi_heads.box_head.fc6.weight", "roi_heads.box_predictor.cls_score.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_training_needs_targets(tiny_cfg, batch):
    model = build_detection_model(tiny_cfg).train()
    with pytest.raises(ValueError, match="targets"):
        model(batch[0])


def test_detections_are_valid_and_carry_logits(tiny_cfg, batch):
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg).eval()
    model.roi_heads.score_thresh = 0.0  # an untrained model: keep every candidate
    with torch.no_grad():
        dets = model(batch[0])
    assert len(dets) == 2
    for det, (h, w) in zip(dets, batch[0].image_sizes):
        n = len(det["boxes"])
        assert 0 < n <= 80
        assert det["class_logits"].shape == (n, 5) and det["boxes_per_cls"].shape == (n, 5, 4)
        b, pc = det["boxes"], det["boxes_per_cls"]
        assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
        # every class's box is clipped to this image's own (unpadded) size
        assert pc.min() >= 0 and (pc[..., 0::2] <= w).all() and (pc[..., 1::2] <= h).all()
        assert (det["labels"] >= 1).all() and (det["labels"] < 5).all()
        s = det["scores"]
        assert (s > 0).all() and (s <= 1).all() and (s[:-1] >= s[1:]).all()
        probs = F.softmax(det["class_logits"], -1)
        torch.testing.assert_close(probs[torch.arange(n), det["labels"]], s)
        torch.testing.assert_close(pc[torch.arange(n), det["labels"]], b)


def test_score_threshold_and_detection_cap(tiny_cfg, batch):
    model = build_detection_model(tiny_cfg).eval()
    model.roi_heads.score_thresh = 0.0
    model.roi_heads.detections_per_img = 7
    with torch.no_grad():
        assert all(len(d["boxes"]) == 7 for d in model(batch[0]))
        model.roi_heads.score_thresh = 1.0
        assert all(len(d["boxes"]) == 0 and d["class_logits"].shape == (0, 5) for d in model(batch[0]))


def test_box_features_of_given_boxes(tiny_cfg, batch):
    model = build_detection_model(tiny_cfg).eval()
    images, targets = batch
    feats = model.backbone(images.tensors)
    assert feats.shape == (2, 512 // 16, 4, 6)
    boxes = [targets[0]["boxes"], torch.tensor([[0.0, 0.0, 20.0, 20.0]])]
    fc7 = model.roi_heads.box_features(feats, boxes, images.image_sizes)
    assert fc7.shape == (3, 32)
    logits, deltas = model.roi_heads.box_predictor(fc7)
    assert logits.shape == (3, 5) and deltas.shape == (3, 20)
    # image order is kept: the lone box of image 2 alone gives the same row
    alone = model.roi_heads.box_features(feats, [torch.zeros(0, 4), boxes[1]], images.image_sizes)
    torch.testing.assert_close(alone, fc7[2:])


def test_model_from_plain_modules(tiny_cfg, batch):
    ref = build_detection_model(tiny_cfg)
    model = GeneralizedRCNN(ref.backbone, ref.rpn, ref.roi_heads).train()
    assert set(model(*batch)) == LOSSES


def test_unsupported_settings_fail_clearly():
    with pytest.raises(ConfigError, match="ANCHOR_STRIDE"):
        build_detection_model(load_config(None, ["MODEL.RPN.ANCHOR_STRIDE", (8, 16)]), load_pretrained=False)
    with pytest.raises(ConfigError, match="CLS_AGNOSTIC"):
        build_detection_model(load_config(None, ["MODEL.CLS_AGNOSTIC_BBOX_REG", True]), load_pretrained=False)


def test_a_few_iterations_lower_the_loss_on_a_fixed_batch(tiny_cfg, batch):
    from maskrcnn_benchmark.engine import Trainer

    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg)

    def total_loss():
        torch.manual_seed(1)  # the same proposal sampling both times
        with torch.no_grad():
            return sum(model.train()(*batch).values()).item()
    before = total_loss()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.02, momentum=0.9)
    Trainer(model, opt, max_iter=8).train(iter([(*batch, (0, 1))] * 8))
    assert total_loss() < 0.8 * before


def test_checkpoint_round_trip_gives_identical_detections(tiny_cfg, batch, tmp_path):
    from maskrcnn_benchmark.utils.checkpoint import Checkpointer

    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg).eval()
    model.roi_heads.score_thresh = 0.0
    path = Checkpointer(model, save_dir=str(tmp_path)).save("model_final", iteration=1)
    torch.manual_seed(5)
    other = build_detection_model(tiny_cfg).eval()
    other.roi_heads.score_thresh = 0.0
    Checkpointer(other).load(path, model_only=True)
    with torch.no_grad():
        a, b = model(batch[0]), other(batch[0])
    for da, db in zip(a, b):
        for k in da:
            assert torch.equal(da[k], db[k]), k


def test_zero_width_boxes_at_the_border_do_not_break_training(tiny_cfg, batch):
    from maskrcnn_benchmark.modeling.detector.generalized_rcnn import widen_thin_boxes

    boxes = torch.tensor([[96.0, 10.0, 96.0, 30.0], [5.0, 7.0, 5.25, 7.0], [1.0, 2.0, 30.0, 40.0]])
    out, n = widen_thin_boxes(boxes, (64, 96))
    assert n == 2
    torch.testing.assert_close(out, torch.tensor([[95.0, 10.0, 96.0, 30.0], [5.0, 7.0, 6.0, 8.0],
                                                  [1.0, 2.0, 30.0, 40.0]]))
    images, targets = batch
    targets = [{"boxes": boxes, "labels": torch.tensor([1, 2, 3])}, targets[1]]
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg).train()
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    assert torch.equal(targets[0]["boxes"], boxes)  # the caller's targets are left alone


def test_nms_filter_duplicates_keeps_each_proposal_s_best_surviving_class(tiny_cfg):
    # SGB's PostProcessor.filter_results with NMS_FILTER_DUPLICATES: per-class NMS first, then
    # every proposal keeps the best of the classes it survived in (A's best class, 1, lost to B).
    heads = build_detection_model(tiny_cfg).roi_heads.eval()
    assert heads.nms_filter_duplicates is False  # SGB's default; its relation configs turn it on
    props = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.5], [50.0, 40.0, 60.0, 50.0]])
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.05, 0.05],    # A
                          [0.1, 0.6, 0.02, 0.14, 0.14],   # B, IoU 0.95 with A
                          [0.1, 0.2, 0.55, 0.1, 0.05]])   # C, alone
    logits, deltas = probs.log(), torch.zeros(3, 20)

    def detect():
        (d,) = heads.detect(logits, deltas, [props], [(64, 96)])
        prop = [next(i for i in range(3) if torch.equal(d["class_logits"][k], logits[i]))
                for k in range(len(d["labels"]))]
        return list(zip(prop, d["labels"].tolist(), [round(s, 4) for s in d["scores"].tolist()])), d

    everything, _ = detect()
    assert sorted(everything) == sorted([(1, 1, 0.6), (0, 2, 0.3), (1, 3, 0.14), (1, 4, 0.14),
                                         (2, 2, 0.55), (2, 1, 0.2), (2, 3, 0.1), (2, 4, 0.05)])
    heads.nms_filter_duplicates = True
    one_class, d = detect()
    assert one_class == [(1, 1, 0.6), (2, 2, 0.55), (0, 2, 0.3)]
    torch.testing.assert_close(d["boxes"], props[[1, 2, 0]])
    assert d["boxes_per_cls"].shape == (3, 5, 4)
