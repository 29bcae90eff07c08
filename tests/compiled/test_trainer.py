"""fit(compile=True) against eager fit: same weights and history to rounding, every loss,
optimizers, minibatches, validation, early stopping, Ctrl-C, custom modules, tracing limits.

The python backend replays eager arithmetic in eager order, so for losses whose graph does not
change with the data it must agree bit for bit. The numpy backend reassociates sums (matrix
products), and cross-entropy's max-logit shift is frozen at the batch it was traced with, so
those agree to rounding: 1e-9 relative after a few epochs of compounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import backprop
from backprop import MLP, Module, Value
from backprop.data import moons, spiral
from backprop.losses import binary_cross_entropy, cross_entropy, hinge, mse
from backprop.optim import SGD
from backprop.train import fit

REL, ABS = 1e-9, 1e-12


def _model(nout=1, seed=1, hidden=8):
    return MLP(2, [hidden, nout], activation="relu", output_activation="linear", seed=seed)


def _weights(model):
    return [p.data for p in model.parameters()]


def _run(model, data, compile, **options):
    X, y = data
    history = fit(model, X, y, progress=False, compile=compile, **options)
    return history, _weights(model)


def _assert_same_run(eager, compiled, rel=REL):
    (h_e, w_e), (h_c, w_c) = eager, compiled
    assert w_c == pytest.approx(w_e, rel=rel, abs=ABS)
    assert h_c.loss == pytest.approx(h_e.loss, rel=rel, abs=ABS)
    assert h_c.val_loss == pytest.approx(h_e.val_loss, rel=rel, abs=ABS)
    assert h_c.accuracy == h_e.accuracy and h_c.val_accuracy == h_e.val_accuracy
    assert h_c.lr == h_e.lr and h_c.best_epoch == h_e.best_epoch
    assert (h_c.stopped_early, h_c.interrupted) == (h_e.stopped_early, h_e.interrupted)


CASES = [
    # (loss, optimizer, batch_size): full batch, and minibatches with a smaller last batch
    ("hinge", "sgd", 0),
    ("hinge", "adam", 16),
    ("mse", "sgd", 0),
    ("mse", "adam", 16),
    ("bce", "sgd", 16),
    ("bce", "adam", 0),
    ("cross-entropy", "sgd", 16),
    ("cross-entropy", "adam", 0),
]


def _data(loss):
    return spiral(45, classes=3, seed=2) if loss == "cross-entropy" else moons(40, seed=2)


@pytest.mark.parametrize("loss, optimizer, batch_size", CASES)
def test_compiled_fit_equals_eager_fit(loss, optimizer, batch_size):
    nout = 3 if loss == "cross-entropy" else 1
    options = dict(loss=loss, optimizer=optimizer, batch_size=batch_size, epochs=8, seed=3)
    options["lr"] = 0.2 if optimizer == "sgd" else 0.05
    eager = _run(_model(nout), _data(loss), False, **options)
    compiled = _run(_model(nout), _data(loss), True, **options)
    assert eager[0].loss[-1] < eager[0].loss[0]  # a run that trains, not a flat one
    _assert_same_run(eager, compiled)


@pytest.mark.parametrize("loss", ["hinge", "mse", "bce"])
def test_python_backend_fit_is_eager_fit_bit_for_bit(loss):
    options = dict(loss=loss, optimizer="adam", batch_size=16, epochs=4, seed=1)
    eager = _run(_model(), moons(40, seed=4), False, **options)
    compiled = _run(_model(), moons(40, seed=4), "python", **options)
    _assert_same_run(eager, compiled, rel=0.0)
    assert compiled[1] == eager[1]


@pytest.mark.parametrize("batch_size, sizes", [(0, [40]), (16, [16, 8]), (20, [20])])
def test_one_program_per_batch_size(monkeypatch, batch_size, sizes):
    traced = []
    original = backprop.compiled.compile

    def counting_compile(root, **options):
        program = original(root, **options)
        traced.append(len(program.leaves))
        return program

    monkeypatch.setattr(backprop.compiled, "compile", counting_compile)
    model = _model()
    fit(model, *moons(40, seed=5), batch_size=batch_size, epochs=3, compile=True, progress=False)
    n_params = len(model.parameters())
    # leaves: the parameters, 2 inputs and 1 target per row, and the graph's constants
    assert len(traced) == len(sizes)
    for leaves, size in zip(traced, sizes):
        assert leaves >= n_params + 3 * size


def test_validation_early_stopping_and_restore_best_as_eager():
    options = dict(optimizer="adam", lr=0.3, epochs=40, validation_split=0.25, patience=3)
    eager = _run(_model(hidden=16), moons(40, noise=0.3, seed=6), False, **options)
    compiled = _run(_model(hidden=16), moons(40, noise=0.3, seed=6), True, **options)
    assert eager[0].stopped_early and eager[0].epochs < 40
    _assert_same_run(eager, compiled)


def test_schedules_l2_momentum_and_an_optimizer_instance_as_eager():
    runs = []
    for compile in (False, True):
        model = _model(seed=7)
        opt = SGD(model.parameters(), lr=0.3, momentum=0.9, nesterov=True)
        runs.append(
            _run(model, moons(30, seed=7), compile, optimizer=opt, schedule="cosine", l2=1e-2)
        )
    _assert_same_run(*runs)


def test_ctrl_c_in_compiled_fit_keeps_the_best_weights():
    class InterruptingSGD(SGD):
        def __init__(self, params, at):
            super().__init__(params, lr=0.3)
            self.at, self.calls = at, 0

        def _update(self, param, grad, state):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return super()._update(param, grad, state)

    runs = []
    for compile in (False, True):
        model = _model(seed=9)
        n = len(model.parameters())
        opt = InterruptingSGD(model.parameters(), at=n * 6 + n // 2)  # mid-way through step 7
        runs.append(_run(model, moons(30, seed=9), compile, optimizer=opt, epochs=50))
    assert runs[1][0].interrupted and runs[1][0].epochs == 6
    _assert_same_run(*runs)


class Quadratic(Module):
    """Not an MLP: score = w . [x1, x2, x1*x2, x1^2] + b, plus a parameter the loss never uses."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.w = [Value(float(x)) for x in rng.uniform(-1, 1, 4)]
        self.b = Value(0.0)
        self.unused = Value(0.5)

    def __call__(self, x):
        x1, x2 = x
        features = [x1, x2, x1 * x2, x1**2]
        return sum((w * f for w, f in zip(self.w, features)), self.b)

    def parameters(self):
        return self.w + [self.b, self.unused]


