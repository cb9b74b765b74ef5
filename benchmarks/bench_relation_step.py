"""Stage-2 training step and inference cost of two variants side by side (SynthVG and full size).

    python benchmarks/bench_relation_step.py                          # ALIGN off vs on, PredCls
    python benchmarks/bench_relation_step.py --configs synthvg --iters 20 --batch 8 --threads 1
    python benchmarks/bench_relation_step.py --configs full --mode sgcls [KEY VALUE ...]
    python benchmarks/bench_relation_step.py --compare regime --mode sgdet --detector-ckpt D.pth

``--compare align`` (default): the config with MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED False / True.
``--compare regime``: the frozen detector run on every batch (MODEL.DETECTOR_CACHE_MB 0) vs its
outputs reused (4096), the cache filled beforehand from the timed batches, as from the second
epoch on; the config's SOLVER.AMP for both. ``--compare amp``: SOLVER.AMP False vs True (float32
vs bfloat16 autocast on a CPU), both with reuse.

Configs: "synthvg" is configs/synthvg/motifs_predcls.yaml (its _BASE_ detector); "full" is
configs/e2e_relation_VGG16_1x.yaml (VGG-16 at 512 channels, box head fc 2048, context pooling
4096, images resized to INPUT.MIN_SIZE_TRAIN 600 / MAX 1000 as the config says) run on the
SynthVG images with NUM_CLASSES set to SynthVG's vocabulary (31 objects / 26 predicates). The
detector is randomly initialised unless ``--detector-ckpt`` names a stage-1 checkpoint (PredCls /
SGCls timing does not depend on its weights; SGDet needs a trained one to sample pairs). ALIGN on is the
same config with MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED True. Trailing KEY VALUE pairs override
both configs.

Timing (one subprocess per config): the two models are built from the same seed and trained on
the same batches, alternating which runs first, so machine load hits both alike. Each step is
the real ``Trainer.run_step`` (sum of losses, finite check, backward, gradient clipping,
optimizer, scheduler), split with hooks into data loading (the real loader, DATALOADER.
NUM_WORKERS workers), forward (of which pair sampling), backward, clipping + optimizer, and the
rest of the loop. "Outside" = data + sampling + clipping + optimizer + loop, i.e. everything but
the model's forward (minus sampling) and the backward. Eval: the plain model, the
ALIGN-trained model in eval mode, and the inference model of the test tool
(``inference_config``: ALIGN off, the ALIGN model's weights loaded without the mirror head), on
the same test batches. Peak RSS (``ru_maxrss``) comes from separate subprocesses, one per
config and ALIGN setting, each building its model and running ``--mem-steps`` training steps.
Figures are medians over ``--iters`` iterations after ``--warmup``, per image. Test batches are
not grouped by aspect ratio (as the test loader), so eval batches may be padded larger than the
training ones: compare eval times with each other, not with the training forward.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from statistics import median

import torch

CONFIGS = {"synthvg": "configs/synthvg/motifs_predcls.yaml", "full": "configs/e2e_relation_VGG16_1x.yaml"}
SYNTHVG_DATA = ["DATASETS.TRAIN", "('synthvg_train',)", "DATASETS.VAL", "('synthvg_val',)",
                "DATASETS.TEST", "('synthvg_test',)", "DATASETS.NUM_VAL_IM", "200",
                "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "31", "MODEL.ROI_RELATION_HEAD.NUM_CLASSES", "26"]
MODES = {"predcls": ("True", "True"), "sgcls": ("True", "False"), "sgdet": ("False", "False")}
COMPARE = {"align": (("ALIGN off", ["MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", "False"]),
                     ("ALIGN on", ["MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", "True"])),
           "regime": (("no reuse", ["MODEL.DETECTOR_CACHE_MB", "0"]),
                      ("reuse", ["MODEL.DETECTOR_CACHE_MB", "4096"])),
           "amp": (("fp32", ["SOLVER.AMP", "False", "MODEL.DETECTOR_CACHE_MB", "4096"]),
                   ("bf16", ["SOLVER.AMP", "True", "MODEL.DETECTOR_CACHE_MB", "4096"]))}
DEFAULTS = {"synthvg": {"batch": 8, "iters": 20, "warmup": 2}, "full": {"batch": 2, "iters": 5, "warmup": 1}}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- child side
def build_cfg(args, variant: int):
    from maskrcnn_benchmark.config import load_config

    gt_box, gt_label = MODES[args.mode]
    opts = (SYNTHVG_DATA if args.config == "full" else []) + [
        "MODEL.ROI_RELATION_HEAD.USE_GT_BOX", gt_box, "MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL", gt_label,
        *COMPARE[args.compare][variant][1], "SOLVER.IMS_PER_BATCH", str(args.batch),
        "TEST.IMS_PER_BATCH", str(args.batch), "SOLVER.MAX_ITER", str(args.warmup + args.iters + args.mem_steps),
        "DATALOADER.NUM_WORKERS", str(args.workers), "OUTPUT_DIR", args.out_dir] + list(args.opts)
    return load_config(os.path.join(ROOT, CONFIGS[args.config]), opts)


def build_model(cfg, statistics, device, detector_ckpt: str = ""):
    from maskrcnn_benchmark.engine.relation_inference import load_pretrained_detector
    from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model

    torch.manual_seed(cfg.SEED)  # same detector and head weights for both variants
    model = build_scene_graph_model(cfg, statistics=statistics)
    if detector_ckpt:
        load_pretrained_detector(model, detector_ckpt, obj_classes=statistics["obj_classes"])
    return model.to(device)


def _now(device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


class StepProbe:
    """Timestamps of one ``Trainer.run_step`` from hooks on the model, its trainable parameters,
    its pair sampler and its optimizer (nothing in the package is modified)."""

    def __init__(self, trainer, device):
        self.t: dict[str, float] = {}
        self.sampling = 0.0
        self.objects = self.pairs = 0
        now = lambda: _now(device)  # noqa: E731
        model, opt = trainer.model, trainer.optimizer
        model.register_forward_pre_hook(lambda *_: self.t.__setitem__("fwd0", now()))
        model.register_forward_hook(lambda *_: self.t.__setitem__("fwd1", now()))
        params = [p for p in model.parameters() if p.requires_grad]
        torch.autograd.graph.register_multi_grad_hook(params, lambda _: self.t.__setitem__("bwd1", now()))
        opt.register_step_pre_hook(lambda *_: self.t.__setitem__("opt0", now()))
        opt.register_step_post_hook(lambda *_: self.t.__setitem__("opt1", now()))
        sampler = model.relation_head.sampler
        for name in ("gtbox_sample", "detect_sample"):
            setattr(sampler, name, self._timed(getattr(sampler, name), now))

    def _timed(self, fn, now):
        def wrapper(boxes_or_counts, targets):
            t0 = now()
            out = fn(boxes_or_counts, targets)
            self.sampling += now() - t0
            pairs = out[-2]
            self.objects += sum(int(t["boxes"].shape[0]) for t in targets) if len(out) == 2 else \
                sum(int(b.shape[0]) for b in boxes_or_counts)
            self.pairs += sum(int(p.shape[0]) for p in pairs)
            return out
        return wrapper

    def step(self, trainer, batch, data_s: float, n_img: int) -> dict[str, float]:
        images, targets, idx = batch
        targets = [dict(t) for t in targets]
        self.t.clear()
        self.sampling, self.objects, self.pairs = 0.0, 0, 0
        t0 = _now(trainer.device)
        trainer.run_step(iter([(images, targets, idx)]))
        t1 = _now(trainer.device)
        t = self.t
        fwd, bwd = t["fwd1"] - t["fwd0"], t["bwd1"] - t["fwd1"]
        clip_opt = t["opt1"] - t["bwd1"]
        loop = (t1 - t0) - (t["opt1"] - t["fwd0"])
        total = data_s + (t1 - t0)
        outside = data_s + self.sampling + clip_opt + loop
        r = {"total": total, "data": data_s, "forward": fwd, "sampling": self.sampling,
             "bwd_opt": total - data_s - fwd, "backward": bwd, "clip_opt": clip_opt, "loop": loop,
             "outside": outside}
        r = {k: v / n_img for k, v in r.items()}
        r.update(share=outside / total, objects=self.objects / n_img, pairs=self.pairs / n_img)
        return r


def _setup(args):
    import logging

    from maskrcnn_benchmark.data.statistics import get_dataset_statistics
    from maskrcnn_benchmark.utils.miscellaneous import resolve_device

    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    cfg_off, cfg_on = build_cfg(args, 0), build_cfg(args, 1)
    return cfg_off, cfg_on, resolve_device(cfg_off.MODEL.DEVICE), get_dataset_statistics(cfg_off)


def _trainer(cfg, model, device):
    from maskrcnn_benchmark.engine.trainer import Trainer
    from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer

    opt = make_optimizer(cfg, model)
    trainer = Trainer.from_config(cfg, model, opt, make_lr_scheduler(cfg, opt), device)
    model.train()
    return trainer


def _amp(trainer):
    """The trainer's autocast context (SOLVER.AMP), for the untimed cache fill and for eval."""
    from maskrcnn_benchmark.engine.amp import autocast

    return lambda: autocast(trainer.device, trainer.amp)


