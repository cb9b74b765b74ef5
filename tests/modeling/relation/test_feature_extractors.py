import pytest
import torch
from torchvision.models.detection.faster_rcnn import TwoMLPHead

from maskrcnn_benchmark.modeling.roi_heads.relation_head.feature_extractors import (
    RelationBoxFeatureExtractor, RelationUnionFeatureExtractor, rect_masks, union_boxes)


def _union(chunk=1024):
    torch.manual_seed(0)
    return RelationUnionFeatureExtractor(in_channels=8, mlp_dim=12, chunk_size=chunk)


def test_box_features_shape_and_copy_from_box_head():
    fe = RelationBoxFeatureExtractor(in_channels=8, mlp_dim=12)
    head = TwoMLPHead(8 * 7 * 7, 12)
    fe.load_box_head(head)
    assert torch.equal(fe.fc6.weight, head.fc6.weight) and torch.equal(fe.fc7.bias, head.fc7.bias)
    assert fe.fc6.weight.data_ptr() != head.fc6.weight.data_ptr()  # a copy, trained separately
    feats = torch.randn(2, 8, 5, 6)
    boxes = [torch.tensor([[0., 0., 40., 30.], [10., 10., 60., 70.]]), torch.tensor([[5., 5., 20., 20.]])]
    out = fe(feats, boxes)
    assert out.shape == (3, 12)
    pooled = fe.pool(feats, torch.tensor([[0., 0., 0., 40., 30.]]))
    assert torch.allclose(out[0], head(pooled)[0], atol=1e-6)  # same numbers as the detector's head


def test_copy_from_mismatched_box_head_names_the_config():
    fe = RelationBoxFeatureExtractor(in_channels=8, mlp_dim=12)
    with pytest.raises(ValueError, match="MLP_HEAD_DIM"):
        fe.load_box_head(TwoMLPHead(8 * 7 * 7, 16))


def test_union_boxes_and_rect_masks_known_answer():
    head = torch.tensor([[0., 0., 10., 10.]])
    tail = torch.tensor([[5., 20., 30., 25.]])
    assert torch.equal(union_boxes(head, tail), torch.tensor([[0., 0., 30., 25.]]))
    # image 27 high, 54 wide: x is halved, y unchanged
    m = rect_masks(torch.tensor([[0., 0., 26., 8.]]), torch.tensor([[27., 54.]]), 27)
    assert m.shape == (1, 27, 27)
    assert m[0, :9, :14].all() and m[0, 9:].sum() == 0 and m[0, :, 14:].sum() == 0


def test_union_features_shape_empty_and_gradient():
    fe = _union()
    feats = torch.randn(2, 8, 5, 6)
    boxes = [torch.rand(4, 2).repeat(1, 2) * 40 + torch.tensor([0., 0., 20., 20.]), torch.rand(0, 4)]
    pairs = [torch.tensor([[0, 1], [2, 3], [3, 0]]), torch.zeros(0, 2, dtype=torch.int64)]
    out = fe.train()(feats, boxes, pairs, [(80, 96), (80, 96)])
    assert out.shape == (3, 12)
    out.sum().backward()
    assert fe.rect_conv[0].weight.grad.abs().sum() > 0 and fe.feature_extractor.fc6.weight.grad is not None
    empty = fe(feats, [torch.rand(0, 4)] * 2, [torch.zeros(0, 2, dtype=torch.int64)] * 2, [(80, 96)] * 2)
    assert empty.shape == (0, 12)


def test_chunked_union_features_equal_unchunked():
    whole, chunked = _union(chunk=1000).eval(), _union(chunk=3).eval()
    chunked.load_state_dict(whole.state_dict())
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 8, 5, 6, generator=g)
    boxes = [torch.cat([torch.rand(n, 2, generator=g) * 40, torch.rand(n, 2, generator=g) * 30 + 50], 1)
             for n in (5, 3)]
    pairs = [torch.nonzero(~torch.eye(n, dtype=torch.bool)) for n in (5, 3)]
    sizes = [(80, 96), (70, 90)]
    with torch.no_grad():
        a, b = whole(feats, boxes, pairs, sizes), chunked(feats, boxes, pairs, sizes)
    assert a.shape == (26, 12)
    assert torch.allclose(a, b, atol=1e-6)
