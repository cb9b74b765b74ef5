"""The pair / union / frequency-bias head shared by the Motifs, VCTree and Transformer predictors.

SGB writes this head out in each predictor; here it is written once. From per-object edge
contexts [N, H]: ``post_emb`` Linear(H, 2H) (ReLU after it for VCTree) split into subject /
object halves; the pair representation cat(subject, object) [R, 2H]; ``post_cat``
Linear(2H, pooling_dim), times the union feature (through ``up_dim`` when its width differs);
``rel_compress`` Linear(pooling_dim, P); plus ``ctx_compress`` Linear(2H, P) of the pair
representation (Transformer only) and the frequency bias of the pair's labels.
"""
from __future__ import annotations

from itertools import accumulate
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from .model_motifs import FrequencyBias

__all__ = ["PairHeadPredictor", "batch_pair_idxs", "build_alignment", "cat_field", "xavier"]


def xavier(layer: nn.Linear) -> nn.Linear:
    """SGB's ``layer_init(..., xavier=True)``: xavier-normal weight, zero bias."""
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def cat_field(proposals: Sequence[Dict[str, Tensor]], key: str) -> Optional[Tensor]:
    """The batch's ``key`` values concatenated, or None unless every image has them."""
    if not proposals or not all(key in p for p in proposals):
        return None
    return torch.cat([p[key] for p in proposals])


def batch_pair_idxs(rel_pair_idxs: Sequence[Tensor], num_objs: Sequence[int], device) -> Tensor:
    """Per-image (subject, object) indices -> Int64[R, 2] indices into the batch's objects."""
    if not rel_pair_idxs:
        return torch.zeros(0, 2, dtype=torch.int64, device=device)
    offsets = [0, *accumulate(num_objs)]
    return torch.cat([p.to(device).long() + off for p, off in zip(rel_pair_idxs, offsets)])


def build_alignment(cfg, *, pair_dim: int, union_dim: int) -> Optional[nn.Module]:
    """The training-only ``RelationAlignment`` when MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED, else None."""
    head = cfg.MODEL.ROI_RELATION_HEAD
    if not head.ALIGN.ENABLED:
        return None
    from .alignment import RelationAlignment
    return RelationAlignment.from_config(cfg, pair_dim=pair_dim, union_dim=union_dim,
                                         num_classes=head.NUM_CLASSES)


