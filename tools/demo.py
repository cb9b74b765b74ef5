#!/usr/bin/env python
"""The whole pipeline on SynthVG, on a laptop CPU (``make demo``, ``make reproduce``).

    python tools/demo.py [--out demo_output] [--force] [--data-dir datasets] [--seeds N] [--ablation]
        [KEY VALUE ...]

generate SynthVG -> train the VGG-16 detector -> train Motifs and Align-Motifs in PredCls, SGCls
and SGDet (one model per protocol) -> evaluate them and the frequency-prior baseline on the test
split -> ``OUT/results.md`` (the paper's Table 2 layout), ``per_predicate_recall.png``,
``training_curves.png``, ``scene_graphs/*.png`` and TensorBoard logs in every run folder.

Finished stages (a run folder holding its test results) are reused unless --force. Each stage
is the ordinary tool (tools/make_synthvg.py, tools/detector_pretrain_net.py,
tools/relation_train_net.py) run as a child process, so every stage can be rerun by hand.
Trailing ``KEY VALUE`` overrides go to every relation run. All relation runs and baselines
share one detector cache on disk, ``OUT/detector_cache`` (MODEL.DETECTOR_CACHE_DIR): a run
reads the frozen detector's outputs that an earlier run computed (--force clears it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from maskrcnn_benchmark.config import load_config  # noqa: E402
from maskrcnn_benchmark.engine.report import MODE_NAMES, MODES, write_report  # noqa: E402
from maskrcnn_benchmark.modeling.detector.detector_cache import MARKER  # noqa: E402

DETECTOR_CONFIG = "configs/synthvg/detector_VGG16.yaml"
RELATION_CONFIG = "configs/synthvg/motifs_{mode}.yaml"
TEST_SET = "synthvg_test"
ALIGN_ON = ["MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", "True"]
VARIANTS = {"motifs": ("Motifs", []), "align": ("Align-Motifs", ALIGN_ON)}
# The paper's Table 3 ablation, in PredCls: supervised alignment (SA) with the untied head, and
# the self-supervised KL alignment (SSA) with the tied head (SSA + untied head = Align-Motifs).
ABLATIONS = {"align_sa_uph": ("Motifs + SA + UPH", ALIGN_ON + ["MODEL.ROI_RELATION_HEAD.ALIGN.LOSS", "ce"]),
             "align_ssa_ph": ("Motifs + SSA + PH", ALIGN_ON + ["MODEL.ROI_RELATION_HEAD.ALIGN.HEAD", "tied"])}
SWITCHES = {"predcls": ("True", "True"), "sgcls": ("True", "False"), "sgdet": ("False", "False")}


def mode_switches(mode: str) -> list[str]:
    box, label = SWITCHES[mode]
    return ["MODEL.ROI_RELATION_HEAD.USE_GT_BOX", box, "MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL", label]


def run(cmd: list[str], what: str, timings: dict) -> None:
    print(f"\n==> {what}\n    {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    timings[what] = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"demo: '{what}' failed (exit {proc.returncode}); its log is in the folder named "
                         "by OUTPUT_DIR above. Fix the cause and rerun `make demo`: finished stages are reused.")


def run_pool(jobs: list[tuple], slots: int, timings: dict) -> None:
    """Run ``(cmd, what, run_dir[, after])`` jobs, ``slots`` at a time, each with one intra-op
    thread per slot's share of the cores, or the caller's OMP_NUM_THREADS (small CPU ops lose far
    more to oversubscribed threads than they gain from them); a job starts as soon as a slot
    frees: the first queued one none of whose ``after`` jobs (their ``what``) is still queued or
    running, else the first queued one (a slot never idles). Output of each job goes to
    ``run_dir/console.log``; one progress bar per running job is read off its log."""
    from tqdm import tqdm

    # OMP_NUM_THREADS set by the caller wins: two studies started side by side (each with its
    # own pool) would otherwise each take all the cores, and oversubscribed small ops run ~5x slower
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // slots))
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    queue, running, failed = list(jobs), [], []
    while queue or running:
        while queue and len(running) < slots:
            cmd, what, run_dir = queue.pop(_next_job(queue, running))[:3]
            os.makedirs(run_dir, exist_ok=True)
            tqdm.write(f"\n==> {what} (output: {os.path.relpath(run_dir, ROOT)}/console.log)\n    {' '.join(cmd)}")
            log = open(os.path.join(run_dir, "console.log"), "a")
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            bar = tqdm(total=None, desc=what, unit="it", leave=True, dynamic_ncols=True)
            running.append((proc, log, bar, what, run_dir, time.perf_counter()))
        time.sleep(1.0)
        for job in list(running):
            proc, log, bar, what, run_dir, t0 = job
            progress = job_progress(run_dir)
            if progress:
                if bar.total != progress[1]:
                    bar.reset(total=progress[1])
                bar.update(progress[0] - bar.n)
            if proc.poll() is not None:
                running.remove(job)
                bar.close()
                log.close()
                timings[what] = time.perf_counter() - t0
                if proc.returncode != 0:
                    failed.append(f"'{what}' (exit {proc.returncode}): see {run_dir}/console.log")
    if failed:
        raise SystemExit("demo: " + "; ".join(failed) + ". Fix the cause and rerun `make demo`: finished "
                         "stages are reused.")


def _next_job(queue: list[tuple], running: list[tuple]) -> int:
    """Index of the first queued job whose ``after`` jobs have all ended, else 0."""
    busy = {job[1] for job in queue} | {job[3] for job in running}
    return next((i for i, job in enumerate(queue) if not busy & set(job[3] if len(job) > 3 else ())), 0)


def job_order(seeds: list[int], ablation: bool) -> list[tuple[str, str, int]]:
    """(mode, variant, seed) of the relation runs, in the pool's order.

    Every run of a protocol reads the frozen detector's outputs (train and test images) from the
    disk cache that the protocol's first run, Motifs seed 0, fills. So the three Motifs seed-0
    runs come first (two protocols start side by side, rather than a protocol's two models
    computing the same images at the same time), then the others, each started after its
    protocol's first run has ended where a slot allows (run_pool's ``after``), then the frequency
    baselines (main()), whose test images are cached by then.
    Within each group the longest protocol comes first (SGDet, SGCls, PredCls) and the short
    baselines come last, so that the two slots end together."""
    first = [(mode, "motifs", seeds[0]) for mode in reversed(MODES)]
    rest = [(mode, variant, seed) for mode in reversed(MODES) for seed in seeds for variant in VARIANTS]
    if ablation:
        rest += [("predcls", v, seed) for seed in seeds for v in ABLATIONS]
    return first + [job for job in rest if job not in first]


def clear_detector_cache(folder: str) -> None:
    """--force: remove the signature folders the detector cache made (those with its marker)."""
    if os.path.isdir(folder):
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, MARKER)):
                shutil.rmtree(entry.path)


def job_progress(run_dir: str) -> tuple[int, int] | None:
    """(done, total) of a pool job: the last ``iter N/M`` of its training log, else the last
    progress-bar ``N/M [`` in its console output (an evaluation-only job), else None."""
    return (_last_match(os.path.join(run_dir, "log.txt"), rb"iter (\d+)/(\d+)")
            or _last_match(os.path.join(run_dir, "console.log"), rb"(\d+)/(\d+) \["))


def _last_match(path: str, pattern: bytes) -> tuple[int, int] | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 8192))
        found = re.findall(pattern, f.read())
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def fresh(path: str, force: bool) -> None:
    if force and os.path.isdir(path):
        shutil.rmtree(path)


def frequency_baseline(mode: str, out_dir: str, detector: str, data_dir: str, opts: list[str]) -> None:
    """Evaluate the frequency prior alone (FrequencyPredictor: no training, no image)."""
    from maskrcnn_benchmark.data.statistics import get_dataset_statistics
    from maskrcnn_benchmark.engine.defaults import default_setup, write_run_config
    from maskrcnn_benchmark.engine.relation_inference import load_pretrained_detector, run_relation_test
    from maskrcnn_benchmark.modeling.detector.scene_graph import build_scene_graph_model

    cfg = load_config(os.path.join(ROOT, RELATION_CONFIG.format(mode=mode)), opts + mode_switches(mode) + [
        "MODEL.ROI_RELATION_HEAD.PREDICTOR", "FrequencyPredictor", "MODEL.ROI_RELATION_HEAD.PREDICT_USE_VISION",
        "False", "OUTPUT_DIR", out_dir, "MODEL.PRETRAINED_DETECTOR_CKPT", detector, "DATASETS.DATA_DIR", data_dir])
    device = default_setup(cfg, log_name="test_log.txt", config_name="test_config.yaml")
    model = build_scene_graph_model(cfg, statistics=get_dataset_statistics(cfg))
    load_pretrained_detector(model, detector)
    write_run_config(cfg, "test_config.yaml")
    run_relation_test(cfg, model.to(device), device, ("test",), checkpoint="frequency prior of the train split")


def describe_setup(detector: str, opts: list[str]) -> str:
    """One Markdown line: the relation configs, their overrides and the detector with its test mAP."""
    metrics = os.path.join(os.path.dirname(detector), "inference", TEST_SET, "detection_metrics.json")
    det = f"`{os.path.relpath(detector, ROOT)}`"
    if os.path.isfile(metrics):
        with open(metrics) as f:
            det += f" (test mAP@0.5 {json.load(f)['mAP@0.5']:.3f})"
    line = (f"Configs: `{RELATION_CONFIG.format(mode='{predcls,sgcls,sgdet}')}` (Align-Motifs: "
            f"`{' '.join(ALIGN_ON)}`)" + (f" with `{' '.join(opts)}`" if opts else "") +
            f"; detector {det} from `{DETECTOR_CONFIG}`.")
    configured = load_config(os.path.join(ROOT, RELATION_CONFIG.format(mode="predcls"))).SOLVER.MAX_ITER
    trained = load_config(os.path.join(ROOT, RELATION_CONFIG.format(mode="predcls")), opts).SOLVER.MAX_ITER
    if trained < configured:  # the demo's budget: say that these are not the configured models
        line += (f" These runs train {trained} of the configs' {configured} iterations, so they show the "
                 "pipeline working, not trained models: what the configured schedule gives (val curves, "
                 "test numbers, the frequency prior) is in docs/results.md.")
    return line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_output")
    p.add_argument("--data-dir", default="datasets", help="DATASETS.DATA_DIR (SynthVG goes to DATA_DIR/synthvg)")
    p.add_argument("--force", action="store_true", help="redo every stage, data included")
    p.add_argument("--synth-args", default="", help="extra arguments for tools/make_synthvg.py")
    p.add_argument("--detector", default="", help="reuse this stage-1 checkpoint instead of training one")
    p.add_argument("--detector-opts", default="", help="KEY VALUE overrides for the detector run, one string")
    p.add_argument("--jobs", type=int, default=2, help="relation runs and baselines run at once (default 2, "
                   "one core each)")
    p.add_argument("--report-only", action="store_true", help="only rewrite results.md and the pictures from "
                   "the runs already finished (e.g. while a long run is still going)")
    p.add_argument("--seeds", type=int, default=1, help="runs per model (SEED 0..N-1); N > 1 reports mean ± std")
    p.add_argument("--ablation", action="store_true", help="also the Table 3 ablation (SA vs SSA, tied vs untied head) in PredCls")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for the relation runs")
    p.add_argument("--frequency-baseline", nargs=4, metavar=("MODE", "OUT_DIR", "DETECTOR", "DATA_DIR"),
                   help=argparse.SUPPRESS)  # one pool job of the run below
    a = p.parse_args(argv)
    if a.frequency_baseline:
        mode, freq_dir, detector, data_dir = a.frequency_baseline
        frequency_baseline(mode, freq_dir, detector, data_dir, list(a.opts))
        return 0
    out = os.path.abspath(a.out)
    data_dir = os.path.abspath(a.data_dir)
    os.makedirs(out, exist_ok=True)
    py, t_start, timings = sys.executable, time.perf_counter(), {}
    common = ["DATASETS.DATA_DIR", data_dir]
    cache_dir = os.path.join(out, "detector_cache")
    cache = ["MODEL.DETECTOR_CACHE_DIR", cache_dir]  # shared by every relation run and baseline

    if a.report_only:
        a.force = False
    synth = [py, "tools/make_synthvg.py", "--out", os.path.join(data_dir, "synthvg"), *a.synth_args.split()]
    if not a.report_only:
        run(synth + (["--force"] if a.force else []), "generate SynthVG", timings)

    det_dir = os.path.join(out, "detector")
    detector = os.path.abspath(a.detector) if a.detector else os.path.join(det_dir, "model_final.pth")
    if not a.detector:
        fresh(det_dir, a.force)
    if a.detector and not os.path.isfile(detector):
        raise SystemExit(f"demo: --detector {a.detector} not found (train one with `make demo` or `make detector`)")
    if not os.path.isfile(detector) and not a.report_only:
        run([py, "tools/detector_pretrain_net.py", "--config-file", DETECTOR_CONFIG, *common,
             "OUTPUT_DIR", det_dir, *a.detector_opts.split()], "train and test the detector", timings)
    else:
        print(f"\n==> detector: reusing {detector}")

    runs: dict = {}
    seeds = list(range(a.seeds))
    if a.force:
        clear_detector_cache(cache_dir)
    pending = []
    first = {}  # mode -> the 'what' of its first run (the one that fills the detector cache)
    for mode, variant, seed in job_order(seeds, a.ablation):
        name, extra = {**VARIANTS, **ABLATIONS}[variant]
        run_dir = os.path.join(out, f"{variant}_{mode}" + (f"_seed{seed}" if a.seeds > 1 else ""))
        runs.setdefault((name, mode), []).append(run_dir)
        fresh(run_dir, a.force)
        if os.path.isfile(os.path.join(run_dir, "inference", TEST_SET, "results.json")):
            print(f"\n==> {name} {MODE_NAMES[mode]} seed {seed}: reusing {run_dir}")
            continue
        cmd = [py, "tools/relation_train_net.py", "--config-file", RELATION_CONFIG.format(mode=mode), *common,
               *cache, *mode_switches(mode), *extra, "MODEL.PRETRAINED_DETECTOR_CKPT", detector,
               "OUTPUT_DIR", run_dir, "SEED", str(seed), *a.opts]
        what = f"{name} {MODE_NAMES[mode]} seed {seed}"
        pending.append((cmd, what, run_dir, (first[mode],) if mode in first else ()))
        first.setdefault(mode, what)
    for mode in reversed(MODES):  # after the runs, longest first too: the two slots end together
        freq_dir = os.path.join(out, f"frequency_{mode}")
        runs["Frequency prior", mode] = [freq_dir]
        fresh(freq_dir, a.force)
        if not os.path.isfile(os.path.join(freq_dir, "inference", TEST_SET, "results.json")):
            cmd = [py, os.path.abspath(__file__), "--frequency-baseline", mode, freq_dir, detector, data_dir,
                   *cache, *a.opts]
            pending.append((cmd, f"frequency baseline ({MODE_NAMES[mode]})", freq_dir,
                            (first[mode],) if mode in first else ()))
    if pending and not a.report_only:
        t0 = time.perf_counter()
        run_pool(pending, a.jobs, timings)
        timings[f"all relation runs and baselines ({a.jobs} at a time)"] = time.perf_counter() - t0

    timings["total"] = time.perf_counter() - t_start
    write_report(out, runs, os.path.join(data_dir, "synthvg"), TEST_SET, timings,
                 setup=describe_setup(detector, a.opts),
                 command=shlex.join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
