"""tools/run_records.py: the small files of finished runs go to the records and come back, and
nothing is ever overwritten."""
import os


def _write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _finished_run(d, final=True):
    for f in ("config.yaml", "log.txt", "model_0000300.pth", "model_best.pth", "last_checkpoint", "console.log",
              "synthvg_train_statistics_abc.cache", "inference/synthvg_test/results.json",
              "inference/synthvg_test/results.txt", "inference/synthvg_test/predictions.pt",
              "tensorboard/events.out.tfevents.1.vm.1.0"):
        _write(os.path.join(d, f), f)
    if final:
        for f in ("final_model/test_config.yaml", "final_model/test_log.txt",
                  "final_model/inference/synthvg_test/results.json", "final_model/inference/synthvg_test/predictions.pt"):
            _write(os.path.join(d, f), f)


def test_save_keeps_the_small_files_of_finished_runs_only(load_tool, tmp_path):
    rec = load_tool("run_records")
    root = tmp_path / "repo"
    runs = root / "alignment_output" / "runs"
    _finished_run(str(runs / "motifs_predcls_it3000_seed0"))
    _write(str(runs / "align_predcls_it3000_seed0" / "config.yaml"))  # started, not finished
    _write(str(runs / "align_predcls_it3000_seed0" / "model_0000300.pth"))
    curve = root / "curves_output" / "motifs_sgdet_6000"  # a curve run: final checkpoint, no test
    for f in ("config.yaml", "log.txt", "model_final.pth", "tensorboard/events.out.tfevents.2.vm.2.0"):
        _write(str(curve / f))
    records = str(tmp_path / "records")
    assert rec.save([str(runs), str(root / "curves_output")], records, root=str(root)) == 0
    kept = sorted(os.path.relpath(os.path.join(d, f), records) for d, _, fs in os.walk(records) for f in fs)
    run = "alignment_output/runs/motifs_predcls_it3000_seed0/"
    assert kept == sorted([
        "curves_output/motifs_sgdet_6000/config.yaml", "curves_output/motifs_sgdet_6000/log.txt",
        "curves_output/motifs_sgdet_6000/tensorboard/events.out.tfevents.2.vm.2.0",
        run + "config.yaml", run + "log.txt", run + "inference/synthvg_test/results.json",
        run + "inference/synthvg_test/results.txt", run + "tensorboard/events.out.tfevents.1.vm.1.0",
        run + "final_model/test_config.yaml", run + "final_model/test_log.txt",
        run + "final_model/inference/synthvg_test/results.json"])
    assert rec.save([str(root / "missing")], records, root=str(root)) == 2


def test_restore_brings_them_back_and_never_overwrites(load_tool, tmp_path, capsys):
    rec = load_tool("run_records")
    old, new = tmp_path / "old", tmp_path / "new"
    _finished_run(str(old / "alignment_output" / "runs" / "a_seed0"))
    _finished_run(str(old / "alignment_output" / "runs" / "b_seed1"))
    records = str(tmp_path / "records")
    assert rec.save([str(old / "alignment_output" / "runs")], records, root=str(old)) == 0
    _write(str(new / "alignment_output" / "runs" / "a_seed0" / "log.txt"), "mine")  # a different file: kept
    _write(str(new / "alignment_output" / "runs" / "b_seed1" / "model_0000300.pth"), "live")  # a live run: untouched
    assert rec.restore(records, root=str(new)) == 0
    a = new / "alignment_output" / "runs" / "a_seed0"
    assert (a / "log.txt").read_text() == "mine"
    assert (a / "inference" / "synthvg_test" / "results.json").read_text() == "inference/synthvg_test/results.json"
    assert (a / "final_model" / "inference" / "synthvg_test" / "results.json").is_file()
    assert not (a / "model_best.pth").exists()
    assert os.listdir(new / "alignment_output" / "runs" / "b_seed1") == ["model_0000300.pth"]
    err = capsys.readouterr().err
    assert "a_seed0/log.txt as it is" in err and "b_seed1 as it is" in err
    assert rec.restore(str(tmp_path / "none"), root=str(new)) == 2


def test_a_restored_curve_run_counts_as_finished(load_tool, tmp_path):
    load_tool("alignment_study")  # puts tools/ on sys.path, as the studies run
    study = load_tool("schedule_study")
    from torch.utils.tensorboard import SummaryWriter
    d = str(tmp_path / "motifs_sgdet_3000")
    w = SummaryWriter(os.path.join(d, "tensorboard"))
    for step in (1500, 3000):
        w.add_scalar("val/mR@50", 0.25, step)
    w.close()
    assert study.finished(d, 3000) and not study.finished(d, 6000)
