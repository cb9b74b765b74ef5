"""Evaluate a stage-2 scene-graph model (PredCls / SGCls / SGDet as the config's switches say).

    python tools/relation_test_net.py --config-file CONFIG [--splits val test] [--weight FILE] [KEY VALUE ...]

Runs sharded under ``torchrun --nproc_per_node N`` (predictions gathered and evaluated on rank 0).
Weights: --weight, else MODEL.WEIGHT, else OUTPUT_DIR/model_best.pth (best val mR@50; not with
SOLVER.SELECT_BEST_VAL False), else OUTPUT_DIR/last_checkpoint. Results (results.json,
results.txt) and predictions.pt (original pixels, the evaluator's format) go to
OUTPUT_DIR/inference/<dataset>/.
"""
from __future__ import annotations

import logging

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.engine.defaults import (dataset_vocabulary, default_setup, eval_argument_parser, launch,
                                                write_run_config)
from maskrcnn_benchmark.engine.relation_inference import run_checkpoint, run_relation_test
from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import ALIGNMENT_STATE_PREFIX, inference_config
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

logger = logging.getLogger("maskrcnn_benchmark")


def main(argv: list[str] | None = None) -> int:
    args = eval_argument_parser(__doc__.splitlines()[0], "checkpoint to evaluate (default: MODEL.WEIGHT, else "
                                "OUTPUT_DIR/model_best.pth, else OUTPUT_DIR/last_checkpoint)").parse_args(argv)
    cfg = inference_config(load_config(args.config_file, args.opts))  # no training-only alignment head
    if not cfg.MODEL.RELATION_ON:
        logger.error("MODEL.RELATION_ON is False: this evaluates relation models (use a relation config)")
        return 2
    device = default_setup(cfg, log_name="test_log.txt", config_name="test_config.yaml")
    model = build_scene_graph_model(cfg).to(device)
    ckpt = Checkpointer(model, save_dir=cfg.OUTPUT_DIR)
    weight = args.weight or cfg.MODEL.WEIGHT or run_checkpoint(cfg, ckpt)
    if not weight:
        logger.error("no weights: pass --weight FILE, set MODEL.WEIGHT, or train into OUTPUT_DIR (%s) first",
                     cfg.OUTPUT_DIR)
        return 2
    ckpt.load(weight, model_only=True, ignore_prefixes=(ALIGNMENT_STATE_PREFIX,),
              vocabulary=dataset_vocabulary(cfg, args.splits[0]))
    write_run_config(cfg, "test_config.yaml")
    run_relation_test(cfg, model, device, tuple(args.splits), checkpoint=weight)
    return 0


if __name__ == "__main__":
    launch(main)
