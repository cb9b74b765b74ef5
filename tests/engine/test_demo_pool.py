"""tools/demo.py's job pool: every job runs with its share of the cores, a failure names its log."""
import os
import sys

import pytest


def _job(tmp_path, name, code):
    out = tmp_path / name
    return [sys.executable, "-c", code.format(out=str(out / "done"))], name, str(out)


@pytest.mark.parametrize("cores,threads", [(8, "4"), (None, "1")])
def test_pool_runs_every_job_with_its_share_of_the_cores(tmp_path, load_tool, monkeypatch, cores, threads):
    """2 slots on 8 cores: 4 threads per job; never fewer than 1 (here: the core count unknown)."""
    write = "import os; open({out!r}, 'w').write(os.environ['OMP_NUM_THREADS'] + ' ' + os.environ['MKL_NUM_THREADS'])"
    jobs = [_job(tmp_path, f"job{i}", write) for i in range(3)]
    timings = {}
    demo = load_tool("demo")
    monkeypatch.setattr(demo.os, "cpu_count", lambda: cores)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    demo.run_pool(jobs, slots=2, timings=timings)
    assert [open(os.path.join(d, "done")).read() for _, _, d in jobs] == [f"{threads} {threads}"] * 3
    assert set(timings) == {"job0", "job1", "job2"}
    assert all(os.path.isfile(os.path.join(d, "console.log")) for _, _, d in jobs)


def test_pool_keeps_the_callers_thread_count(tmp_path, load_tool, monkeypatch):
    """Two pools started side by side with OMP_NUM_THREADS=1 must not each take all 8 cores."""
    write = "import os; open({out!r}, 'w').write(os.environ['OMP_NUM_THREADS'] + ' ' + os.environ['MKL_NUM_THREADS'])"
    jobs = [_job(tmp_path, f"job{i}", write) for i in range(2)]
    demo = load_tool("demo")
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    demo.run_pool(jobs, slots=2, timings={})
    assert [open(os.path.join(d, "done")).read() for _, _, d in jobs] == ["1 1"] * 2


def test_pool_failure_names_the_job_and_its_log_after_the_others_finish(tmp_path, load_tool):
    ok = _job(tmp_path, "good", "open({out!r}, 'w').write('x')")
    bad = _job(tmp_path, "bad", "import sys; print('boom'); sys.exit(3)")
    with pytest.raises(SystemExit) as err:
        load_tool("demo").run_pool([bad, ok], slots=1, timings={})
    assert "'bad' (exit 3)" in str(err.value) and os.path.join(bad[2], "console.log") in str(err.value)
    assert os.path.isfile(os.path.join(ok[2], "done"))  # the queue still ran
    assert "boom" in open(os.path.join(bad[2], "console.log")).read()


def test_setup_line_names_configs_overrides_and_detector_map(tmp_path, load_tool):
    demo = load_tool("demo")
    det_dir = tmp_path / "detector"
    (det_dir / "inference" / demo.TEST_SET).mkdir(parents=True)
    (det_dir / "inference" / demo.TEST_SET / "detection_metrics.json").write_text('{"mAP@0.5": 0.5785}')
    line = demo.describe_setup(str(det_dir / "model_final.pth"), ["SOLVER.MAX_ITER", "150"])
    assert "motifs_{predcls,sgcls,sgdet}.yaml" in line and "`SOLVER.MAX_ITER 150`" in line
    assert "test mAP@0.5 0.579" in line
    # a shortened schedule says so (the configs' length read from the config, not written here)
    assert "These runs train 150 of the configs' " in line and "docs/results.md" in line
    plain = demo.describe_setup(str(tmp_path / "elsewhere.pth"), [])
    assert "mAP" not in plain and "These runs train" not in plain


def test_progress_from_training_log_else_from_an_evaluation_bar(tmp_path, load_tool):
    demo = load_tool("demo")
    assert demo.job_progress(str(tmp_path)) is None
    (tmp_path / "console.log").write_text("relation eval:  20%|##  | 5/25 [00:01<00:05]\r"
                                          "relation eval:  36%| 9/25 [00:02<00:04]")
    assert demo.job_progress(str(tmp_path)) == (9, 25)  # an evaluation-only job (frequency baseline)
    (tmp_path / "log.txt").write_text("iter 20/600  eta 0:08:09  loss 0.3\niter 40/600  eta 0:07:00\n")
    assert demo.job_progress(str(tmp_path)) == (40, 600)  # training: iterations, not eval bars


def test_pool_starts_a_job_after_the_jobs_it_reads_from(tmp_path, load_tool, capsys):
    """b reads what a writes: with a slot free, c (queued after b) goes first and b waits for a."""
    demo = load_tool("demo")
    a = _job(tmp_path, "a", "open({out!r}, 'w').write('x')")
    b = (*_job(tmp_path, "b", "import os; open({out!r}, 'w').write(str(os.path.exists(%r)))"
                % str(tmp_path / "a" / "done")), ("a",))
    c = _job(tmp_path, "c", "open({out!r}, 'w').write('x')")
    demo.run_pool([a, b, c], slots=2, timings={})
    assert open(os.path.join(b[2], "done")).read() == "True"
    started = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("==> ")]
    assert started == ["a", "c", "b"]
    d = (*_job(tmp_path, "d", "open({out!r}, 'w').write('x')"), ("a",))
    demo.run_pool([a, d], slots=2, timings={})  # nothing else to run: d does not wait (a slot never idles)
    assert os.path.isfile(os.path.join(d[2], "done"))


def test_demo_runs_share_a_detector_cache_filled_by_each_protocols_first_run(tmp_path, load_tool, monkeypatch):
    demo = load_tool("demo")
    queued = []
    monkeypatch.setattr(demo, "run", lambda *a, **k: None)  # no data generation
    monkeypatch.setattr(demo, "run_pool", lambda jobs, slots, timings: queued.extend(jobs))
    monkeypatch.setattr(demo, "write_report", lambda *a, **k: "")
    detector = tmp_path / "det.pth"
    detector.write_bytes(b"")
    out = tmp_path / "out"
    ours, theirs = out / "detector_cache" / "0123456789abcdef", out / "detector_cache" / "mine"
    ours.mkdir(parents=True)
    (ours / demo.MARKER).write_text("signature: x\n")
    theirs.mkdir()
    demo.main(["--out", str(out), "--detector", str(detector), "--seeds", "2", "--ablation", "--force"])
    assert not ours.exists() and theirs.is_dir()  # --force clears only the cache's own folders
    cache = str(out / "detector_cache")
    for cmd, what, _, _ in queued:
        i = cmd.index("MODEL.DETECTOR_CACHE_DIR")
        assert cmd[i + 1] == cache, what
    whats = [job[1] for job in queued]
    assert whats[:3] == ["Motifs SGDet seed 0", "Motifs SGCls seed 0", "Motifs PredCls seed 0"]
    assert whats[-3:] == [f"frequency baseline ({m})" for m in ("SGDet", "SGCls", "PredCls")]
    assert len(set(whats)) == len(whats) == 3 * 2 * 2 + 2 * 2 + 3
    for _, what, _, after in queued[3:]:
        mode = next(m for m in ("SGDet", "SGCls", "PredCls") if m in what)
        assert after == (f"Motifs {mode} seed 0",), what
