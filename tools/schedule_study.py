#!/usr/bin/env python
"""Learning curves of the SynthVG relation configs at several training lengths (``make curves``).

    python tools/schedule_study.py [--out curves_output] [--modes predcls sgcls sgdet]
        [--variants motifs align] [--iters 1500 3000] [--seeds 0] [--val-points 10] --jobs 2 [KEY VALUE ...]

(the list options take every value up to the next option: end with a single-valued one, such as
--jobs, before the KEY VALUE overrides)

For each protocol, model and length N: ``tools/relation_train_net.py`` with SOLVER.MAX_ITER N,
the cosine schedule over the whole run (UPDATE_PERIOD N/100, as the paper's 1K of 100K),
validation on the val split every N / val-points iterations, no test. Writes
``OUT/curves.md`` (best and final val mR@50 / R@50 of every run and the schedule the rule picks)
and ``OUT/curves.png`` (val mR@50 against iteration, a panel per protocol).

The rule (docs/results.md, fixed before the runs): a protocol's schedule is the shortest length
N of the ladder whose doubling raises Motifs's best val mR@50 by at most 0.5 point; Align-Motifs
gets the same N. Finished runs (``model_final.pth`` present, or a val point at N: a run restored by
``tools/run_records.py``) are reused; unfinished ones resume.
All runs share one detector cache on disk, ``OUT/detector_cache`` (MODEL.DETECTOR_CACHE_DIR), so
the frozen detector's output for an image is computed once for the whole study.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from demo import MODE_NAMES, RELATION_CONFIG, ROOT, VARIANTS, mode_switches, run_pool  # noqa: E402  (tools/)

from maskrcnn_benchmark.engine.report import read_scalars  # noqa: E402

RULE_GAIN = 0.5  # points of best val mR@50 that a doubled schedule may add at most


def run_dir(out: str, variant: str, mode: str, iters: int, seed: int) -> str:
    return os.path.join(out, f"{variant}_{mode}_{iters}" + (f"_seed{seed}" if seed else ""))


def finished(d: str, iters: int) -> bool:
    """A run that ended: its final checkpoint, or (a run restored by tools/run_records.py, without
    checkpoints) its val curve reaching the last iteration."""
    return os.path.isfile(os.path.join(d, "model_final.pth")) or any(s == iters for s, _ in val_curve(d))


def schedule_opts(iters: int, val_points: int) -> List[str]:
    val = max(1, iters // val_points)
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.SCHEDULE.UPDATE_PERIOD", str(max(1, iters // 100)),
            "SOLVER.VAL_PERIOD", str(val), "SOLVER.CHECKPOINT_PERIOD", str(val), "SOLVER.TO_VAL", "True"]


def val_curve(path: str, tag: str = "val/mR@50") -> List[Tuple[int, float]]:
    return [(s, 100.0 * v) for s, v in read_scalars(path).get(tag, [])]


def pick_schedule(best: Dict[int, Optional[float]], gain: float = RULE_GAIN) -> Optional[int]:
    """The shortest length whose doubling adds at most ``gain`` points of best val mR@50 (None:
    no such pair measured yet)."""
    for n in sorted(best):
        if best.get(n) is not None and best.get(2 * n) is not None and best[2 * n] - best[n] <= gain:
            return n
    return None


def plot(curves: Dict[str, Dict[str, List[Tuple[int, float]]]], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in curves if curves[m]]
    if not modes:
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(5.0 * len(modes), 3.8), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for color, (name, pts) in enumerate(sorted(curves[mode].items())):
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", markersize=3, label=name, color=f"C{color}",
                        linestyle="--" if name.startswith("Align") else "-")
        ax.set_title(f"{MODE_NAMES[mode]}: val mR@50 (%)")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: str, modes: Sequence[str], variants: Sequence[str], lengths: Sequence[int],
                 seeds: Sequence[int], command: str) -> str:
    lines = ["# SynthVG relation schedules: validation curves", "", f"Command: `{command}`", "",
             "Best / final val mR@50 and R@50 (%) of each run (val split, cosine over the whole run). "
             f"Rule: the shortest length whose doubling adds at most {RULE_GAIN} point of Motifs's best "
             "val mR@50; Align-Motifs gets the same length.", ""]
    curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = {m: {} for m in modes}
    for mode in modes:
        lines += [f"## {MODE_NAMES[mode]}", "",
                  "| model | iterations | seed | best val mR@50 (at it.) | final val mR@50 | best val R@50 | final val R@50 |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        best_motifs: Dict[int, Optional[float]] = {}
        for variant, n, seed in [(v, n, s) for v in variants for n in lengths for s in seeds]:
            name = VARIANTS[variant][0]
            d = run_dir(out, variant, mode, n, seed)
            mr, r = val_curve(d), val_curve(d, "val/R@50")
            curves[mode][f"{name} {n}" + (f" seed {seed}" if seed else "")] = mr
            done = finished(d, n)
            if not mr:
                lines.append(f"| {name} | {n} | {seed} | (not run) | | | |")
                continue
            b = max(mr, key=lambda p: p[1])
            if variant == "motifs" and seed == seeds[0]:
                best_motifs[n] = b[1] if done else None
            state = "" if done else f" (running: {mr[-1][0]}/{n})"
            rs = f"{max(v for _, v in r):.1f} | {r[-1][1]:.1f}" if r else " | "
            lines.append(f"| {name} | {n}{state} | {seed} | {b[1]:.1f} ({b[0]}) | {mr[-1][1]:.1f} | {rs} |")
        pick = pick_schedule(best_motifs)
        lines += ["", f"Schedule by the rule: **{pick} iterations**" if pick else
                  "Schedule by the rule: not decided (no doubling within 0.5 point measured yet)", ""]
    plot(curves, os.path.join(out, "curves.png"))
    lines += ["![val curves](curves.png)", ""]
    text = "\n".join(lines)
    with open(os.path.join(out, "curves.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="curves_output")
    p.add_argument("--detector", default="checkpoints/synthvg_detector_VGG16.pth")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--modes", nargs="+", choices=list(MODE_NAMES), default=list(MODE_NAMES))
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--iters", nargs="+", type=int, default=[1500, 3000])
    p.add_argument("--val-points", type=int, default=10, help="validations per run")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    a = p.parse_args(argv)
    out, detector = os.path.abspath(a.out), os.path.abspath(a.detector)
    if not os.path.isfile(detector):
        raise SystemExit(f"schedule_study: detector {a.detector} not found: run `make demo` (or `make detector "
                         "CONFIG=configs/synthvg/detector_VGG16.yaml`) first, or pass --detector")
    os.makedirs(out, exist_ok=True)
    pending = []
    cache = ["MODEL.DETECTOR_CACHE_DIR", os.path.join(out, "detector_cache")]
    # longest runs first, so that the slots end together
    for n in sorted(a.iters, reverse=True):
        for mode, variant, seed in [(m, v, s) for m in reversed(a.modes) for s in a.seeds for v in a.variants]:
            d = run_dir(out, variant, mode, n, seed)
            if finished(d, n):
                continue
            cmd = [sys.executable, "tools/relation_train_net.py", "--config-file",
                   RELATION_CONFIG.format(mode=mode), "DATASETS.DATA_DIR", os.path.abspath(a.data_dir), *cache,
                   *mode_switches(mode), *VARIANTS[variant][1], *schedule_opts(n, a.val_points),
                   "MODEL.PRETRAINED_DETECTOR_CKPT", detector, "OUTPUT_DIR", d, "SEED", str(seed),
                   *a.opts, "--skip-test"]
            pending.append((cmd, f"{VARIANTS[variant][0]} {MODE_NAMES[mode]} {n} seed {seed}", d))
    if pending and not a.report_only:
        run_pool(pending, a.jobs, {})
    print(write_report(out, a.modes, a.variants, sorted(a.iters), a.seeds,
                       shlex.join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
