"""Self-contained relation checkpoints: what inference on new images needs without the dataset.

A relation checkpoint written with ``checkpoint_metadata`` (``do_train(..., checkpoint_extra=...)``)
carries, next to the Checkpointer's entries (``model``, ``config`` YAML text, ``iteration``, ...):

- ``"sgg_metadata"``: ``{"version": 1, "obj_classes": list[str] (C, index 0 "__background__"),
  "rel_classes": list[str] (P), "mode": "predcls" | "sgcls" | "sgdet" (the training mode),
  "dataset": the training dataset's name}``
- ``"statistics"``: ``{"fg_matrix": Int64[C, C, P], "pred_dist": Float[C, C, P]}`` (the frequency
  statistics the model was trained with, see ``data.statistics``).

Everything loads with ``torch.load(weights_only=True)``. ``read_sgg_checkpoint`` reads such a file
and ``build_model_from_checkpoint`` rebuilds the model in any evaluation mode from it alone.
Run as a module, this file attaches the metadata to a checkpoint trained without it::

    python -m maskrcnn_benchmark.engine.export --checkpoint IN.pth --output OUT.pth [--config-file F] [KEY VALUE ...]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from maskrcnn_benchmark.config import ConfigError, get_cfg, load_config
from maskrcnn_benchmark.config.loader import merge_from_file, merge_from_list
from maskrcnn_benchmark.utils.checkpoint import (CheckpointError, atomic_write, load_state_dict_checked,
                                                 read_checkpoint)

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["METADATA_VERSION", "SGGCheckpoint", "build_model_from_checkpoint", "checkpoint_metadata",
           "config_from_text", "read_sgg_checkpoint"]

METADATA_VERSION = 1
_PREDICTOR_PREFIX = "relation_head.predictor."
_MODE_SWITCHES = {"predcls": (True, True), "sgcls": (True, False), "sgdet": (False, False)}


def checkpoint_metadata(cfg, statistics: Dict[str, Any], dataset: Any = None) -> Dict[str, Any]:
    """The entries that make a relation checkpoint usable without the dataset.

    Args:
        cfg: the resolved training config (MODEL.RELATION_ON).
        statistics: ``get_dataset_statistics(cfg)`` (``fg_matrix``, ``pred_dist``, and
            ``obj_classes`` / ``rel_classes`` unless ``dataset`` gives them).
        dataset: optional; its ``ind_to_classes`` / ``ind_to_predicates`` name the classes.
    Returns:
        ``{"sgg_metadata": {...}, "statistics": {"fg_matrix", "pred_dist"}, "config": YAML text}``.
    """
    from maskrcnn_benchmark.modeling.roi_heads.relation_head import relation_mode

    obj_classes = list(getattr(dataset, "ind_to_classes", None) or statistics.get("obj_classes") or [])
    rel_classes = list(getattr(dataset, "ind_to_predicates", None) or statistics.get("rel_classes") or [])
    num_obj, num_rel = cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, cfg.MODEL.ROI_RELATION_HEAD.NUM_CLASSES
    if len(obj_classes) != num_obj or len(rel_classes) != num_rel:
        raise ValueError(f"checkpoint metadata: {len(obj_classes)} object / {len(rel_classes)} predicate names, "
                         f"the config has MODEL.ROI_BOX_HEAD.NUM_CLASSES {num_obj} / "
                         f"MODEL.ROI_RELATION_HEAD.NUM_CLASSES {num_rel}: do the config and dataset match?")
    fg, pred_dist = statistics["fg_matrix"], statistics["pred_dist"]
    expected = (num_obj, num_obj, num_rel)
    for name, t in (("fg_matrix", fg), ("pred_dist", pred_dist)):
        if tuple(t.shape) != expected:
            raise ValueError(f"checkpoint metadata: statistics {name} has shape {tuple(t.shape)}, expected {expected}")
    return {"sgg_metadata": {"version": METADATA_VERSION, "obj_classes": [str(c) for c in obj_classes],
                             "rel_classes": [str(c) for c in rel_classes], "mode": relation_mode(cfg),
                             "dataset": str(cfg.DATASETS.TRAIN[0]) if cfg.DATASETS.TRAIN else ""},
            "statistics": {"fg_matrix": torch.as_tensor(fg).to(torch.int64).cpu(),
                           "pred_dist": torch.as_tensor(pred_dist).float().cpu()},
            "config": cfg.dump()}


def config_from_text(text: str, opts: Sequence[str] = (), source: str = "checkpoint"):
    """A frozen config from YAML text (a checkpoint's ``config``) plus ``KEY VALUE`` overrides,
    with the same strict checks as ``load_config``."""
    cfg = get_cfg()
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="sgg_config_")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            merge_from_file(cfg, path)
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"the config stored in {source} does not fit this version of the code: "
                              + str(e).replace(path, source)) from e
    finally:
        os.remove(path)
    merge_from_list(cfg, list(opts))
    cfg.freeze()
    return cfg


@dataclass
class SGGCheckpoint:
    """A relation checkpoint read by :func:`read_sgg_checkpoint`.

    Attributes:
        path: the file; state: the model state dict; config_text: the training config (YAML);
        obj_classes / rel_classes: names, index 0 "__background__"; trained_mode: the mode the
        model was trained in; statistics: ``{"fg_matrix", "pred_dist"}``; info: the other
        entries (``iteration``, ``best_metric``, ``dataset``).
    """

    path: str
    state: Dict[str, Tensor]
    config_text: str
    obj_classes: list
    rel_classes: list
    trained_mode: str
    statistics: Dict[str, Tensor]
    info: Dict[str, Any]


def read_sgg_checkpoint(path: str) -> SGGCheckpoint:
    """Read a self-contained relation checkpoint (``torch.load(weights_only=True)``); errors name
    the file and the fix."""
    data = read_checkpoint(path)
    fix = (" Train it with tools/relation_train_net.py (which saves this), or attach the metadata: "
           "python -m maskrcnn_benchmark.engine.export --checkpoint IN --output OUT [--config-file CFG]")
    if "sgg_metadata" not in data or "statistics" not in data:
        raise CheckpointError(f"checkpoint {path} carries no class / predicate vocabularies or frequency "
                              f"statistics (a detector checkpoint, or a relation checkpoint without metadata)." + fix)
    if not isinstance(data.get("config"), str):
        raise CheckpointError(f"checkpoint {path} carries no training config." + fix)
    meta, stats = data["sgg_metadata"], data["statistics"]
    if int(meta.get("version", 0)) > METADATA_VERSION:
        raise CheckpointError(f"checkpoint {path} has metadata version {meta.get('version')}; this code reads "
                              f"up to {METADATA_VERSION}: update maskrcnn_benchmark")
    missing = [k for k in ("obj_classes", "rel_classes", "mode") if k not in meta] + \
              [k for k in ("fg_matrix", "pred_dist") if not isinstance(stats.get(k), Tensor)]
    if missing:
        raise CheckpointError(f"checkpoint {path}: metadata lacks {missing}." + fix)
    info = {k: data[k] for k in ("iteration", "best_metric") if k in data}
    info["dataset"] = meta.get("dataset", "")
    return SGGCheckpoint(path=path, state=data["model"], config_text=data["config"],
                         obj_classes=list(meta["obj_classes"]), rel_classes=list(meta["rel_classes"]),
                         trained_mode=str(meta["mode"]), statistics=dict(stats), info=info)


def build_model_from_checkpoint(ckpt: SGGCheckpoint, mode: Optional[str] = None, opts: Sequence[str] = ()
                                ) -> Tuple[torch.nn.Module, Any]:
    """The scene-graph model of ``ckpt`` (eval mode, on the CPU) and its config.

    Args:
        mode: "predcls" | "sgcls" | "sgdet" (default: the training mode). A model trained in
            SGCls / SGDet runs in any mode (PredCls leaves its object decoder unused); a PredCls
            model has no object decoder and runs in PredCls only.
        opts: ``KEY VALUE`` overrides on top of the stored config (the mode switches are set last).
    """
    from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model
    from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import (ALIGNMENT_STATE_PREFIX,
                                                                               inference_config)

    mode = mode or ckpt.trained_mode
    if mode not in _MODE_SWITCHES:
        raise ValueError(f"mode must be one of {sorted(_MODE_SWITCHES)}, got {mode!r}")
    gt_box, gt_label = _MODE_SWITCHES[mode]
    switches = ["MODEL.ROI_RELATION_HEAD.USE_GT_BOX", str(gt_box),
                "MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL", str(gt_label)]
    cfg = config_from_text(ckpt.config_text, list(opts) + switches, source=f"checkpoint {ckpt.path}")
    if not cfg.MODEL.RELATION_ON:
        raise CheckpointError(f"checkpoint {ckpt.path} is not a relation model (MODEL.RELATION_ON is False)")
    if len(ckpt.obj_classes) != cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES or \
            len(ckpt.rel_classes) != cfg.MODEL.ROI_RELATION_HEAD.NUM_CLASSES:
        raise CheckpointError(f"checkpoint {ckpt.path}: {len(ckpt.obj_classes)} object / {len(ckpt.rel_classes)} "
                              "predicate names do not match its config's NUM_CLASSES")
    decoder = _decoder_prefixes(cfg)
    has_decoder = any(k.startswith(decoder) for k in ckpt.state) if decoder else True
    if mode != "predcls" and not has_decoder:
        raise CheckpointError(f"checkpoint {ckpt.path} was trained in {ckpt.trained_mode} and has no object "
                              f"decoder: it cannot run in {mode}. Give object labels with the boxes (PredCls) "
                              "or use a model trained in SGCls / SGDet")
    cfg = inference_config(cfg)  # the alignment's untied head is training-only
    model = build_scene_graph_model(cfg, statistics={"pred_dist": ckpt.statistics["pred_dist"]})
    ignore = (ALIGNMENT_STATE_PREFIX,) + (decoder if mode == "predcls" else ())
    load_state_dict_checked(model, ckpt.state, ignore_prefixes=ignore, source=f"checkpoint {ckpt.path}")
    model.eval()
    return model, cfg


def _decoder_prefixes(cfg) -> Tuple[str, ...]:
    """State-dict prefixes of what only SGCls / SGDet models of this predictor have (its object
    classifier: ``OBJECT_DECODER_PREFIXES`` of the MODEL.ROI_RELATION_HEAD.PREDICTOR class)."""
    from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR
    import maskrcnn_benchmark.modeling.roi_heads.relation_head  # noqa: F401  (registers the predictors)

    name = cfg.MODEL.ROI_RELATION_HEAD.PREDICTOR
    try:
        cls = ROI_RELATION_PREDICTOR[name]
    except KeyError as e:
        raise CheckpointError(f"the checkpoint's config names MODEL.ROI_RELATION_HEAD.PREDICTOR {name!r}: "
                              f"{e.args[0]}") from None
    return tuple(_PREDICTOR_PREFIX + p for p in getattr(cls, "OBJECT_DECODER_PREFIXES", ()))


def attach_metadata(checkpoint: str, output: str, config_file: str = "", opts: Sequence[str] = ()) -> str:
    """Copy ``checkpoint`` to ``output`` with :func:`checkpoint_metadata` added, computing the
    statistics from the dataset the config names (``config_file``, else the stored config)."""
    from maskrcnn_benchmark.data.statistics import get_dataset_statistics

    data = read_checkpoint(checkpoint)
    if config_file:
        cfg = load_config(config_file, opts)
    elif isinstance(data.get("config"), str):
        cfg = config_from_text(data["config"], opts, source=f"checkpoint {checkpoint}")
    else:
        raise CheckpointError(f"checkpoint {checkpoint} stores no config: pass --config-file")
    if not cfg.MODEL.RELATION_ON:
        raise CheckpointError(f"{checkpoint}: the config is not a relation config (MODEL.RELATION_ON is False)")
    data.update(checkpoint_metadata(cfg, get_dataset_statistics(cfg)))
    atomic_write(output, lambda f: torch.save(data, f))
    return output


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Attach vocabularies, statistics and config to a relation checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="IN")
    p.add_argument("--output", required=True, metavar="OUT")
    p.add_argument("--config-file", default="", help="training config (default: the one stored in IN)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(attach_metadata(args.checkpoint, args.output, args.config_file, args.opts))
    except (CheckpointError, ConfigError, ValueError, OSError) as e:
        logger.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
