"""The relation head's own box and union feature extractors (SGB's RelationFeatureExtractor).

Both copy the detector box head's fc6/fc7 at initialisation and are trained with the relation
head, while the detector itself stays frozen.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

__all__ = ["RelationBoxFeatureExtractor", "RelationUnionFeatureExtractor", "union_boxes", "rect_masks"]


class RelationBoxFeatureExtractor(nn.Module):
    """RoIAlign (``resolution`` x ``resolution`` at ``spatial_scale``) -> fc6 -> fc7, ReLU after each.

    Args:
        in_channels: channels of the backbone feature map.
        mlp_dim: width of fc6 / fc7 (MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM).
    """

    def __init__(self, *, in_channels: int, mlp_dim: int, resolution: int = 7, sampling_ratio: int = 2,
                 spatial_scale: float = 1.0 / 16):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, mlp_dim
        self.resolution, self.sampling_ratio, self.spatial_scale = resolution, sampling_ratio, spatial_scale
        self.fc6 = nn.Linear(in_channels * resolution * resolution, mlp_dim)
        self.fc7 = nn.Linear(mlp_dim, mlp_dim)

    def pool(self, features: Tensor, rois: Tensor) -> Tensor:
        """features [B, C, H, W], rois [K, 5] (image index, x1, y1, x2, y2) -> [K, C, r, r].

        The RoIs stay float32 whatever the features' dtype: under autocast torchvision pools in
        float32 (casting a 600 px box to bfloat16 would move it by up to 2 px, to float16 0.25 px).
        """
        return roi_align(features, rois.float(), (self.resolution, self.resolution),
                         spatial_scale=self.spatial_scale, sampling_ratio=self.sampling_ratio,
                         aligned=False)

    def mlp(self, pooled: Tensor) -> Tensor:
        """[K, C, r, r] -> [K, mlp_dim]."""
        x = torch.relu(self.fc6(pooled.flatten(1)))
        return torch.relu(self.fc7(x))

    def forward(self, features: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        """features [B, C, H, W], per-image boxes [n_i, 4] xyxy (image pixels) -> [sum n_i, mlp_dim]."""
        return self.mlp(self.pool(features, boxes_to_rois(boxes)))

    @torch.no_grad()
    def load_box_head(self, box_head: nn.Module) -> None:
        """Copy fc6 / fc7 from the detector's box head (any module with ``fc6`` and ``fc7`` Linears)."""
        for name in ("fc6", "fc7"):
            src, dst = getattr(box_head, name, None), getattr(self, name)
            if not isinstance(src, nn.Linear) or src.weight.shape != dst.weight.shape:
                got = None if src is None else tuple(getattr(src, "weight", torch.empty(0)).shape)
                raise ValueError(f"cannot initialise the relation feature extractor from the detector: "
                                 f"box head {name} has weight {got}, expected {tuple(dst.weight.shape)} "
                                 "(check MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM / POOLER_RESOLUTION)")
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)


