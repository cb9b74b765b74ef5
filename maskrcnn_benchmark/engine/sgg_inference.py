"""Scene graphs for users' own images from a self-contained relation checkpoint (``tools/sgg_infer.py``).

SGDet by default; PredCls / SGCls on boxes the user gives. Outputs, per image, a JSON in the
original image's pixels and a PNG drawing, plus ``index.json`` for the run (schema in
docs/inference.md).
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from tqdm import tqdm

from maskrcnn_benchmark.data.collate_batch import to_image_list
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.utils.checkpoint import atomic_write
from maskrcnn_benchmark.utils.miscellaneous import resolve_device
from maskrcnn_benchmark.utils.output_dir import OutputDirError
from maskrcnn_benchmark.utils.visualize import draw_scene_graph

from .amp import autocast
from .export import SGGCheckpoint, build_model_from_checkpoint, read_sgg_checkpoint
from .image_input import GivenBoxes, ImageEntry, InferenceImages, collate_items
from .inference import rescale_boxes
from .trainer import move_to_device

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["IMAGE_FORMAT", "INDEX_FORMAT", "SceneGraphPredictor", "prepare_output_dir", "run_on_images",
           "scene_graph_json", "to_original"]

IMAGE_FORMAT = "maskrcnn_benchmark-scene-graph-v1"
INDEX_FORMAT = "maskrcnn_benchmark-sgg-infer-index-v1"


class SceneGraphPredictor:
    """A scene-graph model with its config, vocabularies and device.

    Args:
        model: a ``SceneGraphModel`` (put in eval mode here); cfg: its frozen config.
        obj_classes / rel_classes: C / P names (index 0 "__background__").
        device: where the model runs; checkpoint: the file it came from (for the record).
        trained_mode: the mode the model was trained in.
    """

    def __init__(self, model: nn.Module, cfg, obj_classes: Sequence[str], rel_classes: Sequence[str],
                 device: torch.device, *, checkpoint: str = "", trained_mode: str = "",
                 info: Optional[Dict[str, Any]] = None):
        self.model = model.to(device).eval()
        self.cfg, self.device = cfg, torch.device(device)
        self.obj_classes, self.rel_classes = list(obj_classes), list(rel_classes)
        self.checkpoint, self.trained_mode, self.info = checkpoint, trained_mode, dict(info or {})
        self.transforms = build_transforms(cfg, is_train=False)

    @classmethod
    def from_checkpoint(cls, checkpoint: Union[str, SGGCheckpoint], mode: Optional[str] = None,
                        opts: Sequence[str] = (), device: Optional[str] = None) -> "SceneGraphPredictor":
        """Load a checkpoint file (``torch.load(weights_only=True)``, no dataset files) or take one
        already read, and build the model in ``mode`` (default: the training mode); ``opts``
        override the stored config; ``device`` default MODEL.DEVICE (CUDA falls back to the CPU)."""
        ckpt = read_sgg_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
        model, cfg = build_model_from_checkpoint(ckpt, mode, opts)
        return cls(model, cfg, ckpt.obj_classes, ckpt.rel_classes, resolve_device(device or cfg.MODEL.DEVICE),
                   checkpoint=ckpt.path, trained_mode=ckpt.trained_mode, info=ckpt.info)

    @property
    def mode(self) -> str:
        return self.model.mode

    @torch.no_grad()
    def predict(self, images: Sequence[Tensor], targets: Optional[Sequence[Dict[str, Tensor]]] = None
                ) -> List[Dict[str, Tensor]]:
        """Normalised images FloatTensor[3, h_i, w_i] (and, in PredCls / SGCls, targets with "boxes"
        [n_i, 4] in those pixels and "labels") -> the model's outputs on the CPU, each with
        ``"image_size"`` (h_i, w_i). Images are padded as the data loader's collate pads them."""
        batch = to_image_list(list(images), self.cfg.DATALOADER.SIZE_DIVISIBILITY)
        batch = move_to_device(batch, self.device)
        if targets is not None:
            targets = move_to_device(list(targets), self.device)
        with autocast(self.device, self.cfg.SOLVER.AMP):
            outputs = self.model(batch, targets)
        result = []
        for size, out in zip(batch.image_sizes, outputs):
            out = {k: (v.float() if v.is_floating_point() else v).cpu() for k, v in out.items()}
            out["image_size"] = tuple(int(s) for s in size)
            result.append(out)
        return result


