"""The model's registries (SGB's names).

- ``BACKBONES``: ``MODEL.BACKBONE.CONV_BODY`` -> ``build(cfg) -> nn.Module``; the module maps
  ``images [B, 3, H, W]`` to one feature map ``[B, out_channels, H/16, W/16]`` and has an
  ``out_channels`` attribute.
- ``ROI_RELATION_PREDICTOR``: ``MODEL.ROI_RELATION_HEAD.PREDICTOR`` -> predictor class with
  ``from_config(cfg, *, obj_dim, union_dim, statistics)`` and
  ``predictor(roi_features [N, obj_dim], union_features [R, union_dim], proposals, rel_pair_idxs,
  image_sizes, rel_labels=None) -> (obj_logits [N, C], obj_preds [N], rel_logits [R, P], losses)``
  (details: ``roi_heads/relation_head/roi_relation_predictors.py``).
"""
from maskrcnn_benchmark.utils.registry import Registry

BACKBONES = Registry("backbone")
ROI_RELATION_PREDICTOR = Registry("relation predictor")
