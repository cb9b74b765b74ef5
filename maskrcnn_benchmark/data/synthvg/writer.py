"""Generate SynthVG images in worker processes and write the VG150 files."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from typing import Callable, Optional, Sequence

import h5py
import numpy as np

from .render import draw_scene
from .scenes import annotate, sample_scene
from .vocab import ATTRIBUTES, CLASSES, PREDICATES

FIRST_IMAGE_ID = 10000  # clear of VG's four corrupted ids (1592, 1722, 4616, 4617)
GROUPS_FILE = "predicate_groups.json"
META_FILE = "synthvg_meta.json"
FORMAT_VERSION = 1
_COLOUR_ATTR = {
    "man": "blue", "woman": "red", "child": "yellow", "dog": "brown", "horse": "brown",
    "car": "red", "bus": "yellow", "bike": "green", "wheel": "black", "window": "blue",
    "street": "grey", "grass": "green", "table": "brown", "bench": "green", "bed": "white",
    "building": "brown", "tree": "green", "pole": "grey", "sign": "red", "lamp": "yellow",
    "cup": "white", "phone": "black", "book": "blue", "pizza": "yellow", "bag": "tan",
    "ball": "orange", "hat": "purple", "shirt": "green", "umbrella": "purple", "bird": "blue",
}
_STATE_ATTR = {"shirt": "striped", "table": "wooden", "bench": "wooden", "pole": "metal",
               "child": "small", "building": "tall", "tree": "tall", "bus": "large"}


def _attributes(o) -> list[str]:
    out = [_COLOUR_ATTR[o.cls]]
    st = o.state
    if "pose" in st:
        out.append(st["pose"])
    if "moving" in st:
        out.append("moving" if st["moving"] else "parked")
    if "flying" in st:
        out.append("flying" if st["flying"] else "perched")
    if st.get("lean"):
        out.append("leaning")
    if o.cls in _STATE_ATTR:
        out.append(_STATE_ATTR[o.cls])
    return out


def make_image(task: tuple) -> dict:
    """One image: ``(seed, split, index, image_id, image_size, img_dir)`` -> its annotation
    (boxes float pixels xyxy, class ids, relations (s, o, predicate id), attribute ids)."""
    seed, split, index, image_id, size, img_dir = task
    rng = np.random.default_rng([seed, split, index])
    short = int(round(size * rng.uniform(0.62, 0.85)))
    width, height = (size, short) if rng.random() < 0.75 else (short, size)
    scene = sample_scene(rng, width, height)
    rels = annotate(scene)
    draw_scene(scene).save(os.path.join(img_dir, f"{image_id}.jpg"), quality=90)
    order = rng.permutation(len(scene.objs))  # list objects in no meaningful order
    pos = np.argsort(order)
    objs = [scene.objs[j] for j in order]
    boxes = np.array([o.box for o in objs], np.float64).reshape(-1, 4)
    boxes = np.clip(boxes, 0, [width, height, width, height])
    return {
        "width": width, "height": height, "image_id": image_id, "split": split,
        "boxes": boxes,
        "labels": np.array([CLASSES.index(o.cls) + 1 for o in objs], np.int64),
        "relations": np.array([(pos[s], pos[o], PREDICATES.index(p) + 1) for s, o, p in rels],
                              np.int64).reshape(-1, 3),
        "attributes": [[ATTRIBUTES.index(a) + 1 for a in _attributes(o)][:10] for o in objs],
    }


def encode_boxes(boxes: np.ndarray, width: int, height: int, scale: int) -> np.ndarray:
    """xyxy pixels -> (cx, cy, w, h) int32 with the longer side scaled to ``scale``, such that
    SGB's decoding (x1 = int(cx - w / 2), x2 = x1 + w) gives back floor/ceil of the box."""
    s = scale / max(width, height)
    lim = np.array([int(width * s), int(height * s)] * 2)
    xy1 = np.floor(boxes[:, :2] * s + 1e-6)
    xy2 = np.ceil(boxes[:, 2:] * s - 1e-6)
    b = np.clip(np.concatenate([xy1, xy2], 1), 0, lim).astype(np.int64)
    wh = np.maximum(b[:, 2:] - b[:, :2], 1)
    centre = b[:, :2] + (wh + 1) // 2
    return np.concatenate([centre, wh], 1).astype(np.int32)


