"""Fixtures of the data tests: hand-made VG150 files and a tiny generated SynthVG set."""
import json
import os

import h5py
import numpy as np
import pytest
from PIL import Image

CLASSES = {"cat": 1, "dog": 2, "hat": 3}
PREDICATES = {"on": 1, "has": 2, "near": 3}


def cxcywh(x1, y1, x2, y2):
    """xyxy on the 1024 scale -> the (cx, cy, w, h) that SGB's decoding turns back into it."""
    w, h = x2 - x1, y2 - y1
    return [x1 + (w + 1) // 2, y1 + (h + 1) // 2, w, h]


def write_vg(root, images, classes=CLASSES, predicates=PREDICATES, write_images=True,
             extra_image_data=()):
    """Write SGB's four VG150 files under ``root``.

    ``images``: dicts with ``split`` (0/2), ``width``, ``height``, ``image_id``, ``boxes``
    (xyxy on the 1024 scale), ``labels`` and ``rels`` [(subject, object, predicate)] with
    per-image object indices. Returns the file arguments of VGDataset.
    """
    os.makedirs(os.path.join(root, "VG_100K"), exist_ok=True)
    fb, lb, fr, lr, boxes, labels, rels, preds = [], [], [], [], [], [], [], []
    for im in images:
        n, m = len(im["labels"]), len(im["rels"])
        fb.append(len(labels) if n else -1)
        lb.append(len(labels) + n - 1 if n else -1)
        fr.append(len(rels) if m else -1)
        lr.append(len(rels) + m - 1 if m else -1)
        rels += [[len(labels) + s, len(labels) + o] for s, o, _ in im["rels"]]
        preds += [p for _, _, p in im["rels"]]
        boxes += [cxcywh(*b) for b in im["boxes"]]
        labels += list(im["labels"])
        if write_images:
            Image.new("RGB", (im["width"], im["height"]), (90, 120, 150)).save(
                os.path.join(root, "VG_100K", f"{im['image_id']}.jpg"))
    with h5py.File(os.path.join(root, "VG-SGG-with-attri.h5"), "w") as f:
        f["split"] = np.array([im["split"] for im in images], np.int32)
        for key, v in (("img_to_first_box", fb), ("img_to_last_box", lb),
                       ("img_to_first_rel", fr), ("img_to_last_rel", lr)):
            f[key] = np.array(v, np.int32)
        f["labels"] = np.array(labels, np.int64).reshape(-1, 1)
        f["boxes_1024"] = np.array(boxes, np.int32).reshape(-1, 4)
        f["boxes_512"] = np.array(boxes, np.int32).reshape(-1, 4) // 2
        f["relationships"] = np.array(rels, np.int32).reshape(-1, 2)
        f["predicates"] = np.array(preds, np.int64).reshape(-1, 1)
        f["attributes"] = np.zeros((len(labels), 10), np.int64)
    with open(os.path.join(root, "VG-SGG-dicts-with-attri.json"), "w") as f:
        json.dump({"label_to_idx": classes, "predicate_to_idx": predicates,
                   "idx_to_label": {str(v): k for k, v in classes.items()},
                   "idx_to_predicate": {str(v): k for k, v in predicates.items()}}, f)
    entries = [{"width": im["width"], "height": im["height"], "image_id": im["image_id"],
                "url": "", "coco_id": None, "flickr_id": None} for im in images]
    with open(os.path.join(root, "image_data.json"), "w") as f:
        json.dump(list(extra_image_data) + entries, f)
    return {"img_dir": os.path.join(root, "VG_100K"),
            "roidb_file": os.path.join(root, "VG-SGG-with-attri.h5"),
            "dict_file": os.path.join(root, "VG-SGG-dicts-with-attri.json"),
            "image_file": os.path.join(root, "image_data.json")}


def image(image_id, split=0, boxes=((0, 0, 100, 100), (50, 50, 200, 200)), labels=(1, 2),
          rels=((0, 1, 1),), width=128, height=96):
    return {"image_id": image_id, "split": split, "width": width, "height": height,
            "boxes": list(boxes), "labels": list(labels), "rels": list(rels)}


@pytest.fixture
def vg_image():
    """``vg_image(image_id, **fields)``: one image entry for ``vg_files``."""
    return image


@pytest.fixture
def vg_files(tmp_path):
    """``vg_files(images, folder="vg", **kw) -> VGDataset file arguments``, written under
    ``tmp_path/folder``."""
    def make(images, folder="vg", **kw):
        return write_vg(str(tmp_path / folder), images, **kw)
    return make


@pytest.fixture
def vg_write():
    """``write_vg(root, images, **kw)``: (re)write the files of a folder."""
    return write_vg


@pytest.fixture(scope="session")
def synthvg_dir(tmp_path_factory):
    """A tiny SynthVG set (``datasets/synthvg`` layout under the returned DATA_DIR)."""
    from maskrcnn_benchmark.data.synthvg import generate_synthvg
    data_dir = tmp_path_factory.mktemp("data")
    out = str(data_dir / "synthvg")
    summary = generate_synthvg(out, seed=3, num_train=48, num_test=16, image_size=128,
                               workers=1)
    return str(data_dir), summary
