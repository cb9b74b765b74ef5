"""Backbone builders, registered in ``BACKBONES`` under ``MODEL.BACKBONE.CONV_BODY``."""
from __future__ import annotations

from torch import nn

from maskrcnn_benchmark.modeling.registry import BACKBONES

from .vgg import VGG16, load_imagenet_weights


@BACKBONES.register("VGG-16")
def build_vgg16_backbone(cfg, load_pretrained: bool = True) -> VGG16:
    """VGG-16 from ``MODEL.BACKBONE``; ImageNet init from ``MODEL.PRETRAINED_BACKBONE`` (or
    torchvision's download) when ``load_pretrained``."""
    body = VGG16(width_divisor=cfg.MODEL.BACKBONE.WIDTH_DIVISOR,
                 batch_norm=cfg.MODEL.BACKBONE.BATCH_NORM,
                 freeze_at=cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT)
    if load_pretrained:
        load_imagenet_weights(body, cfg.MODEL.PRETRAINED_BACKBONE)
    return body


def build_backbone(cfg, load_pretrained: bool = True) -> nn.Module:
    """The backbone named by ``MODEL.BACKBONE.CONV_BODY`` (a module with ``out_channels``)."""
    return BACKBONES[cfg.MODEL.BACKBONE.CONV_BODY](cfg, load_pretrained=load_pretrained)
