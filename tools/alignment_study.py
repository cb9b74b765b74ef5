#!/usr/bin/env python
"""Does the alignment help? The studies of issues 15 and 17 on SynthVG, one subcommand each.

    python tools/alignment_study.py {tables,predictors,sparsity,schedule-length,kl-reduction} [--out alignment_output]
        [--detector FILE] [--data-dir datasets] [--seeds 0 1 2] [--variants motifs align ...]
        [--fractions 0.25 0.5 1.0] [--lengths 1 2 3] [--modes predcls sgcls sgdet] [--mask-reduction batchmean]
        [--predictors motifs transformer vctree imp] [--reductions batchmean mean]
        [--detector-cache DIR] [--report-only] --jobs 2 [KEY VALUE ...]

(the list options take every value up to the next option: end with a single-valued one, such as
--jobs, before the KEY VALUE overrides, which go to every run)

- ``tables`` (``make reproduce``): the paper's Table 2 and Table 3 at the configs' schedules:
  Motifs and Align-Motifs in PredCls, SGCls and SGDet, the Table 3 ablation in PredCls (SA + UPH,
  SSA + PH; SSA + UPH is Align-Motifs), the frequency prior of each protocol, best-val checkpoint
  tested -> ``OUT/tables/tables.md`` (mean ± sd, paired differences, the paper's one-sd bar).
- ``predictors`` (``make predictors``): Motifs, Transformer, VCTree and IMP, each with and without
  the alignment (``configs/synthvg/<predictor>[_align]_<mode>.yaml``: the Motifs configs with the
  predictor swapped), PredCls by default, and the frequency prior -> ``OUT/predictors/predictors.md``;
  ``--reductions`` adds aligned rows at another ALIGN.KL_REDUCTION (the report shows every one run,
  with the median gradient norm of each run's first third against SOLVER.GRAD_NORM_CLIP).
- ``sparsity`` (``make sparsity``): PredCls, Motifs and Align-Motifs, DATASETS.TRAIN_FRACTION
  0.25 / 0.5 / 1.0 with the schedule scaled by the fraction (same epochs), best-val checkpoint
  tested -> ``OUT/sparsity/sparsity.md`` and ``sparsity.png``.
- ``schedule-length`` (``make schedule-length``): PredCls, both models, 1x / 2x / 3x the configured
  schedule; the best-val checkpoint and the final model tested -> ``OUT/schedule_length/``
  ``schedule_length.md`` and ``schedule_length.png`` (val mR@50 curves).
- ``kl-reduction`` (``make kl-reduction``): Align-Motifs with ALIGN.KL_REDUCTION batchmean vs mean
  in PredCls and SGCls, ALIGN.MASK element in PredCls, Motifs as the reference; the val rule of
  docs/results.md picks the defaults -> ``OUT/kl_reduction/kl_reduction.md``.

A scaled schedule multiplies SOLVER.MAX_ITER, SOLVER.SCHEDULE.UPDATE_PERIOD, SOLVER.VAL_PERIOD and
SOLVER.CHECKPOINT_PERIOD of the config (after the KEY VALUE overrides, so ``SOLVER.MAX_ITER 6000``
changes the base) by fraction x length, each rounded to the nearest integer (halves up), at least
1; SOLVER.WARMUP_ITERS stays. Every run validates (best val mR@50 kept and tested: the paper's rule).

Runs live in ``OUT/runs/<name>``, the name spelling out what defines the run (model, protocol,
fraction, iterations, KL reduction and mask, a hash of the overrides and of a non-default data
folder or detector, seed), so the studies share
runs with the same settings (1x = fraction 1.0 = the kl-reduction batchmean row while batchmean is
the default). A run holding its test results is reused; an unfinished one resumes from its last
checkpoint; nothing is deleted. All runs share one detector cache on disk (``--detector-cache``,
default ``OUT/detector_cache``: MODEL.DETECTOR_CACHE_DIR); reuse is exact, so the folder is not part
of the runs' names and may be another tool's (``curves_output/detector_cache``). The reports cover
every seed and setting (protocol, predictor, fraction, length) found under ``OUT/runs``, so a
study split by --seeds or --modes (``make sparsity STUDY_SEEDS=0``) reports all its pieces. Runs
with overrides (KEY VALUE, another detector or data folder) report into ``OUT/<study>/<tag>/``,
the tag of their names, and leave the study's own report alone.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import shlex
import sys
from typing import Dict, List, NamedTuple, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from demo import ABLATIONS, ALIGN_ON, MODE_NAMES, RELATION_CONFIG, TEST_SET, VARIANTS, mode_switches, run_pool  # noqa: E402

from maskrcnn_benchmark.config import ConfigError, load_config  # noqa: E402
from maskrcnn_benchmark.engine.report import MODES, load_results  # noqa: E402
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import KL_REDUCTIONS  # noqa: E402

STUDIES = ("tables", "predictors", "sparsity", "schedule-length", "kl-reduction")
PREDICTORS = {"motifs": "Motifs", "transformer": "Transformer", "vctree": "VCTree", "imp": "IMP"}
PREDICTOR_CONFIG = "configs/synthvg/{predictor}{align}_{mode}.yaml"  # all but Motifs (RELATION_CONFIG)
ALL_VARIANTS = {**VARIANTS, **ABLATIONS}  # every variant but Motifs trains with the alignment
SCHEDULE_KEYS = ("SOLVER.MAX_ITER", "SOLVER.SCHEDULE.UPDATE_PERIOD", "SOLVER.VAL_PERIOD", "SOLVER.CHECKPOINT_PERIOD")
ALIGN_KEY = "MODEL.ROI_RELATION_HEAD.ALIGN."
FINAL_DIR = "final_model"  # run_dir/final_model: the test of model_final.pth (schedule-length)
SEARCH_SEEDS = range(10)  # seeds the reports look for under OUT/runs
DEFAULT_DATA_DIR = "datasets"  # relative to ROOT
# the shipped SynthVG detector (checkpoints/README.md): every session's runs share it, whichever machine
DEFAULT_DETECTOR = "checkpoints/synthvg_detector_VGG16.pth"


class Job(NamedTuple):
    """One training run; ``reduction`` / ``mask`` "" = the config's (aligned variants only)."""
    variant: str
    mode: str
    seed: int
    fraction: float = 1.0
    length: int = 1
    reduction: str = ""
    mask: str = ""
    predictor: str = "motifs"


