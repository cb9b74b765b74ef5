"""Scene graphs for your own images from a trained relation checkpoint (no dataset files needed).

    python tools/sgg_infer.py --checkpoint FILE --images DIR_OR_FILE [DIR_OR_FILE ...] \\
        [--output DIR] [--boxes JSON] [--topk K] [--batch-size B] [--full-scores] [KEY VALUE ...]

SGDet (the model's own detections) by default; with --boxes, PredCls (boxes with labels) or
SGCls (boxes only) on the boxes you give. Writes <name>.json and <name>.png per image and
index.json to --output; boxes are in the original images' pixels. Config overrides (e.g.
MODEL.DEVICE cpu, INPUT.MAX_INPUT_PIXELS 50000000) come last. JSON schema:
docs/inference.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.engine.export import read_sgg_checkpoint
from maskrcnn_benchmark.engine.image_input import (BoxesFileError, boxes_mode, check_box_counts, list_images,
                                                   match_boxes, read_boxes_file)
from maskrcnn_benchmark.engine.sgg_inference import SceneGraphPredictor, prepare_output_dir, run_on_images
from maskrcnn_benchmark.utils.checkpoint import CheckpointError
from maskrcnn_benchmark.utils.logger import setup_logger
from maskrcnn_benchmark.utils.output_dir import OutputDirError

logger = logging.getLogger("maskrcnn_benchmark")
_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="FILE",
                   help="relation checkpoint (e.g. OUTPUT_DIR/model_best.pth of tools/relation_train_net.py)")
    p.add_argument("--images", required=True, nargs="+", metavar="DIR_OR_FILE",
                   help="image files and/or folders (searched recursively)")
    p.add_argument("--output", default="sgg_infer_output", metavar="DIR", help="output folder (default %(default)s)")
    p.add_argument("--boxes", default="", metavar="JSON",
                   help="boxes per image in original pixels, with labels (PredCls) or without (SGCls)")
    p.add_argument("--topk", type=int, default=50, help="relations kept per image, best first (<= 0: all pairs)")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    p.add_argument("--workers", type=int, default=0, help="image decoding processes (default 0: in-process)")
    p.add_argument("--full-scores", action="store_true",
                   help="write every relation's full predicate distribution (background first)")
    p.add_argument("--draw-relations", type=int, default=10, help="relations listed in the PNG")
    p.add_argument("--no-png", action="store_true", help="write JSON only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ... (last)")
    args = p.parse_args(argv)
    # `--images a.jpg MODEL.DEVICE cpu`: argparse gives the overrides to --images; move them back.
    for i, token in enumerate(args.images):
        if _CONFIG_KEY.match(token) and not os.path.exists(token):
            args.images, args.opts = args.images[:i], args.images[i:] + args.opts
            break
    if not args.images:
        p.error("--images needs at least one file or folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        prepare_output_dir(args.output, args.images)
    except OutputDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logger("maskrcnn_benchmark", args.output, 0, filename="log.txt")
    try:
        entries = list_images(args.images)
        if not entries:
            logger.error("no images found in %s (extensions: .jpg, .png, ... ; name files directly for others)",
                         " ".join(args.images))
            return 2
        opts = list(args.opts) + ["TEST.RELATION.TOPK_TRIPLETS", str(max(args.topk, 0))]
        ckpt = read_sgg_checkpoint(args.checkpoint)
        given, mode = None, "sgdet"
        if args.boxes:
            boxes = read_boxes_file(args.boxes, ckpt.obj_classes)
            mode = boxes_mode(boxes)
            given = match_boxes(entries, boxes)
        elif ckpt.trained_mode == "predcls":
            raise CheckpointError(f"checkpoint {args.checkpoint} was trained in PredCls (it has no object decoder): "
                                  "it needs your boxes with their labels; pass --boxes FILE (format: README, "
                                  "Inference on your own images)")
        predictor = SceneGraphPredictor.from_checkpoint(ckpt, mode=mode, opts=opts)
        del ckpt
        if args.boxes:
            check_box_counts(boxes, predictor.cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMG, args.boxes)
    except (FileNotFoundError, BoxesFileError, CheckpointError, ConfigError, ValueError) as e:
        logger.error("%s", e)
        return 2
    logger.info("%s: %d images, %s (trained as %s) on %s -> %s", args.checkpoint, len(entries), predictor.mode,
                predictor.trained_mode, predictor.device, args.output)
    try:
        index = run_on_images(predictor, entries, args.output, given=given, topk=args.topk,
                              batch_size=args.batch_size, full_scores=args.full_scores, draw=not args.no_png,
                              draw_relations=args.draw_relations, num_workers=args.workers,
                              progress=not args.no_progress, boxes_file=args.boxes)
    except OutputDirError as e:  # a full disk or a folder that turned read-only
        logger.error("%s", e)
        return 2
    return 0 if index["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
