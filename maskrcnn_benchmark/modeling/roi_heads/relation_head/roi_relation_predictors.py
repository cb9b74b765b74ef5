"""Relation predictors, registered in ``ROI_RELATION_PREDICTOR`` (MODEL.ROI_RELATION_HEAD.PREDICTOR).

Every member implements ``from_config(cfg, *, obj_dim, union_dim, statistics)`` and::

    predictor(roi_features, union_features, proposals, rel_pair_idxs, image_sizes, rel_labels=None)
        -> (obj_logits [N, C], obj_preds Int64[N], rel_logits [R, P], losses: dict)

with ``roi_features`` [N, obj_dim] (objects of all images, image-major), ``union_features``
[R, union_dim] (pairs of all images, image-major), ``proposals`` per-image dicts with "boxes"
[n_i, 4] and, depending on the mode, "labels" Int64[n_i] and "class_logits" [n_i, C],
``rel_pair_idxs`` per image Int64[r_i, 2] (subject, object) indices into that image's objects,
``image_sizes`` per image (height, width), and ``rel_labels`` per image Int64[r_i] (training).
``losses`` holds any extra training losses (e.g. ``loss_align``); it is empty in eval.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR

from .model_motifs import FrequencyBias, LSTMContext
from .utils_motifs import ObjectOrder, to_onehot

__all__ = ["FrequencyPredictor", "MotifPairContext", "MotifPredictor", "relation_mode"]


def relation_mode(cfg) -> str:
    """"predcls" | "sgcls" | "sgdet" from MODEL.ROI_RELATION_HEAD.USE_GT_BOX / USE_GT_OBJECT_LABEL."""
    head = cfg.MODEL.ROI_RELATION_HEAD
    if head.USE_GT_BOX:
        return "predcls" if head.USE_GT_OBJECT_LABEL else "sgcls"
    if head.USE_GT_OBJECT_LABEL:
        raise ValueError("MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL=True needs USE_GT_BOX=True "
                         "(PredCls); use both False for SGDet or USE_GT_BOX alone for SGCls")
    return "sgdet"


@dataclass
class MotifPairContext:
    """What :meth:`MotifPredictor.mirror_pair_features` needs to rebuild the pairs.

    Attributes:
        order: the objects' left-to-right layout for the edge bi-LSTM.
        pair_idxs: Int64[R, 2] (subject, object) indices into the batch's objects (image offsets
            added), in the order of the relation logits.
        pair_labels: Int64[R, 2] (subject class, object class) of each pair (the frequency-bias index).
        num_rels: pairs per image.
    """

    order: ObjectOrder
    pair_idxs: Tensor
    pair_labels: Tensor
    num_rels: List[int]


def _cat_field(proposals: Sequence[Dict[str, Tensor]], key: str) -> Optional[Tensor]:
    """The batch's ``key`` values concatenated, or None unless every image has them."""
    if not proposals or not all(key in p for p in proposals):
        return None
    return torch.cat([p[key] for p in proposals])