def to_original(out: Dict[str, Tensor], orig_hw: Sequence[int], given: Optional[GivenBoxes] = None
                ) -> Dict[str, np.ndarray]:
    """One model output (resized pixels) -> numpy arrays in original pixels: ``boxes`` [N, 4]
    (the given boxes themselves in PredCls / SGCls, else rescaled and clipped), ``labels``,
    ``scores``, ``rel_pairs`` [R, 2], ``rel_scores`` [R, P]."""
    if given is not None:
        if out["boxes"].shape[0] != len(given.boxes):
            raise RuntimeError(f"the model returned {out['boxes'].shape[0]} boxes for {len(given.boxes)} given")
        boxes = np.asarray(given.boxes, np.float64)
    else:
        h, w = int(orig_hw[0]), int(orig_hw[1])
        boxes = rescale_boxes(out["boxes"].double(), out["image_size"], (h, w)).numpy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        boxes = boxes.round(2)  # 0.01 pixel
    return {"boxes": boxes, "labels": out["labels"].numpy().astype(np.int64),
            "scores": out["scores"].numpy().astype(np.float64),
            "rel_pairs": out["rel_pairs"].numpy().astype(np.int64).reshape(-1, 2),
            "rel_scores": out["rel_scores"].numpy().astype(np.float64)}


def scene_graph_json(pred: Dict[str, np.ndarray], obj_classes: Sequence[str], rel_classes: Sequence[str], *,
                     topk: int = 50, full_scores: bool = False, header: Optional[Dict[str, Any]] = None
                     ) -> Dict[str, Any]:
    """The per-image JSON (docs/inference.md): objects, and relations with
    predicate = best non-background class, score = its probability x subject score x object
    score, best first, the first ``topk`` (<= 0: all)."""
    boxes, labels, scores = pred["boxes"], pred["labels"], pred["scores"]
    objects = [{"index": i, "box": [float(v) for v in boxes[i]], "label": int(labels[i]),
                "name": obj_classes[int(labels[i])], "score": float(scores[i])} for i in range(len(labels))]
    pairs, probs = pred["rel_pairs"], pred["rel_scores"]
    relations = []
    if len(pairs):
        predicate = probs[:, 1:].argmax(1) + 1
        pred_score = probs[np.arange(len(pairs)), predicate]
        triplet = pred_score * scores[pairs[:, 0]] * scores[pairs[:, 1]]
        order = np.argsort(-triplet, kind="stable")
        if topk > 0:
            order = order[:topk]
        for r in order:
            s, o, p = int(pairs[r, 0]), int(pairs[r, 1]), int(predicate[r])
            rel = {"subject": s, "object": o, "predicate": p, "name": rel_classes[p],
                   "subject_name": objects[s]["name"], "object_name": objects[o]["name"],
                   "predicate_score": float(pred_score[r]), "score": float(triplet[r])}
            if full_scores:
                rel["predicate_scores"] = [float(v) for v in probs[r]]
            relations.append(rel)
    return {"format": IMAGE_FORMAT, **(header or {}), "objects": objects, "relations": relations}


def _draw(item: Dict[str, Any], sg: Dict[str, Any], max_relations: int):
    boxes = np.asarray([o["box"] for o in sg["objects"]], np.float64).reshape(-1, 4) * item["display_scale"]
    names = [o["name"] for o in sg["objects"]]
    rels = [(r["subject"], r["object"], r["name"], r["score"]) for r in sg["relations"]]
    title = f"{os.path.basename(item['entry'].path)}  ({sg['mode']})"
    return draw_scene_graph(item["display"], boxes, names, rels, title=title, max_relations=max_relations)


# Messages of errors after which the device (and so every later image) is unusable.
_DEVICE_FAILURES = ("CUDA error", "device-side assert", "CUBLAS_STATUS", "CUDNN_STATUS", "cuDNN error",
                    "NCCL error", "illegal memory access", "unspecified launch failure")


