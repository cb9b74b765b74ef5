"""The reports of tools/alignment_study.py: Markdown tables and pictures from the files the runs
wrote (test ``results.json``, the TensorBoard val points, ``log.txt``); nothing is trained here.

The KL_REDUCTION / MASK rule (docs/results.md, fixed before the runs) is :data:`RULE`, applied by
:func:`rule_choice` on the val split only.
"""
from __future__ import annotations

import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from alignment_study import ALL_VARIANTS, FINAL_DIR, PREDICTORS, Job, Runs  # noqa: E402  (tools/)
from demo import MODE_NAMES, TEST_SET, VARIANTS  # noqa: E402
from schedule_study import val_curve  # noqa: E402

from maskrcnn_benchmark.engine.report import load_results, read_scalars  # noqa: E402

MIN_SEEDS = 3
RULE = ("Rule (docs/results.md, fixed before the runs; val split only): per protocol, the alternative "
        "(KL_REDUCTION mean, resp. MASK element) replaces today's default (batchmean, resp. row) only if "
        "its mean best val mR@50 over the seeds exceeds the default's by more than one seed sd (the "
        f"larger sample sd of the two rows), with at least {MIN_SEEDS} seeds of both rows finished; "
        "anything less, a tie included, keeps today's default. KL_REDUCTION changes for the configs "
        "only if mean wins in every protocol run; test numbers are reported for every row.")
Record = Dict[str, Optional[float]]
TEST_METRICS = ("mR@20", "mR@50", "mR@100", "R@20", "R@50", "R@100")


def train_images(run_dir: str) -> Optional[int]:
    """Training images of a run, from the statistics line of its log.txt."""
    path = os.path.join(run_dir, "log.txt")
    if not os.path.isfile(path):
        return None
    with open(path, errors="replace") as f:
        found = re.findall(r"frequency statistics of (\d+) training images", f.read())
    return int(found[-1]) if found else None


def record(runs: Runs, job: Job) -> Optional[Record]:
    """Test metrics (points) of a finished run, its best val mR@50 and its final model's test."""
    d = runs.run_dir(job)
    res = load_results(d, TEST_SET)
    if res is None:
        return None
    rec: Record = {k: 100.0 * v for k, v in res["metrics"].items() if k in TEST_METRICS}
    scalars = read_scalars(d)
    curve = [100.0 * v for _, v in scalars.get("val/mR@50", [])]
    rec["best val mR@50"] = max(curve) if curve else None
    rec["early grad norm"] = early_grad_norm(scalars.get("grad_norm", []))
    final = load_results(os.path.join(d, FINAL_DIR), TEST_SET)
    for k in ("mR@50", "R@50"):
        rec[f"final {k}"] = 100.0 * final["metrics"][k] if final else None
    rec["images"] = train_images(d)
    return rec


def early_grad_norm(points: Sequence[Tuple[int, float]]) -> Optional[float]:
    """Median logged gradient norm (before clipping) over the first third of a run's iterations:
    how much SOLVER.GRAD_NORM_CLIP shrinks the early steps."""
    if not points:
        return None
    end = (max(step for step, _ in points) + 1) / 3.0
    return float(np.median([v for step, v in points if step < end]))


