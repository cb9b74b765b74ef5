"""Faster R-CNN as a plain composition: backbone -> RPN -> box RoI heads.

Unlike torchvision's GeneralizedRCNN there is no internal transform: images arrive resized,
normalised and padded by the data layer (SGB's behaviour), and detections stay in the resized
image's pixels.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Union

from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork

from ..roi_heads.box_head import BoxRoIHeads


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
        features = self.features(images)
        proposals, rpn_losses = self.rpn(images, features, targets if self.training else None)
        detections, head_losses = self.roi_heads(features, proposals, images.image_sizes,
                                                 targets if self.training else None)
        if self.training:
            return {**rpn_losses, **head_losses}
        return detections
