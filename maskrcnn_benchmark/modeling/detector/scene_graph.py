"""Stage 2 model: the frozen Faster R-CNN plus the relation head (SGB's RELATION_ON model)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from ..roi_heads.relation_head import ROIRelationHead
from .generalized_rcnn import GeneralizedRCNN

__all__ = ["SceneGraphModel", "build_scene_graph_model"]


class SceneGraphModel(nn.Module):
    """``model(images, targets=None)``: scene graphs from a frozen detector.

    The detector (backbone, RPN, box head) never trains: its parameters have
    ``requires_grad=False`` and it stays in eval mode whatever ``train()`` says. What the relation
    head sees depends on its mode: PredCls, the targets' boxes and labels; SGCls, the targets'
    boxes with the detector box head's class logits for them; SGDet, the detector's detections
    (boxes, labels, scores, class_logits, boxes_per_cls).

    Args:
        images: ImageList (normalised, padded; ``image_sizes`` (h, w) before padding).
        targets: per image the dataset's target dict (``boxes``, ``labels``, ``relation_tuples``);
            needed in training, and in eval for PredCls / SGCls (their boxes).
    Returns:
        training: losses ``{"loss_rel", ["loss_refine_obj"], ["loss_align"]}``;
        eval: per image ``{"boxes", "labels", "scores", "rel_pairs", "rel_scores"}``, resized pixels.
    """

    def __init__(self, *, detector: GeneralizedRCNN, relation_head: ROIRelationHead):
        super().__init__()
        self.detector = detector
        self.relation_head = relation_head
        for p in self.detector.parameters():
            p.requires_grad_(False)
        self.detector.eval()

    @property
    def mode(self) -> str:
        return self.relation_head.mode

    def train(self, mode: bool = True) -> "SceneGraphModel":
        super().train(mode)
        self.detector.eval()
        return self

    def init_relation_from_detector(self) -> None:
        """Copy the detector box head's fc6 / fc7 into the relation head's feature extractors
        (call again after loading detector weights)."""
        self.relation_head.init_from_box_head(self.detector.roi_heads.box_head)

    def load_pretrained_detector(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a stage-1 ``GeneralizedRCNN`` state dict (strictly) and re-initialise the relation
        feature extractors from its box head."""
        self.detector.load_state_dict(state_dict, strict=True)
        self.init_relation_from_detector()

    @torch.no_grad()
    def _proposals(self, features: "OrderedDict[str, Tensor]", images: ImageList,
                   targets: Optional[Sequence[Dict[str, Tensor]]]) -> List[Dict[str, Tensor]]:
        if self.mode == "sgdet":
            proposals, _ = self.detector.rpn(images, features)
            detections, _ = self.detector.roi_heads(features, proposals, images.image_sizes)
            return detections
        if targets is None:
            raise ValueError(f"{self.mode} uses the ground-truth boxes: pass the targets in eval too")
        out = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        if self.mode == "sgcls":
            roi_heads = self.detector.roi_heads
            boxes = [t["boxes"] for t in targets]
            logits, _ = roi_heads.box_predictor(roi_heads.box_features(features, boxes, images.image_sizes))
            for p, lg in zip(out, logits.split([b.shape[0] for b in boxes])):
                p["class_logits"] = lg
        return out

    def forward(self, images: ImageList, targets: Optional[Sequence[Dict[str, Tensor]]] = None
                ) -> Union[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        if self.training and targets is None:
            raise ValueError("SceneGraphModel in training mode needs targets")
        with torch.no_grad():
            features = self.detector.features(images)
        proposals = self._proposals(features, images, targets)
        return self.relation_head(features["0"], proposals, images.image_sizes, targets)


def build_scene_graph_model(cfg, statistics: Optional[Dict[str, Tensor]] = None) -> SceneGraphModel:
    """The frozen detector of ``build_detection_model(cfg)`` plus ``ROIRelationHead.from_config``.

    ``statistics`` (``get_dataset_statistics(cfg)``) initialises the frequency bias; without it
    the bias starts at zero and must come from a checkpoint. The relation feature extractors
    start as copies of the (here freshly built) detector box head: after loading the stage-1
    weights call :meth:`SceneGraphModel.load_pretrained_detector` (or ``init_relation_from_detector``).
    """
    from .detectors import build_detection_model

    detector = build_detection_model(cfg, load_pretrained=False)
    head = ROIRelationHead.from_config(cfg, detector.backbone.out_channels, statistics)
    model = SceneGraphModel(detector=detector, relation_head=head)
    model.init_relation_from_detector()
    return model
