"""Learning-rate schedules at chosen iterations, and the optimizer's parameter groups."""
import math

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.solver import WarmupCosineLR, WarmupMultiStepLR, make_lr_scheduler, make_optimizer


def _lrs(scheduler, optimizer, n):
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _opt(lr=1.0):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def test_multistep_with_linear_warmup():
    opt = _opt(0.01)
    sched = WarmupMultiStepLR(opt, [6, 8], 0.1, warmup_factor=0.1, warmup_iters=4, warmup_method="linear")
    lrs = _lrs(sched, opt, 10)
    expected = [0.001, 0.00325, 0.0055, 0.00775, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    assert lrs == pytest.approx(expected)


def test_cosine_changes_only_every_update_period():
    opt = _opt(0.01)
    sched = WarmupCosineLR(opt, 100, min_lr=0.001, update_period=10, warmup_iters=0)
    lrs = _lrs(sched, opt, 100)

    def cos(t):
        return 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * t / 100))
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.01)
    assert lrs[10] == pytest.approx(cos(10)) and lrs[19] == pytest.approx(cos(10))
    assert lrs[55] == pytest.approx(cos(50))
    assert lrs[99] == pytest.approx(cos(90))
    assert len(set(lrs)) == 10  # one value per period
    assert sched.lr_at(100) == [pytest.approx(0.001)]  # ends at MIN_LR


def test_cosine_warmup_ramps_per_iteration():
    opt = _opt(1.0)
    sched = WarmupCosineLR(opt, 1000, update_period=100, warmup_factor=0.5, warmup_iters=10)
    lrs = _lrs(sched, opt, 12)
    assert lrs[0] == pytest.approx(0.5) and lrs[5] == pytest.approx(0.75) and lrs[10] == pytest.approx(1.0)


def test_scheduler_resumes_from_state_dict():
    opt = _opt(0.1)
    sched = WarmupCosineLR(opt, 50, update_period=5, warmup_iters=3, warmup_factor=0.1)
    _lrs(sched, opt, 17)
    opt2 = _opt(0.1)
    sched2 = WarmupCosineLR(opt2, 50, update_period=5, warmup_iters=3, warmup_factor=0.1)
    sched2.load_state_dict(sched.state_dict())
    assert _lrs(sched2, opt2, 10) == pytest.approx(_lrs(sched, opt, 10))


def test_make_lr_scheduler_from_config():
    cfg = load_config(None, ["SOLVER.SCHEDULE.TYPE", "WarmupCosineLR", "SOLVER.MAX_ITER", 2000,
                             "SOLVER.BASE_LR", 0.01, "SOLVER.WARMUP_ITERS", 0])
    opt = _opt(0.01)
    sched = make_lr_scheduler(cfg, opt)
    assert isinstance(sched, WarmupCosineLR) and sched.update_period == 1000
    assert sched.lr_at(999) == [pytest.approx(0.01)] and sched.lr_at(1000) == [pytest.approx(0.005)]
    with pytest.raises(ValueError, match="SCHEDULE.TYPE"):
        make_lr_scheduler(load_config(None, ["SOLVER.SCHEDULE.TYPE", "Poly"]), opt)


def test_optimizer_groups_and_unscaled_lr():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    cfg = load_config(None, ["SOLVER.BASE_LR", 0.02, "SOLVER.IMS_PER_BATCH", 16, "SOLVER.BIAS_LR_FACTOR", 2.0,
                             "SOLVER.WEIGHT_DECAY", 1e-4, "SOLVER.WEIGHT_DECAY_BIAS", 0.0])
    opt = make_optimizer(cfg, model)
    weights, biases = opt.param_groups
    assert [p.shape for p in weights["params"]] == [(2, 4)]  # frozen weight excluded
    assert weights["lr"] == 0.02 and weights["weight_decay"] == 1e-4  # not x IMS_PER_BATCH
    assert biases["lr"] == 0.04 and biases["weight_decay"] == 0.0 and len(biases["params"]) == 2
    assert opt.defaults["momentum"] == 0.9


def _sgd_cfg():
    return load_config(None, ["SOLVER.BASE_LR", 0.1, "SOLVER.MOMENTUM", 0.9, "SOLVER.WEIGHT_DECAY", 0.0,
                              "SOLVER.WEIGHT_DECAY_BIAS", 0.0])


def _reference_sgd(grads, lr=0.1, momentum=0.9):
    """Plain SGD with momentum (buffer = first gradient at a parameter's first update)."""
    w, buf = torch.ones(3), None
    for g in grads:
        if g is None:
            continue
        buf = g.clone() if buf is None else momentum * buf + g
        w = w - lr * buf
    return w


def test_a_parameter_first_getting_a_gradient_after_step_one_is_updated():
    """SGDet: a first batch without pairs leaves the union branch without a gradient (the fused
    kernel raised TypeError at the second step)."""
    model = nn.ModuleDict({"a": nn.Linear(3, 1, bias=False), "b": nn.Linear(3, 1, bias=False)})
    for m in model.values():
        nn.init.ones_(m.weight)
    opt = make_optimizer(_sgd_cfg(), model)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    model["a"](x).sum().backward()  # step 1: b has no gradient
    opt.step()
    opt.zero_grad(set_to_none=True)
    (model["a"](x) + model["b"](x)).sum().backward()
    opt.step()
    g = x[0]
    torch.testing.assert_close(model["a"].weight[0].detach(), _reference_sgd([g, g]))
    torch.testing.assert_close(model["b"].weight[0].detach(), _reference_sgd([None, g]))


def test_a_step_skipped_by_the_grad_scaler_leaves_momentum_clean():
    """GradScaler skips step 1 (overflow): the next real step must be a first step (the fused
    kernel had left uninitialised momentum buffers, e.g. 1e34 in the weights)."""
    n = 4096
    model = nn.Linear(n, 1, bias=False)
    nn.init.ones_(model.weight)
    opt = make_optimizer(_sgd_cfg(), model)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    x = torch.linspace(-1, 1, n)[None]
    scaler.scale(model(x * float("inf")).sum()).backward()
    garbage = torch.full((1, n), 1e30)
    del garbage  # freed memory that an uninitialised momentum buffer may reuse
    scaler.step(opt)
    scaler.update()
    assert torch.equal(model.weight.detach(), torch.ones(1, n))  # skipped
    opt.zero_grad(set_to_none=True)
    scaler.scale(model(x).sum()).backward()
    scaler.step(opt)
    scaler.update()
    torch.testing.assert_close(model.weight[0].detach(), torch.ones(n) - 0.1 * x[0])
