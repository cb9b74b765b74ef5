"""Run a model over a data loader, gather predictions across ranks, evaluate the detector."""
from __future__ import annotations

import logging
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from maskrcnn_benchmark.utils.comm import gather, is_main_process, on_main_process

from .amp import autocast
from .trainer import move_to_device

logger = logging.getLogger("maskrcnn_benchmark")


@torch.no_grad()
def compute_on_dataset(model: nn.Module, data_loader, device: torch.device, *, amp: bool = False,
                       desc: str = "inference", keep: Optional[Sequence[str]] = None
                       ) -> dict[int, dict[str, Tensor]]:
    """``model(images, targets)`` in eval mode over this rank's batches (``amp``: SOLVER.AMP's
    autocast, see ``engine.amp``; outputs are returned in float32).

    Returns dataset index -> the model's per-image output dict (tensors on the CPU; only the
    ``keep`` keys when given) plus ``"image_size"``: (h, w) of the resized image the boxes refer to.
    """
    model.eval()
    device = torch.device(device)
    out: dict[int, dict[str, Tensor]] = {}
    for images, targets, indices in tqdm(data_loader, desc=desc, disable=not is_main_process(),
                                         dynamic_ncols=True, mininterval=1.0):
        images, targets = move_to_device(images, device), move_to_device(targets, device)
        with autocast(device, amp):
            outputs = model(images, targets)
        for idx, size, o in zip(indices, images.image_sizes, outputs):
            o = {k: (v.float() if v.is_floating_point() else v).cpu() if isinstance(v, Tensor) else v
                 for k, v in o.items() if keep is None or k in keep}
            o["image_size"] = tuple(int(s) for s in size)
            out[int(idx)] = o
    return out


def gather_predictions(local: dict[int, Any]) -> dict[int, Any]:
    """Every rank's ``{index: prediction}`` merged on rank 0 (``{}`` on the other ranks, which
    need not hold the whole split; a no-op in a single process)."""
    merged: dict[int, Any] = {}
    for part in gather(local):
        merged.update(part)
    return dict(sorted(merged.items()))


# What the detection evaluator reads: per-image class logits [80, C] and per-class boxes
# [80, C, 4] (kept for the relation stage) would be ~250 KB per VG150 image, 6.4 GB for its test split.
DETECTION_KEYS = ("boxes", "labels", "scores")


def rescale_boxes(boxes: Tensor | np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]):
    """xyxy boxes [n, 4] (or [..., 4]) from an image of size ``from_hw`` to one of ``to_hw``."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    scale = [sx, sy, sx, sy]
    if isinstance(boxes, Tensor):
        return boxes * boxes.new_tensor(scale)
    return np.asarray(boxes, np.float32) * np.asarray(scale, np.float32)


def detections_to_original(pred: dict[str, Tensor], orig_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """A detection dict in resized pixels -> numpy ``{boxes float32 [n, 4], labels int64,
    scores float32}`` in the original image's pixels (the evaluator's format)."""
    boxes = rescale_boxes(pred["boxes"].float(), pred["image_size"], orig_hw)
    return {"boxes": boxes.numpy().astype(np.float32), "labels": pred["labels"].numpy().astype(np.int64),
            "scores": pred["scores"].float().numpy().astype(np.float32)}


def evaluate_detector(model: nn.Module, data_loader, device: torch.device, *, amp: bool = False,
                      output_file: Optional[str] = None) -> dict[str, Any]:
    """Detection mAP@0.5 and COCO AP of ``model`` on ``data_loader.dataset`` (in original pixels).

    Returns the evaluator's dict (``"mAP@0.5"``, ``"AP"``, ``"AP50"``, ..., ``"per_class_AP50"``)
    on every rank (computed on rank 0). ``output_file``: also save the detections (original
    pixels) there: a list of ``{"index", "boxes", "labels", "scores"}`` (rank 0, torch.save,
    weights_only-loadable).
    """
    from maskrcnn_benchmark.data.datasets.evaluation.vg.detection_eval import evaluate_detections

    t0 = time.perf_counter()
    preds = gather_predictions(compute_on_dataset(model, data_loader, device, amp=amp, desc="detector eval",
                                                  keep=DETECTION_KEYS))

    def evaluate() -> dict[str, Any]:
        ds = data_loader.dataset
        gts, dets = [], []
        for idx, pred in preds.items():
            info = ds.get_img_info(idx)
            gts.append(ds.get_groundtruth(idx))
            dets.append(detections_to_original(pred, (info["height"], info["width"])))
        results = evaluate_detections(gts, dets, len(ds.ind_to_classes), class_names=ds.ind_to_classes)
        if output_file:
            torch.save([{"index": idx, **{k: torch.from_numpy(v) for k, v in d.items()}}
                        for idx, d in zip(preds, dets)], output_file)
        logger.info("detector evaluation on %d images (%.1fs): mAP@0.5 %s, AP %s", len(dets),
                    time.perf_counter() - t0, _fmt(results.get("mAP@0.5")), _fmt(results.get("AP")))
        return results
    return on_main_process(evaluate)


SUMMARY_KEYS = ("mAP@0.5", "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")


def detection_summary(results: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of an ``evaluate_detections`` dict (no per-class entries, no None),
    e.g. for TensorBoard."""
    return {k: float(results[k]) for k in SUMMARY_KEYS if results.get(k) is not None}


def run_detector_test(cfg, model: nn.Module, device: torch.device, splits: tuple[str, ...] = ("test",)
                  ) -> dict[str, dict[str, Any]]:
    """Evaluate on each split (``"val"``/``"test"``: DATASETS.VAL / TEST); on rank 0 writes
    ``OUTPUT_DIR/inference/<dataset>/detection_metrics.json`` and ``detections.pth``."""
    import functools
    import os

    from maskrcnn_benchmark.data.build import dataset_args, make_data_loader

    out = {}
    for split in splits:
        name = dataset_args(cfg, split)[0]
        folder = os.path.join(cfg.OUTPUT_DIR, "inference", name) if cfg.OUTPUT_DIR else ""
        if folder and is_main_process():
            os.makedirs(folder, exist_ok=True)
        loader = make_data_loader(cfg, split, is_train=False)
        results = evaluate_detector(model, loader, device, amp=cfg.SOLVER.AMP,
                                    output_file=os.path.join(folder, "detections.pth") if folder else None)
        if folder:
            on_main_process(functools.partial(_write_json, os.path.join(folder, "detection_metrics.json"), results))
        logger.info("%s (%s): mAP@0.5 %s  COCO AP %s  AR100 %s", name, split, _fmt(results.get("mAP@0.5")),
                    _fmt(results.get("AP")), _fmt(results.get("AR100")))
        out[split] = results
    return out


def _write_json(path: str, obj: Any) -> None:
    import json

    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.4f}"
