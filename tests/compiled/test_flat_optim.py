"""FlatOptimizer against the per-Value optimizers: the same numbers, the same state_dict."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import Value
from backprop.compiled.flat_optim import FlatOptimizer
from backprop.optim import SGD, Adam, AdamW, StepLR

CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "amsgrad": True}),
    (AdamW, {"lr": 0.01}),
    (AdamW, {"lr": 0.03, "weight_decay": 0.1, "amsgrad": True}),
]


def run(cls, options, steps, flat: bool, switch_at=None, seed=0):
    """Steps on a quadratic-ish loss with noisy grads; returns (params, optimizer)."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=40)
    grads = rng.normal(size=(steps, 40)) * rng.uniform(0.01, 10, size=40)
    params = [Value(x) for x in start.tolist()]
    opt = cls(params, **options)
    schedule = StepLR(opt, step_size=3, gamma=0.5)
    data = np.array(start)
    stepper = None
    for k in range(steps):
        use_flat = flat if switch_at is None else k >= switch_at
        if use_flat:
            if stepper is None:
                stepper = FlatOptimizer(opt)
                data = np.array([p.data for p in params])
            stepper.step(data, grads[k] + 0.5 * data)
        else:
            for p, g in zip(params, grads[k].tolist()):
                p.grad = g + 0.5 * p.data
            opt.step()
        schedule.step()
    if stepper is not None:
        stepper.write_state()
        for p, x in zip(params, data.tolist()):
            p.data = x
    return [p.data for p in params], opt


@pytest.mark.parametrize("cls, options", CONFIGS)
def test_flat_steps_equal_per_value_steps(cls, options):
    eager, opt_e = run(cls, options, 12, flat=False)
    flat, opt_f = run(cls, options, 12, flat=True)
    assert flat == eager  # the same operations in the same order: bit for bit (bar: 1e-15)
    assert opt_f.state_dict() == opt_e.state_dict()


@pytest.mark.parametrize("cls, options", CONFIGS)
def test_state_dicts_are_interchangeable(cls, options):
    """Half the steps per Value, then flat from the per-Value state, and the other way."""
    eager, _ = run(cls, options, 10, flat=False)
    switched, _ = run(cls, options, 10, flat=False, switch_at=5)
    assert switched == eager
    # a flat optimizer's state_dict loads into a per-Value one and goes on identically
    rng = np.random.default_rng(1)
    params = [Value(x) for x in rng.normal(size=5).tolist()]
    opt = cls(params, **options)
    flat = FlatOptimizer(opt)
    data = np.array([p.data for p in params])
    for _ in range(3):
        flat.step(data, np.cos(data))
    saved = flat.state_dict()
    other_params = [Value(x) for x in data.tolist()]
    other = cls(other_params, **options)
    other.load_state_dict(saved)
    for p in other_params:
        p.grad = float(np.cos(p.data))
    other.step()
    flat.step(data, np.cos(data))
    assert data.tolist() == [p.data for p in other_params]
    again = FlatOptimizer(cls([Value(0.0) for _ in params], **options))
    again.load_state_dict(other.state_dict())
    assert again.state_dict() == other.state_dict()


def test_errors_name_the_problem():
    params = [Value(1.0), Value(2.0)]
    flat = FlatOptimizer(SGD(params, lr=0.1))
    with pytest.raises(ValueError, match="2 parameters.*shapes \\(3,\\)"):
        flat.step(np.zeros(3), np.zeros(3))
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.state[0]["momentum_buffer"] = 1.0
    with pytest.raises(ValueError, match="1 of 2 parameters"):
        FlatOptimizer(opt)
    adam = Adam(params, lr=0.1)
    adam.state = [
        {"step": 1.0, "exp_avg": 0.0, "exp_avg_sq": 0.0},
        {"step": 2.0, "exp_avg": 0.0, "exp_avg_sq": 0.0},
    ]
    with pytest.raises(ValueError, match="different numbers of steps"):
        FlatOptimizer(adam)
    with pytest.raises(TypeError, match="SGD, Adam and AdamW \\(not subclasses"):
        FlatOptimizer(object())