def predicate_groups(counts: dict[str, int], predicates: Sequence[str] = PREDICATES,
                     dataset: str = "SynthVG") -> dict:
    """HEAD (>= 8 % of the train relations) / TAIL (< 2 %) / BODY (the rest), same JSON layout
    as data/resources/vg150_longtail_split.json. ``predicates``: the names of ids 1, 2, ..."""
    total = max(1, sum(counts.values()))
    groups = {"description": f"HEAD/BODY/TAIL predicate split of this {dataset} dataset by share "
                             "of its train relations (head >= 8 %, tail < 2 %); ids are 1-based "
                             "predicate indices of VG-SGG-dicts-with-attri.json."}
    for name, keep in (("head", lambda c: c >= 0.08 * total),
                       ("body", lambda c: 0.02 * total <= c < 0.08 * total),
                       ("tail", lambda c: c < 0.02 * total)):
        ids = [i + 1 for i, p in enumerate(predicates) if keep(counts.get(p, 0))]
        groups[name] = {"ids": ids, "names": [predicates[i - 1] for i in ids]}
    return groups


def _atomic_json(path: str, obj) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def write_dataset(out_dir: str, records: list[dict], classes: Sequence[str] = CLASSES,
                  predicates: Sequence[str] = PREDICATES, attributes: Sequence[str] = ATTRIBUTES,
                  dataset: str = "SynthVG") -> dict:
    """The VG150 files of ``records`` (h5 rows in their order; val = the first train ones) and
    ``predicate_groups.json``; ``classes`` / ``predicates`` / ``attributes`` name ids 1, 2, ...
    Returns the dicts JSON."""
    n_box = np.array([len(r["labels"]) for r in records], np.int64)
    n_rel = np.array([len(r["relations"]) for r in records], np.int64)
    first_box = np.concatenate([[0], np.cumsum(n_box)[:-1]]).astype(np.int64)
    first_rel = np.concatenate([[0], np.cumsum(n_rel)[:-1]]).astype(np.int64)
    labels = np.concatenate([r["labels"] for r in records]).astype(np.int64)
    attrs = np.zeros((len(labels), 10), np.int64)
    row = 0
    for r in records:
        for a in r["attributes"]:
            attrs[row, :len(a)] = a
            row += 1
    rels = np.concatenate([r["relations"] for r in records]).reshape(-1, 3)
    global_rels = rels[:, :2] + np.repeat(first_box, n_rel)[:, None]
    boxes = {s: np.concatenate([encode_boxes(r["boxes"], r["width"], r["height"], s)
                                for r in records]).reshape(-1, 4) for s in (1024, 512)}
    tmp = os.path.join(out_dir, "VG-SGG-with-attri.h5.tmp")
    with h5py.File(tmp, "w") as f:
        f["split"] = np.array([r["split"] for r in records], np.int32)
        f["img_to_first_box"] = np.where(n_box > 0, first_box, -1).astype(np.int32)
        f["img_to_last_box"] = np.where(n_box > 0, first_box + n_box - 1, -1).astype(np.int32)
        f["img_to_first_rel"] = np.where(n_rel > 0, first_rel, -1).astype(np.int32)
        f["img_to_last_rel"] = np.where(n_rel > 0, first_rel + n_rel - 1, -1).astype(np.int32)
        f["labels"] = labels[:, None]
        f["boxes_1024"], f["boxes_512"] = boxes[1024], boxes[512]
        f["relationships"] = global_rels.astype(np.int32)
        f["predicates"] = rels[:, 2:].astype(np.int64)
        f["attributes"] = attrs
        f["active_object_mask"] = np.ones((len(labels), 1), bool)
    os.replace(tmp, os.path.join(out_dir, "VG-SGG-with-attri.h5"))

    train = [r for r in records if r["split"] == 0]
    count = lambda names, arrays: {  # noqa: E731
        n: int(c) for n, c in zip(names, np.bincount(np.concatenate(arrays).astype(np.int64),
                                                     minlength=len(names) + 1)[1:])}
    train_labels = [r["labels"] for r in train] or [np.zeros(0, np.int64)]
    train_preds = [r["relations"][:, 2] for r in train] or [np.zeros(0, np.int64)]
    train_attrs = [np.array([a for at in r["attributes"] for a in at], np.int64) for r in train]
    dicts = {
        "object_count": count(classes, train_labels),
        "idx_to_label": {str(i + 1): c for i, c in enumerate(classes)},
        "predicate_to_idx": {p: i + 1 for i, p in enumerate(predicates)},
        "predicate_count": count(predicates, train_preds),
        "idx_to_predicate": {str(i + 1): p for i, p in enumerate(predicates)},
        "label_to_idx": {c: i + 1 for i, c in enumerate(classes)},
        "attribute_count": count(attributes, train_attrs or [np.zeros(0, np.int64)]),
        "idx_to_attribute": {str(i + 1): a for i, a in enumerate(attributes)},
        "attribute_to_idx": {a: i + 1 for i, a in enumerate(attributes)},
    }
    _atomic_json(os.path.join(out_dir, "VG-SGG-dicts-with-attri.json"), dicts)
    _atomic_json(os.path.join(out_dir, "image_data.json"), [
        {"width": r["width"], "height": r["height"], "image_id": r["image_id"],
         "url": f"VG_100K/{r['image_id']}.jpg", "coco_id": None, "flickr_id": None}
        for r in records])
    _atomic_json(os.path.join(out_dir, GROUPS_FILE),
                 predicate_groups(dicts["predicate_count"], predicates, dataset))
    return dicts


