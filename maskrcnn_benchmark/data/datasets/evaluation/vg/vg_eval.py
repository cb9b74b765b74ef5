"""Config-level entry point (SGB's ``do_vg_evaluation``): ground truth from a dataset, metrics,
report files. The metric code itself (``sgg_eval``, ``detection_eval``) never reads a config."""
from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from .detection_eval import evaluate_detections
from .predictions_io import load_predictions, save_predictions
from .matching import triplet_keys
from .report import format_table, save_results
from .sgg_eval import evaluate_relations
from .splits import dataset_items, find_predicate_groups, relation_triplets

logger = logging.getLogger(__name__)


def eval_mode(cfg) -> str:
    """``predcls`` / ``sgcls`` / ``sgdet`` from MODEL.ROI_RELATION_HEAD.USE_GT_BOX / _OBJECT_LABEL."""
    head = cfg.MODEL.ROI_RELATION_HEAD
    if head.USE_GT_BOX:
        return "predcls" if head.USE_GT_OBJECT_LABEL else "sgcls"
    return "sgdet"


def train_triplets(train_dataset, cache_file: Optional[str] = None) -> np.ndarray:
    """Distinct (subject class, object class, predicate) of a training dataset -> int64[T, 3].

    ``cache_file``: the triplets and the key of the data they came from (the annotation file's
    bytes, the split's rows, the relation filter); a cache of other data (or of the old format) is
    recomputed and replaced. Datasets without an annotation file (``roidb_file``) are not cached.
    """
    key = _content_key(train_dataset) if cache_file else None
    if key and os.path.isfile(cache_file):
        try:
            with np.load(cache_file, allow_pickle=False) as cached:
                if str(cached["key"]) == key:
                    return cached["triplets"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # another format, truncated
            pass
        logger.info("train triplet cache %s is of other training data: recomputing it", cache_file)
    triplets = relation_triplets(dataset_items(train_dataset))
    if key:
        os.makedirs(os.path.dirname(os.path.abspath(cache_file)), exist_ok=True)
        tmp = f"{cache_file}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            np.savez(f, triplets=triplets, key=np.array(key))
        os.replace(tmp, cache_file)
    return triplets


def _content_key(dataset) -> Optional[str]:
    """sha256 of what a VGDataset's relation triplets depend on, or None (no annotation file)."""
    path, index = getattr(dataset, "roidb_file", None), getattr(dataset, "image_index", None)
    if not path or index is None or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    digest.update(np.asarray(index, np.int64).tobytes())
    digest.update(b"non-overlap" if getattr(dataset, "filter_non_overlap", False) else b"all")
    return digest.hexdigest()


def zeroshot_from_train(train: np.ndarray, groundtruths: Sequence[Mapping]) -> np.ndarray:
    """Test triplets absent from ``train`` (int64[T, 3] from :func:`train_triplets`)."""
    test = relation_triplets((g["labels"], g["relations"]) for g in groundtruths)
    train = np.asarray(train, np.int64).reshape(-1, 3)
    seen = triplet_keys(train[:, 0], train[:, 1], train[:, 2])
    return test[~np.isin(triplet_keys(test[:, 0], test[:, 1], test[:, 2]), seen)]


def do_vg_evaluation(cfg, dataset, predictions: Sequence[Mapping[str, np.ndarray]],
                     output_folder: Optional[str] = None, *,
                     indices: Optional[Sequence[int]] = None,
                     zeroshot_triplets: Optional[np.ndarray] = None, dataset_name: str = "",
                     checkpoint: str = "", write_predictions: bool = True,
                     mode: Optional[str] = None) -> dict:
    """Evaluate ``predictions`` (aligned with ``indices``, default ``range(len(dataset))``).

    Reads MODEL.ROI_RELATION_HEAD.{USE_GT_BOX, USE_GT_OBJECT_LABEL} and
    TEST.RELATION.{IOU_THRESHOLD, MAX_BOXES, NUM_WORKERS}. In SGDet also evaluates the boxes
    (mAP@0.5 as SGB reports it, and COCO AP / AP75 / AR; no small/medium/large breakdown). Logs the table; with ``output_folder`` writes ``results.json``,
    ``results.txt`` and (``write_predictions``) ``predictions.pt``. Returns the results dict.
    ``mode`` overrides the config's mode (e.g. the mode a predictions file was made in).
    """
    mode = mode or eval_mode(cfg)
    rel = cfg.TEST.RELATION
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if len(indices) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(indices)} images")
    gts = [dataset.get_groundtruth(i) for i in indices]
    names = list(dataset.ind_to_predicates)
    num_predicates = len(names)  # rel_scores of another width are refused by evaluate_relations
    groups, groups_file = find_predicate_groups(names, [getattr(dataset, "dict_file", "")])
    results = evaluate_relations(
        gts, predictions, mode, num_predicates, iou_threshold=rel.IOU_THRESHOLD,
        zeroshot_triplets=zeroshot_triplets, predicate_groups=groups, predicate_names=names,
        max_boxes=rel.MAX_BOXES, num_workers=rel.NUM_WORKERS)
    results["settings"]["predicate_groups_file"] = groups_file
    if mode == "sgdet":
        keep = [i for i, g in enumerate(gts) if rel.MAX_BOXES <= 0 or len(g["labels"]) <= rel.MAX_BOXES]
        results["detection"] = evaluate_detections(
            [gts[i] for i in keep], [predictions[i] for i in keep], len(dataset.ind_to_classes),
            class_names=dataset.ind_to_classes, size_breakdown=False)
    table = format_table(results)
    logger.info(table)
    image_ids = [dataset.get_img_info(i)["image_id"] for i in indices]
    meta = {"dataset": dataset_name, "checkpoint": checkpoint}
    if output_folder:
        save_results(results, os.path.join(output_folder, "results.json"), **meta)
        with open(os.path.join(output_folder, "results.txt"), "w") as f:
            f.write(table)
        if write_predictions:
            save_predictions(os.path.join(output_folder, "predictions.pt"), predictions,
                             mode=mode, dataset=dataset_name, num_predicates=num_predicates,
                             indices=indices, image_ids=image_ids, checkpoint=checkpoint,
                             meta={"TOPK_TRIPLETS": int(rel.TOPK_TRIPLETS)})
    return {**meta, **results}


