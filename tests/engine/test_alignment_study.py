"""tools/alignment_study.py: arguments, job lists and scaled schedules, reuse of finished runs, and
the three reports on run folders written here (results.json, TensorBoard val points, log.txt)."""
import hashlib
import json
import os
import shlex

import pytest

# A pinned base schedule, so that the expected names do not follow the shipped configs
BASE = ["SOLVER.MAX_ITER", "3000", "SOLVER.SCHEDULE.UPDATE_PERIOD", "30", "SOLVER.VAL_PERIOD", "300",
        "SOLVER.CHECKPOINT_PERIOD", "300"]
TAG = "o" + hashlib.sha1(shlex.join(BASE).encode()).hexdigest()[:8]


@pytest.fixture(scope="module")
def study(load_tool):
    return load_tool("alignment_study")


def default_runs(study, out, opts=BASE, root=None):
    """Runs with the default detector and data folder, resolved as main resolves them (from the
    current directory), or under ``root``: then only ``opts`` enter the names' hash."""
    where = (lambda p: os.path.join(root, p)) if root else os.path.abspath
    return study.Runs(str(out), where(study.DEFAULT_DETECTOR), where(study.DEFAULT_DATA_DIR), opts)


def fake_run(folder, mr50, r50=0.6, val=(), images=None, final=None, grad_norms=()):
    """A finished run: test results, val mR@50 points (step, fraction), logged gradient norms
    (step, norm) and the log's statistics line."""
    test = {"mR@20": mr50 - 0.05, "mR@50": mr50, "mR@100": mr50 + 0.05, "R@20": r50 - 0.1, "R@50": r50,
            "R@100": r50 + 0.1}
    for sub, metrics in (("", test),
                         ("final_model", final)):
        if metrics is None:
            continue
        path = os.path.join(folder, sub, "inference", "synthvg_test")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "results.json"), "w") as f:
            json.dump({"metrics": metrics}, f)
    if val or grad_norms:
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter(os.path.join(folder, "tensorboard"))
        for step, v in val:
            w.add_scalar("val/mR@50", v, step)
        for step, v in grad_norms:
            w.add_scalar("grad_norm", v, step)
        w.close()
    if images is not None:
        with open(os.path.join(folder, "log.txt"), "w") as f:
            f.write(f"INFO computing frequency statistics of {images} training images of synthvg_train\n")


def test_arguments(study):
    a = study.parse_args(["sparsity", "--seeds", "0", "1", "--fractions", "0.5", "--jobs", "2", "SOLVER.BASE_LR", "0.02"])
    assert (a.study, a.seeds, a.fractions, a.jobs, a.opts) == ("sparsity", [0, 1], [0.5], 2, ["SOLVER.BASE_LR", "0.02"])
    a = study.parse_args(["kl-reduction"])
    assert a.seeds == [0, 1, 2] and a.modes == ["predcls", "sgcls"] and a.mask_reduction == "batchmean"
    assert a.detector == "checkpoints/synthvg_detector_VGG16.pth" and a.opts == []
    assert study.parse_args(["schedule-length", "--lengths", "1", "3"]).lengths == [1, 3]
    for bad in (["sparsity", "--fractions", "1.5"], ["schedule-length", "--lengths", "0"],
                ["sparsity", "--lengths", "2"], ["nonsense"]):
        with pytest.raises(SystemExit) as e:
            study.parse_args(bad)
        assert e.value.code == 2