def generate(out_dir: str, seed: int = 0, num_train: int = 3800, num_test: int = 1000,
             image_size: int = 256, workers: Optional[int] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Write a SynthVG dataset (see the package docstring) to ``out_dir``; returns a summary.

    Deterministic for (seed, num_train, num_test, image_size) whatever ``workers`` is: image i
    of a split is drawn from its own random stream ``(seed, split, i)``.
    """
    if num_train < 1 or num_test < 0 or image_size < 64:
        raise ValueError("need num_train >= 1, num_test >= 0 and image_size >= 64")
    start = time.time()
    img_dir = os.path.join(out_dir, "VG_100K")
    os.makedirs(img_dir, exist_ok=True)
    meta_path = os.path.join(out_dir, META_FILE)
    if os.path.exists(meta_path):
        os.remove(meta_path)  # the folder is incomplete until the new meta file is written
    tasks = [(seed, 0, i, FIRST_IMAGE_ID + i, image_size, img_dir) for i in range(num_train)]
    tasks += [(seed, 2, i, FIRST_IMAGE_ID + num_train + i, image_size, img_dir)
              for i in range(num_test)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    records = []
    if workers == 1:
        for t in tasks:
            records.append(make_image(t))
            if progress:
                progress(len(records), len(tasks))
    else:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            for rec in pool.imap(make_image, tasks, chunksize=16):
                records.append(rec)
                if progress:
                    progress(len(records), len(tasks))
    dicts = write_dataset(out_dir, records)
    meta = {"format_version": FORMAT_VERSION, "seed": seed, "num_train": num_train,
            "num_test": num_test, "image_size": image_size}
    _atomic_json(meta_path, meta)
    return {**meta, "seconds": time.time() - start, "num_objects": int(
        sum(len(r["labels"]) for r in records)), "num_relations": int(
        sum(len(r["relations"]) for r in records)), "predicate_count": dicts["predicate_count"]}
