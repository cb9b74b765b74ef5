"""Batch collation: pad images into a torchvision ImageList."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torchvision.models.detection import image_list


class ImageList(image_list.ImageList):
    """torchvision's ImageList that a DataLoader with ``pin_memory=True`` pins (it pins only
    tensors and objects with a ``pin_memory`` method) and that moves to the GPU without blocking
    the host (``non_blocking``: from pinned memory the copy overlaps the host's work)."""

    def pin_memory(self) -> "ImageList":
        return ImageList(self.tensors.pin_memory(), self.image_sizes)

    def to(self, device: torch.device, non_blocking: bool = False) -> "ImageList":  # type: ignore[override]
        return ImageList(self.tensors.to(device, non_blocking=non_blocking), self.image_sizes)


def to_image_list(images: Sequence[torch.Tensor], size_divisible: int = 0) -> ImageList:
    """Zero-pad FloatTensor[3, H_i, W_i] images (bottom/right) to a common size rounded up to a
    multiple of ``size_divisible``. -> ImageList(tensors [B, 3, H, W], image_sizes [(H_i, W_i)])"""
    if not images:
        raise ValueError("to_image_list needs at least one image")
    max_h = max(int(im.shape[-2]) for im in images)
    max_w = max(int(im.shape[-1]) for im in images)
    if size_divisible > 0:
        max_h = int(math.ceil(max_h / size_divisible) * size_divisible)
        max_w = int(math.ceil(max_w / size_divisible) * size_divisible)
    batch = images[0].new_zeros((len(images), images[0].shape[0], max_h, max_w))
    for im, slot in zip(images, batch):
        slot[:, :im.shape[-2], :im.shape[-1]].copy_(im)
    return ImageList(batch, [(int(im.shape[-2]), int(im.shape[-1])) for im in images])


class BatchCollator:
    """``[(image, target, index), ...] -> (ImageList, list[target], tuple[index])``."""

    def __init__(self, size_divisible: int = 0):
        self.size_divisible = size_divisible

    def __call__(self, batch):
        images, targets, indices = zip(*batch)
        return to_image_list(images, self.size_divisible), list(targets), tuple(indices)
