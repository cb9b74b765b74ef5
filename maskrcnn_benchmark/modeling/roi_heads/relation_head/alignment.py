"""Self-supervised relation alignment (Xu, Liao & Sigal, Sec. 3.1 and 3.3): a training-only
regulariser for any relation predictor.

A *mirrored* relation predictor reruns the predictor's own message-passing layers (the very
same parameters) on randomly masked copies of its inputs; an *untied* head turns the result
into predicate logits, and a KL loss aligns them with the original branch's predictions,
which act as a fixed target. The gradient is stopped at the inputs, so the loss reaches only
the shared message-passing layers and the untied head. In eval mode nothing here runs.

How a predictor plugs it in (all of it, MotifPredictor being the first user)::

    rel_logits = ...  # the original branch, priors (frequency bias) included
    if self.alignment is not None and self.training:
        losses.update(self.alignment(self, inputs={"edge_input": x, "union": u},
                                     context=ctx, target_logits=rel_logits, labels=rel_labels))

and implements the two methods of :class:`AlignablePredictor`. ``inputs`` names the tensors to
mask (rows are objects or relations); ``fixed_inputs`` (optional) the ones the mirror reads
unmasked (detached too); ``context`` is opaque here and handed back unchanged.

What each predictor masks (the paper, Sec. 3.2): Motifs and VCTree, the edge-context
(bi-LSTM / tree-LSTM) input rows and the union features; IMP, the initial object and edge
states and the union features; Transformer, the union features and, inside its edge-context
blocks, the attention logits (:func:`random_attention_mask`, a fresh draw per block and pass).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Protocol, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ....config.loader import ConfigError

__all__ = ["ALIGNMENT_STATE_PREFIX", "KL_REDUCTIONS", "AlignablePredictor", "RelationAlignment", "dropout_disabled",
           "inference_config", "random_attention_mask", "random_mask"]

# Where the untied head's weights sit in a scene-graph model's state dict: the inference model
# (built by ``inference_config``) has no such keys, so loaders skip them.
ALIGNMENT_STATE_PREFIX = "relation_head.predictor.alignment."
KL_REDUCTIONS = ("batchmean", "mean")  # MODEL.ROI_RELATION_HEAD.ALIGN.KL_REDUCTION


class AlignablePredictor(Protocol):
    """What a relation predictor implements to be aligned."""

    def mirror_pair_features(self, inputs: Dict[str, Tensor], context: Any) -> Tuple[Tensor, Tensor]:
        """Rerun the shared layers on masked ``inputs`` -> (pair_rep [R, Dp], union [R, Du])."""

    def tied_logits(self, pair_rep: Tensor, union: Tensor) -> Tensor:
        """The predictor's own projection head without priors -> logits [R, P] (HEAD="tied")."""


def random_mask(x: Tensor, p: float, mode: str = "row") -> Tensor:
    """Zero each row (``mode="row"``) or each scalar (``"element"``) of ``x`` with probability p.

    No rescaling of the kept entries (the paper's Eq. 1).
    """
    if p <= 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else x.shape
    keep = torch.rand(shape, device=x.device) >= p
    return x * keep.to(x.dtype)


def random_attention_mask(shape: Tuple[int, ...], p: float, device=None,
                          invalid: Optional[Tensor] = None) -> Optional[Tensor]:
    """Which attention logits to set to -inf: each element with probability p, never a whole row.

    Args:
        shape: (..., queries, keys) of the attention matrix.
        invalid: optional bool mask (broadcastable to ``shape``) of keys that are already out
            (padding); a row keeps at least one key outside it.
    Returns:
        Bool[shape] (True = masked) or None when p <= 0. Where the draw would mask every
        remaining key of a row, one of them, drawn uniformly, is kept.
    """
    if p <= 0:
        return None
    draw = torch.rand(shape, device=device)
    mask = draw < p
    allowed = torch.ones(shape, dtype=torch.bool, device=device)
    if invalid is not None:
        allowed = allowed & ~invalid.expand(shape)
    full = ~(allowed & ~mask).any(-1, keepdim=True)  # rows the draw would empty
    rescue = torch.zeros_like(mask)
    rescue.scatter_(-1, torch.where(allowed, draw, -1.0).argmax(-1, keepdim=True), True)
    return mask & ~(full & rescue)


@contextmanager
def dropout_disabled(module: nn.Module) -> Iterator[None]:
    """Run ``module`` with its dropout layers in eval mode (everything else untouched)."""
    drops = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for m in drops:
        m.eval()
    try:
        yield
    finally:
        for m in drops:
            m.train()


