import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head.model_motifs import FrequencyBias, LSTMContext
from maskrcnn_benchmark.modeling.roi_heads.relation_head.utils_motifs import (
    ObjectOrder, encode_box_info, obj_prediction_nms)

C = 7


def _context(mode, seed=0):
    torch.manual_seed(seed)
    return LSTMContext(num_obj_classes=C, obj_dim=6, mode=mode, embed_dim=4, hidden_dim=5, pos_dim=3)


def _inputs(counts=(4, 0, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = []
    for n in counts:
        xy = torch.rand(n, 2, generator=g) * 50
        boxes.append(torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 20], 1))
    n = sum(counts)
    return (torch.randn(n, 6, generator=g), boxes, [(80, 100)] * len(counts),
            torch.randint(1, C, (n,), generator=g), torch.randn(n, C, generator=g))


def test_object_order_left_to_right_and_round_trip():
    boxes = [torch.tensor([[50., 0, 60, 10], [0, 0, 10, 10], [20, 0, 30, 10]]), torch.zeros(0, 4),
             torch.tensor([[5., 0, 6, 1], [1, 0, 2, 1], [9, 0, 9, 1], [3, 0, 4, 1]])]
    order = ObjectOrder.left_to_right(boxes)
    assert order.time_idx.tolist() == [2, 0, 1, 2, 0, 3, 1]
    assert order.lengths == [4, 3] and order.col_idx.tolist() == [1, 1, 1, 0, 0, 0, 0]
    x = torch.arange(7.)[:, None]
    padded = order.to_padded(x)
    assert padded.shape == (4, 2, 1) and padded[:, 1, 0].tolist() == [1, 2, 0, 0]
    assert torch.equal(order.from_padded(padded), x)


def test_object_order_is_by_box_centre_not_left_edge():
    """A wide box starting at x = 0 (centre 50) comes after a narrow one at x = 20..30 (centre 25),
    and ties on the centre keep the input order."""
    boxes = [torch.tensor([[0., 0, 100, 10], [20, 0, 30, 10], [40, 0, 50, 10], [45, 5, 45, 6]])]
    order = ObjectOrder.left_to_right(boxes)  # centres 50, 25, 45, 45
    assert order.time_idx.tolist() == [3, 0, 1, 2]  # object i is read at step time_idx[i]


def test_encode_box_info_known_answer():
    info = encode_box_info([torch.tensor([[0., 0., 9., 19.]])], [(40, 20)])
    expected = torch.tensor([[10 / 20, 20 / 40, 5 / 20, 10 / 40, 0, 0, 9 / 20, 19 / 40, 200 / 800]])
    assert torch.allclose(info, expected)


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
@pytest.mark.parametrize("training", [True, False])
def test_shapes_every_mode(mode, training):
    ctx = _context(mode).train(training)
    feats, boxes, sizes, labels, logits = _inputs()
    out = ctx(feats, boxes, sizes, obj_labels=labels, obj_logits=logits)
    assert out.obj_dists.shape == (7, C) and out.obj_preds.shape == (7,)
    assert out.edge_ctx.shape == (7, 5) and out.edge_input.shape == (7, ctx.edge_input_dim)
    assert ((out.obj_preds >= 1) & (out.obj_preds < C)).all()
    if mode == "predcls" or training:  # GT labels used (teacher forcing in training)
        assert torch.equal(out.obj_preds, labels)
    if mode != "predcls":
        assert torch.allclose(out.edge_ctx, ctx.edge_context(out.edge_input, out.order))


def test_decoder_replaces_background_labels_by_its_guess():
    ctx = _context("sgdet").train()
    feats, boxes, sizes, labels, logits = _inputs()
    labels[:3] = 0
    out = ctx(feats, boxes, sizes, obj_labels=labels, obj_logits=logits)
    assert torch.equal(out.obj_preds[3:], labels[3:]) and (out.obj_preds[:3] > 0).all()


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_input_order_does_not_matter_and_is_restored(mode):
    """Objects are sorted left to right inside; outputs come back in the caller's order."""
    ctx = _context(mode).eval()
    feats, boxes, sizes, labels, logits = _inputs(counts=(5,))
    perm = torch.tensor([3, 0, 4, 2, 1])
    with torch.no_grad():
        a = ctx(feats, boxes, sizes, obj_labels=labels, obj_logits=logits)
        b = ctx(feats[perm], [boxes[0][perm]], sizes, obj_labels=labels[perm], obj_logits=logits[perm])
    assert torch.allclose(a.obj_dists[perm], b.obj_dists, atol=1e-5)
    assert torch.equal(a.obj_preds[perm], b.obj_preds)
    assert torch.allclose(a.edge_ctx[perm], b.edge_ctx, atol=1e-5)


@pytest.mark.parametrize("mode", ["sgcls", "sgdet"])
def test_batched_equals_one_image_at_a_time(mode):
    """No 'test batch must be 1': a batch gives each image's own answer."""
    ctx = _context(mode).eval()
    feats, boxes, sizes, labels, logits = _inputs(counts=(3, 5, 2))
    with torch.no_grad():
        batch = ctx(feats, boxes, sizes, obj_labels=labels, obj_logits=logits)
        start = 0
        for b in boxes:
            n = b.shape[0]
            one = ctx(feats[start:start + n], [b], sizes[:1], obj_logits=logits[start:start + n])
            assert torch.allclose(one.obj_dists, batch.obj_dists[start:start + n], atol=1e-5)
            assert torch.equal(one.obj_preds, batch.obj_preds[start:start + n])
            assert torch.allclose(one.edge_ctx, batch.edge_ctx[start:start + n], atol=1e-5)
            start += n


def test_missing_inputs_raise_clear_errors():
    feats, boxes, sizes, labels, logits = _inputs()
    with pytest.raises(ValueError, match="obj_labels"):
        _context("predcls")(feats, boxes, sizes)
    with pytest.raises(ValueError, match="class logits"):
        _context("sgcls").eval()(feats, boxes, sizes)


def test_late_nms_known_answer():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [50., 50., 60., 60.]])
    logits = torch.log(torch.tensor([[0.0, 0.9, 0.1], [0.0, 0.8, 0.2], [0.0, 0.7, 0.3]]) + 1e-9)
    # box 0 takes class 1; box 1 overlaps it, so class 1 is removed there -> class 2; box 2 is apart
    assert obj_prediction_nms(boxes, logits, 0.3).tolist() == [1, 2, 1]
    assert obj_prediction_nms(boxes, logits, 0.99).tolist() == [1, 1, 1]
    per_cls = boxes[:, None].repeat(1, 3, 1)
    assert obj_prediction_nms(per_cls, logits, 0.3).tolist() == [1, 2, 1]


def test_frequency_bias_init_equals_statistics():
    pred_dist = torch.randn(C, C, 5)
    fb = FrequencyBias(C, 5, pred_dist)
    pairs = torch.tensor([[1, 2], [6, 0], [3, 3]])
    assert torch.equal(fb(pairs), torch.stack([pred_dist[1, 2], pred_dist[6, 0], pred_dist[3, 3]]))
    assert fb.obj_baseline.weight.requires_grad
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        FrequencyBias(C, 4, pred_dist)
