"""Which subject-object pairs the relation head scores (SGB's RelationSampling).

Training, GT boxes (PredCls / SGCls): every ground-truth pair is foreground (at most
``positive_fraction`` of the per-image budget), and random other ordered pairs fill the budget
as background. Training, SGDet: detections get the label of the ground truth they overlap
(IoU >= fg threshold, else background); a detection pair is foreground for a ground-truth
relation when both boxes match its subject / object (same label, IoU > threshold), up to
``num_sample_per_gt_rel`` pairs per relation (drawn in proportion to the IoU product); pairs of
two non-background detections that match no relation are background. Test: all ordered pairs
(SGDet with ``test_overlap``: only those whose boxes overlap, SGB's TEST.RELATION.REQUIRE_OVERLAP).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = ["RelationSampler", "unique_relations"]


def unique_relations(rels: Tensor, num_objs: int) -> Tensor:
    """Int64[M, 3] (subject, object, predicate) -> one random predicate per ordered pair, with
    self-pairs and out-of-range indices dropped."""
    rels = rels.long()
    ok = (rels[:, 0] != rels[:, 1]) & (rels[:, :2] >= 0).all(1) & (rels[:, :2] < num_objs).all(1)
    rels = rels[ok]
    if rels.shape[0] <= 1:
        return rels
    rels = rels[torch.randperm(rels.shape[0], device=rels.device)]
    key = rels[:, 0] * num_objs + rels[:, 1]
    uniq, inverse = torch.unique(key, return_inverse=True)
    pos = torch.arange(key.shape[0], device=rels.device)
    first = torch.full_like(uniq, key.shape[0]).scatter_reduce(0, inverse, pos, "amin")
    return rels[first]


def _pair_matrix(num_objs: int, device) -> Tensor:
    return ~torch.eye(num_objs, dtype=torch.bool, device=device)


def overlap_matrix(boxes: Tensor) -> Tensor:
    """Bool[n, n]: the boxes intersect, with SGB's +1 pixel convention (its ``boxlist_iou > 0``:
    boxes less than one pixel apart count as overlapping)."""
    lt = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    return ((rb - lt + 1) > 0).all(-1)


class RelationSampler:
    """Relation pair sampling and label assignment.

    Args:
        use_gt_box: PredCls / SGCls (True) or SGDet (False).
        batch_size_per_image: pairs per image in training (BATCH_SIZE_PER_IMAGE, 64).
        positive_fraction: at most this share of them foreground (POSITIVE_FRACTION, 0.25).
        num_sample_per_gt_rel: SGDet detection pairs per ground-truth relation (4).
        fg_iou_threshold: SGDet box matching threshold (ROI_HEADS.FG_IOU_THRESHOLD, 0.5).
        require_overlap: SGDet training: only pairs of intersecting boxes (REQUIRE_BOX_OVERLAP).
        test_overlap: SGDet test: only pairs of overlapping boxes (TEST.RELATION.REQUIRE_OVERLAP).
    """

    def __init__(self, *, use_gt_box: bool, batch_size_per_image: int = 64, positive_fraction: float = 0.25,
                 num_sample_per_gt_rel: int = 4, fg_iou_threshold: float = 0.5,
                 require_overlap: bool = False, test_overlap: bool = False):
        self.use_gt_box = use_gt_box
        self.batch_size_per_image = batch_size_per_image
        self.num_pos_per_image = int(batch_size_per_image * positive_fraction)
        self.num_sample_per_gt_rel = num_sample_per_gt_rel
        self.fg_iou_threshold = fg_iou_threshold
        self.require_overlap = require_overlap
        self.test_overlap = test_overlap

    @classmethod
    def from_config(cls, cfg) -> "RelationSampler":
        head = cfg.MODEL.ROI_RELATION_HEAD
        return cls(use_gt_box=head.USE_GT_BOX, batch_size_per_image=head.BATCH_SIZE_PER_IMAGE,
                   positive_fraction=head.POSITIVE_FRACTION, num_sample_per_gt_rel=head.NUM_SAMPLE_PER_GT_REL,
                   fg_iou_threshold=cfg.MODEL.ROI_HEADS.FG_IOU_THRESHOLD,
                   require_overlap=head.REQUIRE_BOX_OVERLAP,
                   test_overlap=cfg.TEST.RELATION.REQUIRE_OVERLAP)

    def test_pairs(self, boxes: Sequence[Tensor]) -> List[Tensor]:
        """All ordered pairs i != j of each image's boxes [n_i, 4]: Int64[r_i, 2], row-major
        (r_i = n_i * (n_i - 1); fewer in SGDet with ``test_overlap``)."""
        out = []
        for b in boxes:
            candidates = _pair_matrix(b.shape[0], b.device)
            if self.test_overlap and not self.use_gt_box:
                candidates &= overlap_matrix(b.float())
            out.append(torch.nonzero(candidates))
        return out

    def _fill(self, fg: Tensor, candidates: Tensor) -> Tuple[Tensor, Tensor]:
        """fg Int64[F, 3] triplets (capped here), candidates Bool[n, n] background pairs ->
        (pairs Int64[r, 2], labels Int64[r]): foreground first."""
        if fg.shape[0] > self.num_pos_per_image:
            fg = fg[torch.randperm(fg.shape[0], device=fg.device)[:self.num_pos_per_image]]
        bg = torch.nonzero(candidates)
        num_bg = min(self.batch_size_per_image - fg.shape[0], bg.shape[0])
        bg = bg[torch.randperm(bg.shape[0], device=bg.device)[:max(num_bg, 0)]]
        pairs = torch.cat([fg[:, :2], bg])
        labels = torch.cat([fg[:, 2], torch.zeros(bg.shape[0], dtype=torch.int64, device=bg.device)])
        return pairs, labels

    @torch.no_grad()
    def gtbox_sample(self, num_objs: Sequence[int], targets: Sequence[Dict[str, Tensor]]
                     ) -> Tuple[List[Tensor], List[Tensor]]:
        """PredCls / SGCls training: objects are the targets' boxes, in order.

        Returns per image (pairs Int64[r_i, 2], labels Int64[r_i]), r_i <= batch_size_per_image.
        """
        all_pairs, all_labels = [], []
        for n, target in zip(num_objs, targets):
            rels = unique_relations(target["relation_tuples"], n)
            candidates = _pair_matrix(n, rels.device)
            candidates[rels[:, 0], rels[:, 1]] = False
            pairs, labels = self._fill(rels, candidates)
            all_pairs.append(pairs)
            all_labels.append(labels)
        return all_pairs, all_labels

    @torch.no_grad()
    def assign_labels(self, boxes: Tensor, target: Dict[str, Tensor]) -> Tensor:
        """SGDet training: label of the best-overlapping GT box when IoU >= fg threshold, else 0."""
        labels = torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
        if boxes.shape[0] == 0 or target["boxes"].shape[0] == 0:
            return labels
        best_iou, best = box_iou(target["boxes"].float(), boxes.float()).max(0)
        fg = best_iou >= self.fg_iou_threshold
        labels[fg] = target["labels"].long()[best[fg]]
        return labels

    def _match_relations(self, rels: Tensor, is_match: Tensor, ious: Tensor, candidates: Tensor) -> Tensor:
        """SGDet foreground: for each GT relation (subject s, object o) [M, 3] the detection pairs
        (h, t), h != t, matching s and o (``is_match`` Bool[G, n], ``ious`` [G, n]), all of them or
        ``num_sample_per_gt_rel`` drawn without replacement in proportion to iou(s, h) * iou(o, t),
        for all relations at once (no per-relation host round trip). Clears those pairs in
        ``candidates`` (background). -> Int64[F, 3] (h, t, predicate), one predicate per pair."""
        n = is_match.shape[1]
        if rels.shape[0] == 0 or n == 0:
            return rels.new_zeros(0, 3)
        subj, obj, predicate = rels.unbind(1)
        pair = is_match[subj][:, :, None] & is_match[obj][:, None, :]  # [M, n, n]
        pair &= ~torch.eye(n, dtype=torch.bool, device=pair.device)
        candidates &= ~pair.any(0)
        weight = (ious[subj][:, :, None] * ious[obj][:, None, :]).masked_fill(~pair, 0).flatten(1)
        # Efraimidis-Spirakis keys log(u) / w: the k largest are a weighted draw without
        # replacement (torch.multinomial's distribution); w = 0 (not a match) gives -inf.
        keys = torch.rand(weight.shape, device=weight.device).log() / weight
        k = min(self.num_sample_per_gt_rel, n * n)
        top = keys.topk(k, dim=1).indices  # [M, k]
        valid = pair.flatten(1).gather(1, top)
        rel_idx = torch.arange(rels.shape[0], device=rels.device)[:, None].expand_as(top)[valid]
        flat = top[valid]
        fg = torch.stack([flat // n, flat % n, predicate[rel_idx]], 1)
        return unique_relations(fg, n)

    @torch.no_grad()
    def detect_sample(self, boxes: Sequence[Tensor], targets: Sequence[Dict[str, Tensor]]
                      ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """SGDet training -> per image (assigned object labels Int64[n_i], pairs Int64[r_i, 2],
        relation labels Int64[r_i])."""
        out_obj, out_pairs, out_labels = [], [], []
        for prp, target in zip(boxes, targets):
            n, device = prp.shape[0], prp.device
            prp_lab = self.assign_labels(prp, target)
            tgt_box, tgt_lab = target["boxes"].float(), target["labels"].long()
            ious = box_iou(tgt_box, prp.float())
            is_match = (tgt_lab[:, None] == prp_lab[None]) & (ious > self.fg_iou_threshold)
            candidates = _pair_matrix(n, device)
            if self.require_overlap:  # SGB: distinct detections whose boxes intersect (same box included)
                candidates &= box_iou(prp.float(), prp.float()) > 0
            candidates[prp_lab == 0] = False
            candidates[:, prp_lab == 0] = False

            rels = unique_relations(target["relation_tuples"], tgt_box.shape[0])
            fg = self._match_relations(rels, is_match, ious, candidates)
            pairs, labels = self._fill(fg, candidates)
            out_obj.append(prp_lab)
            out_pairs.append(pairs)
            out_labels.append(labels)
        return out_obj, out_pairs, out_labels
