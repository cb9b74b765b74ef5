"""The training loop and its hooks, on a toy model and on a tiny detector."""
import math
import os

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.engine import EvalHook, HookBase, NonFiniteLossError, Trainer
from maskrcnn_benchmark.engine.defaults import do_train
from maskrcnn_benchmark.engine.hooks import BestCheckpointer, TensorBoardWriter
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer


class Toy(nn.Module):
    """Regression with a random (RNG-dependent) dropout mask; fails on purpose at ``nan_at``."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.nan_at = nan_at
        self.calls = 0

    def forward(self, x, targets):
        self.calls += 1
        keep = (torch.rand(x.shape[0]) > 0.2).float()[:, None]
        err = (self.lin(x) - targets["y"]).pow(2) * keep
        loss_a = err[:, 0].mean()
        if self.calls == self.nan_at:
            loss_a = loss_a * float("nan")
        return {"loss_a": loss_a, "loss_b": err[:, 1].mean()}


def batch(i):
    g = torch.Generator().manual_seed(i)
    x = torch.randn(8, 4, generator=g)
    return x, {"y": x[:, :2] * 2 + 1}, tuple(range(8))


def loader(start, stop):
    return (batch(i) for i in range(start, stop))


def cfg_for(tmp_path, **kv):
    opts = ["OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu", "SOLVER.BASE_LR", 0.05, "SOLVER.MAX_ITER", 8,
            "SOLVER.CHECKPOINT_PERIOD", 2, "SOLVER.STEPS", (5,), "SOLVER.WARMUP_ITERS", 2, "LOG_PERIOD", 2]
    for k, v in kv.items():
        opts += [k.replace("__", "."), v]
    return load_config(None, opts)


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    cfg = cfg_for(tmp_path / "straight")
    torch.manual_seed(0)
    straight = Toy()
    do_train(cfg, straight, torch.device("cpu"), lambda s: loader(s, 8))

    cfg = cfg_for(tmp_path / "killed")
    torch.manual_seed(0)

    def dies_at_5(start):
        for i in range(start, 8):
            if i == 5:
                raise KeyboardInterrupt  # the job is killed during iteration 6
            yield batch(i)
    with pytest.raises(KeyboardInterrupt):
        do_train(cfg, Toy(), torch.device("cpu"), dies_at_5)
    assert (tmp_path / "killed" / "last_checkpoint").read_text() == "model_0000004.pth"
    assert not (tmp_path / "killed" / "model_final.pth").exists()
    torch.manual_seed(123)  # a new process: other RNG state, fresh weights
    resumed = Toy()
    trainer = do_train(cfg, resumed, torch.device("cpu"), lambda s: loader(s, 8))
    assert trainer.start_iter == 4 and trainer.iter == 8 and trainer.completed
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (tmp_path / "killed" / "last_checkpoint").read_text() == "model_final.pth"


def test_checkpoints_to_keep_deletes_only_this_processs_older_periodic_checkpoints(tmp_path):
    def pths():
        return sorted(f for f in os.listdir(tmp_path) if f.endswith(".pth"))

    cfg = cfg_for(tmp_path, SOLVER__CHECKPOINT_PERIOD=1, SOLVER__CHECKPOINTS_TO_KEEP=2)

    def dies_at_4(start):
        for i in range(start, 8):
            if i == 4:
                raise KeyboardInterrupt
            yield batch(i)
    with pytest.raises(KeyboardInterrupt):
        do_train(cfg, Toy(), torch.device("cpu"), dies_at_4)
    assert pths() == ["model_0000003.pth", "model_0000004.pth"]  # 1 and 2 deleted once 3 and 4 were on disk
    trainer = do_train(cfg, Toy(), torch.device("cpu"), lambda s: loader(s, 8))  # a new process resumes at 4
    assert trainer.start_iter == 4 and trainer.completed
    # the earlier process's files stay; of this one's 5, 6, 7 the newest two; model_final always
    assert pths() == ["model_0000003.pth", "model_0000004.pth", "model_0000006.pth", "model_0000007.pth",
                      "model_final.pth"]
    keep_all = tmp_path / "all"
    do_train(cfg_for(keep_all, SOLVER__CHECKPOINT_PERIOD=1), Toy(), torch.device("cpu"), lambda s: loader(s, 8))
    assert len([f for f in os.listdir(keep_all) if f.startswith("model_0")]) == 7  # the default: SGB's, all kept


def test_nonfinite_loss_stops_and_saves_nothing_new(tmp_path):
    cfg = cfg_for(tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"iteration 3: loss_a=nan, loss_b=[0-9.]+") as e:
        do_train(cfg, Toy(nan_at=3), torch.device("cpu"), lambda s: loader(s, 8))
    assert "nothing was saved" in str(e.value)
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".pth")) == ["model_0000002.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"


def test_nonfinite_loss_can_skip_the_batch(tmp_path):
    cfg = cfg_for(tmp_path, SOLVER__SKIP_NONFINITE_LOSS=True)
    model = Toy(nan_at=3)
    trainer = do_train(cfg, model, torch.device("cpu"), lambda s: loader(s, 8))
    assert trainer.completed and trainer.skipped == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert (tmp_path / "model_final.pth").exists()


def test_gradient_clipping_bounds_the_update():
    model = Toy()
    before = model.lin.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = Trainer(model, opt, max_iter=1, grad_clip=1e-3)
    trainer.train(loader(0, 1))
    assert trainer.storage.latest()["grad_norm"][0] > 1e-3
    assert (model.lin.weight - before).norm() <= 1e-3 + 1e-6  # lr 1 x clipped global norm


def test_short_loader_fails_clearly():
    trainer = Trainer(Toy(), torch.optim.SGD(Toy().parameters(), lr=0.1), max_iter=5)
    with pytest.raises(RuntimeError, match="ended after 2 batches; 5 were needed"):
        trainer.train(loader(0, 2))


def test_eval_best_checkpoint_and_tensorboard(tmp_path):
    model = Toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = Trainer(model, opt, max_iter=7)
    ckpt = Checkpointer(model, opt, save_dir=str(tmp_path))
    scores = iter([0.1, 0.5, 0.3])
    calls = []

    def eval_fn():
        calls.append(trainer.iter)
        model.eval()
        return {"mAP@0.5": next(scores), "per_class": {"cat": 0.2}, "note": "text is dropped"}

    class ModeProbe(HookBase):
        def before_step(self):
            assert model.training  # EvalHook puts the model back in training mode

    trainer.register_hooks([EvalHook(3, eval_fn), BestCheckpointer(ckpt, "val/mAP@0.5"),
                            TensorBoardWriter(str(tmp_path / "tb"), period=2), ModeProbe()])
    trainer.train(loader(0, 7))
    assert calls == [3, 6, 7]
    assert trainer.storage.latest()["val/per_class/cat"] == (0.2, 7)
    best = torch.load(tmp_path / "model_best.pth", weights_only=True)
    assert best["iteration"] == 6 and best["best_metric"] == {"val/mAP@0.5": 0.5}
    assert not (tmp_path / "last_checkpoint").exists()  # model_best does not move last_checkpoint

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "loss_a", "loss_b", "lr", "val/mAP@0.5"} <= tags
    assert [e.step for e in acc.Scalars("val/mAP@0.5")] == [3, 6, 7]
    assert [e.value for e in acc.Scalars("val/mAP@0.5")] == pytest.approx([0.1, 0.5, 0.3])


class _IterProbe(HookBase):
    """Holds the number of the iteration in progress, for an eval_fn that scores by iteration."""
    iter = 0

    def before_step(self):
        self.iter = self.trainer.iter + 1


def _scripted_run(cfg, scores, loader_fn):
    """do_train with validation every 2 iterations returning ``scores[iteration]``."""
    probe = _IterProbe()
    torch.manual_seed(0)
    return do_train(cfg, Toy(), torch.device("cpu"), loader_fn, eval_fn=lambda: {"mR@50": scores[probe.iter]},
                    best_metric="val/mR@50", extra_hooks=[probe])


def _dies_at_3(start):
    for i in range(start, 8):
        if i == 3:
            raise KeyboardInterrupt  # killed during iteration 4, between the validations at 2 and 4
        yield batch(i)


@pytest.mark.parametrize("after_resume,best_iter", [((0.1, 0.2, 0.3), 2), ((0.1, 0.95, 0.3), 6)])
def test_best_checkpoint_survives_a_kill_between_validations(tmp_path, after_resume, best_iter):
    scores = dict(zip((2, 4, 6, 8), (0.9,) + after_resume))
    cfg = cfg_for(tmp_path, SOLVER__TO_VAL=True, SOLVER__VAL_PERIOD=2)
    with pytest.raises(KeyboardInterrupt):
        _scripted_run(cfg, scores, _dies_at_3)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert torch.load(tmp_path / "model_best.pth", weights_only=True)["best_metric"] == {"val/mR@50": 0.9}
    trainer = _scripted_run(cfg, scores, lambda s: loader(s, 8))  # the restarted job
    assert trainer.start_iter == 2 and trainer.completed
    hook = next(h for h in trainer.hooks if isinstance(h, BestCheckpointer))
    assert (hook.best, hook.best_iter) == (scores[best_iter], best_iter)
    best = torch.load(tmp_path / "model_best.pth", weights_only=True)
    assert best["iteration"] == best_iter and best["best_metric"] == {"val/mR@50": scores[best_iter]}
    if best_iter == 2:  # still the weights validated at iteration 2
        at_2 = torch.load(tmp_path / "model_0000002.pth", weights_only=True)["model"]
        assert all(torch.equal(v, at_2[k]) for k, v in best["model"].items())


def test_resume_with_an_unreadable_best_checkpoint_fails_clearly(tmp_path):
    scores = {2: 0.9, 4: 0.1, 6: 0.2, 8: 0.3}
    cfg = cfg_for(tmp_path, SOLVER__TO_VAL=True, SOLVER__VAL_PERIOD=2)
    with pytest.raises(KeyboardInterrupt):
        _scripted_run(cfg, scores, _dies_at_3)
    (tmp_path / "model_best.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="model_best.pth is unreadable .* move it away"):
        _scripted_run(cfg, scores, lambda s: loader(s, 8))


class _LrProbe(HookBase):
    """Records the learning rate each iteration ran with: {iteration (1-based): lr}."""

    def __init__(self, seen):
        self.seen = seen

    def after_step(self):
        self.seen[self.trainer.iter] = self.trainer.storage.latest()["lr"][0]


def _cosine(it, base=0.05, period=2, max_iter=8):
    return base * 0.5 * (1 + math.cos(math.pi * period * (it // period) / max_iter))


@pytest.mark.parametrize("schedule", ["multistep", "cosine"])
def test_lr_sequence_follows_the_schedule_across_a_kill(tmp_path, schedule):
    """The Trainer steps the scheduler once per iteration: the learning rates of a run killed in
    iteration 6 and resumed from iteration 4 are the schedule's formula, iteration by iteration."""
    if schedule == "multistep":  # BASE_LR 0.05, linear warmup from 0.1 over 2 iterations, x0.1 at 5
        kw, expected = {}, [0.005, 0.0275, 0.05, 0.05, 0.05, 0.005, 0.005, 0.005]
    else:  # cosine to 0 over 8 iterations, updated every 2
        kw = dict(SOLVER__SCHEDULE__TYPE="WarmupCosineLR", SOLVER__SCHEDULE__UPDATE_PERIOD=2, SOLVER__WARMUP_ITERS=0)
        expected = [_cosine(i) for i in range(8)]
        assert expected[2] == pytest.approx(0.025 * (1 + 0.5 ** 0.5)) and expected[7] < expected[5] < expected[3]
    straight, killed = {}, {}
    do_train(cfg_for(tmp_path / "straight", **kw), Toy(), torch.device("cpu"), lambda s: loader(s, 8),
             extra_hooks=[_LrProbe(straight)])
    assert [straight[i] for i in range(1, 9)] == pytest.approx(expected, rel=1e-12)

    def dies_at_5(start):
        for i in range(start, 8):
            if i == 5:
                raise KeyboardInterrupt
            yield batch(i)
    cfg = cfg_for(tmp_path / "killed", **kw)
    with pytest.raises(KeyboardInterrupt):
        do_train(cfg, Toy(), torch.device("cpu"), dies_at_5, extra_hooks=[_LrProbe(killed)])
    assert sorted(killed) == [1, 2, 3, 4, 5]
    resumed = {}
    trainer = do_train(cfg, Toy(), torch.device("cpu"), lambda s: loader(s, 8), extra_hooks=[_LrProbe(resumed)])
    assert trainer.start_iter == 4 and sorted(resumed) == [5, 6, 7, 8]
    assert [{**killed, **resumed}[i] for i in range(1, 9)] == pytest.approx(expected, rel=1e-12)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(
        0.005 if schedule == "multistep" else _cosine(8))  # what a further iteration would use


def test_the_loop_syncs_with_the_device_once_per_sync_period(monkeypatch):
    """Losses and the gradient norm reach the host once per LOG_PERIOD (one ``tolist``), not with
    an ``.item()`` each per iteration and a finite check before every backward."""
    calls = []
    for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **kw):
            calls.append(_name)
            return _original(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, counted)
    model = Toy()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), max_iter=6, grad_clip=5.0,
                      log_window=3)
    trainer.train(loader(0, 6))
    assert calls == ["tolist", "tolist"]
    latest = trainer.storage.latest()
    assert latest["loss"][1] == 5 and latest["grad_norm"][1] == 5  # the last iteration's numbers
    assert latest["loss"][0] == pytest.approx(latest["loss_a"][0] + latest["loss_b"][0])


def test_a_non_finite_loss_is_reported_with_its_iteration_at_the_next_sync():
    model = Toy(nan_at=2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), max_iter=8, log_window=4)
    with pytest.raises(NonFiniteLossError, match=r"iteration 2: loss_a=nan, loss_b=[0-9.]+"):
        trainer.train(loader(0, 8))
    assert trainer.iter == 3  # stopped at the sync of iteration 4