def test_tables_arguments_jobs_and_priors(study, tmp_path):
    a = study.parse_args(["tables"])
    assert a.modes == ["predcls", "sgcls", "sgdet"] and a.variants == ["motifs", "align", "align_sa_uph", "align_ssa_ph"]
    assert study.parse_args(["sparsity"]).variants == ["motifs", "align"]
    with pytest.raises(SystemExit) as e:  # the ablation belongs to the tables only
        study.parse_args(["sparsity", "--variants", "align_sa_uph", "--jobs", "1"])
    assert e.value.code == 2
    runs = default_runs(study, tmp_path, root=study.ROOT)
    jobs = study.study_jobs("tables", [0, 1], a.variants, modes=a.modes)
    assert [runs.name(j).replace(f"_{TAG}", "") for j in jobs if j.seed == 0] == [
        "motifs_sgdet_it3000_seed0", "align_sgdet_it3000_batchmean_row_seed0",
        "motifs_sgcls_it3000_seed0", "align_sgcls_it3000_batchmean_row_seed0",
        "motifs_predcls_it3000_seed0", "align_predcls_it3000_batchmean_row_seed0",
        "align_sa_uph_predcls_it3000_batchmean_row_seed0", "align_ssa_ph_predcls_it3000_batchmean_row_seed0"]
    assert len(jobs) == 16
    # Table 2's PredCls runs are the sparsity study's 1.0 runs (shared, not trained twice)
    sparsity = study.study_jobs("sparsity", [0, 1], ["motifs", "align"], fractions=[1.0])
    assert {runs.name(j) for j in sparsity} <= {runs.name(j) for j in jobs}
    pairs = lambda cmd: dict(zip(cmd[4::2], cmd[5::2]))  # noqa: E731
    sa = pairs(runs.train_cmd(study.Job("align_sa_uph", "predcls", 0)))
    assert sa["MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED"] == "True" and sa["MODEL.ROI_RELATION_HEAD.ALIGN.LOSS"] == "ce"
    assert pairs(runs.train_cmd(study.Job("align_ssa_ph", "predcls", 0)))["MODEL.ROI_RELATION_HEAD.ALIGN.HEAD"] == "tied"
    # one frequency prior per protocol, after the runs, none once tested
    assert [d for _, _, d in study.pending_priors(runs, jobs)] == [
        os.path.join(str(tmp_path), "runs", f"prior_{m}_{TAG}") for m in ("sgdet", "sgcls", "predcls")]
    cmd = runs.prior_cmd("sgcls")
    assert cmd[1:5] == ["tools/demo.py", "--frequency-baseline", "sgcls", runs.prior_dir("sgcls")] and cmd[-len(BASE):] == BASE
    fake_run(runs.prior_dir("sgcls"), 0.3)
    assert [d for _, _, d in study.pending_priors(runs, jobs)] == [runs.prior_dir("sgdet"), runs.prior_dir("predcls")]


def test_tables_report(study, tmp_path):
    runs = default_runs(study, tmp_path)
    for seed in (0, 1, 2):
        fake_run(runs.run_dir(study.Job("motifs", "predcls", seed)), 0.60 + 0.02 * seed, val=[(300, 0.6)])
        fake_run(runs.run_dir(study.Job("align", "predcls", seed)), 0.63 + 0.02 * seed, r50=0.6 + 0.01 * seed)
        fake_run(runs.run_dir(study.Job("align_sa_uph", "predcls", seed)), 0.60 + 0.01 * seed)
    fake_run(runs.run_dir(study.Job("motifs", "sgcls", 0)), 0.40)
    fake_run(runs.run_dir(study.Job("align", "sgcls", 0)), 0.45)
    fake_run(runs.prior_dir("predcls"), 0.50)
    assert study.main(["tables", "--out", str(tmp_path), "--report-only", "--seeds", "0", "--modes", "predcls",
                       "sgcls", "--jobs", "1", *BASE]) == 0
    text = (tmp_path / "tables" / TAG / "tables.md").read_text()
    assert "| Motifs | 3 | 60.0 ± 0.0 | 57.0 ± 2.0 | 62.0 ± 2.0 | 67.0 ± 2.0 | 50.0 ± 0.0 | 60.0 ± 0.0 | 70.0 ± 0.0 |" in text
    assert "| Motifs + SSA + PH | 0 | - |" in text  # not run yet
    assert "| Frequency prior | - | - | 45.0 | 50.0 | 55.0 | 50.0 | 60.0 | 70.0 |" in text
    # +3 on every seed: a gain (sd 0); R@50 +0, +1, +2: mean 1.0 = one sd, not larger: no
    assert ("| Align-Motifs (SSA + UPH) | +3.0 (s0), +3.0 (s1), +3.0 (s2) | 3.0 ± 0.0 | gain | "
            "+0.0 (s0), +1.0 (s1), +2.0 (s2) | 1.0 ± 1.0 | no |") in text
    assert "| Motifs + SA + UPH | +0.0 (s0), -1.0 (s1), -2.0 (s2) | -1.0 ± 1.0 | no |" in text
    assert ("Seeds: Motifs's test mR@50 seed sd 2.0 against half the Align-Motifs difference 1.5: more seeds needed "
            "(the issue's rule); the mean Δ +3.0 has a standard error of 0.0 (3 seeds).") in text
    sgcls = text[text.index("## SGCls"):]
    assert "| Align-Motifs (SSA + UPH) | +5.0 (s0) | 5.0 | - (one seed) |" in sgcls and "SSA + PH" not in sgcls


