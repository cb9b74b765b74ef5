"""Dataset names -> files, as SGB's paths_catalog (same names, same file layout).

``<name>_train``, ``<name>_val`` and ``<name>_test`` are the splits of the VG150-format dataset in
``DATASETS.DATA_DIR/<name>/`` (SGB's four files; ``tools/convert_to_vg150.py`` writes them for a
dataset of your own), so a new dataset needs no code change. SGB's VG150 name keeps its folder.
"""
from __future__ import annotations

import os

_VG_FILES = {
    "img_dir": "VG_100K",
    "roidb_file": "VG-SGG-with-attri.h5",
    "dict_file": "VG-SGG-dicts-with-attri.json",
    "image_file": "image_data.json",
}

# names whose folder under DATASETS.DATA_DIR is not the name itself
_FOLDERS = {"VG_stanford_filtered_with_attribute": "vg"}
SPLITS = ("train", "val", "test")


class DatasetCatalog:
    @staticmethod
    def get(name: str, data_dir: str = "datasets") -> dict:
        """Return ``{"split", "img_dir", "roidb_file", "dict_file", "image_file"}`` for ``name``."""
        prefix, _, split = name.rpartition("_")
        if not prefix or split not in SPLITS or prefix != os.path.basename(prefix):
            raise KeyError(f"unknown dataset {name!r}: dataset names are <folder>_train, "
                           f"<folder>_val or <folder>_test, the folder under DATASETS.DATA_DIR "
                           f"holding the VG150-format files (e.g. synthvg_train, "
                           f"VG_stanford_filtered_with_attribute_train for datasets/vg)")
        root = os.path.join(data_dir, _FOLDERS.get(prefix, prefix))
        args = {k: os.path.join(root, v) for k, v in _VG_FILES.items()}
        args["split"] = split
        return args
