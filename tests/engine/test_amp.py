"""SOLVER.AMP: bfloat16 autocast on the CPU (float16 + GradScaler on CUDA) in training and
evaluation, with losses, softmax, box decoding and RoI boxes kept in float32."""
import logging
import math

import pytest
import torch
import torchvision.ops.poolers
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import get_cfg
from maskrcnn_benchmark.engine import Trainer, amp
from maskrcnn_benchmark.engine.inference import compute_on_dataset
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model
from maskrcnn_benchmark.modeling.roi_heads.relation_head import feature_extractors


def _tiny_cfg(mode=None):
    """C=7 objects, P=5 predicates, 32-channel VGG-16: the real code path at toy sizes."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.WIDTH_DIVISOR = 16
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 0
    cfg.MODEL.RPN.ANCHOR_SIZES = (16, 32)
    cfg.MODEL.RPN.PRE_NMS_TOP_N_TRAIN, cfg.MODEL.RPN.POST_NMS_TOP_N_TRAIN = 300, 100
    cfg.MODEL.RPN.PRE_NMS_TOP_N_TEST, cfg.MODEL.RPN.POST_NMS_TOP_N_TEST = 300, 50
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 64
    cfg.MODEL.ROI_HEADS.SCORE_THRESH, cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 0.0, 8
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, cfg.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 7, 16
    if mode is not None:
        cfg.MODEL.RELATION_ON = True
        h = cfg.MODEL.ROI_RELATION_HEAD
        h.USE_GT_BOX, h.USE_GT_OBJECT_LABEL = mode != "sgdet", mode == "predcls"
        h.NUM_CLASSES, h.BATCH_SIZE_PER_IMAGE = 5, 16
        h.EMBED_DIM, h.CONTEXT_HIDDEN_DIM, h.CONTEXT_POOLING_DIM, h.POS_EMBED_DIM = 8, 12, 20, 10
        h.ALIGN.ENABLED = True
    return cfg


def _batch():
    g = torch.Generator().manual_seed(0)
    images = ImageList(torch.randn(2, 3, 64, 96, generator=g), [(64, 96), (64, 80)])
    boxes = [torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 10.0, 90.0, 60.0], [50.5, 20.25, 70.75, 44.5]]),
             torch.tensor([[2.0, 3.0, 30.0, 33.0], [20.0, 8.0, 60.0, 62.0]])]
    rels = [torch.tensor([[0, 1, 1], [1, 2, 3], [2, 0, 2]]), torch.tensor([[0, 1, 4]])]
    targets = [{"boxes": b, "labels": torch.arange(1, len(b) + 1), "relation_tuples": r}
               for b, r in zip(boxes, rels)]
    return images, targets


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Force the bf16 CPU path (also on CPUs without native bf16, where autocast emulates it)."""
    monkeypatch.setattr(amp, "cpu_bf16_supported", lambda: True)


@pytest.fixture
def roi_align_calls(monkeypatch):
    """Record (features dtype, boxes dtype) of every roi_align call of the box head and the
    relation feature extractors."""
    calls = []

    def spy(original):
        def roi_align(input, boxes, *args, **kw):
            calls.append((input.dtype, boxes.dtype))
            return original(input, boxes, *args, **kw)
        return roi_align
    monkeypatch.setattr(torchvision.ops.poolers, "roi_align", spy(torchvision.ops.poolers.roi_align))
    monkeypatch.setattr(feature_extractors, "roi_align", spy(feature_extractors.roi_align))
    return calls


class LossProbe(torch.nn.Module):
    """The model, remembering the dtypes of the losses it returned."""

    def __init__(self, model):
        super().__init__()
        self.model, self.dtypes = model, {}

    def forward(self, images, targets):
        losses = self.model(images, targets)
        self.dtypes = {k: v.dtype for k, v in losses.items()}
        return losses


@pytest.mark.parametrize("mode", [None, "predcls", "sgcls", "sgdet"])
def test_bf16_training_step_on_the_cpu(mode, bf16_cpu, roi_align_calls):
    torch.manual_seed(0)
    cfg = _tiny_cfg(mode)
    model = build_scene_graph_model(cfg) if mode else build_detection_model(cfg, load_pretrained=False)
    probe = LossProbe(model)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    trainer = Trainer(probe, torch.optim.SGD(params, lr=0.01), max_iter=1, amp=True, grad_clip=5.0)
    assert trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    images, targets = _batch()
    trainer.train(iter([(images, targets, (0, 1))]))
    assert probe.dtypes and all(d == torch.float32 for d in probe.dtypes.values()), probe.dtypes
    latest = trainer.storage.latest()
    assert all(math.isfinite(latest[k][0]) for k in probe.dtypes)
    assert math.isfinite(latest["grad_norm"][0])
    assert any(not torch.equal(a, p) for a, p in zip(before, params))
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in params)
    assert any(f == torch.bfloat16 for f, _ in roi_align_calls), "autocast was not active"
    assert roi_align_calls and all(b == torch.float32 for _, b in roi_align_calls), roi_align_calls


@pytest.mark.parametrize("mode", ["predcls", "sgdet"])
def test_bf16_evaluation_returns_float32_probabilities(mode, bf16_cpu, roi_align_calls):
    torch.manual_seed(0)
    model = build_scene_graph_model(_tiny_cfg(mode))
    images, targets = _batch()
    out = compute_on_dataset(model, [(images, targets, (0, 1))], torch.device("cpu"), amp=True)
    assert any(f == torch.bfloat16 for f, _ in roi_align_calls)
    assert all(b == torch.float32 for _, b in roi_align_calls)
    for o in out.values():
        assert o["rel_scores"].dtype == o["boxes"].dtype == torch.float32
        # softmax in float32: rows sum to 1 far more tightly than bf16's 2^-8
        torch.testing.assert_close(o["rel_scores"].sum(1), torch.ones(len(o["rel_scores"])), rtol=0, atol=1e-5)


def test_rpn_proposals_are_float32_under_autocast(bf16_cpu):
    torch.manual_seed(0)
    model = build_detection_model(_tiny_cfg(), load_pretrained=False).eval()
    images, _ = _batch()
    with torch.no_grad(), amp.autocast("cpu"):
        feats = model.features(images)
        proposals, _ = model.rpn(images, feats)
        dets, _ = model.roi_heads(feats, proposals, images.image_sizes)
    assert feats["0"].dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in proposals)
    assert all(d["boxes"].dtype == d["scores"].dtype == d["boxes_per_cls"].dtype == torch.float32 for d in dets)


def test_dtype_per_device_and_the_fallback_logs_once(monkeypatch, caplog):
    assert amp.autocast_dtype("cuda") == torch.float16
    assert amp.autocast_dtype("cuda", enabled=False) is None
    monkeypatch.setattr(amp, "cpu_bf16_supported", lambda: True)
    assert amp.autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(amp, "cpu_bf16_supported", lambda: False)
    amp._log_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark"):
        assert amp.autocast_dtype("cpu") is None and amp.autocast_dtype(torch.device("cpu")) is None
        trainer = Trainer(torch.nn.Linear(2, 2), torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1),
                          max_iter=1, amp=True)
    assert not trainer.amp and not trainer.scaler.is_enabled()
    lines = [r.getMessage() for r in caplog.records if "bfloat16" in r.getMessage()]
    assert lines == ["SOLVER.AMP: this CPU has no native bfloat16; running float32"]
    with amp.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_cpu_capability_query_answers():
    assert isinstance(amp.cpu_bf16_supported(), bool)
