"""Fast R-CNN box head: torchvision's RoIHeads (sampling, losses) with RoIAlign 7x7 at 1/16,
fc6/fc7 (TwoMLPHead) and FastRCNNPredictor, plus what the relation stage needs: the class logits
and per-class boxes of every detection, and fc7 features of arbitrary boxes."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor as _FastRCNNPredictor
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign, batched_nms, boxes as box_ops
from torchvision.ops.poolers import initLevelMapper

from maskrcnn_benchmark.config import ConfigError

Features = Union[Tensor, "OrderedDict[str, Tensor]"]
_EXTRACTORS = ("VGG16FPN2MLPFeatureExtractor", "FPN2MLPFeatureExtractor")


def _as_dict(features: Features) -> "OrderedDict[str, Tensor]":
    return OrderedDict([("0", features)]) if isinstance(features, Tensor) else features


class FastRCNNPredictor(_FastRCNNPredictor):
    """torchvision's FastRCNNPredictor whose outputs leave in float32 (also under autocast), so
    that the losses, the softmax and the box decoding run in float32 (SOLVER.AMP)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scores, deltas = super().forward(x)
        return scores.float(), deltas.float()


def fixed_scale_roi_align(scale: float, resolution: int, sampling_ratio: int) -> MultiScaleRoIAlign:
    """torchvision's RoIAlign pooler on feature map "0" at ``scale`` (MODEL.ROI_BOX_HEAD.POOLER_SCALES).

    Left alone, MultiScaleRoIAlign infers its scale once, from the first batch it sees (padded
    feature size / largest unpadded image size, rounded to a power of 2): a first batch of small
    or narrow images gives e.g. 1/8 instead of 1/16, and the model's output then depends on what
    it saw first (a resumed or reloaded model differs from the one in memory).
    """
    level = round(-math.log2(scale))
    if 2.0 ** -level != scale:
        raise ConfigError(f"MODEL.ROI_BOX_HEAD.POOLER_SCALES ({scale},): the scale must be a power of 2 (0.0625)")
    pool = MultiScaleRoIAlign(["0"], resolution, sampling_ratio)
    pool.scales = [scale]
    pool.map_levels = initLevelMapper(level, level, canonical_scale=pool.canonical_scale,
                                      canonical_level=pool.canonical_level)
    return pool


class BoxRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` for boxes only, with keyword arguments and richer detections.

    Training: ``forward(features, proposals, image_shapes, targets) -> ([], {"loss_classifier",
    "loss_box_reg"})`` (torchvision's sampling and losses, unchanged).
    Eval: ``-> (detections, {})``; per image ``{"boxes": [n, 4], "labels": [n], "scores": [n],
    "class_logits": [n, C], "boxes_per_cls": [n, C, 4]}``: the logits and every class's decoded
    box (clipped to the image) of the proposal each kept detection came from.
    """

    def __init__(self, *, box_roi_pool: MultiScaleRoIAlign, box_head: TwoMLPHead,
                 box_predictor: FastRCNNPredictor, fg_iou_thresh: float = 0.5,
                 bg_iou_thresh: float = 0.3, batch_size_per_image: int = 256,
                 positive_fraction: float = 0.5,
                 bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
                 score_thresh: float = 0.01, nms_thresh: float = 0.3, detections_per_img: int = 80) -> None:
        super().__init__(box_roi_pool, box_head, box_predictor, fg_iou_thresh, bg_iou_thresh,
                         batch_size_per_image, positive_fraction, tuple(bbox_reg_weights),
                         score_thresh, nms_thresh, detections_per_img)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> "BoxRoIHeads":
        h, b = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD
        if b.FEATURE_EXTRACTOR not in _EXTRACTORS:
            raise ConfigError(f"MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR {b.FEATURE_EXTRACTOR!r}: supported "
                              f"{_EXTRACTORS} (RoIAlign -> fc6 -> fc7)")
        if b.PREDICTOR != "FastRCNNPredictor" or cfg.MODEL.CLS_AGNOSTIC_BBOX_REG:
            raise ConfigError("only MODEL.ROI_BOX_HEAD.PREDICTOR 'FastRCNNPredictor' with "
                              "class-specific regression (MODEL.CLS_AGNOSTIC_BBOX_REG False) is supported")
        if len(b.POOLER_SCALES) != 1:
            raise ConfigError(f"MODEL.ROI_BOX_HEAD.POOLER_SCALES {tuple(b.POOLER_SCALES)}: the VGG-16 "
                              "detector has one feature level; use (0.0625,)")
        res = b.POOLER_RESOLUTION
        pool = fixed_scale_roi_align(float(b.POOLER_SCALES[0]), res, b.POOLER_SAMPLING_RATIO)
        return cls(box_roi_pool=pool,
                   box_head=TwoMLPHead(in_channels * res * res, b.MLP_HEAD_DIM),
                   box_predictor=FastRCNNPredictor(b.MLP_HEAD_DIM, b.NUM_CLASSES),
                   fg_iou_thresh=h.FG_IOU_THRESHOLD, bg_iou_thresh=h.BG_IOU_THRESHOLD,
                   batch_size_per_image=h.BATCH_SIZE_PER_IMAGE, positive_fraction=h.POSITIVE_FRACTION,
                   bbox_reg_weights=tuple(h.BBOX_REG_WEIGHTS), score_thresh=h.SCORE_THRESH,
                   nms_thresh=h.NMS, detections_per_img=h.DETECTIONS_PER_IMG)

    def box_features(self, features: Features, boxes: list[Tensor],
                     image_sizes: list[tuple[int, int]]) -> Tensor:
        """fc7 of given boxes: boxes[i] [n_i, 4] xyxy in resized-image pixels ->
        [sum n_i, MLP_HEAD_DIM], in image order."""
        pooled = self.box_roi_pool(_as_dict(features), [b.float() for b in boxes], image_sizes)  # float32 RoIs
        return self.box_head(pooled)

    def forward(self, features: Features, proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: Optional[list[dict[str, Tensor]]] = None):
        features = _as_dict(features)
        if self.training:
            return super().forward(features, proposals, image_shapes, targets)
        fc7 = self.box_features(features, proposals, image_shapes)
        class_logits, box_regression = self.box_predictor(fc7)  # float32 even under autocast
        return self.detect(class_logits, box_regression, proposals, image_shapes), {}

    def detect(self, class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Per-class score threshold, per-class NMS and top-k, keeping track of each detection's
        proposal. class_logits [N, C], box_regression [N, 4C], proposals[i] [n_i, 4]."""
        num_classes = class_logits.shape[-1]
        counts = [len(p) for p in proposals]
        all_boxes = self.box_coder.decode(box_regression, proposals).reshape(-1, num_classes, 4)
        all_scores = F.softmax(class_logits, -1)
        out = []
        for logits, boxes, scores, shape in zip(class_logits.split(counts), all_boxes.split(counts),
                                                all_scores.split(counts), image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)  # [n, C, 4]
            n = boxes.shape[0]
            cand_scores = scores[:, 1:].reshape(-1)
            cand_prop = torch.arange(n, device=boxes.device).repeat_interleave(num_classes - 1)
            cand_label = torch.arange(1, num_classes, device=boxes.device).repeat(n)
            keep = torch.where(cand_scores > self.score_thresh)[0]
            cand_boxes = boxes[cand_prop[keep], cand_label[keep]]
            keep = keep[box_ops.remove_small_boxes(cand_boxes, min_size=1e-2)]
            cand_boxes = boxes[cand_prop[keep], cand_label[keep]]
            order = batched_nms(cand_boxes, cand_scores[keep], cand_label[keep], self.nms_thresh)
            keep = keep[order[: self.detections_per_img]]
            prop = cand_prop[keep]
            out.append({"boxes": boxes[prop, cand_label[keep]], "labels": cand_label[keep],
                        "scores": cand_scores[keep], "class_logits": logits[prop],
                        "boxes_per_cls": boxes[prop]})
        return out


def build_roi_box_head(cfg, in_channels: int) -> BoxRoIHeads:
    return BoxRoIHeads.from_config(cfg, in_channels)
