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

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR

from .alignment import dropout_disabled
from .model_motifs import FrequencyBias, LSTMContext
from .model_msg_passing import IMPContext
from .model_transformer import TransformerContext
from .model_vctree import VCTreeLSTMContext, binary_loss
from .pair_head import PairHeadPredictor, batch_pair_idxs, build_alignment, cat_field, xavier
from .utils_motifs import ObjectOrder, obj_prediction_nms, to_onehot
from .utils_vctree import BinaryForest
from .word_vectors import class_embedding_vectors

__all__ = ["FrequencyPredictor", "MotifPairContext", "MotifPredictor", "TransformerPairContext",
           "TransformerPredictor", "IMPPredictor", "VCTreePairContext",
           "VCTreePredictor", "late_labels", "relation_mode"]


def relation_mode(cfg) -> str:
    """"predcls" | "sgcls" | "sgdet" from MODEL.ROI_RELATION_HEAD.USE_GT_BOX / USE_GT_OBJECT_LABEL."""
    head = cfg.MODEL.ROI_RELATION_HEAD
    if head.USE_GT_BOX:
        return "predcls" if head.USE_GT_OBJECT_LABEL else "sgcls"
    if head.USE_GT_OBJECT_LABEL:
        raise ValueError("MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL=True needs USE_GT_BOX=True "
                         "(PredCls); use both False for SGDet or USE_GT_BOX alone for SGCls")
    return "sgdet"


def late_labels(obj_dists: Tensor, proposals: Sequence[Dict[str, Tensor]], nms: bool, nms_thresh: float) -> Tensor:
    """Object labels from refined logits [N, C]: SGB's late per-class NMS (SGDet test, on
    ``boxes_per_cls`` when present) or the argmax over foreground classes."""
    if not nms:
        return obj_dists[:, 1:].argmax(1) + 1
    num_objs = [int(p["boxes"].shape[0]) for p in proposals]
    return torch.cat([obj_prediction_nms(p.get("boxes_per_cls", p["boxes"]), d, nms_thresh)
                      for p, d in zip(proposals, obj_dists.split(num_objs))])


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


