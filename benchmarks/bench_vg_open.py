"""Open time and memory of VGDataset at full VG150 scale (random content, no images).

    python benchmarks/bench_vg_open.py [--dir /tmp/vg150_bench] [--stats]

Writes a VG-SGG-with-attri.h5 of VG150's size (108,073 images, 1,145,398 boxes, 622,705
relations; 151 classes, 51 predicates), an image_data.json with the four corrupted VG entries
and the dicts JSON, then, in a fresh process per split, prints the time to construct the
VGDataset (all file checks included; image files are checked lazily, as by default) and the
process's peak RSS before and after. ``--stats`` also times the frequency statistics of train.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

N_IMAGES, N_BOXES, N_RELS = 108_073, 1_145_398, 622_705
CHILD = r"""
import resource, sys, time
from maskrcnn_benchmark.data import VGDataset
d, split, stats = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss()
t = time.perf_counter()
ds = VGDataset(split, d + "/VG_100K", d + "/VG-SGG-with-attri.h5",
               d + "/VG-SGG-dicts-with-attri.json", d + "/image_data.json",
               filter_duplicate_rels=False)
open_s = time.perf_counter() - t
t = time.perf_counter()
for i in range(0, len(ds), max(1, len(ds) // 1000)):
    ds.get_groundtruth(i)
gt_ms = (time.perf_counter() - t) / len(range(0, len(ds), max(1, len(ds) // 1000))) * 1e3
line = (f"{split:5s}: {len(ds):6d} images  open {open_s:5.2f} s  peak RSS {before:6.0f} MB "
        f"(after imports) -> {rss():6.0f} MB (+{rss() - before:.0f})  "
        f"get_groundtruth {gt_ms:.3f} ms")
if stats:
    from maskrcnn_benchmark.data.statistics import compute_statistics
    t = time.perf_counter()
    compute_statistics(ds)
    line += f"  statistics {time.perf_counter() - t:.1f} s"
print(line, flush=True)
"""


def write_files(d: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(d, "VG_100K"), exist_ok=True)
    n_box = rng.multinomial(N_BOXES - N_IMAGES, np.full(N_IMAGES, 1 / N_IMAGES)) + 1
    n_rel = rng.multinomial(N_RELS, np.full(N_IMAGES, 1 / N_IMAGES))
    n_rel[n_box < 2] = 0
    n_rel[np.argmax(n_box)] += N_RELS - n_rel.sum()
    width = rng.integers(400, 1025, N_IMAGES)
    height = rng.integers(300, 1025, N_IMAGES)
    scale = 1024 / np.maximum(width, height)
    img_of_box = np.repeat(np.arange(N_IMAGES), n_box)
    ext = np.stack([width * scale, height * scale], 1)[img_of_box].astype(np.int64)
    xy1 = (rng.random((N_BOXES, 2)) * (ext - 4)).astype(np.int64)
    wh = 2 + (rng.random((N_BOXES, 2)) * (ext - xy1 - 2)).astype(np.int64)
    boxes = np.concatenate([xy1 + (wh + 1) // 2, wh], 1).astype(np.int32)
    first_box = np.concatenate([[0], np.cumsum(n_box)[:-1]])
    first_rel = np.concatenate([[0], np.cumsum(n_rel)[:-1]])
    img_of_rel = np.repeat(np.arange(N_IMAGES), n_rel)
    span = n_box[img_of_rel]
    sub = rng.integers(0, span)
    obj = (sub + 1 + rng.integers(0, np.maximum(span - 1, 1))) % span
    rels = np.stack([sub, obj], 1) + first_box[img_of_rel][:, None]
    with h5py.File(os.path.join(d, "VG-SGG-with-attri.h5"), "w") as f:
        f["split"] = np.where(rng.random(N_IMAGES) < 0.7, 0, 2).astype(np.int32)
        f["img_to_first_box"] = first_box.astype(np.int32)
        f["img_to_last_box"] = (first_box + n_box - 1).astype(np.int32)
        f["img_to_first_rel"] = np.where(n_rel > 0, first_rel, -1).astype(np.int32)
        f["img_to_last_rel"] = np.where(n_rel > 0, first_rel + n_rel - 1, -1).astype(np.int32)
        f["labels"] = rng.integers(1, 151, (N_BOXES, 1))
        f["boxes_1024"] = boxes
        f["boxes_512"] = boxes // 2
        f["relationships"] = rels.astype(np.int32)
        f["predicates"] = rng.integers(1, 51, (N_RELS, 1))
        f["attributes"] = np.zeros((N_BOXES, 10), np.int64)
        f["active_object_mask"] = np.ones((N_BOXES, 1), bool)
    entries = [{"width": int(w), "height": int(h), "image_id": int(i), "url": "",
                "coco_id": None, "flickr_id": None}
               for w, h, i in zip(width, height, np.arange(10_000, 10_000 + N_IMAGES))]
    corrupted = [{"width": 500, "height": 500, "image_id": i, "url": "", "coco_id": None,
                  "flickr_id": None} for i in (1592, 1722, 4616, 4617)]
    with open(os.path.join(d, "image_data.json"), "w") as f:
        json.dump(corrupted[:2] + entries[:5000] + corrupted[2:] + entries[5000:], f)
    with open(os.path.join(d, "VG-SGG-dicts-with-attri.json"), "w") as f:
        json.dump({"label_to_idx": {f"class{i}": i for i in range(1, 151)},
                   "predicate_to_idx": {f"predicate{i}": i for i in range(1, 51)}}, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", default="/tmp/vg150_bench")
    p.add_argument("--stats", action="store_true", help="also time the train statistics")
    a = p.parse_args()
    t = time.perf_counter()
    write_files(a.dir)
    size = os.path.getsize(os.path.join(a.dir, "VG-SGG-with-attri.h5")) / 2 ** 20
    print(f"wrote {a.dir} ({size:.0f} MB h5) in {time.perf_counter() - t:.1f} s")
    for split in ("train", "val", "test"):
        subprocess.run([sys.executable, "-c", CHILD, a.dir, split,
                        "1" if a.stats and split == "train" else "0"], check=True)


if __name__ == "__main__":
    main()
