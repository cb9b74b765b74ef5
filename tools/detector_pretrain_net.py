"""Stage 1: train the VGG-16 Faster R-CNN detector (SGB's ``tools/detector_pretrain_net.py``).

    python tools/detector_pretrain_net.py --config-file configs/e2e_relation_detector_VGG16_1x.yaml \\
        [--no-resume] [--skip-test] [KEY VALUE ...]

Rerunning the same command resumes from OUTPUT_DIR/last_checkpoint. Validation mAP@0.5 every
SOLVER.VAL_PERIOD (``model_best.pth`` keeps the best); test mAP after training. Several GPUs or
machines: launch with ``torchrun --nproc_per_node N`` (docs/multi_gpu.md).
"""
from __future__ import annotations

import logging

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data.build import make_data_loader
from maskrcnn_benchmark.engine.defaults import (dataset_vocabulary, default_argument_parser, default_setup,
                                                 do_train, launch)
from maskrcnn_benchmark.engine.inference import detection_summary, evaluate_detector, run_detector_test
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError
from maskrcnn_benchmark.modeling.detector import build_detection_model

logger = logging.getLogger("maskrcnn_benchmark")


def main(argv: list[str] | None = None) -> int:
    args = default_argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    device = default_setup(cfg)
    model = build_detection_model(cfg).to(device)

    eval_fn = None
    if cfg.SOLVER.TO_VAL:
        val_loader = make_data_loader(cfg, "val", is_train=False)
        eval_fn = lambda: detection_summary(evaluate_detector(model, val_loader, device, amp=cfg.SOLVER.AMP))  # noqa: E731

    vocabulary = {"obj_classes": dataset_vocabulary(cfg)["obj_classes"]}  # recorded, compared on loading
    try:
        trainer = do_train(cfg, model, device, lambda start: make_data_loader(cfg, "train", True, start),
                           eval_fn=eval_fn, resume=not args.no_resume, best_metric="val/mAP@0.5",
                           checkpoint_extra={"vocabulary": vocabulary})
    except NonFiniteLossError as e:
        logger.error("%s", e)
        return 1
    if trainer.completed and not args.skip_test:
        run_detector_test(cfg, model, device, ("test",))
    return 0


if __name__ == "__main__":
    launch(main)
