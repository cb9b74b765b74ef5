"""Decoded images -> 8-bit RGB, scaling high-bit-depth grayscale instead of clipping it."""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["to_rgb"]


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` as an 8-bit RGB image. Pillow's ``convert("RGB")`` clips 16- and 32-bit grayscale
    (``I;16*``, ``I``) and float (``F``) images at 255, which turns a 16-bit PNG white; they are
    scaled to 0..255 first (16-bit: / 257; ``I`` holding only 0..255 is kept; ``F`` in 0..1: x 255)."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and a.size and a.max() > 255):
            a = a / 257.0
        elif img.mode == "F" and a.size and a.max() <= 1.0:
            a = a * 255.0
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")
    return img if img.mode == "RGB" else img.convert("RGB")
