"""From relation and object logits to per-image scene graphs (SGB's relation PostProcessor)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["RelationPostProcessor"]


class RelationPostProcessor:
    """Object scores, triplet scores, ranking.

    Object label = the context's label (ground truth in PredCls, the decoder's greedy prediction
    in SGCls, after late NMS in SGDet), object score = its refined softmax probability (1.0 in
    PredCls). Triplet score = max non-background predicate probability x subject score x object
    score; pairs are sorted by it and the best ``topk`` kept, each with its full predicate
    distribution.

    With ``gt_pairs`` (PredCls / SGCls evaluation: the targets' (subject, object) indices), the
    pairs below the top ``topk`` that are GT pairs are kept too, after them and still in rank
    order, and ``"num_top_pairs"`` says how many rows are the top ``topk``: the evaluator's A@K
    ranks every prediction on a GT pair (SGB keeps every pair), R@K and ngR@K use only the top
    rows. That is a few rows per image (at most the number of GT pairs).

    Args:
        topk: pairs kept per image (TEST.RELATION.TOPK_TRIPLETS); <= 0 keeps all.
    """

    def __init__(self, topk: int = 100):
        self.topk = topk

    @torch.no_grad()
    def __call__(self, boxes: Sequence[Tensor], obj_logits: Tensor, obj_preds: Tensor, rel_logits: Tensor,
                 rel_pair_idxs: Sequence[Tensor], gt_pairs: Optional[Sequence[Tensor]] = None
                 ) -> List[Dict[str, Tensor]]:
        """boxes per image [n_i, 4]; obj_logits [N, C], obj_preds Int64[N], rel_logits [R, P] (batch,
        image-major); rel_pair_idxs per image [r_i, 2]; gt_pairs per image Int64[g_i, 2] or None
        -> per image {"boxes", "labels", "scores", "rel_pairs" Int64[k, 2], "rel_scores" [k, P]},
        pairs best first, plus "num_top_pairs" (Int64 scalar) when ``gt_pairs`` is given."""
        num_objs = [int(b.shape[0]) for b in boxes]
        num_rels = [int(p.shape[0]) for p in rel_pair_idxs]
        obj_prob = torch.softmax(obj_logits.float(), -1)
        obj_scores = obj_prob.gather(1, obj_preds.long().view(-1, 1)).view(-1)
        rel_prob = torch.softmax(rel_logits.float(), -1)
        results = []
        per_image = zip(boxes, obj_preds.split(num_objs), obj_scores.split(num_objs), rel_pair_idxs,
                        rel_prob.split(num_rels))
        for i, (b, labels, scores, pairs, probs) in enumerate(per_image):
            pairs = pairs.long()
            if probs.shape[0]:
                triplet = probs[:, 1:].max(1).values * scores[pairs[:, 0]] * scores[pairs[:, 1]]
            else:
                triplet = probs.new_zeros(0)
            order = torch.sort(triplet, descending=True, stable=True).indices
            num_top = order.shape[0] if self.topk <= 0 else min(self.topk, order.shape[0])
            rest = order[num_top:]
            order = order[:num_top]
            if gt_pairs is not None and rest.shape[0]:
                n = b.shape[0]
                g = gt_pairs[i].long().to(pairs.device).view(-1, 2)
                g = g[((g >= 0) & (g < n)).all(1)]
                on_gt = torch.isin(pairs[rest, 0] * n + pairs[rest, 1], g[:, 0] * n + g[:, 1])
                order = torch.cat([order, rest[on_gt]])
            result = {"boxes": b, "labels": labels, "scores": scores,
                      "rel_pairs": pairs[order], "rel_scores": probs[order]}
            if gt_pairs is not None:
                result["num_top_pairs"] = torch.tensor(num_top, device=pairs.device)
            results.append(result)
        return results