def test_predictors_jobs_configs_and_report(study, tmp_path):
    a = study.parse_args(["predictors"])
    assert a.modes == ["predcls"] and a.predictors == ["motifs", "transformer", "vctree", "imp"]
    assert a.variants == ["motifs", "align"]
    runs = default_runs(study, tmp_path, root=study.ROOT)
    jobs = study.study_jobs("predictors", [0], a.variants, modes=["predcls"], predictors=a.predictors)
    assert [runs.name(j).replace(f"_{TAG}", "") for j in jobs] == [
        "motifs_predcls_it3000_seed0", "align_predcls_it3000_batchmean_row_seed0",
        "transformer_motifs_predcls_it3000_seed0", "transformer_align_predcls_it3000_batchmean_row_seed0",
        "vctree_motifs_predcls_it3000_seed0", "vctree_align_predcls_it3000_batchmean_row_seed0",
        "imp_motifs_predcls_it3000_seed0", "imp_align_predcls_it3000_batchmean_row_seed0"]
    # Motifs's runs are Table 2's (shared); the others train from their own configs
    tables = study.study_jobs("tables", [0], ["motifs", "align"], modes=["predcls"])
    assert {runs.name(j) for j in tables} <= {runs.name(j) for j in jobs}
    configs = [runs.train_cmd(j)[3] for j in jobs]
    assert configs[:2] == ["configs/synthvg/motifs_predcls.yaml"] * 2
    assert configs[2:4] == ["configs/synthvg/transformer_predcls.yaml", "configs/synthvg/transformer_align_predcls.yaml"]
    assert all(os.path.isfile(os.path.join(study.ROOT, c)) for c in configs)
    assert runs.final_test_cmd(jobs[7])[3] == "configs/synthvg/imp_align_predcls.yaml"

    for seed, (plain, aligned) in enumerate([(0.40, 0.45), (0.50, 0.53)]):
        fake_run(runs.run_dir(study.Job("motifs", "predcls", seed, predictor="vctree")), plain, r50=0.5)
        fake_run(runs.run_dir(study.Job("align", "predcls", seed, predictor="vctree")), aligned - 0.01, r50=0.5)
    fake_run(runs.run_dir(study.Job("motifs", "predcls", 0, predictor="imp")), 0.30)  # no aligned run yet
    fake_run(runs.prior_dir("predcls"), 0.20, r50=0.3)
    assert study.main(["predictors", "--out", str(tmp_path), "--report-only", "--seeds", "0", "1", "--jobs", "1",
                       *BASE]) == 0
    main_table = (tmp_path / "predictors" / TAG / "predictors.md").read_text().split("Every setting run")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in main_table.splitlines() if line.startswith("| ")}
    assert rows["VCTree"] == ("| VCTree | 2 | 40.0 ± 7.1 | 45.0 ± 7.1 | 50.0 ± 7.1 | 50.0 ± 0.0 | 2 | 48.0 ± 5.7 | "
                              "50.0 ± 0.0 | +4.0 (s0), +2.0 (s1) | 3.0 ± 1.4 | gain |")
    assert rows["IMP"].startswith("| IMP | 1 | 25.0 | 30.0 |") and rows["IMP"].endswith("| 0 | - | - | - | - | - |")
    assert rows["Motifs"].startswith("| Motifs | 0 | - |")
    assert rows["Frequency prior"].startswith("| Frequency prior | - | 15.0 | 20.0 | 25.0 | 30.0 |")


def test_partial_invocation_keeps_the_report_whole_and_overrides_write_their_own(study, tmp_path):
    """--modes sgcls still reports the PredCls runs on disk; a side experiment with overrides
    reports into <study>/<tag>/, never over the study's report."""
    runs = default_runs(study, tmp_path, opts=[], root=study.ROOT)
    fake_run(runs.run_dir(study.Job("motifs", "predcls", 0, predictor="imp")), 0.40)
    fake_run(runs.run_dir(study.Job("motifs", "sgcls", 0, predictor="imp")), 0.30)
    fake_run(runs.run_dir(study.Job("motifs", "sgdet", 0)), 0.20)  # Motifs's (Table 2's): not a predictors protocol
    args = ["--out", str(tmp_path), "--report-only", "--seeds", "0", "--jobs", "1"]
    asked = {"fractions": [1.0], "lengths": [1], "modes": ["sgcls"], "mask_reduction": "batchmean",
             "predictors": ["imp"], "reductions": [""]}
    lists = study.report_lists(runs, "predictors", asked)
    assert lists["modes"] == ["sgcls", "predcls"] and lists["predictors"] == ["imp"]
    assert lists["reductions"] == list(study.KL_REDUCTIONS)
    old = os.getcwd()
    os.chdir(study.ROOT)  # the default detector and data folder resolve as in the repository
    try:
        assert study.main(["predictors", "--predictors", "imp", "--modes", "sgcls", *args]) == 0
        report = tmp_path / "predictors" / "predictors.md"
        text = report.read_text()
        assert "## PredCls" in text and "## SGCls" in text and "## SGDet" not in text
        assert study.main(["predictors", "--predictors", "imp", *args, "SOLVER.BASE_LR", "0.004"]) == 0
    finally:
        os.chdir(old)
    assert report.read_text() == text  # untouched by the tagged invocation
    tag = default_runs(study, tmp_path, opts=["SOLVER.BASE_LR", "0.004"], root=study.ROOT).tag()[0]
    assert "SOLVER.BASE_LR 0.004" in (tmp_path / "predictors" / tag / "predictors.md").read_text()


