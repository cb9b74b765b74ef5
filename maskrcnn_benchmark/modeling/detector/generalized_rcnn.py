"""Faster R-CNN as a plain composition: backbone -> RPN -> box RoI heads.

Unlike torchvision's GeneralizedRCNN there is no internal transform: images arrive resized,
normalised and padded by the data layer (SGB's behaviour), and detections stay in the resized
image's pixels.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Optional, Union

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork

from ..roi_heads.box_head import BoxRoIHeads

logger = logging.getLogger("maskrcnn_benchmark")


def widen_thin_boxes(boxes: Tensor, image_size: tuple[int, int], min_size: float = 1.0) -> tuple[Tensor, int]:
    """Boxes [N, 4] thinner or flatter than ``min_size`` pixels grow to ``min_size`` (kept inside
    the image). A box clipped at the image border can have zero width, and torchvision's box
    coder would then regress to log(0); SGB's "+1" width convention made such a box 1 px wide.
    Returns the boxes and how many were changed."""
    h, w = image_size
    x1, y1, x2, y2 = boxes.unbind(1)
    thin, flat = (x2 - x1) < min_size, (y2 - y1) < min_size
    n = int((thin | flat).sum())
    if not n:
        return boxes, 0
    x1 = torch.where(thin, torch.clamp(x1, max=w - min_size).clamp(min=0), x1)
    x2 = torch.where(thin, x1 + min_size, x2)
    y1 = torch.where(flat, torch.clamp(y1, max=h - min_size).clamp(min=0), y1)
    y2 = torch.where(flat, y1 + min_size, y2)
    return torch.stack([x1, y1, x2, y2], 1), n


class GeneralizedRCNN(nn.Module):
    """``model(images, targets=None)``.

    Args:
        images: ImageList; ``tensors`` [B, 3, H, W] (padded), ``image_sizes`` [(h, w)] before padding.
        targets: per image ``{"boxes": FloatTensor[N, 4] xyxy resized pixels, "labels":
            Int64Tensor[N]}`` (other keys ignored); required in training.
    Returns:
        training: ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}``;
        eval: per image ``{"boxes" [n, 4], "labels" [n], "scores" [n], "class_logits" [n, C],
        "boxes_per_cls" [n, C, 4]}`` in resized-image pixels, best score first.
    """

    def __init__(self, backbone: nn.Module, rpn: RegionProposalNetwork, roi_heads: BoxRoIHeads) -> None:
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    @classmethod
    def from_config(cls, cfg, load_pretrained: bool = True) -> "GeneralizedRCNN":
        from ..backbone import build_backbone
        from ..roi_heads.box_head import build_roi_box_head
        from ..rpn import build_rpn

        backbone = build_backbone(cfg, load_pretrained=load_pretrained)
        return cls(backbone, build_rpn(cfg, backbone.out_channels),
                   build_roi_box_head(cfg, backbone.out_channels))

    def features(self, images: ImageList) -> "OrderedDict[str, Tensor]":
        """``{"0": [B, C, H/16, W/16]}``, the form the RPN and RoI pooling take."""
        return OrderedDict([("0", self.backbone(images.tensors))])

    def forward(self, images: ImageList,
                targets: Optional[list[dict[str, Tensor]]] = None) -> Union[dict[str, Tensor], list[dict[str, Tensor]]]:
        if self.training and targets is None:
            raise ValueError("GeneralizedRCNN in training mode needs targets (boxes, labels per image)")
        if self.training:
            targets = self._checked_targets(targets, images.image_sizes)
        features = self.features(images)
        proposals, rpn_losses = self.rpn(images, features, targets if self.training else None)
        detections, head_losses = self.roi_heads(features, proposals, images.image_sizes,
                                                 targets if self.training else None)
        if self.training:
            return {**rpn_losses, **head_losses}
        return detections

    def _checked_targets(self, targets: list[dict[str, Tensor]], sizes: list[tuple[int, int]]):
        out = []
        for t, size in zip(targets, sizes):
            boxes, n = widen_thin_boxes(t["boxes"], size)
            if n:
                t = {**t, "boxes": boxes}
                if not getattr(self, "_warned_thin", False):
                    self._warned_thin = True
                    logger.warning("image %s: %d ground-truth box(es) under 1 px wide or high were widened "
                                   "to 1 px (SGB's +1 box convention; logged once)", t.get("image_id", "?"), n)
            out.append(t)
        return out