def scale(value: int, factor: float) -> int:
    """``value * factor`` rounded to the nearest integer, halves up, at least 1."""
    return max(1, int(math.floor(value * factor + 0.5)))


def study_variants(study: str) -> List[str]:
    """The variants a study runs by default (and may run): the ablation only in ``tables``."""
    return list(ALL_VARIANTS if study == "tables" else VARIANTS)


def aligned_first(variants: Sequence[str]) -> List[str]:
    """Aligned variants before Motifs: their steps cost ~1.2x, so the pool's slots end together."""
    return sorted(variants, key=lambda v: v == "motifs")


def study_jobs(study: str, seeds: Sequence[int], variants: Sequence[str], fractions: Sequence[float] = (),
               lengths: Sequence[int] = (), modes: Sequence[str] = (), mask_reduction: str = "batchmean",
               predictors: Sequence[str] = (), reductions: Sequence[str] = ("",)) -> List[Job]:
    """The runs of one study, longest first (the pool's slots then end together)."""
    jobs: List[Job] = []
    if study == "tables":
        for mode in sorted(modes, key=lambda m: -MODES.index(m)):  # SGDet, SGCls, PredCls: longest first
            for s in seeds:
                rows = [Job("motifs", mode, s), Job("align", mode, s)]
                rows += [Job(v, mode, s) for v in ABLATIONS] if mode == "predcls" else []
                jobs += [j for j in rows if j.variant in variants]
    elif study == "predictors":  # reductions: ALIGN.KL_REDUCTION of the aligned rows ("" = the config's)
        jobs = [Job(v, mode, s, predictor=p, reduction="" if v == "motifs" else r)
                for mode in sorted(modes, key=lambda m: -MODES.index(m)) for s in seeds for p in predictors
                for v in variants for r in ([""] if v == "motifs" else reductions)]
    elif study == "sparsity":
        jobs = [Job(v, "predcls", s, fraction=f) for f in sorted(fractions, reverse=True)
                for v in aligned_first(variants) for s in seeds]
    elif study == "schedule-length":
        jobs = [Job(v, "predcls", s, length=k) for k in sorted(lengths, reverse=True)
                for v in aligned_first(variants) for s in seeds]
    elif study == "kl-reduction":
        for mode in sorted(modes, key=lambda m: m != "sgcls"):  # SGCls runs are the longer ones
            for s in seeds:
                rows = [Job("motifs", mode, s), Job("align", mode, s, reduction="batchmean", mask="row"),
                        Job("align", mode, s, reduction="mean", mask="row")]
                if mode == "predcls":
                    rows.append(Job("align", mode, s, reduction=mask_reduction, mask="element"))
                jobs += [j for j in rows if j.variant in variants]
    else:
        raise ValueError(f"study must be one of {STUDIES}, got {study!r}")
    return jobs