@ROI_RELATION_PREDICTOR.register("MotifPredictor")
class MotifPredictor(PairHeadPredictor):
    """Neural Motifs' relation predictor (SGB's MotifPredictor): the :class:`LSTMContext` edge
    context, then the shared pair / union / frequency-bias head (:class:`PairHeadPredictor`).

    Args:
        context: the :class:`LSTMContext` (its mode decides PredCls / SGCls / SGDet).
        num_rel_classes, pooling_dim, union_dim, pred_dist, use_bias, use_vision, alignment:
            as :class:`PairHeadPredictor` (C and H come from the context).
    """

    # what only SGCls / SGDet models have (their object classifier): engine/export.py reads it
    OBJECT_DECODER_PREFIXES = ("context_layer.decoder_rnn.",)

    def __init__(self, *, context: LSTMContext, num_rel_classes: int, pooling_dim: int, union_dim: int,
                 pred_dist: Optional[Tensor] = None, use_bias: bool = True, use_vision: bool = True,
                 alignment: Optional[nn.Module] = None):
        super().__init__(context_layer=context, num_obj_classes=context.num_obj_classes,
                         num_rel_classes=num_rel_classes, hidden_dim=context.hidden_dim,
                         pooling_dim=pooling_dim, union_dim=union_dim, pred_dist=pred_dist,
                         use_bias=use_bias, use_vision=use_vision, alignment=alignment)

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "MotifPredictor":
        """Build from MODEL.ROI_RELATION_HEAD.*; ``statistics`` as ``get_dataset_statistics``."""
        head = cfg.MODEL.ROI_RELATION_HEAD
        embed = (None, None)
        names = statistics.get("obj_classes") if statistics is not None else None
        if names is not None and len(names) == cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES:  # training builds
            embed = class_embedding_vectors(cfg.GLOVE_DIR, names, head.EMBED_DIM) or embed
        context = LSTMContext(
            obj_embed_vecs=embed[0], decoder_embed_vecs=embed[1],
            num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, obj_dim=obj_dim, mode=relation_mode(cfg),
            embed_dim=head.EMBED_DIM, hidden_dim=head.CONTEXT_HIDDEN_DIM, pos_dim=head.POS_EMBED_DIM,
            dropout_rate=head.CONTEXT_DROPOUT_RATE, obj_layers=head.CONTEXT_OBJ_LAYER,
            edge_layers=head.CONTEXT_REL_LAYER, nms_thresh=cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES)
        args = cls.head_args(cfg, union_dim, statistics)
        return cls(context=context, num_rel_classes=args["num_rel_classes"], pooling_dim=args["pooling_dim"],
                   union_dim=union_dim, pred_dist=args["pred_dist"], use_bias=args["use_bias"],
                   use_vision=args["use_vision"], alignment=args["alignment"])

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
            roi_features, boxes, image_sizes, obj_labels=cat_field(proposals, "labels"),
            obj_logits=cat_field(proposals, "class_logits"),
            boxes_for_nms=[p.get("boxes_per_cls", p["boxes"]) for p in proposals])
        pair_idxs = batch_pair_idxs(rel_pair_idxs, ctx_out.order.num_objs, roi_features.device)
        pair_labels = ctx_out.obj_preds[pair_idxs]
        rel_logits = self.relation_logits(ctx_out.edge_ctx, pair_idxs, pair_labels, union_features)
        ctx = MotifPairContext(order=ctx_out.order, pair_idxs=pair_idxs, pair_labels=pair_labels,
                               num_rels=[int(p.shape[0]) for p in rel_pair_idxs])
        losses = self.alignment_losses(inputs={"edge_input": ctx_out.edge_input, "union": union_features},
                                       context=ctx, target_logits=rel_logits, rel_labels=rel_labels)
        return ctx_out.obj_dists, ctx_out.obj_preds, rel_logits, losses


@dataclass
class TransformerPairContext:
    """What :meth:`TransformerPredictor.mirror_pair_features` needs: objects per image, the pairs
    (batch-global indices, labels), the attention masking probability and the dropout switch."""

    num_objs: List[int]
    pair_idxs: Tensor
    pair_labels: Tensor
    attn_mask_prob: float
    dropout_free: bool


