"""Stage 2: train Neural Motifs (optionally with the relation alignment) on the frozen detector.

    python tools/relation_train_net.py --config-file configs/e2e_relation_VGG16_1x.yaml \\
        [--no-resume] [--skip-test] [KEY VALUE ...]

MODEL.PRETRAINED_DETECTOR_CKPT names the stage-1 checkpoint. PredCls / SGCls / SGDet via
MODEL.ROI_RELATION_HEAD.USE_GT_BOX / USE_GT_OBJECT_LABEL. Rerunning the command resumes from
OUTPUT_DIR/last_checkpoint. Validation every SOLVER.VAL_PERIOD; ``model_best.pth`` keeps the best
val mR@50 and is the model tested at the end (the paper's rule; SOLVER.SELECT_BEST_VAL False: the
final model). Several GPUs or machines: launch with ``torchrun --nproc_per_node N`` (docs/multi_gpu.md).
"""
from __future__ import annotations

import logging

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data.build import dataset_args, make_data_loader
from maskrcnn_benchmark.data.statistics import get_dataset_statistics
from maskrcnn_benchmark.engine.defaults import default_argument_parser, default_setup, do_train, launch
from maskrcnn_benchmark.engine.export import checkpoint_metadata
from maskrcnn_benchmark.engine.relation_inference import (evaluate_relation_model, load_pretrained_detector,
                                                          relation_summary, run_checkpoint, run_relation_test)
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError
from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

logger = logging.getLogger("maskrcnn_benchmark")
BEST_METRIC = "val/mR@50"


def main(argv: list[str] | None = None) -> int:
    args = default_argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    if not cfg.MODEL.RELATION_ON:
        logger.error("MODEL.RELATION_ON is False: this is the relation stage (use a relation config)")
        return 2
    device = default_setup(cfg)
    statistics = get_dataset_statistics(cfg)
    model = build_scene_graph_model(cfg, statistics=statistics)
    load_pretrained_detector(model, cfg.MODEL.PRETRAINED_DETECTOR_CKPT, obj_classes=statistics["obj_classes"])
    model.to(device)

    eval_fn = None
    if cfg.SOLVER.TO_VAL:
        val_loader = make_data_loader(cfg, "val", is_train=False)
        val_name = dataset_args(cfg, "val")[0]
        eval_fn = lambda: relation_summary(evaluate_relation_model(  # noqa: E731
            cfg, model, val_loader, device, dataset_name=val_name))

    try:
        # find_unused_parameters: a rank whose images yield no pair leaves the union branch out of its loss
        trainer = do_train(cfg, model, device, lambda start: make_data_loader(cfg, "train", True, start),
                           eval_fn=eval_fn, resume=not args.no_resume, best_metric=BEST_METRIC,
                           checkpoint_extra=checkpoint_metadata(cfg, statistics),  # self-contained for sgg_infer
                           find_unused_parameters=True)
    except NonFiniteLossError as e:
        logger.error("%s", e)
        return 1
    if not trainer.completed or args.skip_test:
        return 0
    ckpt = Checkpointer(model, save_dir=cfg.OUTPUT_DIR)
    checkpoint = run_checkpoint(cfg, ckpt)
    if checkpoint != ckpt.get_checkpoint_file():  # model_best; the model in memory is the last one
        ckpt.load(checkpoint, model_only=True)
    checkpoint = checkpoint or "last iteration"
    logger.info("testing %s", checkpoint)
    run_relation_test(cfg, model, device, ("test",), checkpoint=checkpoint)
    return 0


if __name__ == "__main__":
    launch(main)
