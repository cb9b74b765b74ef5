"""Test evaluation with the detector cache's disk tier cold and warm (MODEL.DETECTOR_CACHE_DIR).

    python benchmarks/bench_detector_cache.py --detector-ckpt demo_output/detector/model_final.pth
        [--modes predcls sgdet] [--images 200] [--threads 1] [KEY VALUE ...]

Per protocol, three processes in turn evaluate the same first ``--images`` SynthVG test images
(configs/synthvg/motifs_<mode>.yaml, its DETECTOR_CACHE_MB, DATASETS.NUM_IM caps the split):
"memory only" (DETECTOR_CACHE_DIR ""), "cold" (an empty folder: every image goes through the
detector and is written) and "warm" (the folder the cold process filled: every image is read
from disk, as the second run of `make demo` on a protocol reads the first one's). Each times
``compute_on_dataset`` (data loading and the model's forward, no evaluator) and prints CPU
seconds per image (the process's, the steadier figure on a shared machine; wall seconds after
the slash), the disk hits and the folder's size. The relation head is freshly initialised (its
weights do not change the cost: PredCls pairs come from the ground truth, SGDet pairs from the
detector's boxes); the detector is the checkpoint given. The temporary folder is removed after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWITCHES = {"predcls": ("True", "True"), "sgcls": ("True", "False"), "sgdet": ("False", "False")}


def child(mode: str, cache_dir: str, images: int, detector: str, opts: list) -> dict:
    """One process's evaluation (runs in the subprocess)."""
    import logging

    import torch

    from maskrcnn_benchmark.config import load_config
    from maskrcnn_benchmark.data.build import make_data_loader
    from maskrcnn_benchmark.engine.inference import compute_on_dataset
    from maskrcnn_benchmark.engine.relation_inference import load_pretrained_detector
    from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model

    logging.disable(logging.WARNING)
    box, label = SWITCHES[mode]
    cfg = load_config(os.path.join(ROOT, f"configs/synthvg/motifs_{mode}.yaml"), [
        "MODEL.DEVICE", "cpu", "MODEL.ROI_RELATION_HEAD.USE_GT_BOX", box,
        "MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL", label, "DATASETS.NUM_IM", str(images),
        "MODEL.DETECTOR_CACHE_DIR", cache_dir, *opts])
    torch.manual_seed(0)
    model = build_scene_graph_model(cfg)
    load_pretrained_detector(model, detector)
    loader = make_data_loader(cfg, "test", is_train=False)
    t0, c0 = time.perf_counter(), time.process_time()
    out = compute_on_dataset(model, loader, torch.device("cpu"), desc=f"{mode} eval")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    cache = model.detector_cache
    return {"images": len(out), "seconds": seconds, "cpu": cpu, "disk_hits": cache.disk_hits, "misses": cache.misses,
            "folder_mb": cache.disk.nbytes / 2 ** 20 if cache.disk is not None else 0.0}


def run_child(args, mode: str, cache_dir: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, cache_dir, "--images", str(args.images),
           "--detector-ckpt", args.detector_ckpt, *args.opts]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_detector_cache: {mode} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detector-ckpt", required=True, help="a trained SynthVG stage-1 checkpoint")
    p.add_argument("--modes", nargs="+", choices=list(SWITCHES), default=["predcls", "sgdet"])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", nargs=2, metavar=("MODE", "CACHE_DIR"), help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    a = p.parse_args(argv)
    a.detector_ckpt = os.path.abspath(a.detector_ckpt)
    if a.child:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps(child(a.child[0], a.child[1], a.images, a.detector_ckpt, a.opts)))
        return 0
    print(f"test evaluation of the first {a.images} SynthVG test images, {a.threads} thread(s), one process each "
          "(CPU / wall s per image: data loading + forward)")
    print(f"{'protocol':<9} {'memory only':>16} {'cold disk':>16} {'warm disk':>16} {'cold/warm':>10} "
          f"{'disk hits':>10} {'folder MB':>10}")
    for mode in a.modes:
        with tempfile.TemporaryDirectory(prefix="detector_cache_bench_") as tmp:
            r = {"memory": run_child(a, mode, ""), "cold": run_child(a, mode, tmp), "warm": run_child(a, mode, tmp)}
        s = {k: v["cpu"] / v["images"] for k, v in r.items()}
        w = {k: f"{s[k]:.4f} / {v['seconds'] / v['images']:.3f}" for k, v in r.items()}
        print(f"{mode:<9} {w['memory']:>16} {w['cold']:>16} {w['warm']:>16} "
              f"{s['cold'] / s['warm']:>9.2f}x {r['warm']['disk_hits']:>5}/{r['warm']['images']:<4} "
              f"{r['cold']['folder_mb']:>10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
