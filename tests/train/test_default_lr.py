"""fit()'s default learning rate: DEFAULT_LR for full batches, the square-root rule for
minibatches of adam and adamw (train/plan.py: default_lr)."""

from __future__ import annotations

import math

import pytest

from backprop import MLP, fit
from backprop.data import moons
from backprop.train import DEFAULT_LR, accuracy, predict
from backprop.train.plan import default_lr, make_optimizer


def test_full_batch_keeps_the_table_and_minibatches_of_adam_take_the_square_root_rule():
    assert default_lr("adam") == default_lr("adam", 0, 1347) == DEFAULT_LR["adam"] == 0.05
    assert default_lr("adam", 1347, 1347) == default_lr("adam", 5000, 1347) == 0.05
    assert default_lr("adam", 32, 1347) == 0.05 * math.sqrt(32 / 1347)
    assert default_lr("adamw", 8, 32) == 0.05 * 0.5
    assert default_lr("sgd", 8, 32) == DEFAULT_LR["sgd"] == 1.0  # sgd: one lr at any batch
    # smaller batches, smaller steps, and never more than the full-batch rate
    rates = [default_lr("adam", b, 1000) for b in (1, 16, 32, 64, 128, 999)]
    assert rates == sorted(rates) and rates[-1] < 0.05
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        default_lr("lion", 32, 100)


def test_make_optimizer_takes_the_batch_and_keeps_a_given_lr():
    params = MLP(2, [3, 1], seed=0).parameters()
    assert make_optimizer("adam", params).lr == 0.05
    assert make_optimizer("adam", params, batch_size=25, n_rows=100).lr == 0.025
    assert make_optimizer("adam", params, 0.3, batch_size=25, n_rows=100).lr == 0.3
    opt = make_optimizer("adamw", params, batch_size=25, n_rows=100, weight_decay=0.5)
    assert opt.lr == 0.025 and opt.hyperparameters["weight_decay"] == 0.5


@pytest.mark.parametrize(
    "options, lr",
    [
        ({}, 0.05),  # full batch
        ({"batch_size": 10}, 0.05 * math.sqrt(10 / 40)),
        ({"batch_size": 40}, 0.05),  # one batch of every row is the full batch
        ({"batch_size": 10, "validation_split": 0.5}, 0.05 * math.sqrt(10 / 20)),  # 20 train
        ({"batch_size": 10, "lr": 0.2}, 0.2),
        ({"batch_size": 10, "optimizer": "sgd"}, 1.0),
    ],
)
def test_fit_trains_with_the_rule_for_its_own_training_rows(options, lr):
    X, y = moons(40, seed=3)
    history = fit(MLP(2, [4, 1], seed=1), X, y, epochs=2, progress=False, **options)
    assert history.lr == [lr, lr]


@pytest.mark.parametrize("batch_size", [-1, 2.5, "32", True])
def test_a_bad_batch_size_is_refused_before_training(batch_size):
    X, y = moons(20, seed=3)
    model = MLP(2, [4, 1], seed=1)
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match=f"batch_size must be an int >= 0.*{batch_size!r}"):
        fit(model, X, y, batch_size=batch_size, progress=False)
    assert [p.data for p in model.parameters()] == before


def test_mlp_defaults_on_digits_reach_95_percent_with_minibatches_and_the_default_lr():
    """Issue 21's held-out check in a configuration a learner writes: MLP's default (tanh
    everywhere, 16 hidden units), fit's default epochs (100) and lr, batches of 32. With
    adam's full-batch 0.05 for every batch size, this run ended at 93.3% (and its curve swung
    between 83% and 97% after epoch 20); benchmarks/bench_digits_grid.py measures the other
    configurations."""
    from backprop.data import digits

    X, y = digits("train")
    model = MLP(64, [16, 10], seed=0)
    history = fit(model, X, y, loss="cross-entropy", optimizer="adam", batch_size=32,
                  compile=True, progress=False)  # fmt: skip
    assert history.lr[0] == default_lr("adam", 32, 1347) < 0.01
    X_test, y_test = digits("test")
    assert accuracy(predict(model, X_test, "cross-entropy", list(range(10))), y_test) >= 0.95
