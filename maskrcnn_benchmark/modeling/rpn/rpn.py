"""Region proposal network: torchvision's AnchorGenerator + RPNHead + RegionProposalNetwork with
SGB's single-level VGG-16 settings (``MODEL.RPN``)."""
from __future__ import annotations

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torch import Tensor
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.rpn import RPNHead as _RPNHead

from maskrcnn_benchmark.config import ConfigError


class RPNHead(_RPNHead):
    """torchvision's RPNHead whose objectness and deltas leave in float32 (also under autocast):
    torchvision decodes the proposals in the deltas' dtype, casting the anchors to it, and
    bfloat16 would round a 600 px coordinate to 4 px."""

    def forward(self, x: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = super().forward(x)
        return [t.float() for t in logits], [t.float() for t in deltas]


def build_anchor_generator(sizes: tuple[float, ...], aspect_ratios: tuple[float, ...]) -> AnchorGenerator:
    """Anchors on one feature map: every size x every aspect ratio (height / width)."""
    return AnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=(tuple(aspect_ratios),))


def build_rpn(cfg, in_channels: int) -> RegionProposalNetwork:
    """torchvision RPN over the stride-16 feature map ``{"0": [B, in_channels, H/16, W/16]}``.

    ``model.rpn(images: ImageList, features: dict, targets)`` returns
    ``(proposals: list[Tensor[n_i, 4]], losses: {"loss_objectness", "loss_rpn_box_reg"})``.
    """
    c = cfg.MODEL.RPN
    if tuple(c.ANCHOR_STRIDE) != (16,):
        raise ConfigError(f"MODEL.RPN.ANCHOR_STRIDE {tuple(c.ANCHOR_STRIDE)}: the VGG-16 conv body has a "
                          "single stride-16 feature map; use (16,)")
    anchors = build_anchor_generator(c.ANCHOR_SIZES, c.ASPECT_RATIOS)
    head = RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    rpn = RegionProposalNetwork(
        anchors, head,
        fg_iou_thresh=c.FG_IOU_THRESHOLD, bg_iou_thresh=c.BG_IOU_THRESHOLD,
        batch_size_per_image=c.BATCH_SIZE_PER_IMAGE, positive_fraction=c.POSITIVE_FRACTION,
        pre_nms_top_n={"training": c.PRE_NMS_TOP_N_TRAIN, "testing": c.PRE_NMS_TOP_N_TEST},
        post_nms_top_n={"training": c.POST_NMS_TOP_N_TRAIN, "testing": c.POST_NMS_TOP_N_TEST},
        nms_thresh=c.NMS_THRESH,
    )
    rpn.min_size = max(float(c.MIN_SIZE), rpn.min_size)
    return rpn
