#!/usr/bin/env python
"""Generate SynthVG, the embedded VG150-format dataset (``make data``).

    python tools/make_synthvg.py --out datasets/synthvg [--seed 0] [--num-train 3800]
        [--num-test 1000] [--image-size 256] [--workers N] [--force]

An existing dataset made with the same arguments is kept unless --force is given.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from tqdm import tqdm

from maskrcnn_benchmark.data.synthvg import GROUPS_FILE, META_FILE, generate_synthvg
from maskrcnn_benchmark.data.synthvg.writer import FORMAT_VERSION


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="datasets/synthvg", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-train", type=int, default=3800,
                   help="train+val images (val = the first DATASETS.NUM_VAL_IM of them)")
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=256, help="longer image side, pixels")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per CPU)")
    p.add_argument("--force", action="store_true", help="regenerate even if up to date")
    a = p.parse_args(argv)
    meta = {"format_version": FORMAT_VERSION, "seed": a.seed, "num_train": a.num_train,
            "num_test": a.num_test, "image_size": a.image_size}
    meta_path = os.path.join(a.out, META_FILE)
    outputs = ("VG-SGG-with-attri.h5", "VG-SGG-dicts-with-attri.json", "image_data.json",
               GROUPS_FILE, "VG_100K")
    if not a.force and all(os.path.exists(os.path.join(a.out, n)) for n in (META_FILE,) + outputs):
        with open(meta_path) as f:
            if json.load(f) == meta:
                print(f"{a.out} is up to date ({meta}); use --force to regenerate")
                return 0
    bar = tqdm(total=a.num_train + a.num_test, unit="img", desc="SynthVG", disable=None)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        summary = generate_synthvg(a.out, seed=a.seed, num_train=a.num_train,
                                   num_test=a.num_test, image_size=a.image_size,
                                   workers=a.workers or None, progress=progress)
    except ValueError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    bar.close()
    counts = summary["predicate_count"]
    total = max(1, sum(counts.values()))
    print(f"wrote {a.out}: {a.num_train} train+val / {a.num_test} test images, "
          f"{summary['num_objects']} objects, {summary['num_relations']} relations in "
          f"{summary['seconds']:.1f} s")
    print("train predicate counts: " + ", ".join(
        f"{k} {v} ({100 * v / total:.1f}%)" for k, v in sorted(counts.items(),
                                                               key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