def test_predictors_other_reduction_rows_and_early_grad_norm(study, tmp_path):
    a = study.parse_args(["predictors", "--predictors", "imp", "--reductions", "mean", "--jobs", "1"])
    runs = default_runs(study, tmp_path, root=study.ROOT)
    jobs = study.study_jobs("predictors", [0], a.variants, modes=["predcls"], predictors=a.predictors,
                            reductions=a.reductions)
    assert [runs.name(j).replace(f"_{TAG}", "") for j in jobs] == [
        "imp_motifs_predcls_it3000_seed0", "imp_align_predcls_it3000_mean_row_seed0"]
    assert "MODEL.ROI_RELATION_HEAD.ALIGN.KL_REDUCTION mean" in shlex.join(runs.train_cmd(jobs[1]))
    with pytest.raises(SystemExit):
        study.parse_args(["predictors", "--reductions", "sum"])

    # grad norms logged every 20 iterations of 3000: the first third is steps 0..980
    early = [(s, 8.0) for s in range(0, 1000, 20)] + [(s, 1.0) for s in range(1000, 3000, 20)]
    for seed, (plain, batchmean, mean) in enumerate([(0.48, 0.24, 0.47), (0.46, 0.22, 0.47)]):
        fake_run(runs.run_dir(study.Job("motifs", "predcls", seed, predictor="imp")), plain,
                 grad_norms=[(s, 0.5) for s in range(0, 3000, 20)])
        fake_run(runs.run_dir(study.Job("align", "predcls", seed, predictor="imp")), batchmean, grad_norms=early)
        fake_run(runs.run_dir(study.Job("align", "predcls", seed, predictor="imp", reduction="mean")), mean)
    assert study.main(["predictors", "--out", str(tmp_path), "--predictors", "imp", "--report-only", "--seeds", "0",
                       "--jobs", "1", *BASE]) == 0
    text = (tmp_path / "predictors" / TAG / "predictors.md").read_text()
    # the main table is the configured reduction (batchmean), found for both seeds
    assert "| IMP | 2 | 42.0 ± 1.4 | 47.0 ± 1.4 | 52.0 ± 1.4 | 60.0 ± 0.0 | 2 | 23.0 ± 1.4 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| IMP | ")][1:]
    assert rows == ["| IMP | off | 2 | 0.5 ± 0.0 | - | 47.0 ± 1.4 | 60.0 ± 0.0 | - | - | - |",
                    "| IMP | batchmean | 2 | 8.0 ± 0.0 | - | 23.0 ± 1.4 | 60.0 ± 0.0 | -24.0 (s0), -24.0 (s1) | "
                    "-24.0 ± 0.0 | loss |",
                    "| IMP | mean | 2 | - | - | 47.0 ± 0.0 | 60.0 ± 0.0 | -1.0 (s0), +1.0 (s1) | 0.0 ± 1.4 | no |"]
    assert "SOLVER.GRAD_NORM_CLIP 5" in text


def test_scale_rounds_half_up_and_keeps_one(study):
    assert [study.scale(30, f) for f in (0.25, 0.5, 1.0)] == [8, 15, 30]  # 7.5 -> 8
    assert study.scale(3000, 3) == 9000 and study.scale(3, 0.1) == 1 and study.scale(10, 0.25) == 3


