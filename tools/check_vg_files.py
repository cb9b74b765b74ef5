#!/usr/bin/env python
"""Check that a VG150-format dataset is complete and consistent, before training on it.

    python tools/check_vg_files.py [--config-file FILE] [--workers N] [KEY VALUE ...]

Opens the DATASETS.TRAIN / VAL / TEST splits under DATASETS.DATA_DIR exactly as training does
(all h5 / JSON checks), stats every image file of each split, decodes every image (in N threads)
and prints the counts. Exit status 1 with a message naming the file and the fix on any problem.
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from PIL import Image

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.data import DatasetError
from maskrcnn_benchmark.data.build import dataset_args
from maskrcnn_benchmark.data.datasets.visual_genome import VGDataset


def decode_error(path: str) -> Optional[str]:
    """Why ``path`` cannot be decoded in full, or None."""
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as e:  # noqa: BLE001 - any decoding failure is reported with its reason
        return f"{path}: {type(e).__name__}: {e}"
    return None


def check_decoding(ds: VGDataset, name: str, workers: int) -> None:
    """Decode every image of ``ds``; DatasetError listing the broken ones."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        errors = [e for e in pool.map(decode_error, (ds.image_path(i) for i in range(len(ds))), chunksize=16) if e]
    if errors:
        more = f" ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise DatasetError(f"{name}: {len(errors)} of {len(ds)} images cannot be decoded ({'; '.join(errors[:5])}"
                           f"{more}); re-download or regenerate them")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", default="")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding threads (default: CPUs)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config_file or None, a.opts)
        for split in ("train", "val", "test"):
            name, args = dataset_args(cfg, split)
            ds = VGDataset(args["split"], args["img_dir"], args["roidb_file"], args["dict_file"],
                           args["image_file"], filter_empty_rels=cfg.DATASETS.FILTER_EMPTY_RELS,
                           num_im=cfg.DATASETS.NUM_IM, num_val_im=cfg.DATASETS.NUM_VAL_IM,
                           filter_duplicate_rels=False, check_images=True)
            check_decoding(ds, name, a.workers)
            if len(ds):
                ds[0]
            n_rel = sum(len(ds.raw_annotations(i)[2]) for i in range(len(ds)))
            n_box = sum(len(ds.raw_annotations(i)[1]) for i in range(len(ds)))
            print(f"{name}: {len(ds)} images (all decoded), {n_box} objects, {n_rel} relations "
                  f"({len(ds.ind_to_classes) - 1} classes, "
                  f"{len(ds.ind_to_predicates) - 1} predicates)")
    except (ConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
