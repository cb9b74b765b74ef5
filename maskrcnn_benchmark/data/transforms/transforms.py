"""Joint image + target transforms (SGB's semantics): the target is the dataset's dict and its
``boxes`` (FloatTensor[N, 4], xyxy pixels) follow every geometric change of the image."""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torchvision.transforms import functional as F


class Compose:
    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, image, target: Optional[dict] = None):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"Compose({', '.join(repr(t) for t in self.transforms)})"


def resized_shape(width: int, height: int, min_size: int, max_size: int) -> tuple[int, int]:
    """SGB's rule: shorter side to ``min_size`` unless the longer side would then exceed
    ``max_size``, in which case the longer side is ``max_size``. -> (new_height, new_width)"""
    size = float(min_size)
    short, long = float(min(width, height)), float(max(width, height))
    if max_size > 0 and long / short * size > max_size:
        size = float(int(round(max_size * short / long)))
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if size < 1:  # extreme aspect ratio (e.g. 5000x2): a 1 px short side, the long side at max_size
        return (int(max_size), 1) if width < height else (1, int(max_size))
    if width < height:
        return int(size * height / width), int(size)
    return int(size), int(size * width / height)


class Resize:
    """Resize to one of ``min_size`` (drawn uniformly at each call) with the longer side capped
    at ``max_size``; boxes are scaled with the image."""

    def __init__(self, min_size: int | Sequence[int], max_size: int):
        self.min_size = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        self.max_size = max_size

    def __call__(self, image: Image.Image, target: Optional[dict] = None):
        w, h = image.size
        size = self.min_size[int(torch.randint(len(self.min_size), ()))]
        new_h, new_w = resized_shape(w, h, size, self.max_size)
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), Image.BILINEAR)
        if target is not None and "boxes" in target:
            scale = torch.tensor([new_w / w, new_h / h, new_w / w, new_h / h])
            target["boxes"] = target["boxes"] * scale
        return image, target

    def __repr__(self) -> str:
        return f"Resize(min_size={self.min_size}, max_size={self.max_size})"


class RandomHorizontalFlip:
    """Flip image and boxes together with probability ``prob`` (continuous coordinates:
    x -> W - x, as torchvision)."""

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def __call__(self, image: Image.Image, target: Optional[dict] = None):
        if self.prob > 0 and float(torch.rand(())) < self.prob:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
            if target is not None and "boxes" in target:
                width, old = image.size[0], target["boxes"]
                target["boxes"] = torch.stack([width - old[:, 2], old[:, 1], width - old[:, 0],
                                               old[:, 3]], dim=1)
        return image, target

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(prob={self.prob})"


class ToTensor:
    """PIL RGB image -> FloatTensor[3, H, W] in [0, 1]."""

    def __call__(self, image, target: Optional[dict] = None):
        return F.to_tensor(image), target

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel. With ``to_bgr255`` the RGB [0, 1] tensor is first turned
    into BGR [0, 255] (SGB's Caffe-style weights), mean/std then being in that space."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_bgr255: bool = False):
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 or not math.isfinite(s) for s in std):
            raise ValueError(f"PIXEL_MEAN / PIXEL_STD need 3 values each (std > 0), got "
                             f"{list(mean)} / {list(std)}")
        self.mean, self.std, self.to_bgr255 = list(mean), list(std), to_bgr255

    def __call__(self, image: torch.Tensor, target: Optional[dict] = None):
        if self.to_bgr255:
            image = image[[2, 1, 0]] * 255
        return F.normalize(image, mean=self.mean, std=self.std), target

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std}, to_bgr255={self.to_bgr255})"
