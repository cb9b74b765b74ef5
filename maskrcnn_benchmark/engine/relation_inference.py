"""Relation-stage glue shared by ``tools/relation_train_net.py`` and ``tools/relation_test_net.py``:
loading the stage-1 detector, running a scene-graph model over a split and evaluating it with
the SGB-exact evaluator (boxes rescaled to original pixels first)."""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from maskrcnn_benchmark.utils.checkpoint import (CheckpointError, Checkpointer, check_vocabulary,
                                                 load_state_dict_checked, read_checkpoint)
from maskrcnn_benchmark.utils.comm import on_main_process

from .inference import compute_on_dataset, gather_predictions, rescale_boxes

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["evaluate_relation_model", "load_pretrained_detector", "relation_summary",
           "relation_to_original", "run_relation_test"]


def load_pretrained_detector(model: nn.Module, path: str, obj_classes: Optional[Sequence[str]] = None) -> None:
    """Load a stage-1 checkpoint (MODEL.PRETRAINED_DETECTOR_CKPT) into ``model.detector`` and copy
    its box head's fc6 / fc7 into the relation feature extractors. ``obj_classes``: the relation
    dataset's object classes, compared with those the detector checkpoint records (if any)."""
    if not path:
        raise CheckpointError("MODEL.PRETRAINED_DETECTOR_CKPT is empty: the relation stage needs a stage-1 "
                              "detector (train one with tools/detector_pretrain_net.py, or `make detector`)")
    data = read_checkpoint(path)
    if obj_classes is not None:
        check_vocabulary(data, {"obj_classes": list(obj_classes)},
                         source=f"detector checkpoint {path} (MODEL.PRETRAINED_DETECTOR_CKPT)")
    state = data["model"]
    load_state_dict_checked(model.detector, state, source=f"detector checkpoint {path} "
                            "(MODEL.PRETRAINED_DETECTOR_CKPT)")
    model.init_relation_from_detector()
    logger.info("stage-1 detector loaded from %s; relation feature extractors copied from its box head", path)


def run_checkpoint(cfg, checkpointer: Checkpointer) -> str:
    """The checkpoint the relation run in ``checkpointer.save_dir`` stands for ("" when none):
    ``model_best.pth`` when SOLVER.SELECT_BEST_VAL and it exists, else the one ``last_checkpoint``
    names (``model_final.pth`` after a completed run)."""
    best = os.path.join(checkpointer.save_dir, "model_best.pth") if checkpointer.save_dir else ""
    if cfg.SOLVER.SELECT_BEST_VAL and best and os.path.isfile(best):
        return best
    return checkpointer.get_checkpoint_file()


def relation_to_original(pred: Mapping[str, Tensor], orig_hw: tuple) -> Dict[str, np.ndarray]:
    """One image's model output (resized pixels, ``"image_size"`` set by compute_on_dataset) ->
    the evaluator's numpy dict in the original image's pixels (``num_top_pairs`` carried over)."""
    out = {"boxes": np.asarray(rescale_boxes(pred["boxes"].float(), pred["image_size"], orig_hw), np.float32),
           "labels": pred["labels"].numpy().astype(np.int64),
           "scores": pred["scores"].float().numpy().astype(np.float32),
           "rel_pairs": pred["rel_pairs"].numpy().astype(np.int64).reshape(-1, 2),
           "rel_scores": pred["rel_scores"].float().numpy().astype(np.float32)}
    if "num_top_pairs" in pred:
        out["num_top_pairs"] = int(pred["num_top_pairs"])
    return out


def relation_summary(results: Mapping[str, Any]) -> Dict[str, float]:
    """Headline numbers of an evaluation (R@K, mR@K, ngR@K, ..., groups), no None entries."""
    out = {k: float(v) for k, v in results.get("metrics", {}).items() if v is not None}
    for group, values in results.get("groups", {}).items():
        out.update({f"{group}/{k}": float(v) for k, v in values.items() if v is not None})
    if "detection" in results and results["detection"].get("mAP@0.5") is not None:
        out["det/mAP@0.5"] = float(results["detection"]["mAP@0.5"])
    return out


def _zeroshot(cfg, gts: Sequence[Mapping[str, np.ndarray]]) -> Optional[np.ndarray]:
    from maskrcnn_benchmark.data.build import build_dataset, dataset_args
    from maskrcnn_benchmark.data.datasets.evaluation.vg import train_triplets, zeroshot_from_train

    name = dataset_args(cfg, "train")[0]
    cache = os.path.join(cfg.OUTPUT_DIR, f"{name}_train_triplets.npz") if cfg.OUTPUT_DIR else None
    return zeroshot_from_train(train_triplets(build_dataset(cfg, "train", is_train=False), cache), gts)


def evaluate_relation_model(cfg, model: nn.Module, data_loader, device: torch.device, *,
                            output_folder: Optional[str] = None, zeroshot: bool = False,
                            dataset_name: str = "", checkpoint: str = "") -> Dict[str, Any]:
    """Scene graphs of ``model`` on ``data_loader.dataset``, evaluated in the mode of the config.

    With ``output_folder`` (rank 0) writes ``results.json``, ``results.txt`` and
    ``predictions.pt`` (the evaluator's predictions format, original pixels). ``zeroshot``:
    also zR@K against the DATASETS.TRAIN triplets. Returns the evaluator's dict on every rank
    (the predictions are gathered and evaluated on rank 0 only).
    """
    from maskrcnn_benchmark.data.datasets.evaluation.vg import do_vg_evaluation

    t0 = time.perf_counter()
    preds = gather_predictions(compute_on_dataset(model, data_loader, device, amp=cfg.SOLVER.AMP,
                                                  desc="relation eval"))

    def evaluate() -> Dict[str, Any]:
        ds = data_loader.dataset
        indices = list(preds)
        predictions = []
        for idx in indices:
            info = ds.get_img_info(idx)
            predictions.append(relation_to_original(preds[idx], (info["height"], info["width"])))
        z = _zeroshot(cfg, [ds.get_groundtruth(i) for i in indices]) if zeroshot else None
        if output_folder:
            os.makedirs(output_folder, exist_ok=True)
        results = do_vg_evaluation(cfg, ds, predictions, output_folder, indices=indices, zeroshot_triplets=z,
                                   dataset_name=dataset_name, checkpoint=checkpoint)
        m = results.get("metrics", {})
        logger.info("relation evaluation of %d images (%.1fs): R@50 %s  mR@50 %s", len(indices),
                    time.perf_counter() - t0, _fmt(m.get("R@50")), _fmt(m.get("mR@50")))
        return results
    return on_main_process(evaluate)


def run_relation_test(cfg, model: nn.Module, device: torch.device, splits: Sequence[str] = ("test",), *,
                      checkpoint: str = "") -> Dict[str, Dict[str, Any]]:
    """Evaluate on each split ("val" / "test"); results and predictions go to
    ``OUTPUT_DIR/inference/<dataset>/``. zR@K is computed on the test split."""
    from maskrcnn_benchmark.data.build import dataset_args, make_data_loader

    out = {}
    for split in splits:
        name = dataset_args(cfg, split)[0]
        folder = os.path.join(cfg.OUTPUT_DIR, "inference", name) if cfg.OUTPUT_DIR else None
        loader = make_data_loader(cfg, split, is_train=False)
        out[split] = evaluate_relation_model(cfg, model, loader, device, output_folder=folder,
                                             zeroshot=split == "test", dataset_name=name,
                                             checkpoint=checkpoint)
    return out


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"
