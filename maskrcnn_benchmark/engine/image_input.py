"""Users' own images for scene-graph inference: listing, safe decoding, given boxes, batching.

Nothing here reads dataset files. Images are decoded with Pillow, EXIF orientation applied,
refused when larger than INPUT.MAX_INPUT_PIXELS (a pixel count, checked from the header before
decoding) and reported, never raised, when unreadable. Boxes given by the user (``--boxes``
JSON) are in original image pixels; see :func:`read_boxes_file` for the format.
"""
from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from maskrcnn_benchmark.data.image import to_rgb

__all__ = ["BoxesFileError", "GivenBoxes", "ImageEntry", "ImageRefused", "InferenceImages", "IMAGE_EXTENSIONS",
           "boxes_mode", "check_box_counts", "check_boxes", "collate_items", "list_images", "match_boxes", "open_image",
           "read_boxes_file"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                              ".pgm", ".pbm", ".jfif", ".jp2", ".ico", ".tga"})


class ImageRefused(Exception):
    """An image that is not processed: unreadable, corrupt, or too large (the message says why)."""


class BoxesFileError(ValueError):
    """The ``--boxes`` JSON file is missing or malformed (the message names the file and entry)."""


@dataclass(frozen=True)
class ImageEntry:
    """One image to process: ``path`` as the user gave it (joined with its folder), ``key`` its
    name relative to that folder (the basename for a file argument)."""

    path: str
    key: str


def list_images(inputs: Sequence[str]) -> List[ImageEntry]:
    """Expand files and folders into image entries: a folder gives every file under it (recursively,
    sorted) with an image extension; a file is kept whatever its extension (Pillow decides).
    The same file named twice is listed once. A path that does not exist raises FileNotFoundError."""
    out: List[ImageEntry] = []
    seen = set()
    for item in inputs:
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files)
                          if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
            pairs = [(p, os.path.relpath(p, item)) for p in found]
        elif os.path.isfile(item):
            pairs = [(item, os.path.basename(item))]
        else:
            raise FileNotFoundError(f"--images: no such file or folder: {item}")
        for path, key in pairs:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                out.append(ImageEntry(path=path, key=key.replace(os.sep, "/")))
    return out


@contextmanager
def _pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Let Pillow's own decompression-bomb guard follow our limit (we check it ourselves)."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels if max_pixels > 0 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (f"image is {width}x{height} = {width * height} pixels, more than INPUT.MAX_INPUT_PIXELS "
            f"({max_pixels}); downscale it or raise the limit (override INPUT.MAX_INPUT_PIXELS N)")


def open_image(path: str, max_pixels: int = 0) -> Image.Image:
    """Decode ``path`` as an 8-bit RGB image with its EXIF orientation applied (16-bit grayscale
    scaled, not clipped: :func:`~maskrcnn_benchmark.data.image.to_rgb`).

    ``max_pixels`` > 0: refuse images with more pixels (width x height) before decoding them.
    Raises :class:`ImageRefused` with the reason for anything that cannot be used.
    """
    try:
        with _pillow_pixel_limit(max_pixels):
            with Image.open(path) as img:
                width, height = img.size
                if max_pixels > 0 and width * height > max_pixels:
                    raise ImageRefused(_too_large(width, height, max_pixels))
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
    except ImageRefused:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRefused(f"image is larger than INPUT.MAX_INPUT_PIXELS ({max_pixels}): {e}") from e
    except FileNotFoundError as e:
        raise ImageRefused(f"file not found: {path}") from e
    except UnidentifiedImageError as e:
        raise ImageRefused(f"not an image Pillow can read ({e})") from e
    except MemoryError as e:
        raise ImageRefused("not enough memory to decode the image; downscale it or lower "
                           "INPUT.MAX_INPUT_PIXELS") from e
    except Exception as e:  # truncated / corrupt data: Pillow raises OSError, ValueError, SyntaxError...
        raise ImageRefused(f"corrupt or unreadable image ({type(e).__name__}: {e})") from e


@dataclass
class GivenBoxes:
    """User boxes for one image: ``boxes`` float64[N, 4] xyxy in original pixels, ``labels``
    int64[N] (1..C-1) or None (SGCls); ``key`` the boxes-file entry they came from."""

    boxes: np.ndarray
    labels: Optional[np.ndarray]
    key: str