def _fetch(batches, device):
    from maskrcnn_benchmark.engine.trainer import move_to_device

    t0 = _now(device)
    images, targets, idx = next(batches)
    batch = (move_to_device(images, device), move_to_device(targets, device), idx)
    return batch, _now(device) - t0


def _count(model, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def run_timing(args) -> dict:
    from maskrcnn_benchmark.data.build import make_data_loader
    from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import (ALIGNMENT_STATE_PREFIX,
                                                                              inference_config)
    from maskrcnn_benchmark.utils.checkpoint import load_state_dict_checked

    cfg_off, cfg_on, device, stats = _setup(args)
    models = {k: build_model(cfg, stats, device, args.detector_ckpt) for k, cfg in (("off", cfg_off), ("on", cfg_on))}
    trainers = {k: _trainer(cfg, models[k], device) for k, cfg in (("off", cfg_off), ("on", cfg_on))}
    probes = {k: StepProbe(tr, device) for k, tr in trainers.items()}
    batches = iter(make_data_loader(cfg_off, "train", is_train=True))
    fetched = [_fetch(batches, device) for _ in range(args.warmup + args.iters)]
    for k, model in models.items():  # reuse: the cache as from the second epoch on
        if model.detector_cache is not None:
            with torch.no_grad(), _amp(trainers[k])():
                for (images, targets, _), _ in fetched:
                    model._detector_outputs(images, targets)
    train = {"off": [], "on": []}
    first_hw = None
    for i, (batch, data_s) in enumerate(fetched):
        first_hw = first_hw or tuple(batch[0].tensors.shape[-2:])
        for k in (("off", "on") if i % 2 == 0 else ("on", "off")):
            r = probes[k].step(trainers[k], batch, data_s, len(batch[1]))
            if i >= args.warmup:
                train[k].append(r)

    evals = {"off": models["off"].eval(), "on_train_model": models["on"].eval()}
    contexts = {"off": _amp(trainers["off"]), "on_train_model": _amp(trainers["on"])}
    if args.compare == "align":
        infer = build_model(inference_config(cfg_on), None, device)  # the model relation_test_net.py builds
        load_state_dict_checked(infer, models["on"].state_dict(), ignore_prefixes=(ALIGNMENT_STATE_PREFIX,))
        evals["on_inference"], contexts["on_inference"] = infer.eval(), _amp(trainers["on"])
    times = {k: [] for k in evals}
    identical = True
    test = iter(make_data_loader(cfg_off, "test", is_train=False))
    with torch.no_grad():
        for i in range(args.warmup + args.iters):  # a first evaluation (no reuse of test images)
            images, targets, _ = _fetch(test, device)[0]
            keys = list(evals)[i % len(evals):] + list(evals)[:i % len(evals)]
            outs = {}
            for k in keys:
                t0 = _now(device)
                with contexts[k]():
                    outs[k] = evals[k](images, targets)
                if i >= args.warmup:
                    times[k].append((_now(device) - t0) / len(targets))
            if "on_inference" in outs:
                identical &= all(torch.equal(a[f], b[f]) for a, b in zip(outs["on_train_model"], outs["on_inference"])
                                 for f in ("rel_pairs", "rel_scores", "labels", "boxes"))
    return {"train": train, "eval": times, "identical": identical, "hw": first_hw,
            "params": {"off": [_count(models["off"]), _count(models["off"], True)],
                       "on": [_count(models["on"]), _count(models["on"], True)],
                       **({"on_inference": [_count(infer), _count(infer, True)]} if args.compare == "align" else {})},
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), "device": str(device)}


