#!/usr/bin/env python
"""The alignment on every predictor (``make predictors``): Motifs, Transformer, VCTree and IMP, each
with and without the self-supervised relation alignment, on SynthVG, several seeds.

    python tools/predictor_study.py [--out predictors_output] [--modes predcls [sgcls ...]]
        [--seeds 3] [--data-dir datasets/reproduce] [--detector FILE] [--jobs 2] [KEY VALUE ...]

Each run is tools/relation_train_net.py with ``configs/synthvg/<predictor>[_align]_<mode>.yaml``
(the Motifs configs with the predictor swapped: the same schedule) and ``SEED s``, in
``OUT/<predictor>[_align]_<mode>_seed<s>``; the frequency prior is evaluated once per mode.
Resumable: a run folder holding its test results is reused, an unfinished one resumes from its
last checkpoint. ``OUT/results.md``: per mode, mR@20/50/100 and R@50 (mean ± sd over seeds) and
the paired difference aligned - plain of mR@50 (mean ± sd over seeds), plus the frequency prior.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from demo import DETECTOR_CONFIG, TEST_SET, run, run_pool  # noqa: E402

from maskrcnn_benchmark.engine.report import MODE_NAMES, MODES, load_results  # noqa: E402

PREDICTORS = {"motifs": "Motifs", "transformer": "Transformer", "vctree": "VCTree", "imp": "IMP"}
CONFIG = "configs/synthvg/{key}{align}_{mode}.yaml"


def run_dir(out: str, key: str, align: bool, mode: str, seed: int) -> str:
    return os.path.join(out, f"{key}{'_align' if align else ''}_{mode}_seed{seed}")


def _pct(values) -> str:
    vals = [100.0 * v for v in values if v is not None]
    if not vals:
        return "-"
    return f"{np.mean(vals):.1f}" if len(vals) == 1 else f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"


def _metric(results, name):
    return [r["metrics"].get(name) if r else None for r in results]


def study_table(out: str, modes, seeds) -> str:
    """The Markdown results of the runs found under ``out`` (missing runs show as "-" / n < seeds)."""
    lines = []
    for mode in modes:
        lines += [f"### {MODE_NAMES[mode]}", "",
                  "| Predictor | n | mR@20 | mR@50 | mR@100 | R@50 | n | + alignment mR@50 | R@50 | "
                  "Δ mR@50 (paired) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for key, name in PREDICTORS.items():
            plain = [load_results(run_dir(out, key, False, mode, s), TEST_SET) for s in seeds]
            align = [load_results(run_dir(out, key, True, mode, s), TEST_SET) for s in seeds]
            diffs = [a["metrics"]["mR@50"] - p["metrics"]["mR@50"] for p, a in zip(plain, align) if p and a]
            lines.append(f"| {name} | {sum(r is not None for r in plain)} | " +
                         " | ".join(_pct(_metric(plain, f"mR@{k}")) for k in (20, 50, 100)) +
                         f" | {_pct(_metric(plain, 'R@50'))} | {sum(r is not None for r in align)} | "
                         f"{_pct(_metric(align, 'mR@50'))} | {_pct(_metric(align, 'R@50'))} | {_pct(diffs)} |")
        freq = [load_results(os.path.join(out, f"frequency_{mode}"), TEST_SET)]
        lines += [f"| Frequency prior | {sum(r is not None for r in freq)} | " +
                  " | ".join(_pct(_metric(freq, f"mR@{k}")) for k in (20, 50, 100)) +
                  f" | {_pct(_metric(freq, 'R@50'))} | | | | |", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="predictors_output")
    p.add_argument("--data-dir", default="datasets/reproduce", help="DATASETS.DATA_DIR (SynthVG in DATA_DIR/synthvg)")
    p.add_argument("--synth-args", default="--num-test 2000", help="tools/make_synthvg.py arguments")
    p.add_argument("--detector", default="", help="stage-1 checkpoint (default: OUT/detector, trained if missing)")
    p.add_argument("--modes", nargs="+", default=["predcls"], choices=MODES)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2, help="runs at once (one core each)")
    p.add_argument("--report-only", action="store_true", help="only rewrite results.md from finished runs")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every relation run")
    a = p.parse_args(argv)
    out, data_dir, py = os.path.abspath(a.out), os.path.abspath(a.data_dir), sys.executable
    os.makedirs(out, exist_ok=True)
    seeds, timings, t0 = list(range(a.seeds)), {}, time.perf_counter()
    detector = os.path.abspath(a.detector) if a.detector else os.path.join(out, "detector", "model_final.pth")
    if not a.report_only:
        run([py, "tools/make_synthvg.py", "--out", os.path.join(data_dir, "synthvg"), *a.synth_args.split()],
            "generate SynthVG", timings)
        if a.detector and not os.path.isfile(detector):
            raise SystemExit(f"predictor_study: --detector {a.detector} not found")
        if not os.path.isfile(detector):
            run([py, "tools/detector_pretrain_net.py", "--config-file", DETECTOR_CONFIG, "DATASETS.DATA_DIR",
                 data_dir, "OUTPUT_DIR", os.path.dirname(detector)], "train and test the detector", timings)
        pending = []
        for mode in reversed(a.modes):  # longest first
            for seed in seeds:
                for key in PREDICTORS:
                    for align in (False, True):
                        folder = run_dir(out, key, align, mode, seed)
                        if load_results(folder, TEST_SET) is not None:
                            continue
                        cfg = CONFIG.format(key=key, align="_align" if align else "", mode=mode)
                        cmd = [py, "tools/relation_train_net.py", "--config-file", cfg, "DATASETS.DATA_DIR", data_dir,
                               "MODEL.PRETRAINED_DETECTOR_CKPT", detector, "OUTPUT_DIR", folder, "SEED", str(seed),
                               *a.opts]
                        pending.append((cmd, f"{PREDICTORS[key]}{' + alignment' if align else ''} "
                                        f"{MODE_NAMES[mode]} seed {seed}", folder))
            freq = os.path.join(out, f"frequency_{mode}")
            if load_results(freq, TEST_SET) is None:
                pending.append(([py, "tools/demo.py", "--frequency-baseline", mode, freq, detector, data_dir,
                                 *a.opts], f"frequency prior {MODE_NAMES[mode]}", freq))
        if pending:
            run_pool(pending, a.jobs, timings)
    table = study_table(out, a.modes, seeds)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"# Predictors with and without the alignment (SynthVG, {a.seeds} seeds)\n\n"
                f"Configs `{CONFIG}`; detector `{os.path.relpath(detector, ROOT)}`; data `{a.data_dir}`"
                + (f"; overrides `{' '.join(a.opts)}`" if a.opts else "") +
                f". Mean ± sample sd over seeds; Δ: aligned - plain mR@50 of the same seed. "
                f"{time.perf_counter() - t0:.0f} s.\n\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