class Runs:
    """Names, folders and commands of the runs under ``out/runs``, for one detector, data folder
    and set of overrides."""

    def __init__(self, out: str, detector: str, data_dir: str, opts: Sequence[str] = (), detector_cache: str = ""):
        self.out, self.detector, self.data_dir, self.opts = out, detector, data_dir, list(opts)
        self.detector_cache = detector_cache  # MODEL.DETECTOR_CACHE_DIR of every run ("": the config's)
        self._configs: Dict[str, object] = {}

    def config(self, mode: str):
        """The protocol's config with the overrides: the base schedule and the ALIGN defaults."""
        if mode not in self._configs:
            self._configs[mode] = load_config(os.path.join(ROOT, RELATION_CONFIG.format(mode=mode)),
                                              self.opts + mode_switches(mode))
        return self._configs[mode]

    def identity(self) -> List[str]:
        """What else defines every run: the overrides, and the data folder and detector where they
        are not the defaults (another data set or detector never reuses these runs)."""
        extra = []
        if self.data_dir != os.path.join(ROOT, DEFAULT_DATA_DIR):
            extra += ["--data-dir", self.data_dir]
        if self.detector != os.path.join(ROOT, DEFAULT_DETECTOR):
            extra += ["--detector", self.detector]
        return self.opts + extra

    def resolve(self, job: Job) -> Job:
        """``job`` with the config's ALIGN.KL_REDUCTION / MASK filled in (Align-Motifs)."""
        if job.variant == "motifs":
            return job._replace(reduction="", mask="")
        align = self.config(job.mode).MODEL.ROI_RELATION_HEAD.ALIGN
        return job._replace(reduction=job.reduction or align.KL_REDUCTION, mask=job.mask or align.MASK)

    def schedule(self, job: Job) -> Dict[str, int]:
        solver = self.config(job.mode).SOLVER
        base = (solver.MAX_ITER, solver.SCHEDULE.UPDATE_PERIOD, solver.VAL_PERIOD, solver.CHECKPOINT_PERIOD)
        return {k: scale(v, job.fraction * job.length) for k, v in zip(SCHEDULE_KEYS, base)}

    def name(self, job: Job) -> str:
        job = self.resolve(job)
        parts = ([] if job.predictor == "motifs" else [job.predictor]) + [job.variant, job.mode]
        if job.fraction != 1.0:
            parts.append(f"frac{job.fraction:g}")
        parts.append(f"it{self.schedule(job)['SOLVER.MAX_ITER']}")
        if job.variant != "motifs":
            parts += [job.reduction, job.mask]
        return "_".join(parts + self.tag() + [f"seed{job.seed}"])

    def tag(self) -> List[str]:
        """[] with the defaults, else ["o<hash of identity()>"]: part of every run's name."""
        ident = self.identity()
        return ["o" + hashlib.sha1(shlex.join(ident).encode()).hexdigest()[:8]] if ident else []

    def cache_opts(self) -> List[str]:
        return ["MODEL.DETECTOR_CACHE_DIR", self.detector_cache] if self.detector_cache else []

    def run_dir(self, job: Job) -> str:
        return os.path.join(self.out, "runs", self.name(job))

    def overrides(self, job: Job, output_dir: str) -> List[str]:
        job = self.resolve(job)
        extra = list(ALL_VARIANTS[job.variant][1])
        if job.variant != "motifs":
            extra += [ALIGN_KEY + "KL_REDUCTION", job.reduction, ALIGN_KEY + "MASK", job.mask]
        sched = [x for k, v in self.schedule(job).items() for x in (k, str(v))]
        return ["DATASETS.DATA_DIR", self.data_dir, *self.cache_opts(), *mode_switches(job.mode), *self.opts, *extra, *sched,
                "DATASETS.TRAIN_FRACTION", str(job.fraction), "SOLVER.TO_VAL", "True", "SOLVER.SELECT_BEST_VAL",
                "True", "MODEL.PRETRAINED_DETECTOR_CKPT", self.detector, "OUTPUT_DIR", output_dir, "SEED", str(job.seed)]

    @staticmethod
    def config_file(job: Job) -> str:
        """Motifs: the relation config (the variant's overrides add the alignment); another
        predictor: its SynthVG config, which is the Motifs one with the predictor swapped."""
        if job.predictor == "motifs":
            return RELATION_CONFIG.format(mode=job.mode)
        return PREDICTOR_CONFIG.format(predictor=job.predictor, align="" if job.variant == "motifs" else "_align",
                                       mode=job.mode)

    def train_cmd(self, job: Job) -> List[str]:
        return [sys.executable, "tools/relation_train_net.py", "--config-file", self.config_file(job),
                *self.overrides(job, self.run_dir(job))]

    def final_test_cmd(self, job: Job) -> List[str]:
        d = self.run_dir(job)
        return [sys.executable, "tools/relation_test_net.py", "--config-file", self.config_file(job),
                "--weight", os.path.join(d, "model_final.pth"), "--splits", "test",
                *self.overrides(job, os.path.join(d, FINAL_DIR))]

    def prior_dir(self, mode: str) -> str:
        """The frequency prior's test (no training: it depends on the data, detector and overrides)."""
        return os.path.join(self.out, "runs", "_".join(["prior", mode, *self.tag()]))

    def prior_cmd(self, mode: str) -> List[str]:
        return [sys.executable, "tools/demo.py", "--frequency-baseline", mode, self.prior_dir(mode), self.detector,
                self.data_dir, *self.cache_opts(), *self.opts]

    def finished(self, job: Job) -> bool:
        return load_results(self.run_dir(job), TEST_SET) is not None

    def final_tested(self, job: Job) -> bool:
        return load_results(os.path.join(self.run_dir(job), FINAL_DIR), TEST_SET) is not None

    def describe(self, job: Job) -> str:
        job = self.resolve(job)
        what = [ALL_VARIANTS[job.variant][0] if job.predictor == "motifs" else
                PREDICTORS[job.predictor] + (" + alignment" if job.variant != "motifs" else ""), MODE_NAMES[job.mode]]
        if job.fraction != 1.0:
            what.append(f"{job.fraction:g} of train")
        if job.length != 1:
            what.append(f"{job.length}x")
        if job.variant != "motifs":
            what.append(f"{job.reduction}/{job.mask}")
        return " ".join(what + [f"seed {job.seed}"])