@pytest.mark.parametrize("batch_size", [0, 16])
def test_a_custom_module_compiles_and_equals_eager(batch_size):
    options = dict(loss="hinge", optimizer="sgd", lr=0.1, batch_size=batch_size, epochs=6, l2=0)
    eager = _run(Quadratic(0), moons(40, seed=10), False, **options)
    model = Quadratic(0)
    model.unused.grad = 123.0  # whatever it held: it gets no gradient, as after zero_grad()
    compiled = _run(model, moons(40, seed=10), True, **options)
    _assert_same_run(eager, compiled)
    assert model.unused.grad == 0.0 and model.unused.data == 0.5


class BranchesOnData(Module):
    """A module whose Python looks at .data: tracing freezes the branch each row took."""

    def __init__(self) -> None:
        self.w = [Value(0.5), Value(-0.25)]

    def __call__(self, x):
        x1, x2 = x
        return self.w[0] * x1 if float(x1) > 0.5 else self.w[1] * x2  # float or Value

    def parameters(self):
        return self.w


def test_branches_on_data_are_frozen_by_compile():
    """A known limit, pinned down: rows land in other slots every epoch (shuffling), and each
    slot keeps the branch its first row took, so compiled training differs from eager."""
    options = dict(loss="hinge", optimizer="sgd", lr=0.1, epochs=3, l2=0)
    eager = _run(BranchesOnData(), moons(40, seed=11), False, **options)
    compiled = _run(BranchesOnData(), moons(40, seed=11), True, **options)
    assert compiled[1] != pytest.approx(eager[1], rel=1e-6)


@pytest.mark.parametrize("bad", ["cuda", 1, None])
def test_a_bad_compile_argument_is_a_value_error(bad):
    model = _model()
    before = _weights(model)
    with pytest.raises(ValueError, match="compile must be True, False or a backend name"):
        fit(model, *moons(20, seed=0), compile=bad, progress=False)
    assert _weights(model) == before