def _label_index(value: Any, names: Mapping[str, int], num_classes: int, where: str) -> int:
    if isinstance(value, str):
        if value not in names:
            raise BoxesFileError(f"{where}: unknown object class {value!r} (the checkpoint's classes: "
                                 f"{', '.join(list(names)[:20])}{' ...' if len(names) > 20 else ''})")
        return names[value]
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < num_classes:
        return value
    raise BoxesFileError(f"{where}: label {value!r} is neither a class name nor an index in 1..{num_classes - 1}")


def read_boxes_file(path: str, obj_classes: Sequence[str]) -> Dict[str, GivenBoxes]:
    """Read the ``--boxes`` JSON: an object mapping image names to boxes::

        {"kitchen/img1.jpg": {"boxes": [[x1, y1, x2, y2], ...], "labels": ["person", 12, ...]},
         "img2.png": {"boxes": [[...], ...]},
         "img3.png": [[x1, y1, x2, y2], ...]}

    Names are matched to images by their path as given, their path relative to the ``--images``
    folder, or their file name. Boxes are in original image pixels (x2 > x1, y2 > y1). Labels
    (class names of the checkpoint or indices 1..C-1) are optional but must be given for every
    image or for none: with labels the run is PredCls, without SGCls.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise BoxesFileError(f"--boxes file not found: {path}") from e
    except (OSError, ValueError) as e:
        raise BoxesFileError(f"--boxes file {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not data:
        raise BoxesFileError(f"--boxes file {path}: expected a non-empty JSON object mapping image names to "
                             "{\"boxes\": [[x1, y1, x2, y2], ...], \"labels\": [...]} (see docs/inference.md)")
    names = {str(n): i for i, n in enumerate(obj_classes) if i > 0}
    out: Dict[str, GivenBoxes] = {}
    for key, entry in data.items():
        where = f"--boxes file {path}, entry {key!r}"
        if isinstance(entry, list):
            entry = {"boxes": entry}
        if not isinstance(entry, dict) or "boxes" not in entry:
            raise BoxesFileError(f"{where}: expected {{\"boxes\": [[x1, y1, x2, y2], ...], \"labels\": [...]}}")
        unknown = sorted(set(entry) - {"boxes", "labels"})
        if unknown:
            raise BoxesFileError(f"{where}: unknown fields {unknown} (allowed: boxes, labels)")
        try:
            boxes = np.asarray(entry["boxes"], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise BoxesFileError(f"{where}: boxes must be a list of [x1, y1, x2, y2] numbers ({e})") from e
        if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
            raise BoxesFileError(f"{where}: boxes must be a non-empty list of [x1, y1, x2, y2], got shape "
                                 f"{list(boxes.shape)}")
        bad = np.flatnonzero(~np.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
        if len(bad):
            raise BoxesFileError(f"{where}: box {int(bad[0])} {boxes[bad[0]].tolist()} is not a finite xyxy box "
                                 "with x2 > x1 and y2 > y1")
        labels = None
        if entry.get("labels") is not None:
            raw = entry["labels"]
            if not isinstance(raw, list) or len(raw) != len(boxes):
                raise BoxesFileError(f"{where}: labels must be a list with one entry per box ({len(boxes)})")
            labels = np.asarray([_label_index(v, names, len(obj_classes), f"{where}, label {j}")
                                 for j, v in enumerate(raw)], dtype=np.int64)
        out[str(key).replace(os.sep, "/")] = GivenBoxes(boxes=boxes, labels=labels, key=str(key))
    with_labels = sum(g.labels is not None for g in out.values())
    if 0 < with_labels < len(out):
        raise BoxesFileError(f"--boxes file {path}: {with_labels} of {len(out)} entries have labels; give labels "
                             "for every image (PredCls) or for none (SGCls)")
    return out


def check_box_counts(given: Mapping[str, GivenBoxes], limit: int, path: str) -> None:
    """Refuse entries with more than ``limit`` boxes (MODEL.ROI_HEADS.DETECTIONS_PER_IMG, the
    most objects SGDet keeps): the pairs, and the memory, grow with the square of the count
    (300 boxes are 89700 pairs, ~2.5 GB)."""
    over = sorted(((len(g.boxes), g.key) for g in given.values() if len(g.boxes) > limit), reverse=True)
    if limit > 0 and over:
        n, key = over[0]
        raise BoxesFileError(f"--boxes file {path}: {len(over)} entries have more than {limit} boxes (entry {key!r}: "
                             f"{n}), the limit MODEL.ROI_HEADS.DETECTIONS_PER_IMG sets (pairs and memory grow with "
                             f"its square); keep the {limit} boxes that matter or raise the limit (override "
                             "MODEL.ROI_HEADS.DETECTIONS_PER_IMG N)")


def boxes_mode(given: Mapping[str, GivenBoxes]) -> str:
    """"predcls" when the given boxes carry labels, else "sgcls"."""
    return "predcls" if any(g.labels is not None for g in given.values()) else "sgcls"


def match_boxes(entries: Sequence[ImageEntry], given: Mapping[str, GivenBoxes]
                ) -> List[Union[GivenBoxes, str]]:
    """Per image its :class:`GivenBoxes`, or the reason (str) it has none. An entry name matches
    the path as given, the folder-relative name, or the file name; a file name shared by several
    images matches none of them (use the relative name)."""
    by_name: Dict[str, List[int]] = {}
    for i, e in enumerate(entries):
        by_name.setdefault(os.path.basename(e.key), []).append(i)
    out: List[Union[GivenBoxes, str]] = []
    for e in entries:
        norm = os.path.normpath(e.path).replace(os.sep, "/")
        hit = given.get(e.path) or given.get(norm) or given.get(e.key)
        if hit is None:
            base = os.path.basename(e.key)
            if base in given:
                hit = given[base] if len(by_name[base]) == 1 else (
                    f"--boxes entry {base!r} matches {len(by_name[base])} images; name it by its path "
                    f"relative to the --images folder ({e.key!r})")
        out.append(hit if hit is not None else f"no entry for this image in the --boxes file (tried {e.key!r})")
    return out


def check_boxes(given: GivenBoxes, width: int, height: int) -> Optional[str]:
    """The reason the given boxes do not fit a ``width`` x ``height`` image, or None."""
    b = given.boxes
    out = np.flatnonzero((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > width) | (b[:, 3] > height))
    if len(out):
        return (f"--boxes entry {given.key!r}: box {int(out[0])} {b[out[0]].tolist()} lies outside the "
                f"{width}x{height} image (boxes are in original image pixels, EXIF orientation applied)")
    return None


class InferenceImages(torch.utils.data.Dataset):
    """Decoded, resized and normalised images for :class:`torch.utils.data.DataLoader`.

    Args:
        entries: the images; transforms: the test transforms (``build_transforms(cfg, False)``).
        max_pixels: INPUT.MAX_INPUT_PIXELS (<= 0: no limit).
        given: per image the user's boxes, a reason string (the image is skipped), or None (SGDet).
        display_size: longer side of the copy kept for drawing (<= 0: original size).

    ``ds[i]`` -> dict ``index``, ``entry``, and either ``error`` (str) or ``image`` FloatTensor[3, h, w],
    ``orig_size`` (H, W) after EXIF orientation, ``target`` ({"boxes" [N, 4] in resized pixels,
    "labels" Int64[N] (zeros in SGCls)} or None), ``given``, ``display`` (PIL), ``display_scale``.
    """

    def __init__(self, entries: Sequence[ImageEntry], transforms, max_pixels: int = 0,
                 given: Optional[Sequence[Union[GivenBoxes, str, None]]] = None, display_size: int = 1024):
        if given is not None and len(given) != len(entries):
            raise ValueError("given must hold one item per entry")
        self.entries, self.transforms, self.max_pixels = list(entries), transforms, int(max_pixels)
        self.given = list(given) if given is not None else [None] * len(self.entries)
        self.display_size = display_size

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        entry, given = self.entries[i], self.given[i]
        item: Dict[str, Any] = {"index": i, "entry": entry, "error": None}
        if isinstance(given, str):
            item["error"] = given
            return item
        try:
            img = open_image(entry.path, self.max_pixels)
        except ImageRefused as e:
            item["error"] = str(e)
            return item
        width, height = img.size
        target = None
        if given is not None:
            reason = check_boxes(given, width, height)
            if reason:
                item["error"] = reason
                return item
            labels = given.labels if given.labels is not None else np.zeros(len(given.boxes), np.int64)
            target = {"boxes": torch.as_tensor(given.boxes, dtype=torch.float32),
                      "labels": torch.as_tensor(labels, dtype=torch.int64)}
        scale = 1.0
        if self.display_size > 0 and max(width, height) > self.display_size:
            scale = self.display_size / max(width, height)
        display = img if scale == 1.0 else img.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
        try:
            tensor, target = self.transforms(img, target)
        except Exception as e:  # noqa: BLE001 - an image the transforms cannot take is skipped, with the reason
            item["error"] = f"cannot be resized for the model ({type(e).__name__}: {e})"
            return item
        item.update(image=tensor, orig_size=(height, width), target=target, given=given,
                    display=display, display_scale=scale)
        return item


def collate_items(batch: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Items stay a list: the runner splits the readable images from the refused ones."""
    return batch
