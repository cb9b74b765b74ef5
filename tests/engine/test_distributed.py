"""Two CPU processes (gloo) under torchrun: both train tools on a tiny SynthVG, the ranks' final
weights, rank-0-only outputs, the sharded evaluation against a single-process one, and the
non-finite-loss paths (see ddp_worker.py, which runs in the two processes)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.data.datasets.evaluation.vg import load_predictions

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="module")
def ddp(tiny_synthvg, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(HERE, "ddp_worker.py"), tiny_synthvg, str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    reports = []
    for r in (0, 1):
        with open(out / f"report_rank{r}.json") as f:
            reports.append(json.load(f))
    return out, reports


@pytest.mark.parametrize("stage, folder", [("detector", "det"), ("relation", "rel")])
def test_ranks_end_with_identical_weights(ddp, stage, folder):
    out, reports = ddp
    for rep in reports:
        assert rep["world_size"] == 2 and rep["per_rank_batch"] == 2  # SOLVER.IMS_PER_BATCH 4 split in two
        assert rep[stage] == {"ddp": "DistributedDataParallel", "iter": 3}
    ranks = [torch.load(out / f"{stage}_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for k in ranks[0]:  # parameters and buffers (BatchNorm statistics included)
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    saved = torch.load(out / folder / "model_final.pth", weights_only=True)
    assert all(torch.equal(saved["model"][k], v) for k, v in ranks[0].items())
    assert len(saved["rng_per_rank"]) == 2
    assert not torch.equal(saved["rng_per_rank"][0]["torch"], saved["rng_per_rank"][1]["torch"])


@pytest.mark.parametrize("predictor", ["TransformerPredictor", "VCTreePredictor", "IMPPredictor"])
def test_each_predictor_trains_aligned_under_ddp(ddp, predictor):
    """Two iterations with the alignment: both ranks took the same steps (identical weights, the
    untied head's included), and the checkpoint holds them."""
    out, reports = ddp
    for rep in reports:
        assert rep[f"relation_{predictor}"] == {"ddp": "DistributedDataParallel", "iter": 2}
    ranks = [torch.load(out / f"relation_{predictor}_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert any(k.startswith("relation_head.predictor.alignment.") for k in ranks[0])
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    saved = torch.load(out / predictor / "model_final.pth", weights_only=True)
    assert all(torch.equal(saved["model"][k], v) for k, v in ranks[0].items())
    config = (out / predictor / "config.yaml").read_text()
    assert f"PREDICTOR: {predictor}" in config


@pytest.mark.parametrize("predictor", ["TransformerPredictor", "VCTreePredictor", "IMPPredictor"])
def test_relation_test_net_evaluates_each_predictor(ddp, predictor, tiny, tiny_synthvg, load_tool, tmp_path):
    """relation_test_net.py loads the aligned DDP checkpoint into the plain predictor and evaluates it."""
    out, _ = ddp
    opts = tiny.relation_opts(tiny_synthvg, str(tmp_path), "") + tiny.predictor_opts(predictor)
    assert load_tool("relation_test_net").main(["--weight", str(out / predictor / "model_final.pth"), *opts]) == 0
    results = json.loads((tmp_path / "inference" / "synthvg_test" / "results.json").read_text())
    assert results["counts"]["images"] == 4 and 0 <= results["metrics"]["mR@50"] <= 1
    assert 0 < results["metrics"]["R@100"] <= 1  # 2 iterations from the frequency prior: some hits


def test_only_rank_0_writes(ddp):
    out, _ = ddp
    for folder in ("det", "rel"):
        files = set(os.listdir(out / folder))
        assert {"config.yaml", "log.txt", "last_checkpoint", "model_final.pth"} <= files
        assert not [f for f in files if ".tmp" in f]
        assert len(os.listdir(out / folder / "tensorboard")) == 1
    saves = [line for line in (out / "rel" / "log.txt").read_text().splitlines()
             if "saved checkpoint" in line and os.path.join(str(out), "rel") in line]
    assert len(saves) == 3  # model_0000002, model_best, model_final: once each, by rank 0 only


def _same_arrays(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_sharded_evaluation_equals_single_process(ddp, tiny, tiny_synthvg, load_tool, tmp_path):
    """The 2-rank runs evaluated 1 image per rank and batch; the same one-image batches in one process
    must give the same predictions and metrics."""
    out, _ = ddp
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers
    try:
        det_opts = tiny.detector_opts(tiny_synthvg, str(tmp_path / "det")) + ["TEST.IMS_PER_BATCH", "1"]
        assert load_tool("detector_pretest_net").main(["--weight", str(out / "det" / "model_final.pth"),
                                                       *det_opts]) == 0
        rel_opts = tiny.relation_opts(tiny_synthvg, str(tmp_path / "rel"), "") + ["TEST.IMS_PER_BATCH", "1"]
        assert load_tool("relation_test_net").main(["--weight", str(out / "rel" / "model_best.pth"),
                                                    *rel_opts]) == 0
    finally:
        torch.set_num_threads(threads)
    sharded = out / "det" / "inference" / "synthvg_test"
    single = tmp_path / "det" / "inference" / "synthvg_test"
    for a, b in zip(torch.load(sharded / "detections.pth", weights_only=True),
                    torch.load(single / "detections.pth", weights_only=True), strict=True):
        _same_arrays(a, b)
    assert json.loads((sharded / "detection_metrics.json").read_text()) == \
        json.loads((single / "detection_metrics.json").read_text())

    sharded, single = out / "rel" / "inference" / "synthvg_test", tmp_path / "rel" / "inference" / "synthvg_test"
    pa, ia = load_predictions(str(sharded / "predictions.pt"))
    pb, ib = load_predictions(str(single / "predictions.pt"))
    assert ia["image_ids"] == ib["image_ids"] and len(pa) == 4
    for a, b in zip(pa, pb, strict=True):
        _same_arrays(a, b)
    ra, rb = json.loads((sharded / "results.json").read_text()), json.loads((single / "results.json").read_text())
    assert ra["metrics"] == rb["metrics"] and ra["counts"] == rb["counts"]


def test_nonfinite_loss_on_one_rank(ddp):
    out, reports = ddp
    skip = [rep["toy_skip"] for rep in reports]
    assert all(s["completed"] and s["skipped"] == 1 for s in skip)  # both ranks skipped the same batch
    assert skip[0]["weight"] == skip[1]["weight"]
    for rep in reports:  # both ranks stop, naming the iteration, the rank and its losses
        assert "non-finite loss at iteration 3: rank 1: loss_toy=nan" in rep["toy_stop"]["error"]
    assert reports[0]["toy_stop"]["weight"] == reports[1]["toy_stop"]["weight"]
    assert (out / "toy_skip0" / "last_checkpoint").read_text() == "model_0000002.pth"
    assert sorted(f for f in os.listdir(out / "toy_skip0") if f.endswith(".pth")) == \
        ["model_0000001.pth", "model_0000002.pth"]


def test_resume_needs_one_output_dir_seen_by_all_ranks(ddp):
    out, reports = ddp
    for rep in reports:
        assert "the processes disagree on the checkpoint to resume from (rank 0: " in rep["unshared"]
        assert "rank 1: none" in rep["unshared"] and "shared filesystem" in rep["unshared"]