class RelationAlignment(nn.Module):
    """Masking, the untied head and the alignment loss, in one module.

    Args:
        pair_dim: width of the predictor's pair representation (Dp).
        union_dim: width of the union / relation feature (Du).
        num_classes: predicate classes P, background included.
        mask_prob: probability p of zeroing an input row (or element).
        loss_weight: lambda of the total loss L_original + lambda * L_align.
        loss: "kl" (self-supervised, SSA) or "ce" (supervised alignment to the labels, SA).
        head: "untied_mlp" (a 3-layer MLP of its own) or "tied" (the predictor's head).
        mask: "row" (whole vectors) or "element" (each scalar).
        kl_direction: "target_original" = KL(P_original || P_mirror) with the original fixed,
            i.e. ``F.kl_div(log P_mirror, P_original)``; "reverse" = KL(P_mirror || P_original).
        kl_reduction: "batchmean" = the KL of each pair (summed over the P predicate classes),
            averaged over pairs; "mean" (``nn.KLDivLoss``'s default) also divides by P, i.e. an
            effective loss_weight of lambda / P. The paper gives lambda but not the reduction.
        hidden_dim: width of the MLP's two hidden layers.
        dropout_free: the paper's SGTR recipe: the predictor runs the mirror without dropout and
            takes the alignment target from a dropout-free pass of its original branch
            (ALIGN.DROPOUT_FREE; read by predictors with dropout in their mirrored layers, the
            Transformer).
    """

    def __init__(self, *, pair_dim: int, union_dim: int, num_classes: int, mask_prob: float = 0.1,
                 loss_weight: float = 10.0, loss: str = "kl", head: str = "untied_mlp",
                 mask: str = "row", kl_direction: str = "target_original",
                 kl_reduction: str = "batchmean", hidden_dim: int = 1024, dropout_free: bool = False):
        super().__init__()
        choices = {"loss": (loss, ("kl", "ce")), "head": (head, ("untied_mlp", "tied")),
                   "mask": (mask, ("row", "element")),
                   "kl_direction": (kl_direction, ("target_original", "reverse")),
                   "kl_reduction": (kl_reduction, KL_REDUCTIONS)}
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"MODEL.ROI_RELATION_HEAD.ALIGN.{name.upper()} must be one of "
                                 f"{allowed}, got {value!r}")
        if not 0.0 <= mask_prob < 1.0:
            raise ConfigError(f"MODEL.ROI_RELATION_HEAD.ALIGN.MASK_PROB must be in [0, 1), got {mask_prob}")
        self.mask_prob, self.loss_weight = mask_prob, loss_weight
        self.loss, self.head, self.mask, self.kl_direction = loss, head, mask, kl_direction
        self.kl_reduction = kl_reduction
        self.dropout_free = dropout_free
        self.mlp = None
        if head == "untied_mlp":
            self.mlp = nn.Sequential(
                nn.Linear(pair_dim + union_dim, hidden_dim), nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, num_classes))

    @classmethod
    def from_config(cls, cfg, *, pair_dim: int, union_dim: int, num_classes: int) -> "RelationAlignment":
        a = cfg.MODEL.ROI_RELATION_HEAD.ALIGN
        return cls(pair_dim=pair_dim, union_dim=union_dim, num_classes=num_classes,
                   mask_prob=a.MASK_PROB, loss_weight=a.LOSS_WEIGHT, loss=a.LOSS, head=a.HEAD,
                   mask=a.MASK, kl_direction=a.KL_DIRECTION, kl_reduction=a.KL_REDUCTION,
                   hidden_dim=a.MLP_HIDDEN_DIM or pair_dim, dropout_free=a.DROPOUT_FREE)

    def mirror_logits(self, predictor: AlignablePredictor, inputs: Dict[str, Tensor],
                      context: Any, fixed_inputs: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Predicate logits [R, P] of the mirrored branch on detached, masked ``inputs`` (and
        detached, unmasked ``fixed_inputs``)."""
        masked = {k: v.detach() for k, v in (fixed_inputs or {}).items()}
        masked.update({k: random_mask(v.detach(), self.mask_prob, self.mask) for k, v in inputs.items()})
        pair_rep, union = predictor.mirror_pair_features(masked, context)
        if self.mlp is not None:
            return self.mlp(torch.cat([pair_rep, union], dim=-1))
        return predictor.tied_logits(pair_rep, union)

    def forward(self, predictor: AlignablePredictor, *, inputs: Dict[str, Tensor], context: Any,
                target_logits: Tensor, labels: Tensor | None = None,
                fixed_inputs: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """-> {"loss_align": loss_weight * L_align}; ``target_logits`` [R, P] is never updated."""
        logits = self.mirror_logits(predictor, inputs, context, fixed_inputs)
        if logits.shape[0] == 0:
            return {"loss_align": logits.float().sum() * 0.0}
        log_p_mirror = F.log_softmax(logits.float(), dim=-1)
        if self.loss == "ce":
            if labels is None:
                raise ValueError("ALIGN.LOSS='ce' needs the sampled relation labels")
            loss = F.nll_loss(log_p_mirror, labels.long())
        else:
            if self.kl_direction == "target_original":
                p_original = F.softmax(target_logits.detach().float(), dim=-1)
                per_pair = F.kl_div(log_p_mirror, p_original, reduction="none").sum(-1)
            else:
                log_p_original = F.log_softmax(target_logits.detach().float(), dim=-1)
                per_pair = (log_p_mirror.exp() * (log_p_mirror - log_p_original)).sum(-1)
            loss = per_pair.mean()
            if self.kl_reduction == "mean":
                loss = loss / logits.shape[-1]
        return {"loss_align": self.loss_weight * loss}


def inference_config(cfg):
    """``cfg`` with the alignment switched off: the model that is evaluated and exported.

    The mirror runs only in training, so an Align-Motifs checkpoint loads into this model (skip
    ``ALIGNMENT_STATE_PREFIX``) and predicts exactly what the training-time model predicts in eval.
    """
    if not cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED:
        return cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED = False
    cfg.freeze()
    return cfg
