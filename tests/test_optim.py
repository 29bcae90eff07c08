"""Optimizers and schedules against torch.optim in float64, step by step."""

import math
import random

import pytest
import torch

from backprop import Value
from backprop.optim import SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, StepLR

STEPS = 25


def _quadratic_grads(xs, k):
    """A gradient that changes with the parameters and the step: d/dx of x^4/4 + k x."""
    return [x**3 + (k % 3 - 1) * 0.5 for x in xs]


def _run_ours(make, start):
    params = [Value(x) for x in start]
    opt = make(params)
    for k in range(STEPS):
        opt.zero_grad()
        for p, g in zip(params, _quadratic_grads([p.data for p in params], k)):
            p.grad = g
        opt.step()
    return [p.data for p in params], opt


def _run_torch(make, start):
    t = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make([t])
    for k in range(STEPS):
        opt.zero_grad()
        with torch.no_grad():
            t.grad = torch.tensor(_quadratic_grads(t.tolist(), k), dtype=torch.float64)
        opt.step()
    return t.tolist(), opt


START = [0.7, -1.3, 0.05, 2.0, -0.4]

CONFIGS = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6)),
    (Adam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=0.05, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.05, weight_decay=0.3, betas=(0.5, 0.9))),
    (AdamW, torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("ours, theirs, kw", CONFIGS, ids=lambda c: str(c))
def test_matches_torch_optim(ours, theirs, kw):
    got, _ = _run_ours(lambda p: ours(p, **kw), START)
    want, _ = _run_torch(lambda p: theirs(p, **kw, foreach=False), START)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_state_dict_is_keyed_by_parameter_order_like_torch():
    _, ours = _run_ours(lambda p: Adam(p, lr=0.01), START)
    _, theirs = _run_torch(lambda p: torch.optim.Adam(p, lr=0.01), START)
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert set(sd) == set(tsd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == list(range(len(START)))
    assert sd["param_groups"][0]["lr"] == tsd["param_groups"][0]["lr"]
    assert sd["param_groups"][0]["betas"] == tsd["param_groups"][0]["betas"]
    # torch holds one tensor for all five values; we hold one scalar state per parameter
    for i in range(len(START)):
        assert sd["state"][i]["step"] == tsd["state"][0]["step"].item()
        assert sd["state"][i]["exp_avg"] == pytest.approx(tsd["state"][0]["exp_avg"][i].item())


@pytest.mark.parametrize(
    "make", [lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.05, amsgrad=True)]
)
def test_state_dict_round_trip_resumes_identically(make):
    params = [Value(x) for x in START]
    opt = make(params)
    rng = random.Random(0)

    def step():
        for p in params:
            p.grad = rng.uniform(-1, 1)
        opt.step()

    for _ in range(5):
        step()
    saved, saved_data = opt.state_dict(), [p.data for p in params]
    rng_state = rng.getstate()
    for _ in range(5):
        step()
    expected = [p.data for p in params]

    for p, x in zip(params, saved_data):
        p.data = x
    opt2 = make(params)
    opt2.load_state_dict(saved)
    opt = opt2
    rng.setstate(rng_state)
    for _ in range(5):
        step()
    assert [p.data for p in params] == expected


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    params = [Value(1.0), Value(2.0)]
    opt = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = 1.0
    opt.step()
    before = opt.state_dict()
    other = SGD([Value(1.0)], lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="different parameter list"):
        opt.load_state_dict(other)
    with pytest.raises(ValueError, match="hyperparameters"):
        opt.load_state_dict(Adam(params).state_dict())
    bad = opt.state_dict()
    bad["state"][0]["momentum_buffer"] = "nan"
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        opt.load_state_dict(bad)
    assert opt.state_dict() == before


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
        (lambda p: SGD(p, lr=math.nan), "Invalid learning rate: nan"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires"),
        (lambda p: Adam(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda p: Adam(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (lambda p: AdamW(p, weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
        (lambda p: SGD([], lr=0.1), "empty parameter list"),
        (lambda p: SGD(p + p, lr=0.1), "more than once"),
        (lambda p: StepLR(SGD(p, lr=0.1), step_size=0), "step_size must be a positive int"),
        (lambda p: LinearLR(SGD(p, lr=0.1), start_factor=0), "Invalid start_factor value: 0"),
        (lambda p: CosineAnnealingLR(SGD(p, lr=0.1), T_max=-3), "T_max must be"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_with_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call([Value(1.0)])


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD([Value(1.0)], lr="0.1")
    with pytest.raises(TypeError, match="not a Value"):
        SGD([1.0], lr=0.1)


def test_zero_grad_zeroes_every_parameter():
    params = [Value(1.0), Value(2.0)]
    for p in params:
        p.grad = 3.0
    SGD(params, lr=0.1).zero_grad()
    assert [p.grad for p in params] == [0.0, 0.0]


SCHEDULES = [
    (
        lambda o: StepLR(o, step_size=3, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5),
    ),
    (
        lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.01),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    ),
    (
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.1, total_iters=10),
    ),
    (
        lambda o: LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, total_iters=4),
    ),
]


@pytest.mark.parametrize("ours, theirs", SCHEDULES)
def test_schedules_match_torch(ours, theirs):
    opt = SGD([Value(1.0)], lr=0.8)
    sched = ours(opt)
    t = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([t], lr=0.8)
    tsched = theirs(topt)
    for _ in range(15):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_linear_schedule_is_micrograds_decay():
    opt = SGD([Value(1.0)], lr=1.0)
    sched = LinearLR(opt, 1.0, 0.1, total_iters=100)
    for k in range(100):
        assert opt.lr == pytest.approx(1.0 - 0.9 * k / 100)
        sched.step()