def pending_training(runs: Runs, jobs: Sequence[Job]) -> List[Tuple[List[str], str, str]]:
    """``run_pool`` jobs of the runs without test results (each distinct run once)."""
    todo, seen = [], set()
    for job in jobs:
        d = runs.run_dir(job)
        if d in seen or runs.finished(job):
            continue
        seen.add(d)
        todo.append((runs.train_cmd(job), runs.describe(job), d))
    return todo


def pending_priors(runs: Runs, jobs: Sequence[Job]) -> List[Tuple[List[str], str, str]]:
    """The frequency-prior tests still to do, one per protocol of ``jobs`` (after the runs, whose
    test images are in the detector cache by then)."""
    modes = sorted({j.mode for j in jobs}, key=lambda m: -MODES.index(m))
    return [(runs.prior_cmd(m), f"frequency prior {MODE_NAMES[m]}", runs.prior_dir(m)) for m in modes
            if load_results(runs.prior_dir(m), TEST_SET) is None]


def pending_final_tests(runs: Runs, jobs: Sequence[Job]) -> List[Tuple[List[str], str, str]]:
    """The final-model tests still to do, of the runs that finished training."""
    return [(runs.final_test_cmd(j), f"final model of {runs.describe(j)}", os.path.join(runs.run_dir(j), FINAL_DIR))
            for j in jobs if os.path.isfile(os.path.join(runs.run_dir(j), "model_final.pth"))
            and not runs.final_tested(j)]


