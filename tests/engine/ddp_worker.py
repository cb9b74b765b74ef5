"""Run by tests/engine/test_distributed.py under ``torchrun --nproc_per_node 2`` (gloo, CPU):
the real train tools of both stages, then the training loop's non-finite-loss paths on a toy
model. Each rank dumps its final weights so the test can compare the ranks.

    torchrun --standalone --nproc_per_node 2 tests/engine/ddp_worker.py DATA_DIR OUT_DIR
"""
from __future__ import annotations

import json
import os
import sys

import torch
from torch import nn

import tiny_synthvg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import detector_pretrain_net  # noqa: E402
import relation_train_net  # noqa: E402

from maskrcnn_benchmark.config import load_config  # noqa: E402
from maskrcnn_benchmark.data import make_data_loader  # noqa: E402
from maskrcnn_benchmark.engine import NonFiniteLossError  # noqa: E402
from maskrcnn_benchmark.engine import defaults  # noqa: E402
from maskrcnn_benchmark.utils import comm  # noqa: E402
from maskrcnn_benchmark.utils.checkpoint import Checkpointer, CheckpointError  # noqa: E402


def dumping(tool, out_dir: str, name: str):
    """Make ``tool.do_train`` also save this rank's trained weights to ``<out_dir>/<name>_rank<r>.pt``."""
    def do_train(cfg, model, *args, **kw):
        trainer = defaults.do_train(cfg, model, *args, **kw)
        torch.save(model.state_dict(), os.path.join(out_dir, f"{name}_rank{comm.get_rank()}.pt"))
        report[name] = {"ddp": type(trainer.model).__name__, "iter": trainer.iter}
        return trainer
    tool.do_train = do_train


class Toy(nn.Module):
    """Loss NaN on rank 1 at its ``nan_at``-th call."""

    def __init__(self, nan_at: int):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.nan_at, self.calls = nan_at, 0

    def forward(self, x, targets):
        self.calls += 1
        loss = (self.lin(x) - targets["y"]).pow(2).mean()
        if comm.get_rank() == 1 and self.calls == self.nan_at:
            loss = loss * float("nan")
        return {"loss_toy": loss}


def toy_batches(start):
    g = torch.Generator().manual_seed(comm.get_rank())
    for _ in range(start, 4):
        x = torch.randn(4, 4, generator=g)
        yield x, {"y": x[:, :2]}, tuple(range(4))


def toy_run(out_dir: str, skip: bool) -> dict:
    cfg = load_config(None, ["OUTPUT_DIR", os.path.join(out_dir, f"toy_skip{int(skip)}"), "MODEL.DEVICE", "cpu",
                             "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "1", "SOLVER.WARMUP_ITERS", "0",
                             "SOLVER.SKIP_NONFINITE_LOSS", str(skip), "SOLVER.BASE_LR", "0.1"])
    torch.manual_seed(0)
    model = Toy(nan_at=3)
    try:
        trainer = defaults.do_train(cfg, model, torch.device("cpu"), toy_batches)
        result = {"completed": trainer.completed, "skipped": trainer.skipped}
    except NonFiniteLossError as e:
        result = {"error": str(e)}
    result["weight"] = model.lin.weight.detach().flatten().tolist()
    return result


def unshared_output_dir(out_dir: str) -> str:
    """Each rank sees its own OUTPUT_DIR, only rank 0's holds a checkpoint (machines without a shared
    filesystem): resuming must fail on every rank with the reason."""
    folder = os.path.join(out_dir, f"unshared_rank{comm.get_rank()}")
    ckpt = Checkpointer(nn.Linear(2, 2), save_dir=folder, save_to_disk=comm.get_rank() == 0)
    ckpt.save("model_0000001", iteration=1)
    try:
        ckpt.resume_or_load()
    except CheckpointError as e:
        return str(e)
    return "resumed"


report: dict = {}
NEW_PREDICTORS = ("TransformerPredictor", "VCTreePredictor", "IMPPredictor")


def main(data_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    det_dir, rel_dir = os.path.join(out_dir, "det"), os.path.join(out_dir, "rel")
    dumping(detector_pretrain_net, out_dir, "detector")
    assert detector_pretrain_net.main(tiny_synthvg.detector_opts(data_dir, det_dir)) == 0
    cfg = load_config(None, tiny_synthvg.detector_opts(data_dir, det_dir))
    report["per_rank_batch"] = len(next(iter(make_data_loader(cfg, "train", True)))[2])
    dumping(relation_train_net, out_dir, "relation")
    rel = tiny_synthvg.relation_opts(data_dir, rel_dir, os.path.join(det_dir, "model_final.pth"))
    assert relation_train_net.main(rel) == 0
    for name in NEW_PREDICTORS:  # each with the alignment, 2 iterations, no evaluation
        dumping(relation_train_net, out_dir, f"relation_{name}")
        opts = rel + tiny_synthvg.predictor_opts(name) + [
            "SOLVER.MAX_ITER", "2", "SOLVER.TO_VAL", "False", "OUTPUT_DIR", os.path.join(out_dir, name)]
        assert relation_train_net.main(["--skip-test", *opts]) == 0
    report["toy_skip"], report["toy_stop"] = toy_run(out_dir, True), toy_run(out_dir, False)
    report["unshared"] = unshared_output_dir(out_dir)
    report["world_size"] = comm.get_world_size()
    with open(os.path.join(out_dir, f"report_rank{comm.get_rank()}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
    comm.exit_process(0)  # as the tools end (launch): no interpreter teardown racing gloo's threads
