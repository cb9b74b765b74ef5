"""Faults on the real detector tool (tiny SynthVG): SIGKILL at a random moment after the first
checkpoint, then the same command resumes and ends with bit-identical weights; checkpoints of
another config or vocabulary, and truncated ones, are refused with the reason."""
import os
import random
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from maskrcnn_benchmark.utils.checkpoint import CheckpointError, read_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _argv(tiny, data_dir, out, *extra):
    return ["--skip-test", *tiny.detector_opts(data_dir, str(out), max_iter=6), *extra]


@pytest.fixture(scope="module")
def runs(tiny, tiny_synthvg, load_tool, tmp_path_factory):
    """An uninterrupted run and a run SIGKILLed a random number of log lines after its first
    checkpoint, then rerun with the same arguments (in-process, one thread, as the killed one)."""
    tool = load_tool("detector_pretrain_net")
    root = tmp_path_factory.mktemp("faults")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert tool.main(_argv(tiny, tiny_synthvg, root / "straight")) == 0
        argv = _argv(tiny, tiny_synthvg, root / "killed")
        extra_lines = random.randrange(4)
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "detector_pretrain_net.py"), *argv],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if any("saved checkpoint" in s for s in seen) and (extra_lines == 0 or "iter " in line):
                if extra_lines == 0:
                    break
                extra_lines -= 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
        killed_files = sorted(os.listdir(root / "killed"))
        last = (root / "killed" / "last_checkpoint").read_text()
        # what a kill during a save leaves: a temporary file of a dead process
        (root / "killed" / f".model_0000006.pth.tmp{proc.pid}").write_bytes(b"half a checkpoint")
        assert tool.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return root, last, killed_files


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes_exactly(runs):
    root, last, killed_files = runs
    assert last in ("model_0000002.pth", "model_0000004.pth") and "model_final.pth" not in killed_files
    ckpt = read_checkpoint(str(root / "killed" / last))
    assert ckpt["iteration"] == int(last[6:13])
    assert {"model", "optimizer", "scheduler", "iteration", "config", "vocabulary"} <= set(ckpt)
    assert set(ckpt["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert "MAX_ITER: 6" in ckpt["config"] and str(root / "killed") in ckpt["config"]
    log = (root / "killed" / "log.txt").read_text()
    assert f"resuming from {root / 'killed' / last}" in log
    assert not [f for f in os.listdir(root / "killed") if ".tmp" in f]  # the dead writer's file is gone
    straight = read_checkpoint(str(root / "straight" / "model_final.pth"))
    resumed = read_checkpoint(str(root / "killed" / "model_final.pth"))
    assert straight["iteration"] == resumed["iteration"] == 6
    for k, v in straight["model"].items():  # tolerance 0: bit-identical on the CPU
        assert torch.equal(v, resumed["model"][k]), k
    assert (root / "killed" / "last_checkpoint").read_text() == "model_final.pth"


def _resume_copy(runs, tmp_path, edit):
    """A copy of the finished run whose last checkpoint is changed by ``edit(path)``; the tool
    is asked to train on to iteration 8 from it."""
    root, _, _ = runs
    out = tmp_path / "copy"
    shutil.copytree(root / "killed", out)
    edit(out / "model_final.pth")
    return out


def test_other_vocabulary_is_refused(runs, tiny, tiny_synthvg, load_tool, tmp_path):
    def rename_class(path):
        data = torch.load(path, weights_only=True)
        data["vocabulary"]["obj_classes"][3] = "unicorn"
        torch.save(data, path)
    out = _resume_copy(runs, tmp_path, rename_class)
    tool = load_tool("detector_pretrain_net")
    with pytest.raises(CheckpointError, match=r"another vocabulary: object classes differ \(3: 'unicorn' "
                                              r"\(checkpoint\) vs '[a-z ]+'\)"):
        tool.main(_argv(tiny, tiny_synthvg, out, "SOLVER.MAX_ITER", "8"))
    with pytest.raises(CheckpointError, match="unicorn"):  # and when a relation run loads it as its detector
        from maskrcnn_benchmark.engine.relation_inference import load_pretrained_detector
        classes = read_checkpoint(str(runs[0] / "killed" / "model_final.pth"))["vocabulary"]["obj_classes"]
        load_pretrained_detector(torch.nn.Module(), str(out / "model_final.pth"), obj_classes=classes)


def test_other_config_lists_the_mismatched_keys(runs, tiny, tiny_synthvg, load_tool, tmp_path):
    out = _resume_copy(runs, tmp_path, lambda path: None)
    tool = load_tool("detector_pretrain_net")
    with pytest.raises(CheckpointError) as e:
        tool.main(_argv(tiny, tiny_synthvg, out, "SOLVER.MAX_ITER", "8", "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM", "48"))
    msg = str(e.value)
    assert "shape mismatches" in msg and "model_final.pth" in msg
    assert "roi_heads.box_head.fc6.weight (checkpoint (32, 1568), model (48, 1568))" in msg
    assert "roi_heads.box_predictor.cls_score.weight (checkpoint (31, 32), model (31, 48))" in msg


def test_truncated_checkpoint_fails_clearly(runs, tiny, tiny_synthvg, load_tool, tmp_path):
    def truncate(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    out = _resume_copy(runs, tmp_path, truncate)
    with pytest.raises(CheckpointError, match="model_final.pth is unreadable .* truncated or corrupted"):
        load_tool("detector_pretrain_net").main(_argv(tiny, tiny_synthvg, out, "SOLVER.MAX_ITER", "8"))