def report_seeds(runs: Runs, study: str, asked: Sequence[int], **lists) -> List[int]:
    """The seeds asked for and every other seed with a run folder of this study under OUT/runs."""
    found = {s for s in SEARCH_SEEDS
             if any(os.path.isdir(runs.run_dir(j)) for j in study_jobs(study, [s], study_variants(study), **lists))}
    return sorted(found | set(asked))


def report_lists(runs: Runs, study: str, asked: Dict[str, list]) -> Dict[str, list]:
    """The settings a report covers: those asked for and every other one the study can run that
    has a run folder under OUT/runs, so that a partial invocation (``--modes sgcls``) does not
    shrink the study's report to its own runs."""
    defaults = vars(parse_args([study]))
    choices = {"modes": list(MODES) if study in ("tables", "predictors") else defaults["modes"],
               "predictors": list(PREDICTORS) if study == "predictors" else defaults["predictors"],
               "fractions": defaults["fractions"], "lengths": defaults["lengths"]}
    lists = dict(asked, reductions=list(KL_REDUCTIONS))  # "" would read the configured reduction twice
    for key, values in choices.items():
        for value in [v for v in values if v not in asked[key]]:
            probe = study_jobs(study, list(SEARCH_SEEDS), study_variants(study), **dict(lists, **{key: [value]}))
            # Motifs's runs are Table 2's: they do not make a protocol part of the predictors study
            if any(os.path.isdir(runs.run_dir(j)) for j in probe if study != "predictors" or j.predictor != "motifs"):
                lists[key] = lists[key] + [value]
    return lists


def report_dir(out: str, study: str, runs: Runs) -> str:
    """OUT/<study>, or OUT/<study>/<tag> for runs with overrides (another detector, data folder or
    KEY VALUE list): a side experiment never overwrites the study's main report."""
    return os.path.join(out, study.replace("-", "_"), *runs.tag())


