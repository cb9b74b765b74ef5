"""Reuse of the frozen detector's outputs (MODEL.DETECTOR_CACHE_MB): exact, and never stale."""
import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.modeling.detector.detector_cache import DetectorCache
from maskrcnn_benchmark.modeling.detector.scene_graph import build_detector_cache, build_scene_graph_model


def _images(sizes=((64, 96), (52, 80)), seed=7):
    g = torch.Generator().manual_seed(seed)
    h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
    t = torch.zeros(len(sizes), 3, -(-h // 32) * 32, -(-w // 32) * 32)
    for i, (hi, wi) in enumerate(sizes):
        t[i, :, :hi, :wi] = torch.randn(3, hi, wi, generator=g)
    return ImageList(t, list(sizes))


def _targets(make_batch, mode):
    _, _, targets, _ = make_batch(mode)
    for i, t in enumerate(targets):
        t["image_id"] = 100 + i
    return targets


def _model(cfg, stats, cache_mb):
    cfg.MODEL.DETECTOR_CACHE_MB = cache_mb
    cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.0  # as the relation configs
    torch.manual_seed(0)
    return build_scene_graph_model(cfg, statistics=stats)


def _step(model, images, targets):
    """One training step's losses and gradients (fixed seed for the pair sampling)."""
    model.train().zero_grad()
    torch.manual_seed(3)
    losses = model(images, targets)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_step_with_reuse_equals_step_without(mode, make_cfg, make_batch, stats):
    images, targets = _images(), _targets(make_batch, mode)
    plain = _model(make_cfg(mode), stats, 0)
    cached = _model(make_cfg(mode), stats, 64)
    assert plain.detector_cache is None and cached.detector_cache is not None
    with torch.no_grad():
        cached.eval()(images, targets)  # fills the cache (eval and training see the same detector)
    assert len(cached.detector_cache) == 2 and cached.detector_cache.hits == 0
    losses_a, grads_a = _step(plain, images, targets)
    losses_b, grads_b = _step(cached, images, targets)
    assert cached.detector_cache.hits == 2  # the step read the detector outputs from the cache
    assert losses_a.keys() == losses_b.keys() and grads_a.keys() == grads_b.keys()
    for k in losses_a:
        torch.testing.assert_close(losses_a[k], losses_b[k], rtol=1e-5, atol=1e-6)
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], rtol=1e-4, atol=1e-6)


def test_an_image_gives_the_same_detector_output_whatever_its_batch(make_cfg, make_batch, stats):
    """Per-image detection: padding by larger batch mates changes nothing, the premise of reuse."""
    model = _model(make_cfg("sgdet"), stats, 0).eval()
    images, targets = _images(), _targets(make_batch, "sgdet")
    with torch.no_grad():
        both = model._detector_outputs(images, targets)
        alone = model._detector_outputs(ImageList(images.tensors[1:2, :, :64, :96], images.image_sizes[1:]),
                                        targets[1:])
    assert torch.equal(both[1]["features"], alone[0]["features"])
    for k, v in both[1]["detections"].items():
        assert torch.equal(v, alone[0]["detections"][k]), k


def test_loading_other_detector_weights_invalidates(make_cfg, make_batch, stats):
    images, targets = _images(), _targets(make_batch, "sgcls")
    model = _model(make_cfg("sgcls"), stats, 64).eval()
    with torch.no_grad():
        model(images, targets)
        before = model._detector_outputs(images, targets)
        state = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                 for k, v in model.detector.state_dict().items()}
        model.load_pretrained_detector(state)
        hits = model.detector_cache.hits
        after = model._detector_outputs(images, targets)
        assert model.detector_cache.hits == hits  # nothing old was served
        fresh = _model(make_cfg("sgcls"), stats, 0).eval()
        fresh.load_pretrained_detector(state)
        expected = fresh._detector_outputs(images, targets)
    for a, e, b in zip(after, expected, before):
        assert torch.equal(a["features"], e["features"]) and torch.equal(a["class_logits"], e["class_logits"])
        assert not torch.equal(a["features"], b["features"])


def test_a_changed_image_or_boxes_is_a_miss(make_cfg, make_batch, stats):
    images, targets = _images(), _targets(make_batch, "sgcls")
    model = _model(make_cfg("sgcls"), stats, 64).eval()
    with torch.no_grad():
        model(images, targets)
        flipped = ImageList(images.tensors.flip(-1), images.image_sizes)
        model._detector_outputs(flipped, targets)
        assert model.detector_cache.hits == 0
        moved = [dict(t, boxes=t["boxes"] + 1.0) for t in targets]
        out = model._detector_outputs(images, moved)
        assert model.detector_cache.hits == 0  # same image, other boxes: SGCls logits recomputed
        plain = _model(make_cfg("sgcls"), stats, 0).eval()._detector_outputs(images, moved)
    for a, b in zip(out, plain):
        assert torch.equal(a["class_logits"], b["class_logits"])


def test_size_limit_and_training_switch(make_cfg):
    cache = DetectorCache(1000)
    for i in range(3):
        cache.get_or_compute(i, lambda: {"features": torch.zeros(100)})  # 400 bytes each
    assert len(cache) == 2 and cache.nbytes == 800
    cache.get_or_compute(2, lambda: {"features": torch.zeros(100)})
    assert cache.misses == 4 and cache.hits == 0  # the third image is never stored
    cfg = make_cfg("predcls")
    cfg.MODEL.DETECTOR_CACHE_MB = 1
    cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.0
    assert build_detector_cache(cfg).reuse_in_training
    cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.5
    assert not build_detector_cache(cfg).reuse_in_training
    cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.0
    cfg.INPUT.MIN_SIZE_TRAIN = (480, 600)
    assert not build_detector_cache(cfg).reuse_in_training


def test_training_without_reuse_neither_reads_nor_fills(make_cfg, make_batch, stats):
    cfg = make_cfg("predcls")
    cfg.INPUT.MIN_SIZE_TRAIN = (480, 600)
    model = _model(cfg, stats, 64)
    images, targets = _images(), _targets(make_batch, "predcls")
    _step(model, images, targets)
    assert len(model.detector_cache) == 0
    with torch.no_grad():
        model.eval()(images, targets)
    assert len(model.detector_cache) == 2  # evaluation images are fixed: reused across validations


def test_signature_covers_buffers_of_any_shape():
    """BatchNorm's 0-dim num_batches_tracked and running stats are part of the detector."""
    from maskrcnn_benchmark.modeling.detector.detector_cache import detector_signature

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = detector_signature(net)
    net[1].running_mean += 1.0
    assert detector_signature(net) != before
