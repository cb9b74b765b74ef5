"""The alignment module on a minimal alignable predictor (Motifs-specific checks live in
test_alignment_motifs.py)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskrcnn_benchmark.config import ConfigError, get_cfg
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import RelationAlignment, random_mask


class ToyPredictor(nn.Module):
    """Feature extractor -> shared message passing -> pair rep; head post_cat*union -> logits."""

    def __init__(self, alignment=None, d_obj=8, d_union=6, hidden=5, num_classes=4):
        super().__init__()
        self.extractor = nn.Linear(3, d_obj)
        self.message = nn.Linear(d_obj, hidden)
        self.post_emb = nn.Linear(hidden, 2 * hidden)
        self.post_cat = nn.Linear(2 * hidden, d_union)
        self.rel_compress = nn.Linear(d_union, num_classes)
        self.bias = nn.Parameter(torch.randn(num_classes))
        self.alignment = alignment

    def mirror_pair_features(self, inputs, context):
        h = self.post_emb(torch.relu(self.message(inputs["edge_input"])))
        subj, obj = h.chunk(2, dim=-1)
        return torch.cat([subj[context[:, 0]], obj[context[:, 1]]], -1), inputs["union"]

    def tied_logits(self, pair_rep, union):
        return self.rel_compress(self.post_cat(pair_rep) * union)

    def forward(self, raw, union, pairs, labels, use_bias=True):
        inputs = {"edge_input": self.extractor(raw), "union": union}
        logits = self.tied_logits(*self.mirror_pair_features(inputs, pairs))
        if use_bias:
            logits = logits + self.bias
        losses = {"loss_rel": F.cross_entropy(logits, labels)}
        if self.alignment is not None and self.training:
            losses.update(self.alignment(self, inputs=inputs, context=pairs,
                                         target_logits=logits, labels=labels))
        return losses


def toy_batch(n_obj=6, n_rel=10):
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(n_obj, 3, generator=g)
    union = torch.randn(n_rel, 6, generator=g, requires_grad=True)
    pairs = torch.randint(0, n_obj, (n_rel, 2), generator=g)
    labels = torch.randint(0, 4, (n_rel,), generator=g)
    return raw, union, pairs, labels


def make(**kw):
    return RelationAlignment(pair_dim=10, union_dim=6, num_classes=4, **kw)


def test_row_mask_fraction_matches_p_and_changes_between_draws():
    x = torch.ones(20000, 7)
    torch.manual_seed(0)
    m1 = random_mask(x, 0.1, "row")
    m2 = random_mask(x, 0.1, "row")
    zero_rows = (m1.sum(1) == 0).float()
    assert abs(zero_rows.mean().item() - 0.1) < 0.01
    assert ((m1 == 0) | (m1 == 1)).all() and (m1.sum(1) % 7 == 0).all()  # whole rows only
    assert not torch.equal(m1, m2)


def test_element_mask_fraction_and_no_rescaling():
    torch.manual_seed(0)
    x = torch.full((300, 100), 2.0)
    m = random_mask(x, 0.25, "element")
    assert abs((m == 0).float().mean().item() - 0.25) < 0.01
    assert set(m.unique().tolist()) == {0.0, 2.0}


def test_p0_tied_head_without_bias_mirror_equals_original():
    torch.manual_seed(0)
    model = ToyPredictor(make(mask_prob=0.0, head="tied")).train()
    losses = model(*toy_batch(), use_bias=False)
    assert losses["loss_align"].abs().item() < 1e-6


def test_kl_matches_definition_and_weight():
    torch.manual_seed(0)
    align = make(mask_prob=0.0, loss_weight=3.0)
    model = ToyPredictor(align).train()
    raw, union, pairs, labels = toy_batch()
    target = torch.randn(len(labels), 4)
    out = align(model, inputs={"edge_input": model.extractor(raw), "union": union}, context=pairs,
                target_logits=target)["loss_align"]
    mirror = align.mirror_logits(model, {"edge_input": model.extractor(raw), "union": union}, pairs)
    p, q = F.softmax(target, -1), F.softmax(mirror, -1)
    expected = (p * (p.log() - q.log())).sum(-1).mean() * 3.0
    assert torch.allclose(out, expected, atol=1e-5)
    rev = make(mask_prob=0.0, loss_weight=1.0, kl_direction="reverse")
    rev.mlp = align.mlp
    out_rev = rev(model, inputs={"edge_input": model.extractor(raw), "union": union}, context=pairs,
                  target_logits=target)["loss_align"]
    assert torch.allclose(out_rev, (q * (q.log() - p.log())).sum(-1).mean(), atol=1e-5)


def test_gradient_stops_at_inputs_and_skips_original_head():
    torch.manual_seed(0)
    model = ToyPredictor(make(mask_prob=0.1)).train()
    raw, union, pairs, labels = toy_batch()
    model(raw, union, pairs, labels)["loss_align"].backward()
    for name in ("message", "post_emb", "alignment.mlp"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    for name in ("extractor", "post_cat", "rel_compress", "bias"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert all(g is None or g.abs().sum() == 0 for g in grads), name
    assert union.grad is None


def test_supervised_alignment_uses_labels():
    torch.manual_seed(0)
    align = make(mask_prob=0.0, loss="ce", loss_weight=1.0)
    model = ToyPredictor(align).train()
    raw, union, pairs, labels = toy_batch()
    inputs = {"edge_input": model.extractor(raw), "union": union}
    out = align(model, inputs=inputs, context=pairs, target_logits=torch.zeros(10, 4), labels=labels)
    assert torch.allclose(out["loss_align"], F.cross_entropy(align.mirror_logits(model, inputs, pairs), labels))


def test_empty_pairs_give_zero_loss_not_nan():
    model = ToyPredictor(make()).train()
    raw, union, pairs, labels = toy_batch(n_rel=0)
    loss = model(raw, union, pairs, labels)["loss_align"]
    assert loss.item() == 0.0


def test_from_config_and_bad_values():
    cfg = get_cfg()
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.MLP_HIDDEN_DIM = 0
    a = RelationAlignment.from_config(cfg, pair_dim=10, union_dim=6, num_classes=4)
    assert a.mask_prob == 0.1 and a.loss_weight == 10.0 and a.mlp[0].out_features == 10
    assert [type(m) for m in a.mlp] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    with pytest.raises(ValueError, match="ALIGN.HEAD"):
        make(head="shared")
    with pytest.raises(ValueError, match="MASK_PROB"):
        make(mask_prob=1.5)
    assert a.kl_reduction == "batchmean"  # today's behaviour stays the default
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.KL_REDUCTION = "mean"
    assert RelationAlignment.from_config(cfg, pair_dim=10, union_dim=6, num_classes=4).kl_reduction == "mean"
    with pytest.raises(ConfigError, match=r"ALIGN.KL_REDUCTION must be one of \('batchmean', 'mean'\), got 'sum'"):
        make(kl_reduction="sum")


class HandPredictor(nn.Module):
    """Parameter-free predictor whose logits can be worked out by hand; records what the mirror
    receives. pair_rep = [edge[s], edge[o]]; logits = 0.1 * [sum(pair_rep), pair_rep[0] - u[0], u[1]]."""

    def __init__(self):
        super().__init__()
        self.received = None

    def mirror_pair_features(self, inputs, context):
        self.received = {k: v.clone() for k, v in inputs.items()}
        e = inputs["edge_input"]
        return torch.cat([e[context[:, 0]], e[context[:, 1]]], 1), inputs["union"]

    def tied_logits(self, pair_rep, union):
        return 0.1 * torch.stack([pair_rep.sum(1), pair_rep[:, 0] - union[:, 0], union[:, 1]], 1)


def _softmax(row):
    import math
    z = [math.exp(v) for v in row]
    return [v / sum(z) for v in z]


def _kl(p_rows, q_rows):
    """mean over rows of sum_c p_c * log(p_c / q_c), in plain Python."""
    import math
    return sum(sum(p * math.log(p / q) for p, q in zip(pr, qr)) for pr, qr in zip(p_rows, q_rows)) / len(p_rows)


@pytest.mark.parametrize("reduction", ["batchmean", "mean"])
@pytest.mark.parametrize("direction", ["target_original", "reverse"])
def test_hand_worked_masking_and_kl(direction, reduction, monkeypatch):
    """A fixed mask zeroes edge row 1 and union row 0; the mirror sees exactly that (other rows
    untouched), its logits follow by hand, and the loss is lambda x the KL of the chosen direction,
    averaged over the pairs ("batchmean") and also divided by the P = 3 classes ("mean")."""
    import maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment as alignment_module
    calls = []

    def fixed_mask(x, p, mode="row"):
        calls.append((tuple(x.shape), p, mode))
        keep = {3: [1.0, 0.0, 1.0], 2: [0.0, 1.0]}[x.shape[0]]  # edge_input has 3 rows, union 2
        return x * torch.tensor(keep)[:, None]
    monkeypatch.setattr(alignment_module, "random_mask", fixed_mask)
    edge = torch.tensor([[1., 2.], [3., 4.], [5., 6.]], requires_grad=True)
    union = torch.tensor([[1., 1.], [2., -1.]])
    pairs = torch.tensor([[0, 1], [2, 0]])
    target = torch.tensor([[0., 1., 0.], [2., 0., 0.]])
    align = RelationAlignment(pair_dim=4, union_dim=2, num_classes=3, mask_prob=0.1, loss_weight=10.0,
                              head="tied", kl_direction=direction, kl_reduction=reduction)
    predictor = HandPredictor()
    loss = align(predictor, inputs={"edge_input": edge, "union": union}, context=pairs,
                 target_logits=target)["loss_align"]
    assert sorted(calls) == [((2, 2), 0.1, "row"), ((3, 2), 0.1, "row")]
    assert predictor.received["edge_input"].tolist() == [[1., 2.], [0., 0.], [5., 6.]]
    assert predictor.received["union"].tolist() == [[0., 0.], [2., -1.]]
    assert edge.tolist() == [[1., 2.], [3., 4.], [5., 6.]]  # the original branch's inputs are not changed
    # pair rows [1, 2, 0, 0] and [5, 6, 1, 2] with union rows [0, 0] and [2, -1]
    mirror = [[0.3, 0.1, 0.0], [1.4, 0.3, -0.1]]
    p, q = [_softmax(r) for r in target.tolist()], [_softmax(r) for r in mirror]
    kl = _kl(p, q) if direction == "target_original" else _kl(q, p)
    assert loss.item() == pytest.approx(10.0 * kl / (3 if reduction == "mean" else 1), rel=1e-5)
    assert kl > 0.05  # a case where the masks and the direction matter


@pytest.mark.parametrize("direction", ["target_original", "reverse"])
def test_mean_reduction_is_batchmean_over_num_classes(direction):
    """The same draw (same seed) under both reductions: the losses differ by exactly P, and so do
    their gradients (mean = an effective lambda of lambda / P)."""
    num_classes, losses, grads = 7, {}, {}
    for reduction in ("batchmean", "mean"):
        torch.manual_seed(0)
        align = RelationAlignment(pair_dim=10, union_dim=6, num_classes=num_classes, kl_direction=direction,
                                  kl_reduction=reduction)
        model = ToyPredictor(align, num_classes=num_classes).train()
        torch.manual_seed(1)
        raw, union, pairs, labels = toy_batch()
        labels = labels % num_classes
        loss = model(raw, union, pairs, labels)["loss_align"]
        loss.backward()
        losses[reduction], grads[reduction] = loss.item(), model.message.weight.grad.clone()
    assert losses["batchmean"] > 0.01
    assert losses["batchmean"] / losses["mean"] == pytest.approx(num_classes, rel=1e-5)
    assert torch.allclose(grads["batchmean"], num_classes * grads["mean"], rtol=1e-4, atol=1e-7)
