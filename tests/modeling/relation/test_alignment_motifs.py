"""The alignment inside Neural Motifs (issue: gradient routing, shared weights, masking, eval identity)."""
import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import (
    ALIGNMENT_STATE_PREFIX, inference_config)
from maskrcnn_benchmark.solver import make_optimizer
from maskrcnn_benchmark.utils.checkpoint import load_state_dict_checked


def _cfg(make_cfg, mode="predcls", **align):
    cfg = make_cfg(mode)
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED = True
    for k, v in align.items():
        cfg.MODEL.ROI_RELATION_HEAD.ALIGN[k.upper()] = v
    return cfg


def _head(cfg, stats, seed=0):
    torch.manual_seed(seed)
    return ROIRelationHead.from_config(cfg, in_channels=32, statistics=stats)


def _grad_norm(module):
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    return sum(float(g.abs().sum()) for g in grads if g is not None)


@pytest.mark.parametrize("mode", ["predcls", "sgcls"])
def test_alignment_loss_reaches_only_edge_context_post_emb_and_mlp(mode, make_cfg, make_batch, stats):
    head = _head(_cfg(make_cfg, mode), stats).train()
    feats, sizes, targets, proposals = make_batch(mode)
    head(feats, proposals, sizes, targets)["loss_align"].backward()
    pred, ctx = head.predictor, head.predictor.context_layer
    for name, module in [("edge_ctx_rnn", ctx.edge_ctx_rnn), ("lin_edge_h", ctx.lin_edge_h),
                         ("post_emb", pred.post_emb), ("mlp", pred.alignment.mlp)]:
        assert _grad_norm(module) > 0, name
    untouched = [("box features", head.box_feature_extractor), ("union features", head.union_feature_extractor),
                 ("obj_ctx_rnn", ctx.obj_ctx_rnn), ("obj_embed1", ctx.obj_embed1), ("obj_embed2", ctx.obj_embed2),
                 ("pos_embed", ctx.pos_embed), ("post_cat", pred.post_cat), ("rel_compress", pred.rel_compress),
                 ("up_dim", pred.up_dim), ("freq_bias", pred.freq_bias)]
    if mode != "predcls":
        untouched.append(("decoder", ctx.decoder_rnn))
    for name, module in untouched:
        assert _grad_norm(module) == 0, name


def test_mirror_uses_the_same_parameter_tensors_and_optimizer_holds_each_once(make_cfg, make_batch, stats):
    cfg = _cfg(make_cfg)
    head = _head(cfg, stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    seen = []
    hook = head.predictor.context_layer.edge_ctx_rnn.register_forward_hook(
        lambda m, i, o: seen.append(m.weight_ih_l0.data_ptr()))
    head(feats, proposals, sizes, targets)
    hook.remove()
    assert len(seen) == 2 and seen[0] == seen[1]  # original and mirror ran the very same LSTM
    optimizer = make_optimizer(cfg, head)
    ids = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert {id(p) for p in head.parameters() if p.requires_grad} == set(ids)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_masks_differ_between_iterations(p, make_cfg, make_batch, stats):
    """Without dropout and with every pair sampled, the mask is the only random part of the loss:
    two iterations differ with p = 0.5 and agree with p = 0 (the control)."""
    cfg = _cfg(make_cfg, mask_prob=p)
    cfg.MODEL.ROI_RELATION_HEAD.CONTEXT_DROPOUT_RATE = 0.0
    cfg.MODEL.ROI_RELATION_HEAD.BATCH_SIZE_PER_IMAGE = 64  # all 20 + 6 ordered pairs, each step
    head = _head(cfg, stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    torch.manual_seed(1)
    a = head(feats, proposals, sizes, targets)["loss_align"]
    b = head(feats, proposals, sizes, targets)["loss_align"]
    assert torch.allclose(a, b) == (p == 0.0)


def test_p0_tied_no_bias_mirror_equals_original(make_cfg, make_batch, stats):
    cfg = _cfg(make_cfg, mask_prob=0.0, head="tied")
    cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_BIAS = False
    cfg.MODEL.ROI_RELATION_HEAD.CONTEXT_DROPOUT_RATE = 0.0
    head = _head(cfg, stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    assert head(feats, proposals, sizes, targets)["loss_align"].abs().item() < 1e-6


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_eval_identical_with_and_without_alignment(mode, make_cfg, make_batch, stats):
    cfg = _cfg(make_cfg, mode)
    aligned = _head(cfg, stats, seed=0).eval()
    plain_cfg = inference_config(cfg)
    assert not plain_cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED and cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED
    plain = _head(plain_cfg, stats, seed=1).eval()
    state = {f"relation_head.{k}": v for k, v in aligned.state_dict().items()}
    state = {k[len("relation_head."):]: v for k, v in state.items() if not k.startswith(ALIGNMENT_STATE_PREFIX)}
    load_state_dict_checked(plain, state)
    baseline = _head(make_cfg(mode), stats).eval()
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in baseline.parameters())
    feats, sizes, targets, proposals = make_batch(mode)
    with torch.no_grad():
        a, b = aligned(feats, proposals, sizes), plain(feats, proposals, sizes)
    for ra, rb in zip(a, b):
        for key in ra:
            assert torch.equal(ra[key], rb[key]), key


def test_mirror_sees_whole_rows_of_edge_input_and_union_zeroed_the_rest_untouched(make_cfg, make_batch, stats):
    """The real masking inside Motifs: what the mirror receives is the original branch's edge-LSTM
    input and union features with some rows zeroed (p = 0.5 here) and every other row unchanged."""
    head = _head(_cfg(make_cfg, mask_prob=0.5), stats).train()
    pred = head.predictor
    seen = {}
    align_forward, mirror = pred.alignment.forward, pred.mirror_pair_features

    def recording_forward(predictor, *, inputs, **kw):
        seen["original"] = {k: v.detach().clone() for k, v in inputs.items()}
        return align_forward(predictor, inputs=inputs, **kw)

    def recording_mirror(inputs, context):
        seen["masked"] = {k: v.detach().clone() for k, v in inputs.items()}
        return mirror(inputs, context)
    pred.alignment.forward, pred.mirror_pair_features = recording_forward, recording_mirror
    feats, sizes, targets, proposals = make_batch("predcls")
    torch.manual_seed(3)
    head(feats, proposals, sizes, targets)
    assert set(seen["masked"]) == {"edge_input", "union"}
    for name, original in seen["original"].items():
        masked = seen["masked"][name]
        assert masked.shape == original.shape and (original.abs().sum(1) > 0).all()
        zeroed = (masked == 0).all(1)
        assert torch.equal(masked[~zeroed], original[~zeroed]), name  # kept rows bit-identical
        assert 0 < int(zeroed.sum()) < len(zeroed), (name, zeroed.tolist())  # some rows, not all
