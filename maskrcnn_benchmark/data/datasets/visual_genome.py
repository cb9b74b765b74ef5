"""Visual Genome 150 read from Scene-Graph-Benchmark's files (``VGDataset``).

Files (``datasets/vg/README.md``): ``VG-SGG-with-attri.h5`` (boxes, labels, relations of every
image), ``VG-SGG-dicts-with-attri.json`` (the vocabularies, 1-based, 0 = ``__background__``),
``image_data.json`` (width/height/image_id of each h5 row) and ``VG_100K/<image_id>.jpg``.

Opening is cheap at full VG150 scale: the h5 arrays are read once into numpy, everything else is
indexed per image on access; no per-image Python object is built up front. Every check of the
files is vectorised and raises :class:`DatasetError` naming the file and the fix.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Callable, Optional

import h5py
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.functional import to_tensor

from ...config.loader import ConfigError
from ..errors import DatasetError
from ..image import to_rgb

logger = logging.getLogger("maskrcnn_benchmark.data")

BOX_SCALE = 1024  # boxes_1024: (cx, cy, w, h) with the longer image side scaled to 1024
CORRUPTED_IMAGE_IDS = frozenset({1592, 1722, 4616, 4617})  # skipped like SGB does
H5_KEYS = ("split", "img_to_first_box", "img_to_last_box", "img_to_first_rel",
           "img_to_last_rel", "labels", "boxes_1024", "relationships", "predicates")
_SPLIT_FLAG = {"train": 0, "val": 0, "test": 2}
_FIX = ("put SGB's VG150 files there (datasets/vg/README.md) or regenerate SynthVG with "
        "`make data`")


# The fixed seed of DATASETS.TRAIN_FRACTION's draw: not cfg.SEED, so that every seed of a study
# trains on the same images.
TRAIN_SUBSET_SEED = 1234


def train_subset(index: np.ndarray, fraction: float) -> np.ndarray:
    """The first ``round(fraction * len(index))`` (half up, at least one) entries of a fixed random
    permutation of ``index``, in their original order. The permutation depends only on
    ``len(index)``, so the subsets of one split are nested (25% inside 50%) and the same for
    every SEED."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"DATASETS.TRAIN_FRACTION must be in (0, 1], got {fraction}")
    if fraction == 1.0 or len(index) == 0:
        return index
    keep = max(1, int(np.floor(fraction * len(index) + 0.5)))
    order = np.random.RandomState(TRAIN_SUBSET_SEED).permutation(len(index))
    return index[np.sort(order[:keep])]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c), vectorised. -> int64[sum(c)]"""
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts.astype(np.int64) - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(total, dtype=np.int64)


def load_info(dict_file: str) -> tuple[list[str], list[str], list[str]]:
    """Vocabularies of ``VG-SGG-dicts-with-attri.json`` -> (classes, predicates, attributes),
    each a list indexed by the 1-based id with ``__background__`` at 0."""
    if not os.path.isfile(dict_file):
        raise DatasetError(f"dataset dictionary file not found: {dict_file}; {_FIX}")
    try:
        with open(dict_file) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read {dict_file} ({e}); the file is broken: {_FIX}") from e
    out = []
    for key, required in (("label_to_idx", True), ("predicate_to_idx", True),
                          ("attribute_to_idx", False)):
        mapping = info.get(key)
        if mapping is None:
            if required:
                raise DatasetError(f"{dict_file} has no {key!r} entry; it is not SGB's "
                                   f"VG-SGG-dicts-with-attri.json: {_FIX}")
            out.append(["__background__"])
            continue
        names = ["__background__"] + [None] * len(mapping)
        for name, idx in mapping.items():
            idx = int(idx)
            if not 1 <= idx <= len(mapping) or names[idx] is not None:
                raise DatasetError(f"{dict_file}: {key} must map names to the distinct ids "
                                   f"1..{len(mapping)}, got {name!r} -> {idx}: {_FIX}")
            names[idx] = name
        out.append(names)
    return out[0], out[1], out[2]


def load_image_info(image_file: str, num_rows: int, roidb_file: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image_data.json`` -> (width, height, image_id) int64 arrays aligned with the h5 rows.

    The four corrupted VG images are dropped first (one warning), as SGB does.
    """
    if not os.path.isfile(image_file):
        raise DatasetError(f"image metadata file not found: {image_file}; {_FIX}")
    try:
        with open(image_file) as f:
            entries = json.load(f)
        table = np.array([(e["width"], e["height"], e["image_id"]) for e in entries],
                         dtype=np.int64).reshape(-1, 3)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"cannot read {image_file} ({e!r}): expected a JSON list of "
                           f"{{width, height, image_id, ...}}: {_FIX}") from e
    del entries
    corrupted = np.isin(table[:, 2], list(CORRUPTED_IMAGE_IDS))
    if corrupted.any():
        logger.warning("%s: skipping the %d known corrupted VG images %s (as SGB does)",
                       image_file, int(corrupted.sum()), sorted(table[corrupted, 2].tolist()))
        table = table[~corrupted]
    if len(table) != num_rows:
        raise DatasetError(f"{image_file} lists {len(table)} images (after dropping corrupted "
                           f"ones) but {roidb_file} has {num_rows} rows; the two files come "
                           f"from different datasets or one is truncated: {_FIX}")
    if (table[:, :2] <= 0).any():
        row = int(np.nonzero((table[:, :2] <= 0).any(1))[0][0])
        raise DatasetError(f"{image_file}: entry {row} has a non-positive width/height: {_FIX}")
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def _read_h5(roidb_file: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(roidb_file):
        raise DatasetError(f"scene graph file not found: {roidb_file}; {_FIX}")
    try:
        with h5py.File(roidb_file, "r") as f:
            missing = [k for k in H5_KEYS if k not in f]
            if missing:
                raise DatasetError(f"{roidb_file} has no key(s) {missing} (found "
                                   f"{sorted(f.keys())}); it is incomplete or not SGB's "
                                   f"VG-SGG-with-attri.h5: {_FIX}")
            return {k: f[k][()] for k in H5_KEYS}
    except OSError as e:
        raise DatasetError(f"cannot read {roidb_file} ({e}); the file is broken (a truncated "
                           f"download?): {_FIX}") from e


def decode_boxes(boxes_cxcywh: np.ndarray) -> np.ndarray:
    """SGB's decoding of ``boxes_1024``: x1 = int(cx - w / 2), x2 = x1 + w (likewise y).
    int[N, 4] (cx, cy, w, h) -> int32[N, 4] (x1, y1, x2, y2), still on the 1024 scale."""
    b = np.asarray(boxes_cxcywh)
    xy1 = (b[:, :2] - b[:, 2:] / 2).astype(np.int32)
    return np.concatenate([xy1, xy1 + b[:, 2:].astype(np.int32)], 1)


class VGDataset(torch.utils.data.Dataset):
    """One split of VG150 (or SynthVG) in SGB's file format.

    ``ds[i] -> (image FloatTensor[3, H, W], target dict, i)``; see ``docs/design.md``. Splits:
    ``test`` = h5 split 2; ``val`` = the first ``num_val_im`` train images left after the
    empty-relation filter, ``train`` = the rest. ``filter_duplicate_rels`` (one random predicate
    per pair, redrawn at each access) and ``filter_non_overlap`` (drop relations whose boxes do
    not intersect, then images left without relations) apply to ``train`` only, and so does
    ``train_fraction`` (DATASETS.TRAIN_FRACTION: a fixed subset of the train images, see
    :func:`train_subset`; applied before those two filters).
    ``check_images`` stats every image file of the split at construction; otherwise a missing
    image is reported when it is first read.
    """

    def __init__(self, split: str, img_dir: str, roidb_file: str, dict_file: str,
                 image_file: str, transforms: Optional[Callable] = None,
                 filter_empty_rels: bool = True, num_im: int = -1, num_val_im: int = 5000,
                 filter_duplicate_rels: bool = True, filter_non_overlap: bool = False,
                 check_images: bool = False, train_fraction: float = 1.0):
        if split not in _SPLIT_FLAG:
            raise ValueError(f"split must be one of {sorted(_SPLIT_FLAG)}, got {split!r}")
        self.split = split
        self.img_dir, self.roidb_file = img_dir, roidb_file
        self.dict_file, self.image_file = dict_file, image_file
        self.transforms = transforms
        self.filter_duplicate_rels = filter_duplicate_rels and split == "train"
        self.filter_non_overlap = filter_non_overlap and split == "train"
        self.ind_to_classes, self.ind_to_predicates, self.ind_to_attributes = load_info(dict_file)

        h5 = _read_h5(roidb_file)
        num_rows = len(h5["split"])
        for k in ("img_to_first_box", "img_to_last_box", "img_to_first_rel", "img_to_last_rel"):
            if len(h5[k]) != num_rows:
                raise DatasetError(f"{roidb_file}: {k} has {len(h5[k])} rows, split has "
                                   f"{num_rows}; the file is broken: {_FIX}")
        self._width, self._height, self._image_id = load_image_info(image_file, num_rows,
                                                                    roidb_file)
        if not os.path.isdir(img_dir):
            raise DatasetError(f"image folder not found: {img_dir} (expected "
                               f"<image_id>.jpg files); {_FIX}")

        mask = (h5["split"] == _SPLIT_FLAG[split]) & (h5["img_to_first_box"] >= 0)
        if filter_empty_rels:
            mask &= h5["img_to_first_rel"] >= 0
        index = np.nonzero(mask)[0]
        if num_im > -1:
            index = index[:num_im]
        if num_val_im > 0 and split == "val":
            index = index[:num_val_im]
        elif num_val_im > 0 and split == "train":
            index = index[num_val_im:]
        if split == "train":  # after the val split is carved out: val and test never change
            index = train_subset(index, train_fraction)

        self._labels = np.asarray(h5["labels"]).reshape(-1).astype(np.int64)
        self._boxes = decode_boxes(np.asarray(h5["boxes_1024"]).reshape(-1, 4))
        self._rels = np.asarray(h5["relationships"]).reshape(-1, 2).astype(np.int64)
        self._preds = np.asarray(h5["predicates"]).reshape(-1).astype(np.int64)
        self._first_box, self._last_box = h5["img_to_first_box"], h5["img_to_last_box"]
        self._first_rel, self._last_rel = h5["img_to_first_rel"], h5["img_to_last_rel"]
        self._rel_keep: Optional[np.ndarray] = None
        self.image_index = self._validate(index)
        if self.filter_non_overlap:
            self.image_index = self._apply_non_overlap(self.image_index)
        if check_images:
            self._check_image_files()
        self._warned_size = False

    # ------------------------------------------------------------------ file checks
    def _spans(self, index: np.ndarray, first: np.ndarray, last: np.ndarray, total: int,
               what: str) -> tuple[np.ndarray, np.ndarray]:
        starts = first[index].astype(np.int64)
        counts = np.where(starts >= 0, last[index].astype(np.int64) - starts + 1, 0)
        bad = (starts >= 0) & ((counts <= 0) | (starts + counts > total))
        if bad.any():
            row = int(index[np.nonzero(bad)[0][0]])
            raise DatasetError(f"{self.roidb_file}: row {row} has an invalid {what} range "
                               f"[{first[row]}, {last[row]}] (only {total} {what}es); the file "
                               f"is broken: {_FIX}")
        return np.maximum(starts, 0), counts

    def _fail_at(self, rows: np.ndarray, msg: str) -> None:
        row = int(rows[0])
        raise DatasetError(f"{self.roidb_file}: {msg} (image_id {self._image_id[row]}, h5 row "
                           f"{row}; {len(rows)} such entries). The h5 file does not match "
                           f"{os.path.basename(self.dict_file)} / "
                           f"{os.path.basename(self.image_file)} or is broken: {_FIX}")

    def _validate(self, index: np.ndarray) -> np.ndarray:
        """Vectorised checks of the split's boxes, labels and relations; returns ``index``.

        A box must start inside its image (it may overhang the right / bottom border: it is
        clipped there, as SGB does; one starting in the last pixel row or column is then empty,
        which the detector's training widens to one pixel)."""
        b_start, b_count = self._spans(index, self._first_box, self._last_box,
                                       len(self._labels), "box")
        box_ids = _ranges(b_start, b_count)
        box_rows = np.repeat(index, b_count)
        boxes = self._boxes[box_ids]
        labels = self._labels[box_ids]
        bad = (labels < 1) | (labels >= len(self.ind_to_classes))
        if bad.any():
            self._fail_at(box_rows[bad], f"object label {labels[bad][0]} outside the "
                          f"vocabulary 1..{len(self.ind_to_classes) - 1}")
        longest = np.maximum(self._width, self._height)[box_rows].astype(np.float64)
        w_1024 = self._width[box_rows] * BOX_SCALE / longest
        h_1024 = self._height[box_rows] * BOX_SCALE / longest
        bad = ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] <= boxes[:, 0])
               | (boxes[:, 3] <= boxes[:, 1]) | (boxes[:, 0] >= w_1024) | (boxes[:, 1] >= h_1024))
        if bad.any():
            i = np.nonzero(bad)[0][0]
            self._fail_at(box_rows[bad], f"box {boxes[i].tolist()} (x1, y1, x2, y2 on the "
                          f"{BOX_SCALE} scale) is empty or outside its image "
                          f"({w_1024[i]:.0f} x {h_1024[i]:.0f} on that scale)")
        r_start, r_count = self._spans(index, self._first_rel, self._last_rel,
                                       len(self._preds), "relation")
        rel_ids = _ranges(r_start, r_count)
        rel_rows = np.repeat(index, r_count)
        preds = self._preds[rel_ids]
        bad = (preds < 1) | (preds >= len(self.ind_to_predicates))
        if bad.any():
            self._fail_at(rel_rows[bad], f"predicate {preds[bad][0]} outside the vocabulary "
                          f"1..{len(self.ind_to_predicates) - 1}")
        lo = np.repeat(b_start, r_count)
        hi = lo + np.repeat(b_count, r_count)
        so = self._rels[rel_ids]
        bad = ((so < lo[:, None]) | (so >= hi[:, None])).any(1)
        if bad.any():
            self._fail_at(rel_rows[bad], f"relation {so[bad][0].tolist()} refers to an object "
                          "of another image")
        return index

    def _apply_non_overlap(self, index: np.ndarray) -> np.ndarray:
        """SGB's filter_non_overlap: keep relations whose (1024-scale) boxes intersect with the
        legacy +1 pixel convention; drop images left without relations."""
        r_start, r_count = self._spans(index, self._first_rel, self._last_rel,
                                       len(self._preds), "relation")
        rel_ids = _ranges(r_start, r_count)
        sb, ob = self._boxes[self._rels[rel_ids, 0]], self._boxes[self._rels[rel_ids, 1]]
        iw = np.minimum(sb[:, 2], ob[:, 2]) - np.maximum(sb[:, 0], ob[:, 0]) + 1
        ih = np.minimum(sb[:, 3], ob[:, 3]) - np.maximum(sb[:, 1], ob[:, 1]) + 1
        keep = (iw > 0) & (ih > 0)
        self._rel_keep = np.zeros(len(self._preds), bool)
        self._rel_keep[rel_ids[keep]] = True
        image_of_rel = np.repeat(np.arange(len(index)), r_count)
        kept_per_image = np.bincount(image_of_rel[keep], minlength=len(index))
        return index[kept_per_image > 0]

    def _check_image_files(self) -> None:
        missing = [self.image_path(i) for i in range(len(self))
                   if not os.path.isfile(self.image_path(i))]
        if missing:
            raise DatasetError(f"{len(missing)} image file(s) of the {self.split} split are "
                               f"missing, e.g. {missing[0]}: {_FIX}")

    # ------------------------------------------------------------------ per-image access
    def __len__(self) -> int:
        return len(self.image_index)

    def image_path(self, i: int) -> str:
        return os.path.join(self.img_dir, f"{self._image_id[self.image_index[i]]}.jpg")

    def get_img_info(self, i: int) -> dict:
        row = self.image_index[i]
        return {"width": int(self._width[row]), "height": int(self._height[row]),
                "image_id": int(self._image_id[row])}

    def image_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(heights, widths) int64[len(self)] from image_data.json, no image opened."""
        return self._height[self.image_index], self._width[self.image_index]

    def raw_annotations(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes int32[N, 4] xyxy on the 1024 scale, labels int64[N], relations int64[M, 3])
        with every duplicate pair kept and the non-overlap filter applied."""
        row = self.image_index[i]
        b0, b1 = int(self._first_box[row]), int(self._last_box[row]) + 1
        r0, r1 = int(self._first_rel[row]), int(self._last_rel[row]) + 1
        if r0 < 0:
            rels = np.zeros((0, 3), np.int64)
        else:
            rels = np.concatenate([self._rels[r0:r1] - b0, self._preds[r0:r1, None]], 1)
            if self._rel_keep is not None:
                rels = rels[self._rel_keep[r0:r1]]
        return self._boxes[b0:b1], self._labels[b0:b1].copy(), rels

    def get_groundtruth(self, i: int) -> dict:
        """Ground truth in original image pixels, clipped to [0, W - 1] x [0, H - 1] as SGB does,
        duplicate pairs kept:
        ``{"boxes": float32[N, 4] xyxy, "labels": int64[N], "relations": int64[M, 3]}``."""
        boxes, labels, rels = self.raw_annotations(i)
        info = self.get_img_info(i)
        w, h = info["width"], info["height"]
        boxes = boxes.astype(np.float32) * (max(w, h) / BOX_SCALE)
        # SGB's BoxList.clip_to_image (+1 pixel convention): x in [0, W - 1], y in [0, H - 1]
        np.clip(boxes[:, 0::2], 0, w - 1, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h - 1, out=boxes[:, 1::2])
        return {"boxes": boxes, "labels": labels, "relations": rels}

    def _load_image(self, i: int) -> Image.Image:
        path = self.image_path(i)
        try:
            img = to_rgb(Image.open(path))  # 16-bit grayscale scaled, not clipped
        except FileNotFoundError as e:
            raise DatasetError(f"image file not found: {path} (listed in {self.image_file}); "
                               f"{_FIX}") from e
        except (OSError, UnidentifiedImageError) as e:
            raise DatasetError(f"cannot read image {path} ({e}); the file is broken: "
                               "re-download or regenerate it") from e
        info = self.get_img_info(i)
        if img.size != (info["width"], info["height"]):
            if not self._warned_size:
                logger.warning("%s is %dx%d but %s says %dx%d; resizing it to the listed size "
                               "(further mismatches are not reported)", path, *img.size,
                               self.image_file, info["width"], info["height"])
                self._warned_size = True
            img = img.resize((info["width"], info["height"]), Image.BILINEAR)
        return img

    def _sample_relations(self, rels: np.ndarray) -> np.ndarray:
        """Train: one predicate per (subject, object) pair drawn at random (SGB's dedup)."""
        if not self.filter_duplicate_rels or len(rels) == 0:
            return rels
        order = torch.randperm(len(rels)).numpy()
        shuffled = rels[order]
        _, first = np.unique(shuffled[:, 0] * (1 << 20) + shuffled[:, 1], return_index=True)
        return rels[np.sort(order[first])]  # a random member of each pair, in file order

    def __getitem__(self, i: int):
        img = self._load_image(i)
        gt = self.get_groundtruth(i)
        rels = self._sample_relations(gt["relations"])
        n = len(gt["labels"])
        matrix = torch.zeros((n, n), dtype=torch.int64)
        for s, o, p in rels.tolist():  # duplicates (test) overwrite at random, as SGB
            if matrix[s, o] == 0 or torch.rand(()) > 0.5:
                matrix[s, o] = p
        info = self.get_img_info(i)
        target = {
            "boxes": torch.from_numpy(gt["boxes"]),
            "labels": torch.from_numpy(gt["labels"]),
            "relation_tuples": torch.from_numpy(np.ascontiguousarray(rels, np.int64)),
            "relation_matrix": matrix,
            "image_id": info["image_id"],
            "orig_size": (info["height"], info["width"]),
        }
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        else:
            img = to_tensor(img)
        target["image_size"] = (int(img.shape[-2]), int(img.shape[-1]))
        return img, target, i