class PairHeadPredictor(nn.Module):
    """Base of the predictors whose relation logits come from pairs of object edge contexts.

    Subclasses implement ``forward`` with :meth:`relation_logits`; :meth:`tied_logits` is also
    their :class:`~.alignment.AlignablePredictor` ``tied_logits``.

    Args:
        context_layer: the predictor's context model (built first: SGB's parameter order).
        num_obj_classes / num_rel_classes: C and P (background included).
        hidden_dim: width H of the edge context.
        pooling_dim: CONTEXT_POOLING_DIM.
        union_dim: width of the union features.
        pred_dist: FloatTensor[C, C, P] initial frequency bias (statistics' ``pred_dist``).
        use_bias: add the frequency bias (PREDICT_USE_BIAS).
        use_vision: multiply by the union features (PREDICT_USE_VISION).
        emb_relu: ReLU after ``post_emb`` (VCTree).
        use_ctx_compress: add ``ctx_compress`` of the pair representation (Transformer).
        alignment: optional training-only module (``RelationAlignment``) adding ``loss_align``.
    """

    def __init__(self, *, context_layer: nn.Module, num_obj_classes: int, num_rel_classes: int, hidden_dim: int, pooling_dim: int,
                 union_dim: int, pred_dist: Optional[Tensor] = None, use_bias: bool = True,
                 use_vision: bool = True, emb_relu: bool = False, use_ctx_compress: bool = False,
                 alignment: Optional[nn.Module] = None):
        super().__init__()
        self.context_layer = context_layer
        self.num_obj_classes, self.num_rel_classes = num_obj_classes, num_rel_classes
        self.hidden_dim = hidden_dim
        self.use_bias, self.use_vision, self.emb_relu = use_bias, use_vision, emb_relu
        self.post_emb = nn.Linear(hidden_dim, 2 * hidden_dim)
        nn.init.normal_(self.post_emb.weight, std=10.0 * (1.0 / hidden_dim) ** 0.5)
        nn.init.zeros_(self.post_emb.bias)
        self.post_cat = xavier(nn.Linear(2 * hidden_dim, pooling_dim))
        self.rel_compress = xavier(nn.Linear(pooling_dim, num_rel_classes))
        self.ctx_compress = xavier(nn.Linear(2 * hidden_dim, num_rel_classes)) if use_ctx_compress else None
        self.up_dim = None
        if use_vision and union_dim != pooling_dim:
            self.up_dim = xavier(nn.Linear(union_dim, pooling_dim))
        self.freq_bias = FrequencyBias(num_obj_classes, num_rel_classes, pred_dist) if use_bias else None
        self.alignment = alignment

    @staticmethod
    def head_args(cfg, union_dim: int, statistics: Optional[Dict[str, Tensor]]) -> dict:
        """The head's keyword arguments from MODEL.ROI_RELATION_HEAD.* (config read at the edge)."""
        head = cfg.MODEL.ROI_RELATION_HEAD
        return dict(num_obj_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, num_rel_classes=head.NUM_CLASSES,
                    hidden_dim=head.CONTEXT_HIDDEN_DIM, pooling_dim=head.CONTEXT_POOLING_DIM,
                    union_dim=union_dim, pred_dist=statistics.get("pred_dist") if statistics else None,
                    use_bias=head.PREDICT_USE_BIAS, use_vision=head.PREDICT_USE_VISION,
                    alignment=build_alignment(cfg, pair_dim=2 * head.CONTEXT_HIDDEN_DIM, union_dim=union_dim))

    def pair_representation(self, edge_ctx: Tensor, pair_idxs: Tensor) -> Tensor:
        """post_emb and pair concatenation: edge_ctx [N, H], pair_idxs [R, 2] -> [R, 2H]."""
        emb = self.post_emb(edge_ctx)
        if self.emb_relu:
            emb = torch.relu(emb)
        subj, obj = emb.chunk(2, dim=-1)
        return torch.cat([subj[pair_idxs[:, 0]], obj[pair_idxs[:, 1]]], dim=-1)

    def tied_logits(self, pair_rep: Tensor, union: Tensor) -> Tensor:
        """post_cat(pair_rep) * up_dim(union) -> rel_compress (+ ctx_compress(pair_rep)): [R, P],
        without the frequency bias."""
        x = self.post_cat(pair_rep)
        if self.use_vision:
            x = x * (self.up_dim(union) if self.up_dim is not None else union)
        logits = self.rel_compress(x)
        if self.ctx_compress is not None:
            logits = logits + self.ctx_compress(pair_rep)
        return logits

    def relation_logits(self, edge_ctx: Tensor, pair_idxs: Tensor, pair_labels: Tensor, union: Tensor) -> Tensor:
        """The original branch: the head on ``edge_ctx`` plus the frequency bias -> [R, P]."""
        logits = self.tied_logits(self.pair_representation(edge_ctx, pair_idxs), union).float()  # fp32 (AMP)
        if self.freq_bias is not None:
            logits = logits + self.freq_bias.index_with_labels(pair_labels)
        return logits

    def alignment_losses(self, *, inputs: Dict[str, Tensor], context, target_logits: Tensor,
                         rel_labels: Optional[Sequence[Tensor]],
                         fixed_inputs: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """``{"loss_align"}`` in training when the alignment is on, else ``{}``."""
        if self.alignment is None or not self.training:
            return {}
        labels = torch.cat(list(rel_labels)) if rel_labels is not None else None
        kw = {"fixed_inputs": fixed_inputs} if fixed_inputs else {}
        return self.alignment(self, inputs=inputs, context=context, target_logits=target_logits,
                              labels=labels, **kw)
