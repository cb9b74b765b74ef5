"""TransformerPredictor, VCTreePredictor and IMPPredictor in the relation head, each with and
without the alignment: shapes in the three modes, what the alignment loss reaches, eval identity
with the plain predictor, p = 0 identity (issue 17's checks; Motifs: test_alignment_motifs.py)."""
import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import ALIGNMENT_STATE_PREFIX, inference_config
from maskrcnn_benchmark.utils.checkpoint import load_state_dict_checked

PREDICTORS = ["TransformerPredictor", "VCTreePredictor", "IMPPredictor"]
MODES = ["predcls", "sgcls", "sgdet"]

# What the alignment loss may reach (the shared message-passing layers; the untied MLP is checked
# separately) and what it must not, per predictor (attribute paths from the head).
SHARED = {
    "TransformerPredictor": ["predictor.context_layer.context_edge", "predictor.context_layer.lin_edge",
                             "predictor.post_emb"],
    "VCTreePredictor": ["predictor.context_layer.edge_ctx_rnn", "predictor.post_emb"],
    "IMPPredictor": ["predictor.context_layer.edge_gru", "predictor.context_layer.node_gru",
                     "predictor.context_layer.sub_vert_w_fc", "predictor.context_layer.obj_vert_w_fc",
                     "predictor.context_layer.out_edge_w_fc", "predictor.context_layer.in_edge_w_fc"],
}


def _cfg(make_cfg, predictor, mode="predcls", align=True, **kw):
    cfg = make_cfg(mode)
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.PREDICTOR, h.ALIGN.ENABLED = predictor, align
    for k, v in kw.items():
        h.ALIGN[k.upper()] = v
    return cfg


def _head(cfg, stats, seed=0):
    torch.manual_seed(seed)
    return ROIRelationHead.from_config(cfg, in_channels=32, statistics=stats)


def _get(head, path):
    m = head
    for part in path.split("."):
        m = getattr(m, part)
    return m


def _grad(module):
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_shapes_and_losses_in_every_mode(predictor, mode, make_cfg, make_batch, stats):
    head = _head(_cfg(make_cfg, predictor, mode), stats).train()
    feats, sizes, targets, proposals = make_batch(mode)
    losses = head(feats, proposals, sizes, targets)
    want = {"loss_rel", "loss_align"} | ({"loss_refine_obj"} if mode != "predcls" else set()) | \
        ({"binary_loss"} if predictor == "VCTreePredictor" else set())
    assert set(losses) == want and all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    head.eval()
    with torch.no_grad():
        out = head(feats, proposals, sizes)
    for r, n, t in zip(out, (5, 3), targets):
        assert r["boxes"].shape == (n, 4) and r["labels"].shape == (n,) and r["scores"].shape == (n,)
        assert r["rel_pairs"].shape == (n * (n - 1), 2) and r["rel_scores"].shape == (n * (n - 1), 5)
        assert (r["labels"] > 0).all() and torch.allclose(r["rel_scores"].sum(1), torch.ones(n * (n - 1)))
        if mode == "predcls":
            assert torch.equal(r["labels"], t["labels"])


@pytest.mark.parametrize("mode", ["predcls", "sgcls"])
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_alignment_loss_reaches_only_shared_layers_and_untied_head(predictor, mode, make_cfg, make_batch, stats):
    head = _head(_cfg(make_cfg, predictor, mode), stats).train()
    feats, sizes, targets, proposals = make_batch(mode)
    head(feats, proposals, sizes, targets)["loss_align"].backward()
    shared = [_get(head, p) for p in SHARED[predictor]] + [head.predictor.alignment.mlp]
    for path, module in zip(SHARED[predictor] + ["mlp"], shared):
        assert _grad(module) > 0, path
    shared_ids = {id(p) for m in shared for p in m.parameters()}
    reached = [n for n, p in head.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
               and id(p) not in shared_ids]
    assert reached == []  # feature extractors, object context, decoder, priors, original head: untouched


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_eval_identical_with_and_without_alignment(predictor, mode, make_cfg, make_batch, stats):
    cfg = _cfg(make_cfg, predictor, mode)
    aligned = _head(cfg, stats, seed=0).eval()
    plain = _head(inference_config(cfg), stats, seed=1).eval()
    prefix = ALIGNMENT_STATE_PREFIX[len("relation_head."):]
    load_state_dict_checked(plain, {k: v for k, v in aligned.state_dict().items() if not k.startswith(prefix)})
    baseline = _head(_cfg(make_cfg, predictor, mode, align=False), stats).eval()
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in baseline.parameters())
    assert sum(p.numel() for p in aligned.parameters()) > sum(p.numel() for p in plain.parameters())
    feats, sizes, targets, proposals = make_batch(mode)
    with torch.no_grad():
        a, b = aligned(feats, proposals, sizes), plain(feats, proposals, sizes)
    for ra, rb in zip(a, b):
        for key in ra:
            assert torch.equal(ra[key], rb[key]), key


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_p0_tied_mirror_without_bias_equals_original(predictor, make_cfg, make_batch, stats):
    cfg = _cfg(make_cfg, predictor, mask_prob=0.0, head="tied", dropout_free=True)
    cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_BIAS = False
    cfg.MODEL.ROI_RELATION_HEAD.CONTEXT_DROPOUT_RATE = 0.0
    head = _head(cfg, stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    assert head(feats, proposals, sizes, targets)["loss_align"].abs().item() < 1e-5
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.MASK_PROB = 0.5  # and the mirror does depend on the masking
    head = _head(cfg, stats).train()
    assert head(feats, proposals, sizes, targets)["loss_align"].abs().item() > 1e-4


def test_transformer_dropout_free_switch(make_cfg, make_batch, stats):
    """With dropout in the encoders, p = 0 gives a zero loss only when the mirror and the target
    both run without dropout (ALIGN.DROPOUT_FREE, the paper's SGTR recipe)."""
    losses = {}
    for free in (True, False):
        cfg = _cfg(make_cfg, "TransformerPredictor", mask_prob=0.0, head="tied", dropout_free=free)
        cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_BIAS = False
        cfg.MODEL.ROI_RELATION_HEAD.TRANSFORMER.DROPOUT_RATE = 0.3
        head = _head(cfg, stats).train()
        feats, sizes, targets, proposals = make_batch("predcls")
        torch.manual_seed(3)
        losses[free] = head(feats, proposals, sizes, targets)["loss_align"].item()
        assert all(m.training for m in head.modules())  # the switch leaves the modes as it found them
    assert abs(losses[True]) < 1e-5 and losses[False] > 1e-4


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_training_step_under_autocast(predictor, make_cfg, make_batch, stats):
    """Mixed precision (SOLVER.AMP on CUDA; bfloat16 on the CPU here): the tree-LSTM and message
    buffers take the autocast outputs."""
    head = _head(_cfg(make_cfg, predictor, "sgcls", dropout_free=True), stats).train()
    feats, sizes, targets, proposals = make_batch("sgcls")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = head(feats, proposals, sizes, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
