"""The relation stage as it trains (tools/relation_train_net.py on tiny SynthVG: frozen detector,
Motifs with the alignment, cosine schedule): a run killed between checkpoints and restarted ends
with the weights and the learning rates of an uninterrupted one, and those are the schedule's."""
import re

import pytest
import torch

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import read_checkpoint

# BASE_LR 0.01, warmup factor 0.1 for 1 iteration, then cosine to 0 over 6 iterations, updated every 2:
# 0.01 * (1 + cos(pi * t / 6)) / 2 at t = 0, 0, 2, 2, 4, 4
EXPECTED_LR = [0.001, 0.01, 0.0075, 0.0075, 0.0025, 0.0025]


def _opts(tiny, data_dir, out, detector):
    return ["--skip-test", *tiny.relation_opts(data_dir, str(out), str(detector), max_iter=6),
            "SOLVER.SCHEDULE.TYPE", "WarmupCosineLR", "SOLVER.SCHEDULE.UPDATE_PERIOD", "2",
            "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.TO_VAL", "False"]


def _log_lrs(out):
    """{iteration: lr} of the log lines of every run in ``out`` (a restart appends; later lines win)."""
    lines = re.findall(r"iter (\d+)/6 .*\blr ([0-9.e-]+)", (out / "log.txt").read_text())
    return {int(i): float(lr) for i, lr in lines}


@pytest.fixture(scope="module")
def runs(tiny, tiny_synthvg, load_tool, in_process_tool_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("relation_resume")
    torch.manual_seed(0)  # a random stage-1 detector: it is frozen, only its weights matter here
    det_cfg = load_config(None, tiny.detector_opts(tiny_synthvg, str(root / "det")))
    detector = build_detection_model(det_cfg, load_pretrained=False)
    torch.save({"model": detector.state_dict()}, root / "detector.pth")
    tool = load_tool("relation_train_net")
    with in_process_tool_runs():
        assert tool.main(_opts(tiny, tiny_synthvg, root / "straight", root / "detector.pth")) == 0
        make_loader = tool.make_data_loader

        def dies_in_iteration_4(cfg, split, is_train=False, start_iter=0):
            for n, batch in enumerate(make_loader(cfg, split, is_train, start_iter)):
                if n == 3:
                    raise KeyboardInterrupt  # the job is killed after the checkpoint of iteration 2
                yield batch
        argv = _opts(tiny, tiny_synthvg, root / "killed", root / "detector.pth")
        tool.make_data_loader = dies_in_iteration_4
        try:
            with pytest.raises(KeyboardInterrupt):
                tool.main(argv)
        finally:
            tool.make_data_loader = make_loader
        last = (root / "killed" / "last_checkpoint").read_text()
        assert tool.main(argv) == 0  # the same command again resumes
    return root, last


def test_killed_relation_run_resumes_to_the_same_weights(runs):
    root, last = runs
    assert last == "model_0000002.pth"
    assert f"resuming from {root / 'killed' / last}" in (root / "killed" / "log.txt").read_text()
    straight = read_checkpoint(str(root / "straight" / "model_final.pth"))
    resumed = read_checkpoint(str(root / "killed" / "model_final.pth"))
    assert straight["iteration"] == resumed["iteration"] == 6
    assert any(k.startswith("relation_head.predictor.alignment.") for k in straight["model"])  # alignment on
    detector = torch.load(root / "detector.pth", weights_only=True)["model"]
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k  # bit-identical on the CPU
        if k.startswith("detector."):
            assert torch.equal(v, detector[k[len("detector."):]]), k  # frozen
    at_resume = read_checkpoint(str(root / "killed" / last))["model"]
    changed = [k for k, v in straight["model"].items() if k.startswith("relation_head.")
               and not torch.equal(v, at_resume[k])]
    assert changed  # the relation head did train after the resume point


def test_relation_run_learning_rates_follow_the_cosine_schedule(runs):
    root, _ = runs
    straight, resumed = _log_lrs(root / "straight"), _log_lrs(root / "killed")
    assert [straight[i] for i in range(1, 7)] == pytest.approx(EXPECTED_LR, rel=1e-5)
    assert [resumed[i] for i in range(1, 7)] == pytest.approx(EXPECTED_LR, rel=1e-5)
    assert "loss_align" in (root / "straight" / "log.txt").read_text()
