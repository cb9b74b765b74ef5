"""Drawing scene graphs on images (Pillow only): boxes with class names, and the top relations
listed under the image, as in the paper's Figure 4."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
            (0, 128, 128), (220, 190, 255), (170, 110, 40), (128, 0, 0), (0, 0, 128)]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_scene_graph(image: Image.Image, boxes: np.ndarray, labels: Sequence[str],
                     relations: Sequence[tuple], title: str = "", max_relations: int = 8,
                     min_width: int = 320) -> Image.Image:
    """Return a new image: ``image`` with its boxes drawn and a relation list underneath.

    Args:
        image: the picture, in the pixel frame of ``boxes``.
        boxes: float[N, 4] xyxy.
        labels: N class names.
        relations: (subject index, object index, predicate name[, score]) tuples, best first;
            a trailing boolean marks a relation as correct (drawn green) or wrong (red).
        title: a line drawn above the picture.
    """
    scale = max(1.0, min_width / max(image.width, 1))
    img = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
    font = _font(max(11, img.width // 40))
    line_h = font.getbbox("Ag")[3] + 4
    rels = list(relations)[:max_relations]
    used = sorted({int(r[0]) for r in rels} | {int(r[1]) for r in rels}) or list(range(len(boxes)))
    canvas = Image.new("RGB", (img.width, img.height + line_h * (len(rels) + 2)), "white")
    canvas.paste(img, (0, line_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black", font=font)
    for i in used:
        if i >= len(boxes):
            continue
        x1, y1, x2, y2 = (np.asarray(boxes[i], dtype=float) * scale).tolist()
        color = _PALETTE[i % len(_PALETTE)]
        draw.rectangle([x1, y1 + line_h, x2, y2 + line_h], outline=color, width=2)
        draw.text((x1 + 2, y1 + line_h + 1), f"{labels[i]}.{i}", fill=color, font=font)
    y = img.height + line_h + 4
    for r in rels:
        s, o, pred = int(r[0]), int(r[1]), r[2]
        text = f"{labels[s]}.{s} {pred} {labels[o]}.{o}"
        color = "black"
        for extra in r[3:]:
            if isinstance(extra, (bool, np.bool_)):
                color = (0, 140, 0) if extra else (200, 0, 0)
            elif isinstance(extra, (float, np.floating)):
                text += f"  {extra:.2f}"
        draw.text((4, y), text, fill=color, font=font)
        y += line_h
    return canvas


def side_by_side(panels: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Concatenate images horizontally on a white background, tops aligned."""
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    out = Image.new("RGB", (width, max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out
