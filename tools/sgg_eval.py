"""Re-evaluate saved scene-graph predictions (``predictions.pt``) without the model.

    python tools/sgg_eval.py --predictions OUT/inference/NAME/predictions.pt --dataset NAME \
        [--config-file CONFIG] [--output-dir DIR] [--no-zeroshot] [KEY VALUE ...]

NAME is a dataset name (e.g. VG_stanford_filtered_with_attribute_test, synthvg_test) under
DATASETS.DATA_DIR. The mode (PredCls / SGCls / SGDet) is the one stored in the file; overrides such
as TEST.RELATION.MAX_BOXES 40, TEST.RELATION.IOU_THRESHOLD 0.5 or TEST.RELATION.NUM_WORKERS 2
apply. Writes results.json and results.txt to --output-dir (default: <predictions dir>/sgg_eval).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.data.datasets.evaluation.vg.vg_eval import evaluate_predictions_file
from maskrcnn_benchmark.data.errors import DatasetError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predictions", required=True, metavar="FILE")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--config-file", default="", metavar="FILE")
    p.add_argument("--output-dir", default="", metavar="DIR")
    p.add_argument("--no-zeroshot", action="store_true",
                   help="skip zR (it needs the training split's annotations)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.output_dir or os.path.join(os.path.dirname(os.path.abspath(args.predictions)),
                                          "sgg_eval")
    try:
        cfg = load_config(args.config_file, args.opts)
        evaluate_predictions_file(cfg, args.predictions, args.dataset, out,
                                  zeroshot=not args.no_zeroshot)
    except (ConfigError, DatasetError, KeyError, ValueError, FileNotFoundError) as e:
        logging.error("error: %s", e.args[0] if e.args else e)
        return 2
    logging.info("results written to %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
