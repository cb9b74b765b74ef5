"""Config overrides for end-to-end engine tests on a tiny generated SynthVG (64 px images, VGG-16
at 1/16 width): the real tools and code paths, CPU-sized through config values only."""
from __future__ import annotations

import os

SYNTH = dict(seed=3, num_train=16, num_test=4, image_size=64)


def make_tiny_synthvg(data_dir: str) -> str:
    """Generate the set under ``data_dir/synthvg`` (once); returns ``data_dir``."""
    from maskrcnn_benchmark.data.synthvg import generate_synthvg
    if not os.path.isfile(os.path.join(data_dir, "synthvg", "image_data.json")):
        generate_synthvg(os.path.join(data_dir, "synthvg"), workers=1, **SYNTH)
    return data_dir


def detector_opts(data_dir: str, output_dir: str, max_iter: int = 3) -> list[str]:
    return [
        "MODEL.DEVICE", "cpu", "DATASETS.DATA_DIR", data_dir, "DATASETS.TRAIN", "('synthvg_train',)",
        "DATASETS.VAL", "('synthvg_val',)", "DATASETS.TEST", "('synthvg_test',)", "DATASETS.NUM_VAL_IM", "4",
        "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64",
        "INPUT.MAX_SIZE_TEST", "64", "MODEL.BACKBONE.WIDTH_DIVISOR", "16", "MODEL.BACKBONE.BATCH_NORM", "True",
        "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM", "32", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "31",
        "MODEL.RPN.ANCHOR_SIZES", "(16, 32)", "MODEL.RPN.PRE_NMS_TOP_N_TRAIN", "300",
        "MODEL.RPN.POST_NMS_TOP_N_TRAIN", "100", "MODEL.RPN.PRE_NMS_TOP_N_TEST", "300",
        "MODEL.RPN.POST_NMS_TOP_N_TEST", "100", "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64", "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", "10",
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.AMP", "False", "SOLVER.BASE_LR", "0.01",
        "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(2,)", "SOLVER.MAX_ITER", str(max_iter),
        "SOLVER.IMS_PER_BATCH", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.TO_VAL", "False",
        "TEST.IMS_PER_BATCH", "2", "LOG_PERIOD", "1", "OUTPUT_DIR", output_dir]


def relation_opts(data_dir: str, output_dir: str, detector_ckpt: str, max_iter: int = 3) -> list[str]:
    """PredCls Motifs with the alignment (a training-only head) on the frozen detector."""
    return detector_opts(data_dir, output_dir, max_iter) + [
        "MODEL.RELATION_ON", "True", "MODEL.PRETRAINED_DETECTOR_CKPT", detector_ckpt,
        "MODEL.ROI_RELATION_HEAD.NUM_CLASSES", "26", "MODEL.ROI_RELATION_HEAD.EMBED_DIM", "8",
        "MODEL.ROI_RELATION_HEAD.CONTEXT_HIDDEN_DIM", "12", "MODEL.ROI_RELATION_HEAD.CONTEXT_POOLING_DIM", "20",
        "MODEL.ROI_RELATION_HEAD.POS_EMBED_DIM", "10", "MODEL.ROI_RELATION_HEAD.BATCH_SIZE_PER_IMAGE", "16",
        "MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", "True", "SOLVER.TO_VAL", "True",
        "SOLVER.VAL_PERIOD", str(max_iter)]


def predictor_opts(name: str) -> list[str]:
    """MODEL.ROI_RELATION_HEAD.PREDICTOR ``name``, the Transformer's encoders at test size."""
    return ["MODEL.ROI_RELATION_HEAD.PREDICTOR", name, "MODEL.ROI_RELATION_HEAD.TRANSFORMER.OBJ_LAYER", "1",
            "MODEL.ROI_RELATION_HEAD.TRANSFORMER.REL_LAYER", "1", "MODEL.ROI_RELATION_HEAD.TRANSFORMER.NUM_HEAD", "2",
            "MODEL.ROI_RELATION_HEAD.TRANSFORMER.INNER_DIM", "16", "MODEL.ROI_RELATION_HEAD.TRANSFORMER.KEY_DIM", "4",
            "MODEL.ROI_RELATION_HEAD.TRANSFORMER.VAL_DIM", "4"]
