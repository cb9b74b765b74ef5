"""The relation head: pair sampling, box / union features, the predictor, losses, post-processing."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR

from .feature_extractors import RelationBoxFeatureExtractor, RelationUnionFeatureExtractor
from .inference import RelationPostProcessor
from .roi_relation_predictors import relation_mode
from .sampling import RelationSampler

__all__ = ["ROIRelationHead", "build_roi_relation_head"]


class ROIRelationHead(nn.Module):
    """Scene graph head on top of a (frozen) detector.

    Args:
        box_feature_extractor: object features [N, obj_dim] from the feature map.
        union_feature_extractor: pair features [R, union_dim].
        predictor: a ``ROI_RELATION_PREDICTOR`` member.
        sampler: :class:`RelationSampler`; post_processor: :class:`RelationPostProcessor`.
        mode: "predcls" | "sgcls" | "sgdet" (must match the predictor's).
        use_vision: compute union features (PREDICT_USE_VISION); zeros are passed otherwise.
    """

    def __init__(self, *, box_feature_extractor: RelationBoxFeatureExtractor,
                 union_feature_extractor: RelationUnionFeatureExtractor, predictor: nn.Module,
                 sampler: RelationSampler, post_processor: RelationPostProcessor, mode: str,
                 use_vision: bool = True):
        super().__init__()
        self.box_feature_extractor = box_feature_extractor
        self.union_feature_extractor = union_feature_extractor
        self.predictor = predictor
        self.sampler, self.post_processor = sampler, post_processor
        self.mode, self.use_vision = mode, use_vision

    @classmethod
    def from_config(cls, cfg, in_channels: int,
                    statistics: Optional[Dict[str, Tensor]] = None) -> "ROIRelationHead":
        """``in_channels``: the backbone's output channels; ``statistics``: as
        ``get_dataset_statistics(cfg)`` (frequency bias init; None: zeros, to be loaded)."""
        head, box = cfg.MODEL.ROI_RELATION_HEAD, cfg.MODEL.ROI_BOX_HEAD
        if len(box.POOLER_SCALES) != 1:
            raise ValueError("MODEL.ROI_BOX_HEAD.POOLER_SCALES must hold one scale (single-level backbone)")
        pooler = dict(in_channels=in_channels, mlp_dim=box.MLP_HEAD_DIM, resolution=head.POOLER_RESOLUTION,
                      sampling_ratio=head.POOLER_SAMPLING_RATIO, spatial_scale=box.POOLER_SCALES[0])
        box_fe = RelationBoxFeatureExtractor(**pooler)
        union_fe = RelationUnionFeatureExtractor(**pooler, chunk_size=head.PAIR_CHUNK_SIZE)
        predictor = ROI_RELATION_PREDICTOR[head.PREDICTOR].from_config(
            cfg, obj_dim=box_fe.out_channels, union_dim=union_fe.out_channels, statistics=statistics)
        return cls(box_feature_extractor=box_fe, union_feature_extractor=union_fe, predictor=predictor,
                   sampler=RelationSampler.from_config(cfg),
                   post_processor=RelationPostProcessor(cfg.TEST.RELATION.TOPK_TRIPLETS),
                   mode=relation_mode(cfg), use_vision=head.PREDICT_USE_VISION)

    def init_from_box_head(self, box_head: nn.Module) -> None:
        """Copy the detector box head's fc6 / fc7 into both feature extractors."""
        self.box_feature_extractor.load_box_head(box_head)
        self.union_feature_extractor.load_box_head(box_head)

    def _check(self, proposals: Sequence[Dict[str, Tensor]], targets) -> None:
        need = ["boxes"]
        if self.mode == "predcls" or (self.training and self.mode == "sgcls"):
            need.append("labels")
        if self.mode != "predcls":
            need.append("class_logits")
        for i, p in enumerate(proposals):
            missing = [k for k in need if k not in p]
            if missing:
                raise ValueError(f"relation head ({self.mode}): proposal {i} lacks {missing}")
        if self.training and (targets is None or len(targets) != len(proposals)):
            raise ValueError("relation head: training needs one target dict per image")

    def forward(self, features: Tensor, proposals: Sequence[Dict[str, Tensor]],
                image_sizes: Sequence[Tuple[int, int]], targets: Optional[Sequence[Dict[str, Tensor]]] = None
                ) -> Union[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        """features [B, C, H/16, W/16]; per-image proposals {"boxes" [n, 4] (resized pixels),
        "labels", "class_logits" [n, C]} (GT boxes in PredCls / SGCls); image_sizes (h, w);
        targets as the dataset's (training). Training -> losses {"loss_rel", ["loss_refine_obj"],
        [extra predictor losses]}; eval -> per image {"boxes", "labels", "scores", "rel_pairs",
        "rel_scores"} (+ "num_top_pairs" in PredCls / SGCls when the targets carry
        "relation_tuples": see :class:`RelationPostProcessor`)."""
        self._check(proposals, targets)
        proposals = [dict(p) for p in proposals]
        boxes = [p["boxes"] for p in proposals]
        num_objs = [int(b.shape[0]) for b in boxes]
        rel_labels = None
        if not self.training:
            pair_idxs = self.sampler.test_pairs(num_objs, features.device)
        elif self.mode == "sgdet":
            obj_labels, pair_idxs, rel_labels = self.sampler.detect_sample(boxes, targets)
            for p, lab in zip(proposals, obj_labels):
                p["labels"] = lab
        else:
            for i, (n, t) in enumerate(zip(num_objs, targets)):
                if t["boxes"].shape[0] != n:
                    raise ValueError(f"relation head ({self.mode}): image {i} has {n} proposals but "
                                     f"{t['boxes'].shape[0]} ground-truth boxes; GT-box modes use the "
                                     "targets' boxes")
            pair_idxs, rel_labels = self.sampler.gtbox_sample(num_objs, targets)

        roi_features = self.box_feature_extractor(features, boxes)
        num_pairs = sum(int(p.shape[0]) for p in pair_idxs)
        if self.use_vision:
            union_features = self.union_feature_extractor(features, boxes, pair_idxs, image_sizes)
        else:
            union_features = roi_features.new_zeros(num_pairs, self.union_feature_extractor.out_channels)
        obj_logits, obj_preds, rel_logits, extra = self.predictor(
            roi_features, union_features, proposals, pair_idxs, image_sizes, rel_labels)

        if not self.training:
            gt_pairs = None  # PredCls / SGCls evaluation: keep every prediction on a GT pair (A@K)
            if self.mode != "sgdet" and targets is not None and \
                    all("relation_tuples" in t for t in targets):
                gt_pairs = [t["relation_tuples"][:, :2] for t in targets]
            results = self.post_processor(boxes, obj_logits, obj_preds, rel_logits, pair_idxs, gt_pairs)
            if self.mode == "sgdet":  # SGB: the box regressed for the refined class, when known
                for r, p in zip(results, proposals):
                    if "boxes_per_cls" in p:
                        rows = torch.arange(r["labels"].shape[0], device=r["labels"].device)
                        r["boxes"] = p["boxes_per_cls"][rows, r["labels"]]
            return results
        losses = {"loss_rel": _cross_entropy(rel_logits, torch.cat(rel_labels) if rel_labels else None)}
        if self.mode != "predcls":
            obj_labels = torch.cat([p["labels"] for p in proposals])
            losses["loss_refine_obj"] = _cross_entropy(obj_logits, obj_labels)
        losses.update(extra)
        return losses


def _cross_entropy(logits: Tensor, labels: Optional[Tensor]) -> Tensor:
    """Mean cross-entropy; zero (still attached to the graph) when there is nothing to score."""
    if labels is None or labels.numel() == 0:
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits.float(), labels.long())


def build_roi_relation_head(cfg, in_channels: int,
                            statistics: Optional[Dict[str, Tensor]] = None) -> ROIRelationHead:
    """SGB's factory name for :meth:`ROIRelationHead.from_config`."""
    return ROIRelationHead.from_config(cfg, in_channels, statistics)
