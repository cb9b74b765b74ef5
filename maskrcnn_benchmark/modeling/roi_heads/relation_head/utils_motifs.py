"""Helpers of the Motifs context: object ordering for batched LSTMs, box encoding, late NMS."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager, List, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = ["ObjectOrder", "encode_box_info", "obj_prediction_nms", "recurrent_autocast", "to_onehot"]


@dataclass
class ObjectOrder:
    """Where each object of a batch sits in the padded [T, B, D] layout the context LSTMs read.

    Objects of one image form one sequence, sorted left to right by box centre (ties keep the
    input order); sequences are the columns, longest first (as ``pack_padded_sequence`` wants),
    and images without objects get no column. ``time_idx`` / ``col_idx`` are indexed by the
    object's position in the input (image-major) order, so :meth:`from_padded` restores it.

    Attributes:
        num_objs: objects per image, in input order.
        time_idx: Int64[N] rank of each object in its image's left-to-right sequence.
        col_idx: Int64[N] column of each object's image.
        lengths: sequence length of each column, non-increasing (plain ints).
    """

    num_objs: List[int]
    time_idx: Tensor
    col_idx: Tensor
    lengths: List[int]

    @classmethod
    def left_to_right(cls, boxes: Sequence[Tensor]) -> "ObjectOrder":
        """Order of the objects of each image by box centre x, ascending (boxes xyxy)."""
        num_objs = [int(b.shape[0]) for b in boxes]
        device = boxes[0].device if len(boxes) else torch.device("cpu")
        nonempty = [i for i, n in enumerate(num_objs) if n > 0]
        by_len = sorted(nonempty, key=lambda i: -num_objs[i])  # stable: ties keep image order
        col_of_image = {img: col for col, img in enumerate(by_len)}
        time_idx, col_idx = [], []
        for i, b in enumerate(boxes):
            if num_objs[i] == 0:
                continue
            centre = (b[:, 0] + b[:, 2]).float() * 0.5
            order = torch.sort(centre, stable=True).indices
            rank = torch.empty_like(order)
            rank[order] = torch.arange(num_objs[i], device=device)
            time_idx.append(rank)
            col_idx.append(torch.full_like(rank, col_of_image[i]))
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(num_objs=num_objs,
                   time_idx=torch.cat(time_idx) if time_idx else empty,
                   col_idx=torch.cat(col_idx) if col_idx else empty,
                   lengths=[num_objs[i] for i in by_len])

    @property
    def num_steps(self) -> int:
        return self.lengths[0] if self.lengths else 0

    def to_padded(self, x: Tensor) -> Tensor:
        """[N, D] in input order -> [T, B, D] zero-padded sequences."""
        out = x.new_zeros((self.num_steps, len(self.lengths)) + tuple(x.shape[1:]))
        out[self.time_idx, self.col_idx] = x
        return out

    def from_padded(self, y: Tensor) -> Tensor:
        """[T, B, ...] -> [N, ...] in input order."""
        return y[self.time_idx, self.col_idx]


def encode_box_info(boxes: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]]) -> Tensor:
    """SGB's 9 position numbers per box -> [N, 9].

    (w/W, h/H, cx/W, cy/H, x1/W, y1/H, x2/W, y2/H, w*h/(W*H)), with SGB's "+1" box width
    convention; ``image_sizes`` are (height, width) of the resized, unpadded images.
    """
    out = []
    for b, (height, width) in zip(boxes, image_sizes):
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got (height, width)=({height}, {width})")
        b = b.float()
        wh = b[:, 2:] - b[:, :2] + 1.0
        centre = b[:, :2] + 0.5 * wh
        w, h = wh[:, 0:1], wh[:, 1:2]
        out.append(torch.cat([w / width, h / height, centre[:, 0:1] / width, centre[:, 1:2] / height,
                              b[:, 0:1] / width, b[:, 1:2] / height, b[:, 2:3] / width,
                              b[:, 3:4] / height, w * h / (width * height)], dim=1))
    if not out:
        return torch.zeros(0, 9)
    return torch.cat(out, 0)


def to_onehot(labels: Tensor, num_classes: int, fill: float = 1000.0) -> Tensor:
    """Logits [N, C] that put all the mass on ``labels`` (+fill there, -fill elsewhere; SGB)."""
    out = torch.full((labels.shape[0], num_classes), -fill, device=labels.device)
    out[torch.arange(labels.shape[0], device=labels.device), labels.long()] = fill
    return out


def obj_prediction_nms(boxes: Tensor, logits: Tensor, nms_thresh: float) -> Tensor:
    """SGB's late per-class NMS of object predictions (SGDet test) -> labels Int64[N].

    Repeatedly takes the most confident (box, class) among boxes not yet labelled, gives the box
    that class, and removes that class from every box overlapping it with IoU >= ``nms_thresh``.

    Args:
        boxes: [N, 4] (one box per object) or [N, C, 4] (a regressed box per class).
        logits: [N, C] object logits, column 0 background (never chosen).
    """
    n, num_classes = logits.shape
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=logits.device)
    if boxes.dim() == 2:
        overlap = (box_iou(boxes.float(), boxes.float()) >= nms_thresh).unsqueeze(-1)  # [N, N, 1]
    else:
        per_class = boxes.float().permute(1, 0, 2)  # [C, N, 4]
        ious = torch.stack([box_iou(c, c) for c in per_class], dim=-1)  # [N, N, C]
        overlap = ious >= nms_thresh
    prob = torch.softmax(logits.float(), dim=1)
    prob[:, 0] = 0.0
    # The greedy loop is sequential: run it on the host after one copy (on a GPU every argmax
    # would wait for the device).
    prob, overlap = prob.cpu(), overlap.cpu()
    labels = torch.zeros(n, dtype=torch.int64)
    for _ in range(n):
        flat = int(torch.argmax(prob))
        box, cls = divmod(flat, num_classes)
        labels[box] = cls
        suppress = overlap[box, :, 0] if overlap.shape[-1] == 1 else overlap[box, :, cls]
        prob[suppress, cls] = 0.0
        prob[box] = -1.0
    return labels.to(logits.device)


def recurrent_autocast(device: torch.device) -> ContextManager:
    """Autocast off for the recurrent layers on a CPU, where oneDNN's bfloat16 LSTM and the
    decoder's per-step small products run 2-3x slower than float32 (benchmarks/
    bench_relation_step.py); on CUDA they stay under autocast (cuDNN's half LSTMs are fast)."""
    if device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()
