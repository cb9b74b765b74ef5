"""``build_detection_model(cfg)`` (SGB's entry point for stage 1)."""
from __future__ import annotations

import logging

from .generalized_rcnn import GeneralizedRCNN

logger = logging.getLogger("maskrcnn_benchmark")


def build_detection_model(cfg, load_pretrained: bool | None = None) -> GeneralizedRCNN:
    """VGG-16 Faster R-CNN from the config.

    ``load_pretrained`` (ImageNet backbone init): by default only when the model's weights
    will not be overwritten anyway, i.e. MODEL.WEIGHT and MODEL.PRETRAINED_DETECTOR_CKPT are
    empty and MODEL.RELATION_ON is off.
    """
    if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
        raise ValueError(f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r}: only 'GeneralizedRCNN'")
    if load_pretrained is None:
        load_pretrained = not (cfg.MODEL.WEIGHT or cfg.MODEL.PRETRAINED_DETECTOR_CKPT or cfg.MODEL.RELATION_ON)
        if not load_pretrained:
            logger.info("backbone: skipping ImageNet init (weights come from a checkpoint)")
    return GeneralizedRCNN.from_config(cfg, load_pretrained=load_pretrained)