def boxes_to_rois(boxes: Sequence[Tensor]) -> Tensor:
    """Per-image boxes [n_i, 4] -> [sum n_i, 5] with the image index in column 0."""
    if not boxes:
        return torch.zeros(0, 5)
    idx = [torch.full((b.shape[0], 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(idx), torch.cat(list(boxes))], dim=1)


def union_boxes(head: Tensor, tail: Tensor) -> Tensor:
    """Smallest boxes enclosing each (head, tail) pair: [R, 4] xyxy."""
    return torch.cat([torch.minimum(head[:, :2], tail[:, :2]), torch.maximum(head[:, 2:], tail[:, 2:])], 1)


def rect_masks(boxes: Tensor, image_hw: Tensor, size: int) -> Tensor:
    """SGB's binary box masks: each box scaled from its image to a ``size`` x ``size`` grid.

    Args:
        boxes: [R, 4] xyxy in image pixels; image_hw: [R, 2] (height, width) of each box's image.
    Returns:
        [R, size, size] float, 1 inside [floor(x1), ceil(x2)] x [floor(y1), ceil(y2)].
    """
    scale = torch.stack([size / image_hw[:, 1], size / image_hw[:, 0]], 1).repeat(1, 2)
    b = boxes.float() * scale
    lo, hi = b[:, :2].floor(), b[:, 2:].ceil()
    grid = torch.arange(size, device=boxes.device, dtype=torch.float32)
    in_x = (grid[None] >= lo[:, 0:1]) & (grid[None] <= hi[:, 0:1])  # [R, size]
    in_y = (grid[None] >= lo[:, 1:2]) & (grid[None] <= hi[:, 1:2])
    return (in_y[:, :, None] & in_x[:, None, :]).float()


class RelationUnionFeatureExtractor(nn.Module):
    """Union-box features of subject-object pairs.

    RoIAlign of the union box, plus a small conv branch on the two binary box masks (27 x 27 for
    a 7 x 7 pooler, SGB's ``rect_conv``), summed, then its own fc6 / fc7.

    Args:
        in_channels / mlp_dim / resolution / sampling_ratio / spatial_scale: as the box extractor.
        chunk_size: pairs processed at a time in eval mode (MODEL.ROI_RELATION_HEAD.PAIR_CHUNK_SIZE),
            so that SGDet's thousands of test pairs fit in memory. Training processes all sampled
            pairs at once (they are few, and BatchNorm needs whole-batch statistics there).
    """

    def __init__(self, *, in_channels: int, mlp_dim: int, resolution: int = 7, sampling_ratio: int = 2,
                 spatial_scale: float = 1.0 / 16, chunk_size: int = 1024):
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"PAIR_CHUNK_SIZE must be >= 1, got {chunk_size}")
        self.feature_extractor = RelationBoxFeatureExtractor(
            in_channels=in_channels, mlp_dim=mlp_dim, resolution=resolution,
            sampling_ratio=sampling_ratio, spatial_scale=spatial_scale)
        self.out_channels, self.chunk_size = mlp_dim, chunk_size
        self.rect_size = resolution * 4 - 1
        half = max(in_channels // 2, 1)
        self.rect_conv = nn.Sequential(
            nn.Conv2d(2, half, kernel_size=7, stride=2, padding=3), nn.ReLU(inplace=True),
            nn.BatchNorm2d(half, momentum=0.01),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.Conv2d(half, in_channels, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=True),
            nn.BatchNorm2d(in_channels, momentum=0.01))

    def load_box_head(self, box_head: nn.Module) -> None:
        """Copy fc6 / fc7 from the detector's box head."""
        self.feature_extractor.load_box_head(box_head)

    def _features(self, features: Tensor, head: Tensor, tail: Tensor, img: Tensor, hw: Tensor) -> Tensor:
        rois = torch.cat([img[:, None].to(head.dtype), union_boxes(head, tail)], 1)
        pooled = self.feature_extractor.pool(features, rois)
        masks = torch.stack([rect_masks(head, hw, self.rect_size), rect_masks(tail, hw, self.rect_size)], 1)
        rect = self.rect_conv(masks.to(pooled.dtype))
        return self.feature_extractor.mlp(pooled + rect)

    def forward(self, features: Tensor, boxes: Sequence[Tensor], pair_idxs: Sequence[Tensor],
                image_sizes: Sequence[Tuple[int, int]]) -> Tensor:
        """features [B, C, H, W]; per image boxes [n_i, 4], pair_idxs Int64[r_i, 2] (subject, object)
        and (height, width) -> [sum r_i, mlp_dim]."""
        heads: List[Tensor] = []
        tails: List[Tensor] = []
        imgs: List[Tensor] = []
        hws: List[Tensor] = []
        for i, (b, p) in enumerate(zip(boxes, pair_idxs)):
            heads.append(b[p[:, 0]])
            tails.append(b[p[:, 1]])
            imgs.append(torch.full((p.shape[0],), i, device=b.device, dtype=torch.int64))
            hw = torch.tensor(image_sizes[i], device=b.device, dtype=torch.float32)
            hws.append(hw.expand(p.shape[0], 2))
        if not heads or sum(h.shape[0] for h in heads) == 0:
            return features.new_zeros(0, self.out_channels)
        head, tail, img, hw = torch.cat(heads), torch.cat(tails), torch.cat(imgs), torch.cat(hws)
        if self.training:
            return self._features(features, head, tail, img, hw)
        out = [self._features(features, head[s:s + self.chunk_size], tail[s:s + self.chunk_size],
                              img[s:s + self.chunk_size], hw[s:s + self.chunk_size])
               for s in range(0, head.shape[0], self.chunk_size)]
        return torch.cat(out)