def parse_args(argv=None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default="alignment_output", help="runs in OUT/runs, reports in OUT/<study> (OUT/<study>/<tag> with overrides)")
    common.add_argument("--detector", default=DEFAULT_DETECTOR, help="the stage-1 checkpoint")
    common.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="DATASETS.DATA_DIR (SynthVG in DATA_DIR/synthvg)")
    common.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    common.add_argument("--variants", nargs="+", choices=list(ALL_VARIANTS), default=None,
                        help="default: motifs align (tables: and the Table 3 ablation's)")
    common.add_argument("--detector-cache", default="", metavar="DIR",
                        help="MODEL.DETECTOR_CACHE_DIR of every run (default OUT/detector_cache)")
    common.add_argument("--jobs", type=int, default=2, help="runs at once (one core each)")
    common.add_argument("--report-only", action="store_true", help="only rewrite the report from the finished runs")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="study", required=True, metavar="{" + ",".join(STUDIES) + "}")
    parsers = {name: sub.add_parser(name, parents=[common], help=f"make {name}") for name in STUDIES}
    parsers["tables"].add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parsers["predictors"].add_argument("--modes", nargs="+", choices=list(MODES), default=["predcls"])
    parsers["predictors"].add_argument("--predictors", nargs="+", choices=list(PREDICTORS), default=list(PREDICTORS))
    parsers["predictors"].add_argument("--reductions", nargs="+", choices=list(KL_REDUCTIONS), default=[""],
                                       help="ALIGN.KL_REDUCTION rows of the aligned runs (default: the config's)")
    parsers["sparsity"].add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0],
                                     help="DATASETS.TRAIN_FRACTION values")
    parsers["schedule-length"].add_argument("--lengths", nargs="+", type=int, default=[1, 2, 3],
                                            help="multiples of the configured schedule")
    parsers["kl-reduction"].add_argument("--modes", nargs="+", choices=["predcls", "sgcls"],
                                         default=["predcls", "sgcls"])
    parsers["kl-reduction"].add_argument("--mask-reduction", choices=list(KL_REDUCTIONS), default="batchmean",
                                         help="KL_REDUCTION of the MASK element row (docs/results.md)")
    for sp in parsers.values():
        sp.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    a = p.parse_args(argv)
    a.fractions = getattr(a, "fractions", [1.0])
    a.lengths = getattr(a, "lengths", [1])
    a.modes = getattr(a, "modes", ["predcls"])
    a.mask_reduction = getattr(a, "mask_reduction", "batchmean")
    a.predictors = getattr(a, "predictors", ["motifs"])
    a.reductions = getattr(a, "reductions", [""])
    bad = [f for f in a.fractions if not 0.0 < f <= 1.0] + [k for k in a.lengths if k < 1]
    if bad:
        parsers[a.study].error(f"--fractions must be in (0, 1] and --lengths at least 1, got {bad}")
    a.variants = a.variants or study_variants(a.study)
    if set(a.variants) - set(study_variants(a.study)):
        parsers[a.study].error(f"--variants: the Table 3 ablation runs in `tables` only, got {a.variants}")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    from alignment_report import REPORTS  # tools/

    out = os.path.abspath(a.out)
    runs = Runs(out, os.path.abspath(a.detector), os.path.abspath(a.data_dir), a.opts,
                os.path.abspath(a.detector_cache or os.path.join(out, "detector_cache")))
    lists = {"fractions": a.fractions, "lengths": a.lengths, "modes": a.modes, "mask_reduction": a.mask_reduction,
             "predictors": a.predictors, "reductions": a.reductions}
    jobs = study_jobs(a.study, a.seeds, a.variants, **lists)
    try:  # the overrides, checked once: a bad key is one line, not a failed run per job
        for mode in sorted({j.mode for j in jobs}):
            runs.config(mode)
    except ConfigError as e:
        print(f"alignment_study: {e}", file=sys.stderr)
        return 2
    failed = ""
    if not a.report_only:
        if not os.path.isfile(runs.detector):
            print(f"alignment_study: detector {a.detector} not found: run `make demo` (or `make detector "
                  "CONFIG=configs/synthvg/detector_VGG16.yaml`) first, or pass --detector FILE", file=sys.stderr)
            return 2
        for job in jobs:
            if runs.finished(job):
                print(f"==> {runs.describe(job)}: reusing {os.path.relpath(runs.run_dir(job))}")
        phases = [pending_training] + ([pending_final_tests] if a.study == "schedule-length" else []) + \
            ([pending_priors] if a.study in ("tables", "predictors") else [])
        for phase in phases:  # the final-model tests of the runs that did finish, even if others failed
            try:
                todo = phase(runs, jobs)
                if todo:
                    run_pool(todo, a.jobs, {})
            except SystemExit as e:  # run_pool: some runs failed; the finished ones are still reported
                failed += str(e).replace("demo: ", "").replace("`make demo`", "the same command") + " "
    lists = report_lists(runs, a.study, lists)
    seeds = report_seeds(runs, a.study, a.seeds, **lists)
    folder = report_dir(out, a.study, runs)
    os.makedirs(folder, exist_ok=True)
    command = shlex.join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT), *sys.argv[1:]]) \
        if argv is None else shlex.join(["python", "tools/alignment_study.py", *argv])
    text = REPORTS[a.study](runs, study_jobs(a.study, seeds, study_variants(a.study), **lists), folder, command)
    print(text)
    print(f"==> report: {os.path.relpath(folder)}")
    if failed:
        print(f"alignment_study: {failed.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