@ROI_RELATION_PREDICTOR.register("TransformerPredictor")
class TransformerPredictor(PairHeadPredictor):
    """SGB's TransformerPredictor: the :class:`TransformerContext` encoders, then the shared
    pair / union / frequency-bias head plus ``ctx_compress`` of the pair representation.

    Alignment (the paper's SGTR recipe): the mirror reruns lin_edge and the edge encoder on the
    unmasked edge input with every attention logit of every block set to -inf with probability
    ALIGN.MASK_PROB (fresh per block and pass, never a whole row), plus the masked union
    features. With ALIGN.DROPOUT_FREE the mirror runs without dropout and the target comes from
    a dropout-free pass of the whole original branch (no gradient).
    """

    OBJECT_DECODER_PREFIXES = ("context_layer.out_obj.",)

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "TransformerPredictor":
        head, t = cfg.MODEL.ROI_RELATION_HEAD, cfg.MODEL.ROI_RELATION_HEAD.TRANSFORMER
        context = TransformerContext(
            num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, obj_dim=obj_dim, mode=relation_mode(cfg),
            embed_dim=head.EMBED_DIM, hidden_dim=head.CONTEXT_HIDDEN_DIM, pos_dim=head.POS_EMBED_DIM,
            dropout_rate=t.DROPOUT_RATE, obj_layers=t.OBJ_LAYER, edge_layers=t.REL_LAYER,
            num_head=t.NUM_HEAD, inner_dim=t.INNER_DIM, k_dim=t.KEY_DIM, v_dim=t.VAL_DIM,
            nms_thresh=cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES)
        return cls(context_layer=context, use_ctx_compress=True, **cls.head_args(cfg, union_dim, statistics))

    def mirror_pair_features(self, inputs: Dict[str, Tensor],
                             context: TransformerPairContext) -> Tuple[Tensor, Tensor]:
        """lin_edge, the attention-masked edge encoder, post_emb and the pairs on
        ``inputs["edge_input"]`` -> (pair_rep [R, 2H], inputs["union"])."""
        ctx = self.context_layer
        with dropout_disabled(ctx) if context.dropout_free else nullcontext():
            edge_ctx = ctx.edge_context(inputs["edge_input"], context.num_objs, context.attn_mask_prob)
            return self.pair_representation(edge_ctx, context.pair_idxs), inputs["union"]

    def forward(self, roi_features: Tensor, union_features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                rel_pair_idxs: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                rel_labels: Optional[Sequence[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        args = (roi_features, [p["boxes"] for p in proposals], image_sizes, cat_field(proposals, "labels"),
                cat_field(proposals, "class_logits"), [p.get("boxes_per_cls", p["boxes"]) for p in proposals])
        out = self.context_layer(*args)
        pair_idxs = batch_pair_idxs(rel_pair_idxs, out.num_objs, roi_features.device)
        rel_logits = self.relation_logits(out.edge_ctx, pair_idxs, out.obj_preds[pair_idxs], union_features)
        losses: Dict[str, Tensor] = {}
        if self.alignment is not None and self.training:
            free, target, source = self.alignment.dropout_free, rel_logits, out
            if free:  # the target: the original branch again, without dropout
                with torch.no_grad(), dropout_disabled(self.context_layer):
                    source = self.context_layer(*args)
                    target = self.relation_logits(source.edge_ctx, pair_idxs, source.obj_preds[pair_idxs],
                                                  union_features)
            ctx = TransformerPairContext(out.num_objs, pair_idxs, source.obj_preds[pair_idxs],
                                         self.alignment.mask_prob, free)
            losses = self.alignment_losses(inputs={"union": union_features}, context=ctx, target_logits=target,
                                           rel_labels=rel_labels, fixed_inputs={"edge_input": source.edge_input})
        return out.obj_dists, out.obj_preds, rel_logits, losses


@ROI_RELATION_PREDICTOR.register("IMPPredictor")
class IMPPredictor(nn.Module):
    """SGB's IMPPredictor: union features through ``up_dim`` to CONTEXT_POOLING_DIM (when the
    widths differ), :class:`IMPContext`, predicate logits ``rel_fc`` of the final edge states.
    As in SGB there is no frequency bias (PREDICT_USE_BIAS is not read) and no pair head.

    Alignment: the mirror reruns the message passing (the same GRUs and gates) from the masked
    initial object and edge states; its pair representation is the final edge state [R, H],
    beside the masked union features; ``tied_logits`` is ``rel_fc``.

    Args:
        context: the :class:`IMPContext`; union_dim / pooling_dim: union width in / the context's.
        nms_thresh: LATER_NMS_PREDICTION_THRES (SGDet test: SGB's late NMS of the object labels).
        alignment: optional training-only ``RelationAlignment``.
    """

    OBJECT_DECODER_PREFIXES = ("context_layer.obj_fc.",)

    def __init__(self, *, context: IMPContext, union_dim: int, pooling_dim: int, nms_thresh: float = 0.3,
                 alignment: Optional[nn.Module] = None):
        super().__init__()
        self.context_layer = context
        self.up_dim = xavier(nn.Linear(union_dim, pooling_dim)) if union_dim != pooling_dim else None
        self.nms_thresh, self.alignment = nms_thresh, alignment

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "IMPPredictor":
        head = cfg.MODEL.ROI_RELATION_HEAD
        context = IMPContext(num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, num_rel_classes=head.NUM_CLASSES,
                             obj_dim=obj_dim, union_dim=head.CONTEXT_POOLING_DIM,
                             hidden_dim=head.CONTEXT_HIDDEN_DIM, mode=relation_mode(cfg))
        return cls(context=context, union_dim=union_dim, pooling_dim=head.CONTEXT_POOLING_DIM,
                   nms_thresh=cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES,
                   alignment=build_alignment(cfg, pair_dim=head.CONTEXT_HIDDEN_DIM, union_dim=union_dim))

    def tied_logits(self, pair_rep: Tensor, union: Tensor) -> Tensor:
        return self.context_layer.rel_fc(pair_rep)

    def mirror_pair_features(self, inputs: Dict[str, Tensor], context: Tensor) -> Tuple[Tensor, Tensor]:
        """Message passing from ``inputs["obj_state"]`` [N, H] / ``["edge_state"]`` [R, H]
        (``context``: the batch-global pairs [R, 2]) -> (final edge states, inputs["union"])."""
        _, edge = self.context_layer.message_passing(inputs["obj_state"], inputs["edge_state"], context)
        return edge, inputs["union"]

    def forward(self, roi_features: Tensor, union_features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                rel_pair_idxs: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                rel_labels: Optional[Sequence[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        ctx = self.context_layer
        num_objs = [int(p["boxes"].shape[0]) for p in proposals]
        pair_idxs = batch_pair_idxs(rel_pair_idxs, num_objs, roi_features.device)
        union = self.up_dim(union_features) if self.up_dim is not None else union_features
        obj_state, edge_state = ctx.initial_states(roi_features, union)
        vert, edge = ctx.message_passing(obj_state, edge_state, pair_idxs)
        rel_logits = ctx.rel_fc(edge)
        if ctx.mode == "predcls":
            obj_preds = cat_field(proposals, "labels").long()
            obj_dists = to_onehot(obj_preds, ctx.num_obj_classes)
        else:
            obj_dists = ctx.obj_fc(vert)
            obj_preds = late_labels(obj_dists, proposals, ctx.mode == "sgdet" and not self.training,
                                    self.nms_thresh)
        losses: Dict[str, Tensor] = {}
        if self.alignment is not None and self.training:
            labels = torch.cat(list(rel_labels)) if rel_labels is not None else None
            inputs = {"obj_state": obj_state, "edge_state": edge_state, "union": union_features}
            losses = self.alignment(self, inputs=inputs, context=pair_idxs, target_logits=rel_logits, labels=labels)
        return obj_dists, obj_preds, rel_logits, losses


@dataclass
class VCTreePairContext:
    """What :meth:`VCTreePredictor.mirror_pair_features` needs: the original branch's trees
    (reused, not rebuilt) and the pairs (batch-global indices, labels)."""

    forest: BinaryForest
    pair_idxs: Tensor
    pair_labels: Tensor


@ROI_RELATION_PREDICTOR.register("VCTreePredictor")
class VCTreePredictor(PairHeadPredictor):
    """SGB's VCTreePredictor: the :class:`VCTreeLSTMContext`, then the shared pair / union /
    frequency-bias head with a ReLU after ``post_emb`` (SGB names its classifier ctx_compress;
    here it is the head's rel_compress). Training adds SGB's ``binary_loss``: binary
    cross-entropy of each image's score matrix against the symmetric matrix of its related
    pairs (here the sampled foreground pairs; SGB: every ground-truth pair, the same set unless
    an image has more relations than the foreground budget), averaged over images.

    Alignment: the mirror reruns the edge tree-LSTM on the original branch's trees with masked
    input rows, then post_emb and the pairs, beside the masked union features.
    """

    OBJECT_DECODER_PREFIXES = ("context_layer.decoder_rnn.",)

    @classmethod
    def from_config(cls, cfg, *, obj_dim: int, union_dim: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "VCTreePredictor":
        head = cfg.MODEL.ROI_RELATION_HEAD
        context = VCTreeLSTMContext(
            num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, obj_dim=obj_dim, mode=relation_mode(cfg),
            embed_dim=head.EMBED_DIM, hidden_dim=head.CONTEXT_HIDDEN_DIM, pos_dim=head.POS_EMBED_DIM,
            dropout_rate=head.CONTEXT_DROPOUT_RATE, obj_layers=head.CONTEXT_OBJ_LAYER,
            edge_layers=head.CONTEXT_REL_LAYER, pred_dist=statistics.get("pred_dist") if statistics else None)
        pred = cls(context_layer=context, emb_relu=True, **cls.head_args(cfg, union_dim, statistics))
        pred.nms_thresh = cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES
        return pred

    def mirror_pair_features(self, inputs: Dict[str, Tensor],
                             context: VCTreePairContext) -> Tuple[Tensor, Tensor]:
        """The edge tree-LSTM on ``inputs["edge_input"]`` over ``context.forest``, post_emb and
        the pairs -> (pair_rep [R, 2H], inputs["union"])."""
        edge_ctx = self.context_layer.edge_context(inputs["edge_input"], context.forest)
        return self.pair_representation(edge_ctx, context.pair_idxs), inputs["union"]

    def forward(self, roi_features: Tensor, union_features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                rel_pair_idxs: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                rel_labels: Optional[Sequence[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        out = self.context_layer(roi_features, [p["boxes"] for p in proposals], image_sizes,
                                 cat_field(proposals, "labels"), cat_field(proposals, "class_logits"))
        num_objs = [int(p["boxes"].shape[0]) for p in proposals]
        pair_idxs = batch_pair_idxs(rel_pair_idxs, num_objs, roi_features.device)
        pair_labels = out.obj_preds[pair_idxs]
        rel_logits = self.relation_logits(out.edge_ctx, pair_idxs, pair_labels, union_features)
        obj_preds = out.obj_preds
        if self.context_layer.mode == "sgdet" and not self.training:
            obj_preds = late_labels(out.obj_dists, proposals, True, self.nms_thresh)
        losses: Dict[str, Tensor] = {}
        if self.training:
            losses["binary_loss"] = binary_loss(out.binary_logits, rel_pair_idxs, rel_labels)
            ctx = VCTreePairContext(out.forest, pair_idxs, pair_labels)
            losses.update(self.alignment_losses(inputs={"edge_input": out.edge_input, "union": union_features},
                                                context=ctx, target_logits=rel_logits, rel_labels=rel_labels))
        return out.obj_dists, obj_preds, rel_logits, losses


@ROI_RELATION_PREDICTOR.register("FrequencyPredictor")
class FrequencyPredictor(nn.Module):
    """The frequency-prior baseline (neural-motifs' "FREQ"): predicates from the class pair alone.

    Object labels are the ground truth (PredCls), the detector box head's argmax over foreground
    classes on the GT boxes (SGCls), or the detections' labels (SGDet); the relation logits are the frequency bias
    initialised from the training statistics. Evaluated as it is built, without training; set
    PREDICT_USE_VISION False so the head skips the union features it does not look at.
    """

    OBJECT_DECODER_PREFIXES = ()  # SGCls labels come from the detector

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
        logits = cat_field(proposals, "class_logits")
        labels = cat_field(proposals, "labels") if self.mode != "sgcls" else None
        if labels is None:
            labels = logits[:, 1:].argmax(1) + 1
        if logits is None:
            logits = to_onehot(labels, self.num_obj_classes)
        pair_idxs = batch_pair_idxs(rel_pair_idxs, [int(p["boxes"].shape[0]) for p in proposals], labels.device)
        return logits, labels, self.freq_bias.index_with_labels(labels[pair_idxs]), {}
