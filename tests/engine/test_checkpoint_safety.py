"""Checkpoint safety: vocabularies compared on loading, temporary files of killed writers removed,
RNG states per rank."""
import logging
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.utils.checkpoint import (Checkpointer, CheckpointError, check_vocabulary,
                                                 checkpoint_vocabulary, get_rng_states)

OBJ = ["__background__", "cat", "dog", "hat"]
REL = ["__background__", "on", "has"]


def _meta(obj=OBJ, rel=REL):
    return {"sgg_metadata": {"version": 1, "obj_classes": list(obj), "rel_classes": list(rel), "mode": "predcls"}}


def test_relation_run_refuses_a_checkpoint_of_other_classes(tmp_path):
    Checkpointer(nn.Linear(2, 2), save_dir=str(tmp_path), extra=_meta()).save("m", iteration=1)
    same = Checkpointer(nn.Linear(2, 2), save_dir=str(tmp_path), extra=_meta())
    assert same.resume_or_load() == 1
    other = Checkpointer(nn.Linear(2, 2), save_dir=str(tmp_path),
                         extra=_meta(obj=["__background__", "cat", "cow", "hat"], rel=REL + ["near"]))
    with pytest.raises(CheckpointError) as e:
        other.resume_or_load()
    msg = str(e.value)
    assert "m.pth was trained on another vocabulary" in msg
    assert "object classes differ (2: 'dog' (checkpoint) vs 'cow')" in msg
    assert "predicate classes differ (3 in the checkpoint vs 4)" in msg
    # an explicit vocabulary (test tools: the dataset's) overrides the run's own
    Checkpointer(nn.Linear(2, 2)).load(str(tmp_path / "m.pth"), model_only=True,
                                       vocabulary={"obj_classes": OBJ})
    with pytest.raises(CheckpointError, match="object classes"):
        Checkpointer(nn.Linear(2, 2)).load(str(tmp_path / "m.pth"), vocabulary={"obj_classes": OBJ[::-1]})


def test_vocabulary_sources_and_absence():
    assert checkpoint_vocabulary({"vocabulary": {"obj_classes": OBJ}}) == {"obj_classes": OBJ}
    assert checkpoint_vocabulary(_meta()) == {"obj_classes": OBJ, "rel_classes": REL}
    assert checkpoint_vocabulary({"model": {}}) == {}
    check_vocabulary({"model": {}}, {"obj_classes": OBJ})  # nothing recorded: nothing to compare
    check_vocabulary({"vocabulary": {"obj_classes": OBJ}}, {"rel_classes": ["x"]})  # nothing in common


def test_resume_removes_temporary_files_of_dead_writers_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = tmp_path / f".model_0000004.pth.tmp{dead.pid}", tmp_path / f".last_checkpoint.tmp{os.getpid()}"
    stale.write_bytes(b"partial")
    live.write_bytes(b"being written")
    (tmp_path / ".hidden_notes").write_text("not ours")
    Checkpointer(nn.Linear(2, 2), save_dir=str(tmp_path)).resume_or_load()
    assert not stale.exists() and live.exists() and (tmp_path / ".hidden_notes").exists()


def test_rng_of_another_world_size_restores_rank_0(tmp_path, caplog):
    torch.manual_seed(1)
    rank0 = get_rng_states()
    torch.manual_seed(2)
    rank1 = get_rng_states()
    data = {"model": nn.Linear(2, 2).state_dict(), "rng": rank0, "rng_per_rank": [rank0, rank1], "iteration": 3}
    torch.save(data, tmp_path / "m.pth")
    torch.manual_seed(3)
    log = logging.getLogger("maskrcnn_benchmark")  # may not propagate (setup_logger)
    log.addHandler(caplog.handler)
    try:
        Checkpointer(nn.Linear(2, 2)).load(str(tmp_path / "m.pth"))
    finally:
        log.removeHandler(caplog.handler)
    after = torch.rand(3)
    torch.set_rng_state(rank0["torch"])
    assert torch.equal(after, torch.rand(3))
    assert "written by 2 process(es), this run has 1" in caplog.text
