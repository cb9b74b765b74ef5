"""Checkpointer: round trips, relocatable last_checkpoint, atomic writes, clear errors."""
import os
import shutil

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.solver import WarmupMultiStepLR
from maskrcnn_benchmark.utils.checkpoint import (Checkpointer, CheckpointError, atomic_write,
                                                 load_state_dict_checked, read_checkpoint)


def _net(hidden=4):
    return nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def _trained(tmp_path, steps=3):
    torch.manual_seed(0)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = WarmupMultiStepLR(opt, [2], warmup_iters=1)
    for _ in range(steps):
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched, Checkpointer(model, opt, sched, save_dir=str(tmp_path),
                                           config=load_config(None, ["SEED", 7]))


def test_round_trip_restores_everything(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path)
    path = ckpt.save("model_0000003", iteration=3)
    after_save = torch.rand(3)
    model2 = _net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    sched2 = WarmupMultiStepLR(opt2, [2], warmup_iters=1)
    extra = Checkpointer(model2, opt2, sched2, save_dir=str(tmp_path)).load(path)
    assert extra["iteration"] == 3 and "SEED: 7" in extra["config"]
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(opt.state_dict()["state"][0]["momentum_buffer"],
                       opt2.state_dict()["state"][0]["momentum_buffer"])
    assert sched2.last_epoch == sched.last_epoch and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert torch.equal(torch.rand(3), after_save)  # RNG state restored
    assert set(torch.load(path, weights_only=True)) >= {"model", "optimizer", "scheduler", "rng", "iteration"}


def test_last_checkpoint_is_relative_and_moves_with_the_folder(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path / "run")
    ckpt.save("model_0000003", iteration=3)
    assert (tmp_path / "run" / "last_checkpoint").read_text() == "model_0000003.pth"
    shutil.move(str(tmp_path / "run"), str(tmp_path / "moved"))
    moved = Checkpointer(_net(), save_dir=str(tmp_path / "moved"))
    assert moved.get_checkpoint_file() == str(tmp_path / "moved" / "model_0000003.pth")
    assert moved.resume_or_load() == 3


def test_sgb_absolute_last_checkpoint_falls_back_to_the_local_file(tmp_path):
    _, _, _, ckpt = _trained(tmp_path)
    ckpt.save("model_final", iteration=3)
    (tmp_path / "last_checkpoint").write_text("/home/someone/sgb/output/model_final.pth")
    assert ckpt.get_checkpoint_file() == str(tmp_path / "model_final.pth")


def test_resume_or_load_prefers_last_checkpoint_then_weight(tmp_path):
    _, _, _, ckpt = _trained(tmp_path / "a")
    weight = ckpt.save("w", iteration=5)
    fresh = Checkpointer(_net(), save_dir=str(tmp_path / "b"))
    assert not fresh.has_checkpoint()
    assert fresh.resume_or_load(weight) == 0  # weights only: training starts at 0
    assert fresh.resume_or_load("") == 0
    assert Checkpointer(_net(), save_dir=str(tmp_path / "a")).resume_or_load(weight) == 5


def test_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.pth"
    path.write_bytes(b"old")

    def broken(f):
        f.write(b"partial")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), broken)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.pth"]


def test_only_the_writing_rank_saves(tmp_path):
    model, opt, sched, _ = _trained(tmp_path)
    assert Checkpointer(model, save_dir=str(tmp_path), save_to_disk=False).save("x", iteration=1) is None
    assert os.listdir(tmp_path) == []


def test_truncated_file_fails_clearly(tmp_path):
    _, _, _, ckpt = _trained(tmp_path)
    path = ckpt.save("model_0000003", iteration=3)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated") as e:
        ckpt.resume_or_load()
    assert "model_0000003.pth" in str(e.value)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(str(tmp_path / "nope.pth"))


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(str(path))


def test_mismatched_checkpoint_lists_the_keys(tmp_path):
    _, _, _, ckpt = _trained(tmp_path)
    path = ckpt.save("m", iteration=3)
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError) as e:
        Checkpointer(other).load(path, model_only=True)
    msg = str(e.value)
    assert "0.weight (checkpoint (4, 3), model (5, 3))" in msg and "2.weight" in msg
    assert "2 missing keys: 3.bias, 3.weight" in msg and "shape mismatches" in msg
    smaller = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(CheckpointError, match="2 unexpected keys: 2.bias, 2.weight"):
        Checkpointer(smaller).load(path, model_only=True)


def test_ignore_and_allow_missing_prefixes(tmp_path):
    _, _, _, ckpt = _trained(tmp_path)
    path = ckpt.save("m", iteration=3)
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 7))  # another head
    before = other[2].weight.clone()
    Checkpointer(other).load(path, model_only=True, ignore_prefixes=("2.",))
    assert torch.equal(other[2].weight, before)
    assert torch.equal(other[0].weight, read_checkpoint(path)["model"]["0.weight"])
    bigger = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    load_state_dict_checked(bigger, read_checkpoint(path)["model"], allow_missing_prefixes=("3.",))


def test_ddp_style_module_prefix_is_accepted(tmp_path):
    model = _net()
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "m.pth")
    other = _net()
    Checkpointer(other).load(str(tmp_path / "m.pth"), model_only=True)
    assert torch.equal(other[0].weight, model[0].weight)
