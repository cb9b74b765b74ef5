"""Parts of the new predictors against known answers: the attention masking of the Transformer
mirror, VCTree's tree construction, tree-LSTM and binary loss, IMP's message pooling."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead
from maskrcnn_benchmark.modeling.roi_heads.relation_head import model_transformer
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import random_attention_mask
from maskrcnn_benchmark.modeling.roi_heads.relation_head.model_msg_passing import IMPContext
from maskrcnn_benchmark.modeling.roi_heads.relation_head.model_vctree import binary_loss
from maskrcnn_benchmark.modeling.roi_heads.relation_head.utils_vctree import TreeLSTMForward, build_forest


def test_random_attention_mask_never_masks_a_whole_row():
    torch.manual_seed(0)
    pad = torch.zeros(6, 1, 5, dtype=torch.bool)
    pad[3:, :, 2:] = True  # images 3..5 have two objects
    mask = random_attention_mask((6, 5, 5), 0.999, invalid=pad)
    kept = ~mask & ~pad.expand(6, 5, 5)
    assert (kept.sum(-1) >= 1).all()  # every row keeps a key
    assert (kept.sum(-1) == 1).float().mean() > 0.8  # p ~ 1: mostly just the one kept back
    big = random_attention_mask((64, 40, 40), 0.3)
    assert abs(big.float().mean().item() - 0.3) < 0.01 and random_attention_mask((2, 3, 3), 0.0) is None


def test_transformer_mirror_masks_each_edge_block_afresh(make_cfg, make_batch, stats, monkeypatch):
    drawn = []

    def record(*args, **kw):
        m = random_attention_mask(*args, **kw)
        if m is not None:
            drawn.append((m, kw["invalid"]))
        return m
    monkeypatch.setattr(model_transformer, "random_attention_mask", record)
    cfg = make_cfg("predcls")
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.PREDICTOR, h.ALIGN.ENABLED, h.ALIGN.MASK_PROB = "TransformerPredictor", True, 0.6
    torch.manual_seed(0)
    head = ROIRelationHead.from_config(cfg, in_channels=32, statistics=stats).train()
    feats, sizes, targets, proposals = make_batch("predcls")
    for _ in range(2):
        head(feats, proposals, sizes, targets)
    assert len(drawn) == 2 * h.TRANSFORMER.REL_LAYER  # the mirror's edge blocks only, none in the original
    for m, pad in drawn:
        assert m.shape == (2 * 2, 5, 5)  # heads x images, queries, keys
        full = pad.expand_as(m) | m
        assert not full.all(-1).any()  # never a row of -inf: no softmax over nothing
        assert m.any()
    assert all(not torch.equal(drawn[i][0], drawn[j][0]) for i in range(4) for j in range(i))
    head.eval()
    drawn.clear()
    with torch.no_grad():
        head(feats, proposals, sizes)
    assert drawn == []


def _sgb_tree(score):
    """SGB's generate_forest + arbForest_to_biForest for one image, written as SGB's loops."""
    n = score.shape[0]
    root = int(score.mean(1).argmax())
    children = {i: [] for i in range(n)}
    sel, rem = [root], [i for i in range(n) if i != root]
    while rem:
        best = int(score[sel][:, rem].reshape(-1).argmax())
        parent, child = sel[best // len(rem)], rem[best % len(rem)]
        children[parent].append(child)
        sel.append(child)
        rem.remove(child)
    left, right = {}, {}
    for node, kids in children.items():
        if kids:
            left[node] = kids[0]
            for a, b in zip(kids, kids[1:]):
                right[a] = b
    return root, left, right


def test_forest_is_sgb_maximum_spanning_tree_as_binary_tree():
    g = torch.Generator().manual_seed(0)
    scores = [torch.rand(6, 6, generator=g), torch.rand(1, 1, generator=g), torch.rand(4, 4, generator=g)]
    forest = build_forest(scores)
    assert forest.num_nodes == 11 and sorted(torch.cat(forest.levels).tolist()) == list(range(11))
    offset = 0
    for s in scores:
        root, left, right = _sgb_tree(s)
        n = s.shape[0]
        for i in range(n):
            assert int(forest.left[offset + i]) == (left[i] + offset if i in left else 11)
            assert int(forest.right[offset + i]) == (right[i] + offset if i in right else 11)
        assert int(forest.parent[offset + root]) == 11 and offset + root in forest.levels[0].tolist()
        offset += n


def test_level_batched_tree_lstm_equals_node_by_node_recursion():
    torch.manual_seed(0)
    lstm = TreeLSTMForward(5, 4)
    forest = build_forest([torch.rand(6, 6), torch.rand(3, 3)])
    x = torch.randn(9, 5)

    def node(i):  # SGB's recursion: children first, zero states where a child is missing
        zero = torch.zeros(1, 4)
        lc, lh = node(int(forest.left[i])) if forest.left[i] < 9 else (zero, zero)
        rc, rh = node(int(forest.right[i])) if forest.right[i] < 9 else (zero, zero)
        g = lstm.ioffux(x[i:i + 1]) + lstm.ioffuh_left(lh) + lstm.ioffuh_right(rh)
        i_, o, fl, fr, u, r = g.chunk(6, 1)
        c = torch.sigmoid(i_) * torch.tanh(u) + torch.sigmoid(fl) * lc + torch.sigmoid(fr) * rc
        h = torch.sigmoid(o) * torch.tanh(c)
        out[i] = torch.sigmoid(r) * h + (1 - torch.sigmoid(r)) * lstm.px(x[i:i + 1])
        return c, out[i]
    out = {}
    for root in forest.levels[0].tolist():
        node(root)
    with torch.no_grad():
        got = lstm(forest, x)
        torch.testing.assert_close(got, torch.cat([out[i] for i in range(9)]), rtol=0, atol=1e-6)


def test_binary_loss_against_symmetric_targets():
    logits = [torch.zeros(3, 3), torch.full((2, 2), 2.0)]
    pairs = [torch.tensor([[0, 1], [2, 0], [1, 2]]), torch.tensor([[0, 1], [1, 0]])]
    labels = [torch.tensor([3, 0, 1]), torch.tensor([0, 0])]  # image 1: (0,1) and (1,2) related
    want1 = F.binary_cross_entropy_with_logits(torch.zeros(3, 3), torch.tensor([[0., 1, 0], [1, 0, 1], [0, 1, 0]]))
    want2 = F.binary_cross_entropy_with_logits(torch.full((2, 2), 2.0), torch.zeros(2, 2))
    torch.testing.assert_close(binary_loss(logits, pairs, labels), (want1 + want2) / 2)
    with pytest.raises(ValueError, match="relation labels"):
        binary_loss(logits, pairs, None)


def test_imp_message_pooling_equals_sgb_dense_formula():
    torch.manual_seed(0)
    ctx = IMPContext(num_obj_classes=4, num_rel_classes=3, obj_dim=6, union_dim=5, hidden_dim=8, num_iter=3)
    obj, rel = torch.randn(5, 8), torch.randn(7, 8)
    pairs = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 4], [4, 2], [0, 4], [2, 1]])
    sub2rel, obj2rel = torch.zeros(5, 7), torch.zeros(5, 7)
    sub2rel[pairs[:, 0], torch.arange(7)] = 1
    obj2rel[pairs[:, 1], torch.arange(7)] = 1
    with torch.no_grad():
        verts, edges = [ctx.node_gru(obj, torch.zeros(5, 8))], [ctx.edge_gru(rel, torch.zeros(7, 8))]
        for i in range(3):
            sv, ov = verts[i][pairs[:, 0]], verts[i][pairs[:, 1]]
            ws = ctx.sub_vert_w_fc(torch.cat((sv, edges[i]), 1)) * sv
            wo = ctx.obj_vert_w_fc(torch.cat((ov, edges[i]), 1)) * ov
            edges.append(ctx.edge_gru(ws + wo, edges[i]))
            pre_out = ctx.out_edge_w_fc(torch.cat((sv, edges[i]), 1)) * edges[i]
            pre_in = ctx.in_edge_w_fc(torch.cat((ov, edges[i]), 1)) * edges[i]
            verts.append(ctx.node_gru(sub2rel @ pre_out + obj2rel @ pre_in, verts[i]))
        vert, edge = ctx.message_passing(obj, rel, pairs)
    torch.testing.assert_close(vert, verts[-1], rtol=0, atol=1e-6)
    torch.testing.assert_close(edge, edges[-1], rtol=0, atol=1e-6)
    assert ctx.obj_fc is None  # PredCls: no object classifier