def run_memory(args, second: bool) -> dict:
    from maskrcnn_benchmark.data.build import make_data_loader

    cfg_off, cfg_on, device, stats = _setup(args)
    cfg = cfg_on if second else cfg_off
    model = build_model(cfg, stats, device, args.detector_ckpt)
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trainer = _trainer(cfg, model, device)
    batches = iter(make_data_loader(cfg, "train", is_train=True))
    for _ in range(args.mem_steps):
        trainer.run_step(batches)
    return {"built_mb": built, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ----------------------------------------------------------------------------- parent side
def _child(args, config: str, role: str, d: dict) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        cmd = [sys.executable, os.path.abspath(__file__), "--_role", role, "--_result", f.name,
               "--_config", config, "--mode", args.mode, "--compare", args.compare, "--threads", str(args.threads),
               "--workers", str(args.workers), "--batch", str(d["batch"]), "--iters", str(d["iters"]),
               "--warmup", str(d["warmup"]), "--mem-steps", str(args.mem_steps), "--_out", args.out_dir,
               "--detector-ckpt", args.detector_ckpt, *args.opts]
        print(f"[{config}] {role} ...", file=sys.stderr, flush=True)
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"{config} {role} failed:\n{p.stderr[-4000:]}")
        return json.load(f)


def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def report(config: str, args, d: dict, t: dict, mem: dict) -> None:
    tr = t["train"]
    med = {k: {f: median(r[f] for r in tr[k]) for f in tr[k][0]} for k in tr}
    det = f"detector {args.detector_ckpt}" if args.detector_ckpt else "random-init detector"
    print(f"\n== {config}: {CONFIGS[config]}{' on SynthVG (31/26 classes)' if config == 'full' else ''}, "
          f"{args.mode}, {det}")
    print(f"device {t['device']}, torch threads {t['threads']}, DATALOADER.NUM_WORKERS {args.workers}, "
          f"batch {d['batch']} images (first padded batch {t['hw'][0]}x{t['hw'][1]}), "
          f"{d['iters']} iterations after {d['warmup']} warm-up, medians per image")
    rows = [("train step, s/img", "total"), ("  data loading", "data"), ("  forward", "forward"),
            ("    of which pair sampling", "sampling"), ("  backward + optimizer step", "bwd_opt"),
            ("    backward (+ loss sum, zero_grad)", "backward"), ("    grad clip + optimizer", "clip_opt"),
            ("    loop (logging, scheduler)", "loop"), ("  outside forward/backward", "outside")]
    (name_a, _), (name_b, _) = COMPARE[args.compare]
    print(f"{'':40s}{name_a:>12s}{name_b:>12s}")
    for label, f in rows:
        print(f"{label:40s}{med['off'][f]:12.4f}{med['on'][f]:12.4f}")
    print(f"{'  outside share of the step':40s}{med['off']['share']:11.1%} {med['on']['share']:11.1%}"
          "   (target < 15%)")
    print(f"{'objects / sampled pairs per image':40s}{med['off']['objects']:5.1f} /{med['off']['pairs']:5.1f}"
          f"{med['on']['objects']:5.1f} /{med['on']['pairs']:5.1f}")
    if min(med["off"]["pairs"], med["on"]["pairs"]) == 0:
        print("  note: no pair sampled (SGDet: no detection matches a GT box): not a representative step; "
              "pass --detector-ckpt a trained stage-1 checkpoint")
    print(f"{'params total / trainable (M)':40s}" + "".join(
        f"{t['params'][m][0] / 1e6:7.2f} /{t['params'][m][1] / 1e6:6.2f}" for m in ("off", "on")))
    print(f"{'RSS after model build (MB)':40s}{mem['off']['built_mb']:12.0f}{mem['on']['built_mb']:12.0f}")
    print(f"{'peak RSS, %d training steps (MB)' % args.mem_steps:40s}{mem['off']['peak_mb']:12.0f}"
          f"{mem['on']['peak_mb']:12.0f}   (separate processes; both models in one: {t['rss_mb']:.0f})")
    ratios = [b["total"] / a["total"] for a, b in zip(tr["off"], tr["on"])]
    fwd_bwd = [(b["forward"] + b["backward"]) / (a["forward"] + a["backward"]) for a, b in zip(tr["off"], tr["on"])]
    ev = t["eval"]
    e = {k: median(v) for k, v in ev.items()}
    trn_r = [b / a for a, b in zip(ev["off"], ev["on_train_model"])]
    if args.compare != "align":
        speed = [1 / r for r in ratios]
        print(f"SPEED-UP, train step {name_b} vs {name_a} (paired per batch): median {median(speed):.2f}x "
              f"[p25 {_q(speed, .25):.2f}, p75 {_q(speed, .75):.2f}]   (target >= 2x); forward+backward only "
              f"{1 / median(fwd_bwd):.2f}x")
        print(f"eval forward (first pass, nothing reused), s/img: {name_a} {e['off']:.4f}, {name_b} "
              f"{e['on_train_model']:.4f}: {1 / median(trn_r):.2f}x")
        return
    print(f"ALIGN cost, train step on/off (paired per batch): median {median(ratios):.3f}x "
          f"[p25 {_q(ratios, .25):.3f}, p75 {_q(ratios, .75):.3f}]   (target < 1.3x); "
          f"forward+backward only {median(fwd_bwd):.3f}x")
    inf_r = [b / a for a, b in zip(ev["off"], ev["on_inference"])]
    print(f"eval forward, s/img: plain {e['off']:.4f}, ALIGN inference model {e['on_inference']:.4f}, "
          f"ALIGN-trained model in eval {e['on_train_model']:.4f}")
    print(f"ALIGN cost, inference on/off: {median(inf_r):.3f}x [p25 {_q(inf_r, .25):.3f}, p75 {_q(inf_r, .75):.3f}] "
          f"(inference model, params {t['params']['on_inference'][0] / 1e6:.2f}M = plain "
          f"{t['params']['off'][0] / 1e6:.2f}M); trained model in eval {median(trn_r):.3f}x (target 1.00); "
          f"inference model predictions identical to the ALIGN-trained model's: {t['identical']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["synthvg", "full"])
    p.add_argument("--mode", choices=sorted(MODES), default="predcls")
    p.add_argument("--compare", choices=sorted(COMPARE), default="align",
                   help="align: ALIGN off vs on; regime: without vs with detector reuse; amp: fp32 vs bf16")
    p.add_argument("--iters", type=int, help="timed iterations (default: synthvg 20, full 5)")
    p.add_argument("--warmup", type=int, help="untimed first iterations (default: synthvg 2, full 1)")
    p.add_argument("--batch", type=int, help="images per iteration (default: synthvg 8, full 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a loaded 2-core machine more made small ops ~10x slower)")
    p.add_argument("--workers", type=int, default=0, help="DATALOADER.NUM_WORKERS (default 0: in-process)")
    p.add_argument("--mem-steps", type=int, default=3, help="training steps of each peak-RSS process")
    p.add_argument("--detector-ckpt", default="", metavar="FILE",
                   help="stage-1 checkpoint to load (default: none, a randomly initialised detector)")
    for hidden in ("--_role", "--_result", "--_config", "--_out"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... (both configs)")
    args = p.parse_args()
    if args._role:
        args.config, args.out_dir = args._config, args._out
        result = run_timing(args) if args._role == "time" else run_memory(args, args._role == "mem-on")
        with open(args._result, "w") as f:
            json.dump(result, f)
        return
    args.out_dir = tempfile.mkdtemp(prefix="bench_relation_")  # statistics cache, nothing else
    try:
        print(f"bench_relation_step: {os.cpu_count()} CPUs, torch {torch.__version__}, threads {args.threads}, "
              f"mode {args.mode}, compare {args.compare}, overrides {args.opts or 'none'}", flush=True)
        for config in args.configs:
            d = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in DEFAULTS[config].items()}
            t = _child(args, config, "time", d)
            mem = {k: _child(args, config, f"mem-{k}", d) for k in ("off", "on")}
            report(config, args, d, t, mem)
            sys.stdout.flush()
    finally:
        shutil.rmtree(args.out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