def is_per_image_error(e: BaseException) -> bool:
    """Whether a failed forward pass is this image's problem (skip it, go on): out of memory, or
    a shape / value the model cannot take. A CUDA error (device-side assert, illegal access) or a
    bug (TypeError, KeyError, ...) would fail every later image too: the run stops with it."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(e, accelerator_error):
        return False
    if isinstance(e, NotImplementedError) or not isinstance(e, (RuntimeError, ValueError)):
        return False
    return not any(m in str(e) for m in _DEVICE_FAILURES)


def _output_stem(key: str, used: set, free=lambda name: True) -> str:
    """``key`` as a file stem (``/`` -> ``__``, extension dropped), ``_2``, ``_3`` ... when taken
    in this run or when ``free(stem)`` is False (a file that is not ours)."""
    stem = os.path.splitext(key)[0].replace("/", "__").replace("\\", "__") or "image"
    name, n = stem, 1
    while name in used or not free(name):
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name


def _json_format(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            data = json.load(f)
        return data.get("format") if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def prepare_output_dir(output_dir: str, images: Sequence[str]) -> set:
    """Check that ``output_dir`` can take this run's files without overwriting anything the
    tool did not write; returns the file names an earlier run of the tool wrote there (listed in
    its ``index.json``), which may be rewritten. Raises OutputDirError when ``output_dir`` lies
    inside an ``images`` folder (the drawings would mix with the photos and be read as inputs
    next time), is not a folder, or holds an ``index.json`` or ``config.yaml`` that is not the
    tool's (``log.txt`` is only appended to)."""
    out = os.path.realpath(output_dir)
    for item in images:
        folder = os.path.realpath(item)
        if os.path.isdir(item) and (out == folder or out.startswith(folder + os.sep)):
            raise OutputDirError(f"--output {output_dir} is inside the --images folder {item}: the outputs would mix "
                                 "with your images; choose an --output folder outside it")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputDirError(f"--output {output_dir} exists and is not a folder: choose another --output")
    ours = _earlier_outputs(output_dir)
    config = os.path.join(output_dir, "config.yaml")
    if not ours and os.path.exists(config):
        raise OutputDirError(f"{config} exists without an index.json of this tool: choose another --output "
                             "(nothing is overwritten)")
    return ours


def _earlier_outputs(output_dir: str) -> set:
    """The files the ``index.json`` of an earlier run in ``output_dir`` lists (OutputDirError when
    that file is not this tool's)."""
    index = os.path.join(output_dir, "index.json")
    if not os.path.exists(index):
        return set()
    if _json_format(index) != INDEX_FORMAT:
        raise OutputDirError(f"{index} was not written by this tool: choose another --output (nothing in "
                             f"{output_dir} is overwritten)")
    with open(index) as f:
        records = json.load(f).get("images", [])
    return {"index.json", "config.yaml", "log.txt"} | {
        r[k] for r in records if isinstance(r, dict) for k in ("json", "png") if isinstance(r.get(k), str)}


def _dumps(obj: Dict[str, Any]) -> str:
    """JSON with one top-level key per line and one object / relation per line."""
    lines = []
    for k, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            items = ",\n  ".join(json.dumps(x) for x in v)
            lines.append(f" {json.dumps(k)}: [\n  {items}\n ]")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _write_json(path: str, obj: Any, compact: bool = False) -> None:
    text = _dumps(obj) if compact else json.dumps(obj, indent=1)
    atomic_write(path, lambda f: f.write(text.encode()))


