"""The shared pair / union / frequency-bias head: MotifPredictor's numbers and checkpoint keys are
those of SGB's MotifPredictor written out (per image, as SGB's loop), whatever code it shares."""
import pytest
import torch

from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR


def _sgb_motif_logits(pred, edge_ctx, obj_preds, rel_pair_idxs, num_objs, union):
    """SGB's MotifPredictor.forward after the context, line by line."""
    h = pred.hidden_dim
    edge_rep = pred.post_emb(edge_ctx).view(-1, 2, h)
    head_reps, tail_reps = edge_rep[:, 0].split(num_objs), edge_rep[:, 1].split(num_objs)
    prod, pairs = [], []
    for pidx, hr, tr, op in zip(rel_pair_idxs, head_reps, tail_reps, obj_preds.split(num_objs)):
        prod.append(torch.cat((hr[pidx[:, 0]], tr[pidx[:, 1]]), -1))
        pairs.append(torch.stack((op[pidx[:, 0]], op[pidx[:, 1]]), 1))
    prod_rep = pred.post_cat(torch.cat(prod)) * pred.up_dim(union)
    pair = torch.cat(pairs)
    return pred.rel_compress(prod_rep) + pred.freq_bias.obj_baseline(pair[:, 0] * pred.num_obj_classes + pair[:, 1])


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_motif_predictor_equals_sgb_formula(mode, make_cfg, make_batch, stats):
    torch.manual_seed(0)
    pred = ROI_RELATION_PREDICTOR["MotifPredictor"].from_config(make_cfg(mode), obj_dim=16, union_dim=16,
                                                                 statistics=stats).eval()
    _, sizes, targets, proposals = make_batch(mode)
    pairs = [torch.nonzero(~torch.eye(t["boxes"].shape[0], dtype=torch.bool)) for t in targets]
    roi = torch.randn(8, 16, generator=torch.Generator().manual_seed(4))
    union = torch.randn(26, 16, generator=torch.Generator().manual_seed(5))
    captured = {}
    hook = pred.context_layer.register_forward_hook(lambda m, i, o: captured.update(out=o))
    with torch.no_grad():
        _, obj_preds, rel_logits, _ = pred(roi, union, proposals, pairs, sizes)
        hook.remove()
        want = _sgb_motif_logits(pred, captured["out"].edge_ctx, obj_preds, pairs, [5, 3], union)
    torch.testing.assert_close(rel_logits, want, rtol=0, atol=1e-6)


def test_motif_predictor_state_dict_keys_unchanged(make_cfg, stats):
    """Checkpoints of the pre-refactor MotifPredictor load: the head's parameters keep their names."""
    cfg = make_cfg("sgcls")
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED = True
    pred = ROI_RELATION_PREDICTOR["MotifPredictor"].from_config(cfg, obj_dim=16, union_dim=16, statistics=stats)
    top = {k.split(".")[0] for k in pred.state_dict()}
    assert top == {"context_layer", "post_emb", "post_cat", "rel_compress", "up_dim", "freq_bias", "alignment"}
    assert "freq_bias.obj_baseline.weight" in pred.state_dict() and pred.ctx_compress is None
