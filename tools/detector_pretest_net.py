"""Evaluate a stage-1 detector: mAP@0.5 and COCO AP on val and/or test.

    python tools/detector_pretest_net.py --config-file CONFIG [--splits val test] [--weight FILE] [KEY VALUE ...]

Runs sharded under ``torchrun --nproc_per_node N`` (predictions gathered and evaluated on rank 0).
Weights: --weight, else MODEL.WEIGHT, else OUTPUT_DIR/last_checkpoint. Metrics go to
OUTPUT_DIR/inference/<dataset>/detection_metrics.json.
"""
from __future__ import annotations

import logging

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.engine.defaults import (dataset_vocabulary, default_setup, eval_argument_parser, launch,
                                                write_run_config)
from maskrcnn_benchmark.engine.inference import run_detector_test
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

logger = logging.getLogger("maskrcnn_benchmark")


def main(argv: list[str] | None = None) -> int:
    args = eval_argument_parser(__doc__.splitlines()[0], "checkpoint to evaluate (default: MODEL.WEIGHT, "
                                "else OUTPUT_DIR/last_checkpoint)").parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    device = default_setup(cfg, log_name="test_log.txt", config_name="test_config.yaml")
    model = build_detection_model(cfg, load_pretrained=False).to(device)
    ckpt = Checkpointer(model, save_dir=cfg.OUTPUT_DIR)
    weight = args.weight or cfg.MODEL.WEIGHT or ckpt.get_checkpoint_file()
    if not weight:
        logger.error("no weights: pass --weight FILE, set MODEL.WEIGHT, or train into OUTPUT_DIR (%s) first",
                     cfg.OUTPUT_DIR)
        return 2
    ckpt.load(weight, model_only=True, vocabulary=dataset_vocabulary(cfg, args.splits[0]))
    write_run_config(cfg, "test_config.yaml")
    run_detector_test(cfg, model, device, tuple(args.splits))
    return 0


if __name__ == "__main__":
    launch(main)
