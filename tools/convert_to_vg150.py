#!/usr/bin/env python
"""Convert a dataset of your own (one JSON file + an image folder) to SGB's VG150 files.

    python tools/convert_to_vg150.py --json annotations.json --images photos/ --out datasets/NAME
        [--dicts VG-SGG-dicts-with-attri.json] [--test-fraction 0.2 --seed 0] [--symlink]
        [--config-dir configs/NAME | --no-configs]

The JSON schema is in docs/data.md, "Your own dataset" (and ``maskrcnn_benchmark/data/convert.py``).
Every tool and metric then reads DATASETS.DATA_DIR/NAME/ as the datasets NAME_train / NAME_val /
NAME_test; the tool also writes the two configs of the pipeline (from configs/custom/) with the
dataset's names, class counts and NUM_VAL_IM filled in. Nothing existing is overwritten.
"""
from __future__ import annotations

import argparse
import os
import sys

import yaml

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.data.convert import convert_dataset
from maskrcnn_benchmark.engine.defaults import launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = ("detector_VGG16.yaml", "motifs_align.yaml")


def write_configs(name: str, data_dir: str, summary: dict, config_dir: str) -> list[str]:
    """Filled copies of configs/custom/*.yaml in ``config_dir`` (refusing to overwrite)."""
    paths = [os.path.join(config_dir, t) for t in TEMPLATES]
    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        raise ConfigError(f"{existing[0]} already exists; give another --config-dir or --no-configs")
    os.makedirs(config_dir, exist_ok=True)
    num_val = summary["num_val_im"] or max(1, summary["train"] // 10)
    for template, path in zip(TEMPLATES, paths):
        with open(os.path.join(ROOT, "configs", "custom", template)) as f:
            text = f.read()
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        cfg = yaml.safe_load(text)
        cfg["_BASE_"] = os.path.relpath(os.path.join(ROOT, "configs", cfg["_BASE_"][3:]), config_dir)
        cfg["MODEL"]["ROI_BOX_HEAD"]["NUM_CLASSES"] = len(summary["classes"]) + 1
        if "ROI_RELATION_HEAD" in cfg["MODEL"]:
            cfg["MODEL"]["ROI_RELATION_HEAD"]["NUM_CLASSES"] = len(summary["predicates"]) + 1
            cfg["MODEL"]["PRETRAINED_DETECTOR_CKPT"] = f"output/{name}_detector/model_final.pth"
        cfg["DATASETS"].update({"DATA_DIR": data_dir, "TRAIN": [f"{name}_train"],
                                "VAL": [f"{name}_val"], "TEST": [f"{name}_test"], "NUM_VAL_IM": num_val})
        cfg["OUTPUT_DIR"] = cfg["OUTPUT_DIR"].replace("custom", name, 1)
        header = header.replace("configs/custom/", f"{os.path.relpath(config_dir)}/")
        with open(path, "x") as f:
            f.write(f"# Written by tools/convert_to_vg150.py for datasets/{name} "
                    f"({len(summary['classes'])} classes, {len(summary['predicates'])} predicates).\n")
            f.write(header + yaml.safe_dump(cfg, sort_keys=False))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True, help="the annotation file (schema: docs/data.md)")
    p.add_argument("--images", required=True, help="folder the JSON's image files are relative to")
    p.add_argument("--out", required=True, help="new dataset folder, e.g. datasets/NAME")
    p.add_argument("--dicts", help="fixed vocabulary: a VG-SGG-dicts-with-attri.json (unknown names refused)")
    p.add_argument("--test-fraction", type=float, help="test share of the images without a split")
    p.add_argument("--seed", type=int, default=0, help="seed of the --test-fraction draw")
    p.add_argument("--symlink", action="store_true", help="link the images instead of copying them")
    p.add_argument("--config-dir", help="where the two configs go (default configs/NAME)")
    p.add_argument("--no-configs", action="store_true", help="write no configs")
    a = p.parse_args(argv)
    name = os.path.basename(os.path.normpath(a.out))
    config_dir = a.config_dir or os.path.join(ROOT, "configs", name)
    if not a.no_configs and any(os.path.exists(os.path.join(config_dir, t)) for t in TEMPLATES):
        raise ConfigError(f"{config_dir} already holds {' or '.join(TEMPLATES)}; give another "
                          "--config-dir or --no-configs")
    s = convert_dataset(a.json, a.images, a.out, dicts_file=a.dicts, test_fraction=a.test_fraction,
                        seed=a.seed, symlink=a.symlink)
    print(f"wrote {a.out}: {s['images']} images ({s['train']} train, {s['val']} val, {s['test']} "
          f"test), {s['objects']} objects, {s['relations']} relations; {len(s['classes'])} object "
          f"classes, {len(s['predicates'])} predicates"
          + (f"; {s['clipped_boxes']} boxes clipped to their image" if s["clipped_boxes"] else ""))
    data_dir = os.path.dirname(os.path.normpath(a.out)) or "."
    print(f"datasets: {name}_train / {name}_val / {name}_test (DATASETS.DATA_DIR {data_dir}); MODEL.ROI_BOX_HEAD.NUM_CLASSES "
          f"{len(s['classes']) + 1}, MODEL.ROI_RELATION_HEAD.NUM_CLASSES {len(s['predicates']) + 1}")
    if not a.no_configs:
        det, rel = write_configs(name, data_dir, s, config_dir)
        print(f"configs: {det}, {rel}\n  make detector CONFIG={os.path.relpath(det)}\n"
              f"  make motifs-align CONFIG={os.path.relpath(rel)}")
    return 0


if __name__ == "__main__":
    launch(main)
