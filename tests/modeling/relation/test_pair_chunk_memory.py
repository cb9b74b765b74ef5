"""SGDet evaluation memory: union features are computed PAIR_CHUNK_SIZE pairs at a time, so the
largest tensor alive does not grow with the number of pairs beyond the chunk, except the per-pair
vectors ([R, D] features and logits) themselves.

Measured without a memory profiler: a TorchDispatchMode records the size of every tensor each
operation produces, and whether it ran inside one chunk of the union feature extractor."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead

CHUNK = 256
RES, CH = 3, 8  # pooler resolution, feature channels
POOLED = CH * RES * RES  # RoIAlign output per pair


class TensorSizes(TorchDispatchMode):
    """Largest tensor produced by an op inside / outside the union extractor's per-chunk
    function, and the pairs per chunk."""

    def __init__(self, union_extractor):
        super().__init__()
        self.inside = self.outside = 0
        self.chunks: list[int] = []
        self._depth = 0
        original = union_extractor._features

        def per_chunk(features, rect, head, *rest):
            self.chunks.append(int(head.shape[0]))
            self._depth += 1
            try:
                return original(features, rect, head, *rest)
            finally:
                self._depth -= 1
        union_extractor._features = per_chunk

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        biggest = max((t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)), default=0)
        if self._depth:
            self.inside = max(self.inside, biggest)
        else:
            self.outside = max(self.outside, biggest)
        return out


def measure(make_cfg, stats, num_boxes, chunk=CHUNK):
    cfg = make_cfg("sgdet")
    cfg.MODEL.ROI_RELATION_HEAD.PAIR_CHUNK_SIZE = chunk
    cfg.MODEL.ROI_RELATION_HEAD.POOLER_RESOLUTION = RES  # CPU size: 3 x 3 pooling, 11 x 11 box masks
    cfg.TEST.RELATION.TOPK_TRIPLETS = 100
    torch.manual_seed(0)
    head = ROIRelationHead.from_config(cfg, in_channels=CH, statistics=stats).eval()
    g = torch.Generator().manual_seed(num_boxes)
    xy = torch.rand(num_boxes, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + 8 + torch.rand(num_boxes, 2, generator=g) * 30], 1)
    proposals = [{"boxes": boxes, "labels": torch.randint(1, 7, (num_boxes,), generator=g),
                  "scores": torch.rand(num_boxes, generator=g),
                  "class_logits": torch.randn(num_boxes, 7, generator=g)}]
    features = torch.randn(1, CH, 7, 7, generator=g)  # a 112 x 112 image at 1/16
    sizes = TensorSizes(head.union_feature_extractor)
    with torch.no_grad(), sizes:
        out = head(features, proposals, [(112, 112)], None)
    assert out[0]["rel_pairs"].shape == (100, 2)
    return sizes, num_boxes * (num_boxes - 1)


def test_union_features_memory_is_bounded_by_the_chunk(make_cfg, stats):
    small, r_small = measure(make_cfg, stats, 20)   # 380 pairs
    large, r_large = measure(make_cfg, stats, 80)   # 6320 pairs
    assert sum(large.chunks) == r_large and max(large.chunks) == CHUNK and len(large.chunks) == -(-r_large // CHUNK)
    # inside a chunk: the pooled union boxes, box masks and their convolutions, independent of R
    assert large.inside == small.inside
    assert large.inside >= CHUNK * POOLED  # RoIAlign output [chunk, C, RES, RES] is among them
    # outside: per-pair vectors only ([R, D], D = MLP_HEAD_DIM 16, CONTEXT_POOLING_DIM 20, 2H 24), at
    # full size 4096 floats a pair against 25088 pooled + 50176 mask-conv floats inside a chunk
    assert large.outside <= r_large * max(16, 20, 2 * 12)


def test_without_chunking_the_pooled_features_grow_with_the_pairs(make_cfg, stats):
    """The measure can fail: with one chunk holding every pair the largest tensor grows with R."""
    small, r_small = measure(make_cfg, stats, 20, chunk=10 ** 6)
    large, r_large = measure(make_cfg, stats, 40, chunk=10 ** 6)
    assert large.chunks == [r_large] and large.inside >= r_large * POOLED
    assert large.inside / small.inside == r_large / r_small  # 1560 / 380 pairs