def run_on_images(predictor: SceneGraphPredictor, entries: Sequence[ImageEntry], output_dir: str, *,
                  given: Optional[Sequence[Any]] = None, topk: int = 50, batch_size: int = 1,
                  full_scores: bool = False, draw: bool = True, draw_relations: int = 10,
                  num_workers: int = 0, display_size: int = 1024, progress: bool = True,
                  boxes_file: str = "") -> Dict[str, Any]:
    """Scene graphs of ``entries`` into ``output_dir``: ``<name>.json`` (+ ``<name>.png``) per image
    and ``index.json`` (written at the end, also when the run stops on an error).

    Args:
        given: per image :class:`GivenBoxes` or a reason string (PredCls / SGCls), or None (SGDet).
        topk: relations kept per image (<= 0: every pair); batch_size: images per forward pass.
        full_scores: also write each relation's full predicate distribution.
        draw / draw_relations: write the PNG with this many top relations.
    Unreadable, corrupt, too large images (and those without given boxes) are skipped with their
    reason, logged and listed in the index; the run goes on. No file is written over an input
    image or a file an earlier run of this tool did not write (such names get ``_2``, ...; see
    :func:`prepare_output_dir`). Returns the index dict.
    """
    if predictor.mode != "sgdet" and given is None:
        raise ValueError(f"{predictor.mode} needs the given boxes of every image")
    ours = _earlier_outputs(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    inputs = {os.path.realpath(e.path) for e in entries}
    exts = (".json", ".png") if draw else (".json",)

    def free(stem: str) -> bool:
        """Never an input image, nor a file an earlier run of this tool did not write."""
        for ext in exts:
            path = os.path.join(output_dir, stem + ext)
            if os.path.realpath(path) in inputs:
                return False
            if os.path.lexists(path) and stem + ext not in ours and not (
                    ext == ".json" and _json_format(path) == IMAGE_FORMAT):
                return False
        return True
    dataset = InferenceImages(entries, predictor.transforms, predictor.cfg.INPUT.MAX_INPUT_PIXELS,
                              given=given, display_size=display_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=max(1, batch_size), shuffle=False,
                                         num_workers=num_workers, collate_fn=collate_items)
    cfg_dict = yaml.safe_load(predictor.cfg.dump())
    index: Dict[str, Any] = {
        "format": INDEX_FORMAT, "checkpoint": predictor.checkpoint, "mode": predictor.mode,
        "trained_mode": predictor.trained_mode, "checkpoint_info": predictor.info, "boxes_file": boxes_file,
        "topk": topk, "device": str(predictor.device), "completed": False,
        "num_images": len(entries), "images": [], "skipped": [],
        "obj_classes": predictor.obj_classes, "rel_classes": predictor.rel_classes, "config": cfg_dict}
    used: set = {"index", "config"}
    t0 = time.perf_counter()

    def skip(item: Dict[str, Any], reason: str) -> None:
        logger.warning("skipping %s: %s", item["entry"].path, reason)
        index["skipped"].append({"image": item["entry"].path, "reason": reason})

    def emit(item: Dict[str, Any], out: Dict[str, Tensor]) -> None:
        h, w = item["orig_size"]
        pred = to_original(out, (h, w), item["given"])
        header = {"image": item["entry"].path, "width": w, "height": h, "mode": predictor.mode}
        sg = scene_graph_json(pred, predictor.obj_classes, predictor.rel_classes, topk=topk,
                              full_scores=full_scores, header=header)
        stem = _output_stem(item["entry"].key, used, free)
        record = {"image": item["entry"].path, "json": f"{stem}.json", "png": None, "width": w, "height": h,
                  "num_objects": len(sg["objects"]), "num_relations": len(sg["relations"])}
        _write_json(os.path.join(output_dir, record["json"]), sg, compact=True)
        if draw:
            record["png"] = f"{stem}.png"
            png = os.path.join(output_dir, record["png"])
            atomic_write(png, lambda f: _draw(item, sg, draw_relations).save(f, format="PNG"))
        index["images"].append(record)

    def predict(items: List[Dict[str, Any]]) -> List[tuple]:
        """(item, output) pairs; a failed batch is retried one image at a time (e.g. out of memory)."""
        targets = [it["target"] for it in items] if predictor.mode != "sgdet" else None
        try:
            return list(zip(items, predictor.predict([it["image"] for it in items], targets)))
        except Exception as e:  # noqa: BLE001 - a per-image problem is the image's skip reason
            if not is_per_image_error(e):
                raise
            logger.debug("%s", traceback.format_exc())
            if predictor.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(items) == 1:
                skip(items[0], f"inference failed ({type(e).__name__}: {e})")
                return []
            logger.warning("a batch of %d images failed (%s); retrying them one at a time", len(items), e)
            return [pair for it in items for pair in predict([it])]

    try:
        _write_json(os.path.join(output_dir, "index.json"), index)  # marks the folder as this tool's
        config_text = predictor.cfg.dump()
        atomic_write(os.path.join(output_dir, "config.yaml"), lambda f: f.write(config_text.encode()))
        bar = tqdm(total=len(entries), desc=f"sgg infer ({predictor.mode})", disable=not progress,
                   dynamic_ncols=True, unit="img")
        for batch in loader:
            for it in batch:
                if it["error"]:
                    skip(it, it["error"])
            good = [it for it in batch if not it["error"]]
            for it, out in (predict(good) if good else []):
                emit(it, out)
            bar.update(len(batch))
        bar.close()
        index["completed"] = True
    finally:
        index["seconds"] = round(time.perf_counter() - t0, 3)
        _write_json(os.path.join(output_dir, "index.json"), index)
    logger.info("%d scene graphs written to %s, %d images skipped (%.1fs)", len(index["images"]), output_dir,
                len(index["skipped"]), index["seconds"])
    return index
