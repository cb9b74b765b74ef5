"""The union extractor's per-object rect conv equals SGB's conv of each pair's stacked masks."""
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head.feature_extractors import (
    RelationUnionFeatureExtractor, rect_masks, union_boxes)


def _reference(fe, features, boxes, pairs, sizes):
    """SGB's order of operations: stack (subject, object) masks per pair, then the whole rect_conv."""
    out = []
    for i, (b, p, (h, w)) in enumerate(zip(boxes, pairs, sizes)):
        head, tail = b[p[:, 0]], b[p[:, 1]]
        hw = torch.tensor([h, w], dtype=torch.float32).expand(p.shape[0], 2)
        masks = torch.stack([rect_masks(head, hw, fe.rect_size), rect_masks(tail, hw, fe.rect_size)], 1)
        rois = torch.cat([torch.full((p.shape[0], 1), float(i)), union_boxes(head, tail)], 1)
        out.append((fe.feature_extractor.pool(features, rois), masks))
    pooled, masks = torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
    return fe.feature_extractor.mlp(pooled + fe.rect_conv(masks))


def test_factorised_first_conv_matches_stacked_masks():
    torch.manual_seed(0)
    fe = RelationUnionFeatureExtractor(in_channels=8, mlp_dim=16, resolution=3, chunk_size=7)
    features = torch.randn(2, 8, 6, 8)
    g = torch.Generator().manual_seed(1)
    boxes = []
    for n in (5, 4):
        xy = torch.rand(n, 2, generator=g) * 60
        boxes.append(torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 50], 1))
    pairs = [torch.tensor([[0, 1], [1, 0], [2, 4], [3, 3], [4, 2], [1, 3]]), torch.tensor([[0, 3], [2, 1], [3, 0]])]
    sizes = [(96, 128), (96, 120)]
    for train in (True, False):  # batch statistics / running statistics and eval chunking
        fe.train(train)
        torch.testing.assert_close(fe(features, boxes, pairs, sizes), _reference(fe, features, boxes, pairs, sizes),
                                   rtol=1e-5, atol=1e-5)
    fe.train()
    fe(features, boxes, pairs, sizes).sum().backward()
    got = fe.rect_conv[0].weight.grad.clone()
    fe.zero_grad()
    _reference(fe, features, boxes, pairs, sizes).sum().backward()
    torch.testing.assert_close(got, fe.rect_conv[0].weight.grad, rtol=1e-4, atol=1e-5)
