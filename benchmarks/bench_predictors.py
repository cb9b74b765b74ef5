"""Training step cost of each relation predictor, alignment off and on, side by side (SynthVG sizes).

    python benchmarks/bench_predictors.py [--predictors motifs transformer vctree imp] [--mode predcls]
        [--iters 10] [--warmup 2] [--batch 8] [--threads 1] [--data-dir DIR] [KEY VALUE ...]

Each predictor runs with its config ``configs/synthvg/<predictor>_<mode>.yaml`` (the Motifs config
with the predictor swapped); "on" is the same config with MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED
True (plus ALIGN.DROPOUT_FREE for the Transformer, as its align configs). The two models are
built from the same seed, get the same batches, and alternate which runs first, so machine load
hits both alike. A step is the real ``Trainer.run_step`` (forward with the frozen detector,
losses, backward, clipping, SGD, scheduler) on batches already loaded. The detector is randomly
initialised (PredCls / SGCls timing does not depend on its weights). Without --data-dir a small
SynthVG (48 training images) is generated into a temporary folder. Prints, per predictor:
median ms per step off / on, the ratio, the trainable parameters off and the alignment's extra.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from statistics import median

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODES = {"predcls": ("True", "True"), "sgcls": ("True", "False")}


def _cfg(key: str, mode: str, align: bool, args):
    from maskrcnn_benchmark.config import load_config

    opts = ["DATASETS.DATA_DIR", args.data_dir, "DATASETS.NUM_VAL_IM", "8", "SOLVER.IMS_PER_BATCH", str(args.batch),
            "MODEL.DEVICE", args.device, "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", args.out_dir,
            "SOLVER.MAX_ITER", str(2 * (args.iters + args.warmup) + 1), "MODEL.PRETRAINED_DETECTOR_CKPT", "",
            "MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", str(align)]
    if align and key == "transformer":
        opts += ["MODEL.ROI_RELATION_HEAD.ALIGN.DROPOUT_FREE", "True"]
    return load_config(os.path.join(ROOT, f"configs/synthvg/{key}_{mode}.yaml"), opts + list(args.opts))


def _trainer(cfg, stats, device):
    from maskrcnn_benchmark.engine.trainer import Trainer
    from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model
    from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer

    torch.manual_seed(cfg.SEED)  # the same detector and shared weights off / on
    model = build_scene_graph_model(cfg, statistics=stats).to(device).train()
    opt = make_optimizer(cfg, model)
    return Trainer.from_config(cfg, model, opt, make_lr_scheduler(cfg, opt), device)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(key: str, args, batches, stats, device) -> dict:
    trainers = {on: _trainer(_cfg(key, args.mode, on, args), stats, device) for on in (False, True)}
    times = {False: [], True: []}
    for i in range(args.warmup + args.iters):
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            _sync(device)
            t0 = time.perf_counter()
            trainers[on].run_step(iter([batches[i % len(batches)]]))
            _sync(device)
            if i >= args.warmup:
                times[on].append(time.perf_counter() - t0)
    params = {on: sum(p.numel() for p in t.model.parameters() if p.requires_grad) for on, t in trainers.items()}
    return {"off_ms": 1e3 * median(times[False]), "on_ms": 1e3 * median(times[True]), "params": params[False],
            "extra": params[True] - params[False]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predictors", nargs="+", default=["motifs", "transformer", "vctree", "imp"])
    p.add_argument("--mode", default="predcls", choices=sorted(MODES))
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default="", help="DATASETS.DATA_DIR holding synthvg/ (default: generate one)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every config")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    from maskrcnn_benchmark.data.build import make_data_loader
    from maskrcnn_benchmark.data.statistics import get_dataset_statistics

    with tempfile.TemporaryDirectory() as tmp:
        args.out_dir = os.path.join(tmp, "out")
        if not args.data_dir:
            from maskrcnn_benchmark.data.synthvg import generate_synthvg
            args.data_dir = os.path.join(tmp, "data")
            generate_synthvg(os.path.join(args.data_dir, "synthvg"), seed=0, num_train=48, num_test=8,
                             image_size=256, workers=1)
        cfg = _cfg(args.predictors[0], args.mode, False, args)
        stats = get_dataset_statistics(cfg)
        device = torch.device(args.device)
        loader = iter(make_data_loader(cfg, "train", is_train=True))
        batches = [next(loader) for _ in range(min(4, args.warmup + args.iters))]
        print(f"{args.mode}, {args.batch} images per step, {args.threads} thread(s), {args.device}, "
              f"median of {args.iters} steps after {args.warmup}")
        print(f"{'predictor':<12} {'off ms':>8} {'on ms':>8} {'on/off':>7} {'params off':>11} {'align extra':>12}")
        for key in args.predictors:
            r = bench(key, args, batches, stats, device)
            print(f"{key:<12} {r['off_ms']:8.0f} {r['on_ms']:8.0f} {r['on_ms'] / r['off_ms']:7.2f} "
                  f"{r['params']:11,d} {r['extra']:12,d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