def test_job_lists_names_and_scaled_schedules(study, tmp_path):
    runs = default_runs(study, tmp_path, root=study.ROOT)
    det = os.path.join(study.ROOT, study.DEFAULT_DETECTOR)
    sparsity = study.study_jobs("sparsity", [0, 1], ["motifs", "align"], fractions=[0.25, 0.5, 1.0])
    assert len(sparsity) == 12 and sparsity[0].fraction == 1.0 and sparsity[-1].fraction == 0.25  # longest first
    quarter = study.Job("align", "predcls", 1, fraction=0.25)
    assert runs.name(quarter) == f"align_predcls_frac0.25_it750_batchmean_row_{TAG}_seed1"
    assert runs.schedule(quarter) == {"SOLVER.MAX_ITER": 750, "SOLVER.SCHEDULE.UPDATE_PERIOD": 8,
                                      "SOLVER.VAL_PERIOD": 75, "SOLVER.CHECKPOINT_PERIOD": 75}
    cmd = runs.train_cmd(quarter)
    assert cmd[1:4] == ["tools/relation_train_net.py", "--config-file", "configs/synthvg/motifs_predcls.yaml"]
    pairs = dict(zip(cmd[4::2], cmd[5::2]))  # the last value of a key wins, as in load_config
    assert pairs["SOLVER.MAX_ITER"] == "750" and pairs["DATASETS.TRAIN_FRACTION"] == "0.25"
    assert pairs["MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED"] == "True" and pairs["SOLVER.SELECT_BEST_VAL"] == "True"
    assert pairs["MODEL.ROI_RELATION_HEAD.ALIGN.KL_REDUCTION"] == "batchmean" and pairs["SEED"] == "1"
    assert pairs["OUTPUT_DIR"] == runs.run_dir(quarter) and pairs["MODEL.PRETRAINED_DETECTOR_CKPT"] == det
    assert cmd.count("SOLVER.MAX_ITER") == 2  # the overrides' base, then the scaled value (the last one wins)

    lengths = study.study_jobs("schedule-length", [0], ["motifs", "align"], lengths=[1, 2, 3])
    assert [(j.variant, j.length) for j in lengths] == [("align", 3), ("motifs", 3), ("align", 2), ("motifs", 2),
                                                        ("align", 1), ("motifs", 1)]  # the costlier runs first
    two_seeds = study.study_jobs("schedule-length", [1, 2], ["motifs", "align"], lengths=[2, 3])
    assert [(j.variant, j.seed) for j in two_seeds[:4]] == [("align", 1), ("align", 2), ("motifs", 1), ("motifs", 2)]
    triple = study.Job("motifs", "predcls", 0, length=3)
    assert runs.name(triple) == f"motifs_predcls_it9000_{TAG}_seed0"
    assert runs.schedule(triple)["SOLVER.VAL_PERIOD"] == 900  # still every 10%
    final = runs.final_test_cmd(triple)
    assert final[1] == "tools/relation_test_net.py" and final[final.index("--weight") + 1] == \
        os.path.join(runs.run_dir(triple), "model_final.pth")
    assert final[final.index("OUTPUT_DIR") + 1] == os.path.join(runs.run_dir(triple), "final_model")

    kl = study.study_jobs("kl-reduction", [0], ["motifs", "align"], modes=["predcls", "sgcls"])
    assert [runs.name(j).replace(f"_{TAG}", "") for j in kl] == [
        "motifs_sgcls_it3000_seed0", "align_sgcls_it3000_batchmean_row_seed0", "align_sgcls_it3000_mean_row_seed0",
        "motifs_predcls_it3000_seed0", "align_predcls_it3000_batchmean_row_seed0",
        "align_predcls_it3000_mean_row_seed0", "align_predcls_it3000_batchmean_element_seed0"]
    # the studies share the runs with the same settings: 1x = fraction 1.0 = the batchmean row
    names = {s: {runs.name(j) for j in js} for s, js in (("sp", sparsity), ("len", lengths), ("kl", kl))}
    assert {f"align_predcls_it3000_batchmean_row_{TAG}_seed0", f"motifs_predcls_it3000_{TAG}_seed0"} <= \
        names["sp"] & names["len"] & names["kl"]
    # the shared detector cache goes to every run but is not part of the names (reuse is exact)
    cached = study.Runs(str(tmp_path), det, runs.data_dir, BASE, detector_cache="/shared/cache")
    assert cached.name(quarter) == runs.name(quarter) and "MODEL.DETECTOR_CACHE_DIR" not in cmd
    cached_cmd = cached.train_cmd(quarter)
    assert cached_cmd[cached_cmd.index("MODEL.DETECTOR_CACHE_DIR") + 1] == "/shared/cache"
    # other overrides, other runs
    other = default_runs(study, tmp_path, BASE + ["SOLVER.BASE_LR", "0.02"], root=study.ROOT)
    assert other.name(quarter) != runs.name(quarter)
    # another data folder or detector: other runs too
    assert study.Runs(str(tmp_path), det, "/elsewhere", BASE).name(quarter) != runs.name(quarter)
    assert study.Runs(str(tmp_path), "/other.pth", runs.data_dir, BASE).name(quarter) != runs.name(quarter)


def test_no_override_names_follow_the_config(study, tmp_path):
    from maskrcnn_benchmark.config import load_config
    base = load_config(os.path.join(study.ROOT, "configs/synthvg/motifs_predcls.yaml")).SOLVER.MAX_ITER
    runs = default_runs(study, tmp_path, opts=[], root=study.ROOT)
    assert runs.name(study.Job("motifs", "predcls", 2, length=2)) == f"motifs_predcls_it{2 * base}_seed2"