# ---- the losses over target Values, traced once and fed new targets -------------------------


def _replayed(loss_fn, predictions, target_rows, binary):
    """Trace loss_fn over target Values built from the first rows, then assign each later set
    of targets and replay: the loss values the program gives."""
    slots = [[Value(t) for t in row] for row in target_rows[0]]
    targets = [row[0] for row in slots] if binary else slots
    program = backprop.compile(loss_fn(predictions, targets))
    values = []
    for rows in target_rows:
        for slot, row in zip(slots, rows):
            for v, t in zip(slot, row):
                v.data = t
        values.append(program.forward())
    return values


@pytest.mark.parametrize(
    "loss_fn, targets",
    [
        (hinge, [[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]),
        (mse, [[0.5, -2.0, 1.0], [3.0, 0.0, -1.0], [0.25, 0.5, 0.75]]),
        (binary_cross_entropy, [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.3, 1.0, 0.0]]),
    ],
)
def test_binary_losses_over_target_values_follow_new_targets(loss_fn, targets):
    scores = [Value(0.7), Value(-1.2), Value(2.5)]
    rows = [[[t] for t in ts] for ts in targets]
    replayed = _replayed(loss_fn, scores, rows, binary=True)
    assert replayed == pytest.approx([loss_fn(scores, ts).data for ts in targets], rel=1e-12)


def test_cross_entropy_over_one_hot_target_values_follows_new_classes():
    logits = [[Value(0.5), Value(2.0), Value(-1.0)], [Value(-0.3), Value(0.1), Value(1.7)]]
    classes = [[0, 2], [1, 1], [2, 0]]
    one_hot = [[[1.0 if k == c else 0.0 for k in range(3)] for c in cs] for cs in classes]
    replayed = _replayed(cross_entropy, logits, one_hot, binary=False)
    assert replayed == pytest.approx([cross_entropy(logits, cs).data for cs in classes], rel=1e-12)


# ---- the flat path: parameters in the program's arrays, FlatOptimizer steps ---------------


def test_compiled_fit_steps_the_flat_arrays(monkeypatch):
    """fit(compile=True) hands the parameters to the program and steps them as arrays."""
    from backprop.compiled import flat_optim

    calls = []
    step = flat_optim.FlatOptimizer.step

    def counted(self, data, grad):
        calls.append(data.size)
        return step(self, data, grad)

    monkeypatch.setattr(flat_optim.FlatOptimizer, "step", counted)
    model = _model()
    opt = backprop.optim.Adam(model.parameters(), lr=0.05)
    history, weights = _run(model, moons(30, seed=3), True, optimizer=opt, epochs=4, batch_size=8)
    assert calls == [len(weights)] * 16  # 4 batches (8, 8, 8, 6) a epoch
    assert all(isinstance(w, float) for w in weights)  # written back when fit returned
    assert all(isinstance(p.grad, float) for p in model.parameters())
    # the optimizer's own state is the flat one's, as if it had stepped per Value
    assert {s["step"] for s in opt.state} == {16.0}


def test_ctrl_c_in_a_flat_step_keeps_the_best_weights(monkeypatch):
    from backprop.compiled import flat_optim

    step, calls = flat_optim.FlatOptimizer.step, []

    def interrupting(self, data, grad):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return step(self, data, grad)

    class InterruptingSGD(SGD):  # the eager twin: interrupted at the start of step 7
        def __init__(self, params):
            super().__init__(params, lr=0.3)
            self.steps = 0

        def step(self):
            self.steps += 1
            if self.steps == 7:
                raise KeyboardInterrupt
            super().step()

    eager_model = _model(seed=9)
    eager = _run(
        eager_model, moons(30, seed=9), False, optimizer=InterruptingSGD(eager_model.parameters())
    )
    monkeypatch.setattr(flat_optim.FlatOptimizer, "step", interrupting)
    model = _model(seed=9)
    compiled = _run(model, moons(30, seed=9), True, optimizer=SGD(model.parameters(), lr=0.3))
    assert compiled[0].interrupted and compiled[0].epochs == 6
    _assert_same_run(eager, compiled)
