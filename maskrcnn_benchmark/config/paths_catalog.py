"""Dataset names -> files, as SGB's paths_catalog (same names, same file layout)."""
from __future__ import annotations

import os

_VG_FILES = {
    "img_dir": "VG_100K",
    "roidb_file": "VG-SGG-with-attri.h5",
    "dict_file": "VG-SGG-dicts-with-attri.json",
    "image_file": "image_data.json",
}

# name prefix -> folder under DATASETS.DATA_DIR
_PREFIXES = {
    "VG_stanford_filtered_with_attribute": "vg",
    "synthvg": "synthvg",
}


class DatasetCatalog:
    @staticmethod
    def get(name: str, data_dir: str = "datasets") -> dict:
        """Return ``{"split", "img_dir", "roidb_file", "dict_file", "image_file"}`` for ``name``."""
        prefix, _, split = name.rpartition("_")
        if prefix not in _PREFIXES or split not in ("train", "val", "test"):
            known = ", ".join(f"{p}_{{train,val,test}}" for p in _PREFIXES)
            raise KeyError(f"unknown dataset {name!r}; known datasets: {known}")
        root = os.path.join(data_dir, _PREFIXES[prefix])
        args = {k: os.path.join(root, v) for k, v in _VG_FILES.items()}
        args["split"] = split
        return args