def test_finished_runs_are_reused(study, tmp_path, monkeypatch):
    out, detector = tmp_path / "out", tmp_path / "detector.pth"
    detector.write_bytes(b"weights")
    runs = study.Runs(str(out), str(detector), str(tmp_path), BASE)
    jobs = study.study_jobs("schedule-length", [0], ["motifs", "align"], lengths=[1, 2])
    done = jobs[0]  # align 2x: trained and tested, final model not tested yet
    fake_run(runs.run_dir(done), 0.5, val=[(600, 0.5)])
    open(os.path.join(runs.run_dir(done), "model_final.pth"), "w").close()
    os.makedirs(runs.run_dir(jobs[1]))  # motifs 2x: started, no results: resumes
    pending = study.pending_training(runs, jobs)
    assert [d for _, _, d in pending] == [runs.run_dir(j) for j in jobs[1:]]
    assert [d for _, _, d in study.pending_final_tests(runs, jobs)] == [os.path.join(runs.run_dir(done), "final_model")]

    calls = []
    monkeypatch.setattr(study, "run_pool", lambda todo, slots, timings: calls.append([d for _, _, d in todo]))
    argv = ["schedule-length", "--out", str(out), "--detector", str(detector), "--data-dir", str(tmp_path),
            "--lengths", "1", "2", "--seeds", "0", "--jobs", "2", *BASE]
    assert study.main(argv) == 0
    assert calls == [[runs.run_dir(j) for j in jobs[1:]], [os.path.join(runs.run_dir(done), "final_model")]]
    assert os.path.isfile(out / "schedule_length" / runs.tag()[0] / "schedule_length.md")

    calls.clear()
    for job in jobs:
        fake_run(runs.run_dir(job), 0.5, final={"mR@50": 0.4, "R@50": 0.5})
    assert study.main(argv) == 0 and calls == []  # everything finished: nothing runs


def test_user_errors_are_one_line_exit_2(study, tmp_path, capsys):
    assert study.main(["sparsity", "--out", str(tmp_path), "--detector", str(tmp_path / "none.pth")]) == 2
    assert "none.pth not found" in capsys.readouterr().err
    assert study.main(["kl-reduction", "--out", str(tmp_path), "--jobs", "2", "MODEL.NO_SUCH_KEY", "1"]) == 2
    assert capsys.readouterr().err.startswith("alignment_study: unknown config key MODEL.NO_SUCH_KEY")
    assert not os.path.exists(tmp_path / "runs")  # nothing started


def test_sparsity_report(study, tmp_path):
    runs = default_runs(study, tmp_path)
    for seed, (m, a) in enumerate([(0.40, 0.45), (0.50, 0.53)]):
        for frac, images in ((0.5, 1338), (1.0, 2675)):
            fake_run(runs.run_dir(study.Job("motifs", "predcls", seed, fraction=frac)), m * frac + 0.1, images=images)
            fake_run(runs.run_dir(study.Job("align", "predcls", seed, fraction=frac)), a * frac + 0.1, images=images)
    fake_run(runs.run_dir(study.Job("motifs", "predcls", 2)), 0.60, images=2675)  # a third seed, one model only
    assert study.main(["sparsity", "--out", str(tmp_path), "--report-only", "--seeds", "0", "--fractions", "0.5",
                       "1.0", "--jobs", "1", *BASE]) == 0
    text = (tmp_path / "sparsity" / TAG / "sparsity.md").read_text()
    assert "| 1 | 2675 | 3000 | Motifs | 3 | - | 56.7 ± 5.8 | 60.0 ± 0.0 |" in text  # seeds 1, 2 found on disk
    assert "| 0.5 | 1338 | 1500 | Align-Motifs | 2 | - | 34.5 ± 2.8 | 60.0 ± 0.0 |" in text
    assert "| 1 | +5.0 (s0), +3.0 (s1) | 4.0 ± 1.4 |" in text
    assert "| 0.5 | +2.5 (s0), +1.5 (s1) | 2.0 ± 0.7 |" in text
    assert "Helps more: no (difference of the mean Δ -2.0, larger sd 1.4)." in text  # 2.0 at 0.5 vs 4.0 at 1
    assert "--report-only" in text.splitlines()[2]  # the exact command
    assert "whichever invocation ran it): 0, 1, 2." in text  # --seeds 0 ran; 1 and 2 are found
    assert (tmp_path / "sparsity" / TAG / "sparsity.png").stat().st_size > 1000