def evaluate_predictions_file(cfg, predictions_file: str, dataset_name: str,
                              output_folder: Optional[str] = None, zeroshot: bool = True) -> dict:
    """Re-evaluate a saved ``predictions.pt`` on dataset ``dataset_name`` (``<prefix>_<split>``,
    built with ``build_dataset`` under DATASETS.DATA_DIR). Zero-shot triplets come from
    ``<prefix>_train``. Checks that the file's images are the dataset's."""
    from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
    from maskrcnn_benchmark.data.build import build_dataset

    preds, info = load_predictions(predictions_file)
    split = DatasetCatalog.get(dataset_name, cfg.DATASETS.DATA_DIR)["split"]
    key = {"train": "TRAIN", "val": "VAL", "test": "TEST"}[split]
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATASETS[key] = (dataset_name,)
    t0 = time.perf_counter()
    dataset = build_dataset(cfg, split, is_train=False)
    indices = info["indices"]
    if indices and max(indices) >= len(dataset):
        raise ValueError(f"{predictions_file} has predictions for dataset index {max(indices)} "
                         f"but {dataset_name} has {len(dataset)} images (another dataset or "
                         "DATASETS.NUM_IM?)")
    ids = [dataset.get_img_info(i)["image_id"] for i in indices]
    if ids != info["image_ids"]:
        bad = next(j for j, (a, b) in enumerate(zip(ids, info["image_ids"])) if a != b)
        raise ValueError(f"{predictions_file}: image {bad} (dataset index {indices[bad]}) has "
                         f"image_id {info['image_ids'][bad]} in the file but {ids[bad]} in "
                         f"{dataset_name}; the predictions were made on another dataset")
    zs = None
    if zeroshot:
        prefix = dataset_name.rpartition("_")[0]
        cfg.DATASETS.TRAIN = (f"{prefix}_train",)
        train = train_triplets(build_dataset(cfg, "train", is_train=False))
        zs = zeroshot_from_train(train, [dataset.get_groundtruth(i) for i in indices])
    logger.info("loaded %d predictions (%s) and the ground truth in %.1fs", len(preds),
                info["mode"], time.perf_counter() - t0)
    return do_vg_evaluation(cfg, dataset, preds, output_folder, indices=indices,
                            zeroshot_triplets=zs, dataset_name=dataset_name,
                            checkpoint=info.get("checkpoint", ""), write_predictions=False,
                            mode=info["mode"])