def pm(values: Sequence[Optional[float]]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    return f"{np.mean(vals):.1f}" if len(vals) == 1 else f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"


def collect(runs: Runs, jobs: Sequence[Job], key: Callable[[Job], tuple]) -> Dict[tuple, Dict[int, Record]]:
    """key(job) -> {seed: record} of the finished runs."""
    rows: Dict[tuple, Dict[int, Record]] = {}
    for job in jobs:
        rows.setdefault(key(job), {})
        rec = record(runs, job)
        if rec is not None:
            rows[key(job)][job.seed] = rec
    return rows


def paired_diffs(a: Dict[int, Record], b: Dict[int, Record], metric: str) -> Dict[int, float]:
    """seed -> a - b of ``metric``, on the seeds both have."""
    return {s: a[s][metric] - b[s][metric] for s in sorted(set(a) & set(b))
            if a[s].get(metric) is not None and b[s].get(metric) is not None}


def paired(a: Dict[int, Record], b: Dict[int, Record], metric: str) -> str:
    """Per-seed a - b of ``metric`` on the seeds both have, then their mean ± sd."""
    diffs = paired_diffs(a, b, metric)
    if not diffs:
        return "- | -"
    return ", ".join(f"{d:+.1f} (s{s})" for s, d in diffs.items()) + f" | {pm(list(diffs.values()))}"


def paper_bar(diffs: Sequence[float]) -> str:
    """The paper's bar: a difference counts only if its mean is larger than one sd of the paired
    differences (so at least two seeds), both compared as printed (0.1 point), so that two seeds a
    few hundredths apart do not make a 0.0-point "gain"."""
    if len(diffs) < 2:
        return "- (one seed)" if diffs else "-"
    mean, sd = round(float(np.mean(diffs)), 1), round(float(np.std(diffs, ddof=1)), 1)
    return "gain" if mean > sd else "loss" if mean < -sd else "no"


def gap_change(gap: Dict[int, float], ref_gap: Dict[int, float]) -> Optional[Tuple[float, float]]:
    """(mean paired difference minus the reference's, the larger sd of the two), for the readings fixed
    before the sparsity and schedule-length runs (docs/results.md); None below two seeds each."""
    if len(gap) < 2 or len(ref_gap) < 2:
        return None
    values, ref = list(gap.values()), list(ref_gap.values())
    return float(np.mean(values) - np.mean(ref)), float(max(np.std(values, ddof=1), np.std(ref, ddof=1)))


def _change_text(change: Optional[Tuple[float, float]], verdict: Callable[[float, float], bool]) -> str:
    """The verdict on the values as printed (0.1 point), as :func:`paper_bar` takes its own."""
    if change is None:
        return "not decided (fewer than 2 seeds with both models)"
    diff, sd = (round(x, 1) for x in change)
    return f"{'yes' if verdict(diff, sd) else 'no'} (difference of the mean Δ {diff:+.1f}, larger sd {sd:.1f})"


def column(recs: Dict[int, Record], metric: str) -> List[Optional[float]]:
    return [r.get(metric) for r in recs.values()]


def rule_choice(default: Dict[int, Record], alt: Dict[int, Record]) -> Tuple[Optional[bool], str]:
    """(True: the alternative wins | False: the default stays | None: not decided, why)."""
    seeds = sorted(s for s in set(default) & set(alt) if default[s]["best val mR@50"] is not None
                   and alt[s]["best val mR@50"] is not None)
    if len(seeds) < MIN_SEEDS:
        return None, f"{len(seeds)} of {MIN_SEEDS} seeds have both rows finished"
    d = [default[s]["best val mR@50"] for s in seeds]
    a = [alt[s]["best val mR@50"] for s in seeds]
    sd, diff = max(np.std(d, ddof=1), np.std(a, ddof=1)), float(np.mean(a) - np.mean(d))
    return diff > sd, f"mean best val mR@50 {np.mean(a):.1f} vs {np.mean(d):.1f}: {diff:+.1f} against one seed sd {sd:.1f}"


def _header(title: str, command: str, jobs: Sequence[Job]) -> List[str]:
    seeds = ", ".join(map(str, sorted({j.seed for j in jobs})))
    return [f"# {title}", "", f"Command: `{command}`", "", f"Seeds reported (every seed with a run folder of this "
            f"study, whichever invocation ran it): {seeds}.", ""]


def _write(report_dir: str, name: str, lines: List[str]) -> str:
    text = "\n".join(lines) + "\n"
    with open(os.path.join(report_dir, f"{name}.md"), "w") as f:
        f.write(text)
    return text


def _axes(ncols: int, width: float = 5.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.8), squeeze=False)
    return plt, fig, axes[0]


