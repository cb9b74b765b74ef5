"""A run never loses or mixes up a user's output folder: resumed runs follow the config they were
started with, OUTPUT_DIR is locked (a killed holder releases it), a lost last_checkpoint resumes
from the newest readable checkpoint, a refused start keeps the previous config.yaml, and an
unusable folder or a full disk is one clear error."""
import logging
import os
import signal
import subprocess
import sys

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.engine import HookBase
from maskrcnn_benchmark.engine.defaults import default_setup, do_train
from maskrcnn_benchmark.solver import WarmupCosineLR
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer
from maskrcnn_benchmark.utils.output_dir import OutputDirError, lock_output_dir

from .test_trainer import Toy, cfg_for, loader

CPU = torch.device("cpu")


class RecordLR(HookBase):
    """The lr each iteration runs with."""

    def __init__(self):
        self.lrs = {}

    def before_step(self):
        self.lrs[self.trainer.iter] = self.trainer.optimizer.param_groups[0]["lr"]


def train(cfg, model=None, **kw):
    lr = RecordLR()
    trainer = do_train(cfg, model or Toy(), CPU, lambda s: loader(s, cfg.SOLVER.MAX_ITER), extra_hooks=[lr], **kw)
    return trainer, lr.lrs


def captured(caplog):
    log = logging.getLogger("maskrcnn_benchmark")  # may not propagate (setup_logger)
    log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="maskrcnn_benchmark")
    return log


def test_resume_follows_a_new_base_lr_and_says_so(tmp_path, caplog):
    _, first = train(cfg_for(tmp_path, SOLVER__MAX_ITER=4, SOLVER__BASE_LR=0.05))
    assert first[3] == pytest.approx(0.05)
    log = captured(caplog)
    try:
        trainer, lrs = train(cfg_for(tmp_path, SOLVER__MAX_ITER=8, SOLVER__BASE_LR=0.01))
    finally:
        log.removeHandler(caplog.handler)
    assert trainer.start_iter == 4 and trainer.completed
    # SOLVER.STEPS (5,): 0.01 until iteration 5, then 0.001; never the checkpoint's 0.05
    assert [lrs[i] for i in range(4, 8)] == pytest.approx([0.01, 0.001, 0.001, 0.001])
    assert "SOLVER.BASE_LR 0.05 -> 0.01" in caplog.text and "SOLVER.MAX_ITER 4 -> 8" in caplog.text
    assert "follows its own config" in caplog.text
    assert load_config(str(tmp_path / "config.yaml")).SOLVER.BASE_LR == 0.01


def test_raising_max_iter_of_a_finished_cosine_run_trains_at_the_new_schedule(tmp_path):
    opts = dict(SOLVER__SCHEDULE__TYPE="WarmupCosineLR", SOLVER__WARMUP_ITERS=0, SOLVER__SCHEDULE__UPDATE_PERIOD=1)
    _, first = train(cfg_for(tmp_path, SOLVER__MAX_ITER=4, **opts))
    trainer, lrs = train(cfg_for(tmp_path, SOLVER__MAX_ITER=8, **opts))
    assert trainer.start_iter == 4
    expected = WarmupCosineLR(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05), 8, warmup_iters=0)
    assert [lrs[i] for i in range(4, 8)] == pytest.approx([expected.lr_at(i)[0] for i in range(4, 8)])
    assert min(lrs[i] for i in range(4, 8)) > 0


def test_missing_or_empty_last_checkpoint_resumes_from_the_newest_readable_one(tmp_path):
    train(cfg_for(tmp_path, SOLVER__MAX_ITER=4))  # model_0000002.pth, model_final.pth (iteration 4)
    (tmp_path / "last_checkpoint").write_text("")
    assert Checkpointer(nn.Linear(4, 2), save_dir=str(tmp_path)).get_checkpoint_file() == str(
        tmp_path / "model_final.pth")
    os.remove(tmp_path / "last_checkpoint")
    (tmp_path / "model_final.pth").write_bytes(b"truncated")  # unreadable: passed over
    before = torch.load(tmp_path / "model_0000002.pth", weights_only=True)["model"]
    trainer, _ = train(cfg_for(tmp_path, SOLVER__MAX_ITER=6))
    assert trainer.start_iter == 2 and trainer.completed  # not 0: nothing of the run was overwritten by a restart
    assert torch.equal(torch.load(tmp_path / "model_0000002.pth", weights_only=True)["model"]["lin.weight"],
                       before["lin.weight"])


def test_binary_last_checkpoint_is_refused_with_the_fix(tmp_path):
    (tmp_path / "last_checkpoint").write_bytes(b"PK\x03\x04\x00\xff\xfe binary")
    with pytest.raises(CheckpointError, match=r"last_checkpoint does not hold a checkpoint file name.*delete it"):
        Checkpointer(nn.Linear(4, 2), save_dir=str(tmp_path)).resume_or_load()


def test_a_refused_start_keeps_the_previous_config_yaml(tmp_path):
    train(cfg_for(tmp_path, SOLVER__MAX_ITER=4))
    before = (tmp_path / "config.yaml").read_text()

    class Wider(Toy):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        train(cfg_for(tmp_path, SOLVER__MAX_ITER=8, SOLVER__BASE_LR=0.5), model=Wider())
    assert (tmp_path / "config.yaml").read_text() == before


HOLD = ("import sys; from maskrcnn_benchmark.utils.output_dir import lock_output_dir; "
        "lock_output_dir(sys.argv[1]); print('locked', flush=True); sys.stdin.read()")


def test_output_dir_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = load_config(None, ["OUTPUT_DIR", str(out), "MODEL.DEVICE", "cpu"])
        with pytest.raises(OutputDirError, match=rf"OUTPUT_DIR {out} is in use by another train run "
                                                 rf"\(host .*, pid {holder.pid}, started .*\): wait"):
            default_setup(cfg)
        lock_output_dir(str(out), "test")  # a test run may evaluate while training runs
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    default_setup(cfg)  # the lock of a killed run is gone with it
    default_setup(cfg)  # and taking it again in the same process is fine


def test_output_dir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "f").write_text("a file")
    with pytest.raises(OutputDirError, match=r"OUTPUT_DIR .*f exists and is not a folder"):
        lock_output_dir(str(tmp_path / "f"))
    with pytest.raises(OutputDirError, match="cannot create OUTPUT_DIR"):
        lock_output_dir(str(tmp_path / "f" / "sub"))


def test_full_disk_while_saving_is_one_clear_error(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
    ckpt = Checkpointer(nn.Linear(4, 2), save_dir=str(tmp_path))
    ckpt.save("model_0000002", 2)
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OutputDirError, match=r"cannot write .*model_0000004\.pth: RuntimeError: .*inline_container"
                                             r".* MiB free .* the last complete checkpoint is intact"):
        ckpt.save("model_0000004", 4)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000002.pth"]  # no temporary file left
