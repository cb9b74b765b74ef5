import pytest
import torch
from torch import nn

from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR
from maskrcnn_benchmark.modeling.roi_heads.relation_head import MotifPairContext, MotifPredictor
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import RelationAlignment


class Recorder(nn.Module):
    """Stands in for the alignment: records what the predictor hands over."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, predictor, *, inputs, context, target_logits, labels=None):
        self.calls.append(dict(predictor=predictor, inputs=inputs, context=context,
                               target_logits=target_logits, labels=labels))
        return {"loss_align": target_logits.sum() * 0.0}


def _predictor(cfg, stats, alignment=None):
    torch.manual_seed(0)
    pred = ROI_RELATION_PREDICTOR["MotifPredictor"].from_config(cfg, obj_dim=16, union_dim=16, statistics=stats)
    pred.alignment = alignment
    return pred


def _run(pred, batch, mode, training=True):
    feats, sizes, targets, proposals = batch
    pairs = [torch.nonzero(~torch.eye(t["boxes"].shape[0], dtype=torch.bool)) for t in targets]
    labels = [torch.randint(0, 5, (p.shape[0],), generator=torch.Generator().manual_seed(3)) for p in pairs]
    n, r = sum(p["boxes"].shape[0] for p in proposals), sum(p.shape[0] for p in pairs)
    roi = torch.randn(n, 16, generator=torch.Generator().manual_seed(4))
    union = torch.randn(r, 16, generator=torch.Generator().manual_seed(5))
    pred.train(training)
    return pred(roi, union, proposals, pairs, sizes, labels), pairs, labels, union


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_shapes_and_eval_has_no_extra_losses(mode, make_cfg, make_batch, stats):
    pred = _predictor(make_cfg(mode), stats, Recorder())
    (obj_logits, obj_preds, rel_logits, losses), pairs, _, _ = _run(pred, make_batch(mode), mode, training=False)
    assert obj_logits.shape == (8, 7) and obj_preds.shape == (8,) and rel_logits.shape == (26, 5)
    assert losses == {} and pred.alignment.calls == []
    assert pred.up_dim.in_features == 16 and pred.up_dim.out_features == 20  # union 16 -> pooling 20


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_alignment_hook_receives_edge_input_union_context_and_labels(mode, make_cfg, make_batch, stats):
    rec = Recorder()
    pred = _predictor(make_cfg(mode), stats, rec)
    (_, obj_preds, rel_logits, losses), pairs, labels, union = _run(pred, make_batch(mode), mode)
    assert set(losses) == {"loss_align"} and len(rec.calls) == 1
    call = rec.calls[0]
    assert call["predictor"] is pred and call["target_logits"] is rel_logits
    assert torch.equal(call["labels"], torch.cat(labels))
    assert call["inputs"]["union"] is union
    assert call["inputs"]["edge_input"].shape == (8, pred.context_layer.edge_input_dim)
    ctx = call["context"]
    assert isinstance(ctx, MotifPairContext) and ctx.num_rels == [20, 6]
    assert torch.equal(ctx.pair_idxs, torch.cat([pairs[0], pairs[1] + 5]))
    assert torch.equal(ctx.pair_labels, obj_preds[ctx.pair_idxs])


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_mirror_with_identical_inputs_plus_bias_equals_original(mode, make_cfg, make_batch, stats):
    rec = Recorder()
    pred = _predictor(make_cfg(mode), stats, rec)
    (_, _, rel_logits, _), _, _, _ = _run(pred, make_batch(mode), mode)
    call = rec.calls[0]
    with torch.no_grad():
        pair_rep, union = pred.mirror_pair_features(call["inputs"], call["context"])
        mirror = pred.tied_logits(pair_rep, union) + pred.freq_bias(call["context"].pair_labels)
    assert pair_rep.shape == (26, 2 * 12)
    assert torch.allclose(mirror, rel_logits, atol=1e-5)
    # and the mirror really depends on its inputs
    masked = dict(call["inputs"], edge_input=torch.zeros_like(call["inputs"]["edge_input"]))
    with torch.no_grad():
        assert not torch.allclose(pred.mirror_pair_features(masked, call["context"])[0], pair_rep)


def test_p0_tied_alignment_without_bias_gives_zero_loss(make_cfg, make_batch, stats):
    cfg = make_cfg("sgcls")
    cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_BIAS = False
    align = RelationAlignment(pair_dim=24, union_dim=16, num_classes=5, mask_prob=0.0, head="tied")
    pred = _predictor(cfg, stats, align)
    (_, _, _, losses), _, _, _ = _run(pred, make_batch("sgcls"), "sgcls")
    assert pred.freq_bias is None and losses["loss_align"].abs().item() < 1e-6


def test_from_config_builds_alignment_when_enabled(make_cfg, stats):
    cfg = make_cfg("predcls")
    assert ROI_RELATION_PREDICTOR["MotifPredictor"].from_config(cfg, obj_dim=16, union_dim=16).alignment is None
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED = True
    pred = MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16, statistics=stats)
    assert isinstance(pred.alignment, RelationAlignment)
    assert pred.alignment.mlp[0].in_features == 2 * 12 + 16


def test_frequency_bias_from_statistics_and_zero_without(make_cfg, stats):
    cfg = make_cfg("predcls")
    pred = MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16, statistics=stats)
    assert torch.equal(pred.freq_bias.obj_baseline.weight, stats["pred_dist"].view(49, 5))
    assert MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16).freq_bias.obj_baseline.weight.abs().sum() == 0


def test_sgdet_requires_consistent_mode_switches(make_cfg):
    cfg = make_cfg("sgdet")
    cfg.MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL = True
    with pytest.raises(ValueError, match="USE_GT_BOX"):
        MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16)