def _xavier(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


@ROI_RELATION_PREDICTOR.register("MotifPredictor")
class MotifPredictor(nn.Module):
    """Neural Motifs' relation predictor (SGB's MotifPredictor).

    edge context -> post_emb Linear(H, 2H) split into subject / object halves -> pair
    cat(subject, object) [R, 2H] -> post_cat Linear(2H, pooling_dim), times the union feature
    (through up_dim when its width differs) -> rel_compress Linear(pooling_dim, P), plus the
    frequency bias of the pair's labels.

    Args:
        context: the :class:`LSTMContext` (its mode decides PredCls / SGCls / SGDet).
        num_rel_classes: P (background included).
        pooling_dim: CONTEXT_POOLING_DIM.
        union_dim: width of the union features.
        pred_dist: FloatTensor[C, C, P] initial frequency bias (statistics' ``pred_dist``).
        use_bias: add the frequency bias (PREDICT_USE_BIAS).
        use_vision: multiply by the union features (PREDICT_USE_VISION).
        alignment: optional training-only module (``RelationAlignment``) adding ``loss_align``.
    """

    def __init__(self, *, context: LSTMContext, num_rel_classes: int, pooling_dim: int, union_dim: int,
                 pred_dist: Optional[Tensor] = None, use_bias: bool = True, use_vision: bool = True,
                 alignment: Optional[nn.Module] = None):
        super().__init__()
        self.context_layer = context
        self.num_obj_classes, self.num_rel_classes = context.num_obj_classes, num_rel_classes
        self.hidden_dim = hidden = context.hidden_dim
        self.use_bias, self.use_vision = use_bias, use_vision
        self.post_emb = nn.Linear(hidden, 2 * hidden)
        nn.init.normal_(self.post_emb.weight, std=10.0 * (1.0 / hidden) ** 0.5)
        nn.init.zeros_(self.post_emb.bias)
        self.post_cat = _xavier(nn.Linear(2 * hidden, pooling_dim))
        self.rel_compress = _xavier(nn.Linear(pooling_dim, num_rel_classes))
        self.up_dim = None
        if use_vision and union_dim != pooling_dim:
            self.up_dim = _xavier(nn.Linear(union_dim, pooling_dim))
        self.freq_bias = FrequencyBias(self.num_obj_classes, num_rel_classes, pred_dist) if use_bias else None
        self.alignment = alignment

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "MotifPredictor":
        """Build from MODEL.ROI_RELATION_HEAD.*; ``statistics`` as ``get_dataset_statistics``."""
        head = cfg.MODEL.ROI_RELATION_HEAD
        context = LSTMContext(
            num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, obj_dim=obj_dim, mode=relation_mode(cfg),
            embed_dim=head.EMBED_DIM, hidden_dim=head.CONTEXT_HIDDEN_DIM, pos_dim=head.POS_EMBED_DIM,
            dropout_rate=head.CONTEXT_DROPOUT_RATE, obj_layers=head.CONTEXT_OBJ_LAYER,
            edge_layers=head.CONTEXT_REL_LAYER, nms_thresh=head.LATER_NMS_PREDICTION_THRES)
        pred_dist = statistics.get("pred_dist") if statistics is not None else None
        alignment = None
        if head.ALIGN.ENABLED:
            try:
                from .alignment import RelationAlignment
            except ImportError as e:
                raise ImportError("MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED=True needs "
                                  "relation_head/alignment.py (RelationAlignment)") from e
            alignment = RelationAlignment.from_config(cfg, pair_dim=2 * head.CONTEXT_HIDDEN_DIM,
                                                      union_dim=union_dim, num_classes=head.NUM_CLASSES)
        return cls(context=context, num_rel_classes=head.NUM_CLASSES, pooling_dim=head.CONTEXT_POOLING_DIM,
                   union_dim=union_dim, pred_dist=pred_dist, use_bias=head.PREDICT_USE_BIAS,
                   use_vision=head.PREDICT_USE_VISION, alignment=alignment)

    def pair_representation(self, edge_ctx: Tensor, pair_idxs: Tensor) -> Tensor:
        """post_emb and pair concatenation: edge_ctx [N, H], pair_idxs [R, 2] -> [R, 2H]."""
        subj, obj = self.post_emb(edge_ctx).chunk(2, dim=-1)
        return torch.cat([subj[pair_idxs[:, 0]], obj[pair_idxs[:, 1]]], dim=-1)

    def tied_logits(self, pair_rep: Tensor, union: Tensor) -> Tensor:
        """post_cat(pair_rep) * up_dim(union) -> rel_compress: [R, P], without the frequency bias."""
        x = self.post_cat(pair_rep)
        if self.use_vision:
            x = x * (self.up_dim(union) if self.up_dim is not None else union)
        return self.rel_compress(x)

    def mirror_pair_features(self, inputs: Dict[str, Tensor],
                             context: MotifPairContext) -> Tuple[Tensor, Tensor]:
        """Rerun the edge bi-LSTM, lin_edge_h, post_emb and the pair concatenation (the same
        modules) on ``inputs["edge_input"]`` [N, D] -> (pair_rep [R, 2H], inputs["union"] [R, Du])."""
        edge_ctx = self.context_layer.edge_context(inputs["edge_input"], context.order)
        return self.pair_representation(edge_ctx, context.pair_idxs), inputs["union"]

    def forward(self, roi_features: Tensor, union_features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                rel_pair_idxs: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                rel_labels: Optional[Sequence[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """See the module docstring for shapes."""
        boxes = [p["boxes"] for p in proposals]
        ctx_out = self.context_layer(
            roi_features, boxes, image_sizes, obj_labels=_cat_field(proposals, "labels"),
            obj_logits=_cat_field(proposals, "class_logits"),
            boxes_for_nms=[p.get("boxes_per_cls", p["boxes"]) for p in proposals])

        offsets = [0, *accumulate(ctx_out.order.num_objs)]
        device = roi_features.device
        pair_idxs = torch.cat([p.to(device).long() + off for p, off in zip(rel_pair_idxs, offsets)]) \
            if rel_pair_idxs else torch.zeros(0, 2, dtype=torch.int64, device=device)
        pair_labels = ctx_out.obj_preds[pair_idxs]
        pair_rep = self.pair_representation(ctx_out.edge_ctx, pair_idxs)
        rel_logits = self.tied_logits(pair_rep, union_features).float()  # float32 from here on (AMP)
        if self.freq_bias is not None:
            rel_logits = rel_logits + self.freq_bias.index_with_labels(pair_labels)

        losses: Dict[str, Tensor] = {}
        if self.alignment is not None and self.training:
            ctx = MotifPairContext(order=ctx_out.order, pair_idxs=pair_idxs, pair_labels=pair_labels,
                                   num_rels=[int(p.shape[0]) for p in rel_pair_idxs])
            labels = torch.cat(list(rel_labels)) if rel_labels is not None else None
            inputs = {"edge_input": ctx_out.edge_input, "union": union_features}
            losses.update(self.alignment(self, inputs=inputs, context=ctx, target_logits=rel_logits,
                                         labels=labels))
        return ctx_out.obj_dists, ctx_out.obj_preds, rel_logits, losses


@ROI_RELATION_PREDICTOR.register("FrequencyPredictor")
class FrequencyPredictor(nn.Module):
    """The frequency-prior baseline (neural-motifs' "FREQ"): predicates from the class pair alone.

    Object labels are the ground truth (PredCls), the detector box head's argmax over foreground
    classes on the GT boxes (SGCls), or the detections' labels (SGDet); the relation logits are the frequency bias
    initialised from the training statistics. Evaluated as it is built, without training; set
    PREDICT_USE_VISION False so the head skips the union features it does not look at.
    """

    def __init__(self, *, num_obj_classes: int, num_rel_classes: int, mode: str,
                 pred_dist: Optional[Tensor] = None):
        super().__init__()
        self.num_obj_classes, self.mode = num_obj_classes, mode
        self.freq_bias = FrequencyBias(num_obj_classes, num_rel_classes, pred_dist)

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "FrequencyPredictor":
        pred_dist = statistics.get("pred_dist") if statistics is not None else None
        return cls(num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
                   num_rel_classes=cfg.MODEL.ROI_RELATION_HEAD.NUM_CLASSES, mode=relation_mode(cfg),
                   pred_dist=pred_dist)

    def forward(self, roi_features: Tensor, union_features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                rel_pair_idxs: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                rel_labels: Optional[Sequence[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        logits = _cat_field(proposals, "class_logits")
        labels = _cat_field(proposals, "labels") if self.mode != "sgcls" else None
        if labels is None:
            labels = logits[:, 1:].argmax(1) + 1
        if logits is None:
            logits = to_onehot(labels, self.num_obj_classes)
        offsets = [0, *accumulate(int(p["boxes"].shape[0]) for p in proposals)]
        pair_idxs = torch.cat([p.to(labels.device).long() + off for p, off in zip(rel_pair_idxs, offsets)]) \
            if rel_pair_idxs else torch.zeros(0, 2, dtype=torch.int64, device=labels.device)
        return logits, labels, self.freq_bias.index_with_labels(labels[pair_idxs]), {}
