"""Stage 2 model: the frozen Faster R-CNN plus the relation head (SGB's RELATION_ON model)."""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from ..roi_heads.relation_head import ROIRelationHead
from .detector_cache import DetectorCache, image_key
from .generalized_rcnn import GeneralizedRCNN

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["SceneGraphModel", "build_scene_graph_model", "build_detector_cache"]


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

    def __init__(self, *, detector: GeneralizedRCNN, relation_head: ROIRelationHead,
                 size_divisibility: int = 32, detector_cache: Optional[DetectorCache] = None):
        super().__init__()
        self.detector = detector
        self.relation_head = relation_head
        self.size_divisibility = size_divisibility
        self.detector_cache = detector_cache
        for p in self.detector.parameters():
            p.requires_grad_(False)
        self.detector.eval()
        if detector_cache is not None:  # loading weights (pretrained, a checkpoint) re-checks reuse
            self.detector.register_load_state_dict_post_hook(lambda *_: detector_cache.invalidate())

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
    def _detect_image(self, image: Tensor, size: Tuple[int, int], boxes: Optional[Tensor]) -> Dict:
        """The frozen detector on one image (padded to ``size_divisibility``): ``{"features":
        [C, h, w]}`` plus SGCls ``"boxes"`` / ``"class_logits"`` of the given boxes or SGDet
        ``"detections"``. One image at a time, so that an image's output never depends on the
        images that share its batch (their padding), which is what makes reuse exact."""
        single = ImageList(image[None], [size])
        features = self.detector.features(single)
        out: Dict = {"features": features["0"][0]}
        if self.mode == "sgdet":
            proposals, _ = self.detector.rpn(single, features)
            detections, _ = self.detector.roi_heads(features, proposals, [size])
            out["detections"] = detections[0]
        elif self.mode == "sgcls":
            roi_heads = self.detector.roi_heads
            logits, _ = roi_heads.box_predictor(roi_heads.box_features(features, [boxes], [size]))
            out["boxes"], out["class_logits"] = boxes, logits
        return out

    def _detector_outputs(self, images: ImageList, targets: Optional[Sequence[Dict[str, Tensor]]]
                          ) -> List[Dict]:
        if self.mode != "sgdet" and targets is None:
            raise ValueError(f"{self.mode} uses the ground-truth boxes: pass the targets in eval too")
        cache = self.detector_cache
        if cache is not None and targets is not None and (not self.training or cache.reuse_in_training):
            device = images.tensors.device
            cache.check_signature(self.detector, (
                ("mode", self.mode), ("image dtype", images.tensors.dtype),
                ("detector dtype", next(self.detector.parameters()).dtype),
                ("autocast", torch.is_autocast_enabled(device.type)),
                ("autocast dtype", torch.get_autocast_dtype(device.type))), device)
        else:
            cache = None
        d = self.size_divisibility
        outs = []
        for i, (h, w) in enumerate(images.image_sizes):
            hp, wp = (-(-h // d) * d, -(-w // d) * d) if d > 0 else (h, w)
            image = images.tensors[i, :, :hp, :wp]
            boxes = targets[i]["boxes"] if self.mode == "sgcls" else None
            compute = lambda: self._detect_image(image, (h, w), boxes)  # noqa: E731
            if cache is None or "image_id" not in targets[i]:
                outs.append(compute())
                continue
            key = image_key(image, targets[i]["image_id"])
            valid = (lambda e: torch.equal(e["boxes"], boxes)) if boxes is not None else (lambda e: True)
            outs.append(cache.get_or_compute(key, compute, valid))
        return outs

    def forward(self, images: ImageList, targets: Optional[Sequence[Dict[str, Tensor]]] = None
                ) -> Union[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        if self.training and targets is None:
            raise ValueError("SceneGraphModel in training mode needs targets")
        outs = self._detector_outputs(images, targets)
        features = _pad_batch([o["features"] for o in outs])
        if self.mode == "sgdet":
            proposals = [dict(o["detections"]) for o in outs]
        else:
            proposals = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
            if self.mode == "sgcls":
                for p, o in zip(proposals, outs):
                    p["class_logits"] = o["class_logits"]
        return self.relation_head(features, proposals, images.image_sizes, targets)


def _pad_batch(maps: Sequence[Tensor]) -> Tensor:
    """Per-image feature maps [C, h_i, w_i] -> [B, C, max h, max w], zero padded."""
    h = max(m.shape[1] for m in maps)
    w = max(m.shape[2] for m in maps)
    out = maps[0].new_zeros(len(maps), maps[0].shape[0], h, w)
    for i, m in enumerate(maps):
        out[i, :, :m.shape[1], :m.shape[2]] = m
    return out


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
    model = SceneGraphModel(detector=detector, relation_head=head,
                            size_divisibility=cfg.DATALOADER.SIZE_DIVISIBILITY,
                            detector_cache=build_detector_cache(cfg))
    model.init_relation_from_detector()
    return model


def build_detector_cache(cfg) -> Optional[DetectorCache]:
    """MODEL.DETECTOR_CACHE_MB > 0: a :class:`DetectorCache` of that size, with a disk tier in
    MODEL.DETECTOR_CACHE_DIR when set (a relative folder is taken from the working directory,
    as OUTPUT_DIR is). Training batches use it only when a training image is the same every
    epoch (one INPUT.MIN_SIZE_TRAIN, no flip)."""
    if cfg.MODEL.DETECTOR_CACHE_MB <= 0:
        if cfg.MODEL.DETECTOR_CACHE_DIR:
            logger.info("detector cache: off (MODEL.DETECTOR_CACHE_MB 0), MODEL.DETECTOR_CACHE_DIR %s unused",
                        cfg.MODEL.DETECTOR_CACHE_DIR)
        return None
    sizes, flip = tuple(cfg.INPUT.MIN_SIZE_TRAIN), cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN
    reuse = len(sizes) == 1 and flip == 0
    if not reuse:
        logger.info("detector cache: off for training batches (INPUT.MIN_SIZE_TRAIN %s, "
                    "HORIZONTAL_FLIP_PROB_TRAIN %s change images between epochs); on for evaluation",
                    sizes, flip)
    cache_dir = None
    if cfg.MODEL.DETECTOR_CACHE_DIR:
        from maskrcnn_benchmark.config import ConfigError

        cache_dir = os.path.abspath(cfg.MODEL.DETECTOR_CACHE_DIR)
        if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise ConfigError(f"MODEL.DETECTOR_CACHE_DIR {cache_dir} exists and is not a folder: set "
                              "MODEL.DETECTOR_CACHE_DIR to a folder (or \"\" for no disk cache)")
        logger.info("detector cache: %.0f MB in memory, and on disk in %s (at most that much per detector)",
                    cfg.MODEL.DETECTOR_CACHE_MB, cache_dir)
    return DetectorCache(int(cfg.MODEL.DETECTOR_CACHE_MB * 2**20), reuse_in_training=reuse, cache_dir=cache_dir)