def _save(plt, fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sparsity_report(runs: Runs, jobs: Sequence[Job], report_dir: str, command: str) -> str:
    rows = collect(runs, jobs, lambda j: (j.fraction, j.variant))
    fractions = sorted({j.fraction for j in jobs})
    lines = _header("Sparsity: PredCls on a fraction of the SynthVG train split (issue 15)", command, jobs) + [
             "DATASETS.TRAIN_FRACTION of the train split (val and test unchanged), the schedule scaled by the "
             "fraction (same epochs), best val mR@50 checkpoint tested. Mean ± sample sd over seeds (n); "
             "Δ: Align-Motifs minus Motifs on the same seed.", "",
             "| train fraction | train images | iterations | model | n | best val mR@50 | test mR@50 | test R@50 |",
             "|---:|---:|---:|---|---:|---:|---:|---:|"]
    for f in fractions:
        it = runs.schedule(Job("motifs", "predcls", 0, fraction=f))["SOLVER.MAX_ITER"]
        for v in VARIANTS:
            recs = rows.get((f, v), {})
            images = sorted({r["images"] for r in recs.values() if r["images"] is not None})
            lines.append(f"| {f:g} | {', '.join(map(str, images)) or '-'} | {it} | {VARIANTS[v][0]} | {len(recs)} | "
                         f"{pm(column(recs, 'best val mR@50'))} | {pm(column(recs, 'mR@50'))} | {pm(column(recs, 'R@50'))} |")
    lines += ["", "| train fraction | Δ test mR@50 per seed | mean ± sd | Δ test R@50 per seed | mean ± sd |",
              "|---:|---|---:|---|---:|"]
    for f in fractions:
        a, m = rows.get((f, "align"), {}), rows.get((f, "motifs"), {})
        lines.append(f"| {f:g} | {paired(a, m, 'mR@50')} | {paired(a, m, 'R@50')} |")
    if len(fractions) > 1:
        low, high = (paired_diffs(rows.get((f, "align"), {}), rows.get((f, "motifs"), {}), "mR@50")
                     for f in (fractions[0], fractions[-1]))
        lines += ["", f"Reading (docs/results.md, fixed before the runs): the alignment helps more under sparsity only "
                  f"if the mean paired test mR@50 Δ at fraction {fractions[0]:g} exceeds the one at {fractions[-1]:g} "
                  f"by more than the larger sd of the two. Helps more: "
                  + _change_text(gap_change(low, high), lambda change, sd: change > sd) + "."]
    plt, fig, axes = _axes(2)
    for ax, metric in zip(axes, ("mR@50", "R@50")):
        ticks = {}
        for color, v in enumerate(VARIANTS):
            pts = []
            for f in fractions:
                recs = rows.get((f, v), {})
                vals = [x for x in column(recs, metric) if x is not None]
                if vals:
                    images = [r["images"] for r in recs.values() if r["images"] is not None]
                    x = float(np.mean(images)) if images else f
                    ticks[x] = f"{x:.0f}\n({f:g})" if images else f"({f:g})"
                    pts.append((x, np.mean(vals), np.std(vals, ddof=1) if len(vals) > 1 else 0.0))
            if pts:
                xs, ys, sds = zip(*pts)
                ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3, color=f"C{color}", label=VARIANTS[v][0])
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(ticks), list(ticks.values()))
        ax.minorticks_off()
        ax.set_xlabel("training images (train fraction)")
        ax.set_title(f"PredCls test {metric} (%), mean ± sd over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(plt, fig, os.path.join(report_dir, "sparsity.png"))
    return _write(report_dir, "sparsity", lines + ["", "![sparsity](sparsity.png)"])


def schedule_length_report(runs: Runs, jobs: Sequence[Job], report_dir: str, command: str) -> str:
    rows = collect(runs, jobs, lambda j: (j.length, j.variant))
    lengths = sorted({j.length for j in jobs})
    lines = _header("Schedule length: PredCls at multiples of the configured schedule (issue 15)", command, jobs) + [
             "Cosine over the whole run, validation every 10%; test of the best val mR@50 checkpoint (the "
             "paper's rule) and of the final model. Mean ± sample sd over seeds (n); Δ: Align-Motifs minus "
             "Motifs on the same seed.", "",
             "| length | iterations | model | n | best val mR@50 | test mR@50 (best val) | test R@50 (best val) | "
             "test mR@50 (final) | test R@50 (final) |", "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for k in lengths:
        it = runs.schedule(Job("motifs", "predcls", 0, length=k))["SOLVER.MAX_ITER"]
        for v in VARIANTS:
            recs = rows.get((k, v), {})
            cells = [pm(column(recs, m)) for m in ("best val mR@50", "mR@50", "R@50", "final mR@50", "final R@50")]
            lines.append(f"| {k}x | {it} | {VARIANTS[v][0]} | {len(recs)} | " + " | ".join(cells) + " |")
    lines += ["", "| length | Δ test mR@50 (best val) per seed | mean ± sd | Δ test R@50 (best val) per seed | "
              "mean ± sd | Δ test mR@50 (final) per seed | mean ± sd | Δ test R@50 (final) per seed | mean ± sd |",
              "|---:|---|---:|---|---:|---|---:|---|---:|"]
    for k in lengths:
        a, m = rows.get((k, "align"), {}), rows.get((k, "motifs"), {})
        lines.append(f"| {k}x | " + " | ".join(paired(a, m, x) for x in ("mR@50", "R@50", "final mR@50", "final R@50"))
                     + " |")
    if len(lengths) > 1:
        lines += ["", f"Reading (docs/results.md, fixed before the runs): the gap changes with training length only if "
                  f"the mean paired Δ at {lengths[-1]}x differs from the one at {lengths[0]}x by more than the larger "
                  f"sd of the two, for each checkpoint separately."]
        for metric, what in (("mR@50", "best val"), ("final mR@50", "final model")):
            gaps = [paired_diffs(rows.get((k, "align"), {}), rows.get((k, "motifs"), {}), metric)
                    for k in (lengths[-1], lengths[0])]
            lines.append(f"- test mR@50, {what}: changes: "
                         + _change_text(gap_change(*gaps), lambda change, sd: abs(change) > sd) + ".")
    plt, fig, axes = _axes(1, width=7.5)
    styles = ["-", "--", ":", "-."]
    for color, v in enumerate(VARIANTS):
        for i, k in enumerate(lengths):
            per_step: Dict[int, List[float]] = {}
            for job in jobs:
                if job.variant == v and job.length == k:
                    for step, value in val_curve(runs.run_dir(job)):
                        per_step.setdefault(step, []).append(value)
            if per_step:
                steps = sorted(per_step)
                n = max(len(per_step[s]) for s in steps)
                axes[0].plot(steps, [np.mean(per_step[s]) for s in steps], marker="o", markersize=3, color=f"C{color}",
                             linestyle=styles[i % len(styles)], label=f"{VARIANTS[v][0]} {k}x (mean of {n} seeds)")
    axes[0].set_xlabel("iteration")
    axes[0].set_title("PredCls val mR@50 (%)")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(plt, fig, os.path.join(report_dir, "schedule_length.png"))
    return _write(report_dir, "schedule_length", lines + ["", "![val curves](schedule_length.png)"])


def kl_reduction_report(runs: Runs, jobs: Sequence[Job], report_dir: str, command: str) -> str:
    rows = collect(runs, jobs, lambda j: (j.mode, *((j.variant,) if j.variant == "motifs" else
                                                  (j.variant, j.reduction, j.mask))))
    modes = sorted({j.mode for j in jobs}, key=lambda m: list(MODE_NAMES).index(m))
    lines = _header("KL_REDUCTION and MASK of the alignment (issue 15)", command, jobs) + [RULE, "",
             "Mean ± sample sd over seeds (n); Δ: the row minus Motifs on the same seed (test mR@50)."]
    reduction_wins = []
    for mode in modes:
        lines += ["", f"## {MODE_NAMES[mode]}", "",
                  "| row | KL_REDUCTION | MASK | n | best val mR@50 | test mR@20 | test mR@50 | test mR@100 | test R@50 "
                  "| Δ test mR@50 per seed | mean ± sd |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        motifs = rows.get((mode, "motifs"), {})
        for key, recs in rows.items():
            if key[0] != mode:
                continue
            red, mask = (key[2], key[3]) if len(key) > 2 else ("", "")
            name = VARIANTS[key[1]][0]
            cells = " | ".join(pm(column(recs, m)) for m in ("best val mR@50", "mR@20", "mR@50", "mR@100", "R@50"))
            diff = paired(recs, motifs, "mR@50") if key[1] != "motifs" else " | "
            lines.append(f"| {name} | {red} | {mask} | {len(recs)} | {cells} | {diff} |")
        wins, why = rule_choice(rows.get((mode, "align", "batchmean", "row"), {}),
                                rows.get((mode, "align", "mean", "row"), {}))
        reduction_wins.append(wins)
        lines += ["", f"KL_REDUCTION in {MODE_NAMES[mode]}: " +
                  ("not decided" if wins is None else "mean" if wins else "batchmean (kept)") + f" ({why})"]
        elements = [k for k in rows if k[0] == mode and len(k) > 2 and k[3] == "element"]
        for key in elements:
            wins_mask, why = rule_choice(rows.get((mode, "align", key[2], "row"), {}), rows[key])
            lines.append(f"MASK in {MODE_NAMES[mode]} (KL_REDUCTION {key[2]}): " +
                         ("not decided" if wins_mask is None else "element" if wins_mask else "row (kept)") + f" ({why})")
    overall = ("not decided" if None in reduction_wins or not reduction_wins
               else "mean" if all(reduction_wins) else "batchmean (kept)")
    lines += ["", f"**KL_REDUCTION for the configs: {overall}.**"]
    return _write(report_dir, "kl_reduction", lines)


def tables_report(runs: Runs, jobs: Sequence[Job], report_dir: str, command: str) -> str:
    rows = collect(runs, jobs, lambda j: (j.mode, j.variant))
    modes = sorted({j.mode for j in jobs}, key=lambda m: list(MODE_NAMES).index(m))
    lines = _header("The paper's Table 2 and Table 3 on SynthVG, at the configs' schedules (issue 15)", command, jobs) + [
             "Best val mR@50 checkpoint tested (the paper's rule). Mean ± sample sd over seeds (n); Δ: the row "
             "minus Motifs on the same seed. Paper's bar: `gain` (`loss`) when the mean Δ is larger (smaller) "
             "than plus (minus) one sd of the per-seed Δ, else `no`. SA = supervised alignment (CE to the "
             "labels), SSA = self-supervised (KL), PH / UPH = tied / untied head; Align-Motifs is SSA + UPH."]
    names = {**{v: n for v, (n, _) in ALL_VARIANTS.items()}, "align": "Align-Motifs (SSA + UPH)"}
    for mode in modes:
        metrics = ("best val mR@50",) + TEST_METRICS
        lines += ["", f"## {MODE_NAMES[mode]}", "", "| model | n | " + " | ".join(
                  m if m.startswith("best") else f"test {m}" for m in metrics) + " |",
                  "|---|---:|" + "---:|" * len(metrics)]
        present = [v for v in ALL_VARIANTS if (mode, v) in rows]
        for v in present:
            recs = rows[(mode, v)]
            lines.append(f"| {names[v]} | {len(recs)} | " + " | ".join(pm(column(recs, m)) for m in metrics) + " |")
        prior = _prior_row(runs, mode, TEST_METRICS)
        if prior:
            lines.append("| Frequency prior | - | - | " + " | ".join(prior) + " |")
        motifs = rows.get((mode, "motifs"), {})
        lines += ["", "| row minus Motifs | Δ test mR@50 per seed | mean ± sd | paper's bar | Δ test R@50 per seed | "
                  "mean ± sd | paper's bar |", "|---|---|---:|---|---|---:|---|"]
        for v in [v for v in present if v != "motifs"]:
            cells = [f"{paired(rows[(mode, v)], motifs, m)} | "
                     f"{paper_bar(list(paired_diffs(rows[(mode, v)], motifs, m).values()))}" for m in ("mR@50", "R@50")]
            lines.append(f"| {names[v]} | " + " | ".join(cells) + " |")
        diffs = list(paired_diffs(rows.get((mode, "align"), {}), motifs, "mR@50").values())
        sd = [x for x in column(motifs, "mR@50") if x is not None]
        if len(diffs) >= 2 and len(sd) >= 2:
            mean_diff, seed_sd = float(np.mean(diffs)), float(np.std(sd, ddof=1))
            half, stderr = abs(mean_diff) / 2, float(np.std(diffs, ddof=1)) / np.sqrt(len(diffs))
            lines += ["", f"Seeds: Motifs's test mR@50 seed sd {seed_sd:.1f} against half the Align-Motifs "
                      f"difference {half:.1f}: " + ("more seeds needed (the issue's rule)" if seed_sd > half
                                                    else "enough seeds") +
                      f"; the mean Δ {mean_diff:+.1f} has a standard error of {stderr:.1f} "
                      f"({len(diffs)} seeds)."]
    return _write(report_dir, "tables", lines)


def _prior_row(runs: Runs, mode: str, metrics: Sequence[str]) -> Optional[List[str]]:
    prior = load_results(runs.prior_dir(mode), TEST_SET)
    if prior is None:
        return None
    return [f"{100.0 * prior['metrics'][m]:.1f}" if m in prior["metrics"] else "-" for m in metrics]


def predictors_report(runs: Runs, jobs: Sequence[Job], report_dir: str, command: str) -> str:
    rows = collect(runs, jobs, lambda j: (j.mode, j.predictor, j.variant, runs.resolve(j).reduction))
    modes = sorted({j.mode for j in jobs}, key=lambda m: list(MODE_NAMES).index(m))
    predictors = [p for p in PREDICTORS if any(j.predictor == p for j in jobs)]
    metrics = ("mR@20", "mR@50", "mR@100", "R@50")
    lines = _header("The alignment on every predictor (issue 17)", command, jobs) + [
             "Configs `configs/synthvg/<predictor>[_align]_<mode>.yaml` (Motifs: `motifs_<mode>.yaml`), the "
             "configs' schedule, best val mR@50 checkpoint tested. Mean ± sample sd over seeds (n); Δ: with "
             "minus without the alignment on the same seed; paper's bar as in `make reproduce` (`gain` only if "
             "the mean Δ is larger than one sd of the per-seed Δ)."]
    for mode in modes:
        default = runs.resolve(Job("align", mode, 0)).reduction
        lines += ["", f"## {MODE_NAMES[mode]}", "", f"The alignment as configured (ALIGN.KL_REDUCTION {default}).", "",
                  "| predictor | n | " + " | ".join(f"test {m}" for m in metrics) +
                  " | n | + alignment: test mR@50 | test R@50 | Δ test mR@50 per seed | mean ± sd | paper's bar |",
                  "|---|---:|" + "---:|" * len(metrics) + "---:|---:|---:|---|---:|---|"]
        for p in predictors:
            plain, aligned = rows.get((mode, p, "motifs", ""), {}), rows.get((mode, p, "align", default), {})
            diffs = paired_diffs(aligned, plain, "mR@50")
            lines.append(f"| {PREDICTORS[p]} | {len(plain)} | " + " | ".join(pm(column(plain, m)) for m in metrics) +
                         f" | {len(aligned)} | {pm(column(aligned, 'mR@50'))} | {pm(column(aligned, 'R@50'))} | "
                         f"{paired(aligned, plain, 'mR@50')} | {paper_bar(list(diffs.values()))} |")
        prior = _prior_row(runs, mode, metrics)
        if prior:
            lines.append("| Frequency prior | - | " + " | ".join(prior) + " | | | | | | |")
        clip = runs.config(mode).SOLVER.GRAD_NORM_CLIP
        lines += ["", f"Every setting run, with the median gradient norm (before clipping at SOLVER.GRAD_NORM_CLIP "
                  f"{clip:g}) of each run's first third; other KL_REDUCTION rows are diagnostics, not a choice "
                  "(that takes the val rule of `make kl-reduction`).", "",
                  "| predictor | alignment | n | early grad norm | best val mR@50 | test mR@50 | test R@50 | "
                  "Δ test mR@50 per seed | mean ± sd | paper's bar |", "|---|---|---:|---:|---:|---:|---:|---|---:|---|"]
        for p in predictors:
            plain = rows.get((mode, p, "motifs", ""), {})
            for (m, q, variant, red), recs in rows.items():
                if (m, q) != (mode, p) or not recs:
                    continue
                cells = " | ".join(pm(column(recs, k)) for k in ("early grad norm", "best val mR@50", "mR@50", "R@50"))
                diff = (f"{paired(recs, plain, 'mR@50')} | {paper_bar(list(paired_diffs(recs, plain, 'mR@50').values()))}"
                        if variant != "motifs" else "- | - | -")
                lines.append(f"| {PREDICTORS[p]} | {red or 'off'} | {len(recs)} | {cells} | {diff} |")
    return _write(report_dir, "predictors", lines)


REPORTS = {"tables": tables_report, "predictors": predictors_report, "sparsity": sparsity_report, "schedule-length": schedule_length_report, "kl-reduction": kl_reduction_report}
