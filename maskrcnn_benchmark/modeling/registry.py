"""The model's registries (SGB's names).

- ``BACKBONES``: ``MODEL.BACKBONE.CONV_BODY`` -> ``build(cfg) -> nn.Module``; the module maps
  ``images [B, 3, H, W]`` to one feature map ``[B, out_channels, H/16, W/16]`` and has an
  ``out_channels`` attribute.
- ``ROI_RELATION_PREDICTOR``: ``MODEL.ROI_RELATION_HEAD.PREDICTOR`` -> predictor class (see the
  relation head for the call signature its members implement).
"""
from maskrcnn_benchmark.utils.registry import Registry

BACKBONES = Registry("backbone")
ROI_RELATION_PREDICTOR = Registry("relation predictor")
