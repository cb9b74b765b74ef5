"""A dataset of your own -> SGB's VG150 files (``tools/convert_to_vg150.py``).

Input: one JSON file plus the folder of its images::

    {"images": [{"file": "street/0001.jpg",            # relative to the image folder
                 "width": 640, "height": 480,           # optional; checked against the file
                 "split": "train",                      # optional: "train" | "val" | "test"
                 "image_id": 17,                        # optional unique int (else 10000 + row)
                 "objects": [{"box": [x1, y1, x2, y2], "name": "man"}, ...],   # pixels
                 "relations": [{"subject": 0, "object": 1, "predicate": "riding"}, ...]}]}

Output: ``VG-SGG-with-attri.h5``, ``VG-SGG-dicts-with-attri.json``, ``image_data.json``,
``VG_100K/<image_id>.jpg`` and ``predicate_groups.json`` (HEAD/BODY/TAIL by train frequency, as
SynthVG's), read by the same code as VG150. Relations are kept as given, duplicates included
(VG has them; training keeps one predicate per pair, evaluation all). "val" images become the
first train rows (val = the first DATASETS.NUM_VAL_IM train images, as in SGB).
"""
from __future__ import annotations

import json
import math
import os
import shutil
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .datasets.visual_genome import CORRUPTED_IMAGE_IDS, load_info
from .errors import DatasetError
from .synthvg.writer import FIRST_IMAGE_ID, write_dataset

SPLIT_CODES = {"train": 0, "val": 0, "test": 2}
__all__ = ["convert_dataset", "load_annotations"]


def load_annotations(json_file: str) -> list[dict]:
    """The ``images`` list of the JSON file, with the structure checked (DatasetError naming the
    file, the image and the field otherwise)."""
    try:
        with open(json_file) as f:
            data = json.load(f)
    except OSError as e:
        raise DatasetError(f"cannot read {json_file} ({e})") from e
    except ValueError as e:
        raise DatasetError(f"{json_file} is not valid JSON ({e})") from e
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not images:
        raise DatasetError(f"{json_file}: expected {{\"images\": [...]}} with at least one image "
                           "(schema: docs/data.md, \"Your own dataset\")")
    for i, im in enumerate(images):
        where = f"{json_file}: images[{i}]"
        if not isinstance(im, dict) or not isinstance(im.get("file"), str):
            raise DatasetError(f"{where} needs a \"file\" (the image's path in the image folder)")
        for key in ("objects", "relations"):
            if not isinstance(im.setdefault(key, []), list):
                raise DatasetError(f"{where} ({im['file']}): \"{key}\" must be a list")
        for j, o in enumerate(im["objects"]):
            box = o.get("box") if isinstance(o, dict) else None
            if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)
                    and isinstance(o.get("name"), str) and o["name"]):
                raise DatasetError(f"{where} ({im['file']}): objects[{j}] must be "
                                   "{\"box\": [x1, y1, x2, y2], \"name\": \"class name\"}")
        n = len(im["objects"])
        for j, r in enumerate(im["relations"]):
            ok = isinstance(r, dict) and isinstance(r.get("predicate"), str) and r["predicate"]
            ok = ok and all(isinstance(r.get(k), int) and 0 <= r[k] < n for k in ("subject", "object"))
            if not ok or r["subject"] == r["object"]:
                raise DatasetError(f"{where} ({im['file']}): relations[{j}] must be {{\"subject\": i, "
                                   f"\"object\": j, \"predicate\": \"name\"}} with two different "
                                   f"object indices in 0..{n - 1}, got {r}")
        split = im.get("split")
        if split is not None and split not in SPLIT_CODES:
            raise DatasetError(f"{where} ({im['file']}): split must be train, val or test, got {split!r}")
    return images


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def vocabularies(images: Sequence[dict], dicts_file: Optional[str] = None
                 ) -> tuple[list[str], list[str]]:
    """(class names, predicate names), id 1 first: sorted names of the data, or those of a given
    VG-SGG-dicts JSON, every name of the data then having to be in it."""
    classes = sorted({o["name"] for im in images for o in im["objects"]})
    predicates = sorted({r["predicate"] for im in images for r in im["relations"]})
    if dicts_file is None:
        return classes, predicates
    fixed_classes, fixed_predicates, _ = load_info(dicts_file)
    for what, names, fixed in (("object classes", classes, fixed_classes),
                               ("predicates", predicates, fixed_predicates)):
        unknown = sorted(set(names) - set(fixed[1:]))
        if unknown:
            raise DatasetError(f"{len(unknown)} {what} are not in {dicts_file}: "
                               f"{', '.join(map(repr, unknown[:20]))}{' ...' if len(unknown) > 20 else ''}; "
                               "add them there or convert without --dicts")
    return fixed_classes[1:], fixed_predicates[1:]