def test_schedule_length_report(study, tmp_path):
    runs = default_runs(study, tmp_path)
    for seed in (0, 1):
        for k in (1, 2):
            n = 3000 * k
            fake_run(runs.run_dir(study.Job("motifs", "predcls", seed, length=k)), 0.50 + 0.01 * seed,
                     val=[(n // 2, 0.62), (n, 0.55 + 0.01 * seed)], final={"mR@50": 0.45, "R@50": 0.60})
            fake_run(runs.run_dir(study.Job("align", "predcls", seed, length=k)), 0.52 + 0.01 * seed,
                     val=[(n // 2, 0.60), (n, 0.60)], final={"mR@50": 0.50 - 0.02 * seed, "R@50": 0.61})
    assert study.main(["schedule-length", "--out", str(tmp_path), "--report-only", "--lengths", "1", "2",
                       "--seeds", "0", "1", "--jobs", "1", *BASE]) == 0
    text = (tmp_path / "schedule_length" / TAG / "schedule_length.md").read_text()
    assert "| 2x | 6000 | Motifs | 2 | 62.0 ± 0.0 | 50.5 ± 0.7 | 60.0 ± 0.0 | 45.0 ± 0.0 | 60.0 ± 0.0 |" in text
    assert "| 1x | 3000 | Align-Motifs | 2 | 60.0 ± 0.0 | 52.5 ± 0.7 | 60.0 ± 0.0 | 49.0 ± 1.4 | 61.0 ± 0.0 |" in text
    assert ("| 2x | +2.0 (s0), +2.0 (s1) | 2.0 ± 0.0 | +0.0 (s0), +0.0 (s1) | 0.0 ± 0.0 | +5.0 (s0), +3.0 (s1) | "
            "4.0 ± 1.4 | +1.0 (s0), +1.0 (s1) | 1.0 ± 0.0 |") in text
    assert "- test mR@50, best val: changes: no (difference of the mean Δ +0.0, larger sd 0.0)." in text
    assert "- test mR@50, final model: changes: no (difference of the mean Δ +0.0, larger sd 1.4)." in text
    assert (tmp_path / "schedule_length" / TAG / "schedule_length.png").stat().st_size > 1000


def test_paper_bar_compares_the_mean_with_one_sd_as_printed(study, load_tool):
    report = load_tool("alignment_report")
    assert report.paper_bar([1.0, 2.0, 3.0]) == "gain"  # mean 2.0 > sd 1.0
    assert report.paper_bar([-1.0, -2.0, -3.0]) == "loss"
    assert report.paper_bar([-1.8, 1.1, 1.6]) == "no"  # 0.3 ± 1.8
    assert report.paper_bar([0.035, 0.010]) == "no"  # 0.0 ± 0.0 as printed, not a gain
    assert report.paper_bar([0.5]) == "- (one seed)" and report.paper_bar([]) == "-"


def test_gap_change_is_the_difference_of_mean_gaps_against_the_larger_sd(study, load_tool):
    report = load_tool("alignment_report")
    change, sd = report.gap_change({0: 3.0, 1: 5.0}, {0: 0.0, 1: 0.5, 2: 1.0})
    assert change == pytest.approx(3.5) and sd == pytest.approx(2 ** 0.5)
    assert report.gap_change({0: 3.0}, {0: 0.0, 1: 1.0}) is None  # one seed: nothing decided
    assert report._change_text((3.5, 1.4), lambda c, sd: c > sd).startswith("yes")
    assert report._change_text((-3.5, 1.4), lambda c, sd: c > sd).startswith("no")
    assert report._change_text((-3.5, 1.4), lambda c, sd: abs(c) > sd).startswith("yes")
    assert report._change_text(None, lambda c, sd: True).startswith("not decided")


@pytest.mark.parametrize("gain, expected", [(3.0, "mean"), (0.5, "batchmean (kept)")])
def test_kl_reduction_report_applies_the_val_rule(study, tmp_path, gain, expected):
    runs = default_runs(study, tmp_path)
    for mode in ("predcls", "sgcls"):
        for seed, v in enumerate((0.60, 0.61, 0.62)):  # batchmean best val: 60, 61, 62 (sd 1.0)
            fake_run(runs.run_dir(study.Job("motifs", mode, seed)), 0.50, val=[(300, 0.55)])
            fake_run(runs.run_dir(study.Job("align", mode, seed, reduction="batchmean", mask="row")), 0.52,
                     val=[(300, v)])
            fake_run(runs.run_dir(study.Job("align", mode, seed, reduction="mean", mask="row")), 0.51 + 0.01 * seed,
                     val=[(300, v + gain / 100)])
    for seed in (0, 1):  # the MASK element row: two seeds only
        fake_run(runs.run_dir(study.Job("align", "predcls", seed, reduction="batchmean", mask="element")), 0.5,
                 val=[(300, 0.9)])
    assert study.main(["kl-reduction", "--out", str(tmp_path), "--report-only", "--jobs", "1", *BASE]) == 0
    text = (tmp_path / "kl_reduction" / TAG / "kl_reduction.md").read_text()
    assert "Rule (docs/results.md, fixed before the runs; val split only)" in text
    assert "| Align-Motifs | mean | row | 3 | " + f"{61 + gain:.1f} ± 1.0 | " in text
    assert "| +1.0 (s0), +2.0 (s1), +3.0 (s2) | 2.0 ± 1.0 |" in text  # mean row minus Motifs, test mR@50
    assert f"KL_REDUCTION in PredCls: {expected}" in text and f"KL_REDUCTION in SGCls: {expected}" in text
    assert "MASK in PredCls (KL_REDUCTION batchmean): not decided (2 of 3 seeds" in text
    assert f"**KL_REDUCTION for the configs: {expected}.**" in text


def tiny_study_setup(study, tiny, tiny_synthvg, tmp_path):
    """An untrained detector folder and the tiny set's relation overrides, less what the study sets."""
    import torch
    from maskrcnn_benchmark.config import load_config
    from maskrcnn_benchmark.modeling.detector.detectors import build_detection_model
    det = str(tmp_path / "det")
    os.makedirs(det)
    cfg = load_config(os.path.join(study.ROOT, "configs/synthvg/detector_VGG16.yaml"), tiny.detector_opts(tiny_synthvg, det))
    torch.save({"model": build_detection_model(cfg).state_dict()}, os.path.join(det, "model_final.pth"))
    opts = tiny.relation_opts(tiny_synthvg, "unused", "unused", max_iter=2)
    for key in ("OUTPUT_DIR", "MODEL.PRETRAINED_DETECTOR_CKPT", "MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED"):
        del opts[opts.index(key):opts.index(key) + 2]
    return det, opts + ["SOLVER.SCHEDULE.UPDATE_PERIOD", "1", "MODEL.DETECTOR_CACHE_MB", "0"]


def test_end_to_end_on_tiny_synthvg_and_rerun_reuses(study, tiny, tiny_synthvg, tmp_path, monkeypatch):
    """The real commands (relation_train_net with a scaled schedule, relation_test_net on
    model_final.pth into final_model/) on the tiny set, then the same command again reuses them."""
    det, opts = tiny_study_setup(study, tiny, tiny_synthvg, tmp_path)
    argv = ["schedule-length", "--out", str(tmp_path / "out"), "--detector", os.path.join(det, "model_final.pth"),
            "--data-dir", tiny_synthvg, "--seeds", "0", "--lengths", "1", "--variants", "motifs", "--jobs", "1", *opts]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert study.main(argv) == 0  # in-process; the runs are child processes (run_pool)
    runs = study.Runs(str(tmp_path / "out"), os.path.join(det, "model_final.pth"), tiny_synthvg, opts)
    job = study.Job("motifs", "predcls", 0)
    assert runs.finished(job) and runs.final_tested(job)
    assert "| 1x | 2 | Motifs | 1 | " in (tmp_path / "out" / "schedule_length" / runs.tag()[0] / "schedule_length.md").read_text()
    monkeypatch.setattr(study, "run_pool", lambda *a: pytest.fail(f"reran finished runs: {a[0]}"))
    assert study.main(argv) == 0


def test_predictors_end_to_end_on_tiny_synthvg(study, tiny, tiny_synthvg, tmp_path, monkeypatch):
    """A non-Motifs predictor through the study's own commands (its SynthVG configs with the
    study's overrides), with and without the alignment, plus the frequency prior, then the report."""
    det, opts = tiny_study_setup(study, tiny, tiny_synthvg, tmp_path)
    argv = ["predictors", "--out", str(tmp_path / "out"), "--detector", os.path.join(det, "model_final.pth"),
            "--data-dir", tiny_synthvg, "--seeds", "0", "--predictors", "imp", "--jobs", "2", *opts]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert study.main(argv) == 0
    runs = study.Runs(str(tmp_path / "out"), os.path.join(det, "model_final.pth"), tiny_synthvg, opts)
    for variant in ("motifs", "align"):
        job = study.Job(variant, "predcls", 0, predictor="imp")
        assert runs.finished(job)
        with open(os.path.join(runs.run_dir(job), "config.yaml")) as f:
            text = f.read()
        assert "IMPPredictor" in text and ("ENABLED: true" in text) == (variant == "align")
    table = (tmp_path / "out" / "predictors" / runs.tag()[0] / "predictors.md").read_text()
    assert "| IMP | 1 | " in table and "| Frequency prior | - | " in table