def assign_splits(images: Sequence[dict], test_fraction: Optional[float], seed: int) -> list[str]:
    """Each image's split: its own, else test for a seeded ``test_fraction`` of the others."""
    splits = [im.get("split") for im in images]
    free = [i for i, s in enumerate(splits) if s is None]
    if free and test_fraction is None:
        raise DatasetError(f"{len(free)} images have no \"split\" (e.g. {images[free[0]]['file']}): "
                           "give each one or pass --test-fraction")
    if test_fraction is not None and not 0 <= test_fraction < 1:
        raise DatasetError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    if free:
        rng = np.random.default_rng(seed)
        test = set(rng.permutation(free)[:int(round(test_fraction * len(free)))].tolist())
        for i in free:
            splits[i] = "test" if i in test else "train"
    return splits


def _image_record(im: dict, index: int, image_dir: str, split: str, class_ids: dict,
                  predicate_ids: dict) -> tuple[dict, int]:
    """One h5 row (SynthVG writer's record) and the number of boxes clipped to the image."""
    path = os.path.join(image_dir, im["file"])
    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError as e:
        raise DatasetError(f"image not found: {path} (images[{index}] of the JSON file; files "
                           "are relative to the image folder)") from e
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"cannot read image {path} ({e})") from e
    if (im.get("width", width), im.get("height", height)) != (width, height):
        raise DatasetError(f"{path} is {width}x{height} but the JSON file says "
                           f"{im.get('width')}x{im.get('height')}; fix the JSON (or the image)")
    boxes = np.array([o["box"] for o in im["objects"]], np.float64).reshape(-1, 4)
    clipped = np.clip(boxes, 0, [width, height, width, height])
    empty = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if empty.any():
        j = int(np.nonzero(empty)[0][0])
        raise DatasetError(f"{path}: objects[{j}] box {im['objects'][j]['box']} (x1, y1, x2, y2 "
                           f"pixels) is empty or outside the {width}x{height} image")
    record = {
        "width": width, "height": height, "image_id": im.get("image_id", FIRST_IMAGE_ID + index),
        "split": SPLIT_CODES[split], "boxes": clipped,
        "labels": np.array([class_ids[o["name"]] for o in im["objects"]], np.int64),
        "relations": np.array([(r["subject"], r["object"], predicate_ids[r["predicate"]])
                               for r in im["relations"]], np.int64).reshape(-1, 3),
        "attributes": [[] for _ in im["objects"]],
    }
    return record, int((clipped != boxes).any(1).sum())


def convert_dataset(json_file: str, image_dir: str, out_dir: str, *, dicts_file: Optional[str] = None,
                    test_fraction: Optional[float] = None, seed: int = 0, symlink: bool = False) -> dict:
    """Write the VG150 files of the JSON file's dataset to ``out_dir`` (which must not exist or be
    empty: nothing is overwritten; written to a temporary folder, renamed at the end).
    Returns a summary: image / object / relation counts, ``num_val_im``, vocabularies, clipped boxes."""
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise DatasetError(f"{out_dir} already exists and is not empty; give a new --out folder "
                           "(the converter never overwrites)")
    if not os.path.isdir(image_dir):
        raise DatasetError(f"image folder not found: {image_dir}")
    images = load_annotations(json_file)
    classes, predicates = vocabularies(images, dicts_file)
    splits = assign_splits(images, test_fraction, seed)
    ids = [im.get("image_id", FIRST_IMAGE_ID + i) for i, im in enumerate(images)]
    bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or i < 0 or i in CORRUPTED_IMAGE_IDS]
    if bad or len(set(ids)) != len(ids):
        raise DatasetError(f"{json_file}: image_id must be distinct non-negative ints other than VG's "
                           f"skipped {sorted(CORRUPTED_IMAGE_IDS)}; got {bad[:5] or 'duplicates'}")
    class_ids = {c: i + 1 for i, c in enumerate(classes)}
    predicate_ids = {p: i + 1 for i, p in enumerate(predicates)}
    records, clipped = [], 0
    for i, im in enumerate(images):
        rec, n = _image_record(im, i, image_dir, splits[i], class_ids, predicate_ids)
        records.append(rec)
        clipped += n
    order = [i for i, s in enumerate(splits) if s == "val"] + [i for i, s in enumerate(splits) if s != "val"]
    num_val_im = sum(1 for i in order if splits[i] == "val" and len(records[i]["relations"]))

    tmp = f"{out_dir.rstrip(os.sep)}.tmp-{os.getpid()}"
    os.makedirs(os.path.join(tmp, "VG_100K"))
    try:
        for i in order:
            src = os.path.abspath(os.path.join(image_dir, images[i]["file"]))
            dst = os.path.join(tmp, "VG_100K", f"{ids[i]}.jpg")  # read by content, whatever the format
            os.symlink(src, dst) if symlink else shutil.copyfile(src, dst)
        write_dataset(tmp, [records[i] for i in order], classes, predicates, attributes=(),
                      dataset=os.path.basename(os.path.normpath(out_dir)))
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty (checked above)
        os.rename(tmp, out_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    count = lambda split: sum(1 for s in splits if s == split)  # noqa: E731
    return {"images": len(images), "train": count("train"), "val": count("val"), "test": count("test"),
            "objects": sum(len(r["labels"]) for r in records),
            "relations": sum(len(r["relations"]) for r in records), "num_val_im": num_val_im,
            "classes": classes, "predicates": predicates, "clipped_boxes": clipped}
