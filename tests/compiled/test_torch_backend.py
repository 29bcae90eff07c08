"""The torch backend of compiled mode: the compiled-vs-eager tests run again with torch standing
in for numpy, the torch backend against the numpy backend to 1e-12, devices, fit and train.

test_compiled.py's and test_trainer.py's tests are imported below and run here with
``BACKENDS['numpy']`` swapped for the torch backend: the same graphs, the same tolerance (the
numpy backend's 1e-12), the same conditioning of random graphs. Tests about the numpy
backend's own text (its listing, its name) stay there.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import test_compiled  # noqa: E402
from test_compiled import (  # noqa: E402, F401  (collected here, with the fixture below)
    test_a_leaf_root_and_a_no_grad_root,
    test_backward_with_a_seed_gradient,
    test_every_op_matches_eager,
    test_forward_sees_changed_parameters,
    test_inputs_are_fed_per_batch,
    test_matrix_products_of_any_shape,
    test_mlp_layers_become_matrix_products,
    test_mlp_over_a_batch_matches_eager,
    test_nan_and_inf_like_eager,
    test_random_graphs_match_eager,
    test_repeated_backward_accumulates_like_eager,
    test_reused_nodes_get_every_edge,
    test_serial_stretches_between_wide_steps,
    test_sums_of_every_shape,
    test_sync_writes_intermediate_nodes_like_eager,
    test_the_docs_minibatch_example,
    test_training_loop_matches_eager_training,
    test_weight_tying_scatters_every_use,
    test_wide_and_deep_sums_are_one_step,
)
from test_trainer import (  # noqa: E402, F401
    test_a_custom_module_compiles_and_equals_eager,
    test_compiled_fit_equals_eager_fit,
    test_validation_early_stopping_and_restore_best_as_eager,
)

import backprop  # noqa: E402
from backprop import MLP, Value  # noqa: E402
from backprop.compiled import BACKENDS, numpy_backend  # noqa: E402
from backprop.compiled.torch_backend import TorchBackend  # noqa: E402
from backprop.data import moons  # noqa: E402
from backprop.losses import hinge  # noqa: E402
from backprop.train import fit  # noqa: E402

assert test_compiled.REL["numpy"] == 1e-12  # the tolerance the torch backend is held to


@pytest.fixture(autouse=True)
def torch_stands_in_for_numpy(request, monkeypatch):
    """Every imported test's compile(backend='numpy') (and fit's compile=True) gets torch."""
    if request.function.__module__ != __name__:
        monkeypatch.setitem(BACKENDS, "numpy", TorchBackend("cpu"))


@pytest.fixture(params=["torch", "torch-vectorized"])
def backend(request, monkeypatch):
    """test_compiled's backend fixture, for torch: "torch-vectorized" turns off the scalar runs
    of tiny groups, as "numpy-vectorized" does there (the plan is the numpy backend's)."""
    if request.param == "torch-vectorized":
        monkeypatch.setattr(numpy_backend, "TINY", 0)
    return "numpy"  # the name the imported tests know; BACKENDS['numpy'] is torch here


# ---- the torch backend against the numpy backend -------------------------------------------


def _batch_loss(activation: str, points: int = 30, seed: int = 0):
    model = MLP(3, [6, 5, 1], activation=activation, output_activation="linear", seed=seed)
    rng = random.Random(seed)
    xs = [[Value(rng.uniform(-2, 2)) for _ in range(3)] for _ in range(points)]
    ys = [Value(rng.choice([-1.0, 1.0])) for _ in range(points)]
    loss = hinge([model(x) for x in xs], ys) + 1e-3 * sum(p * p for p in model.parameters())
    return model, loss


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_torch_equals_numpy_to_1e_12(activation):
    model, loss = _batch_loss(activation)
    results = []
    for name in ("numpy", "torch"):
        program = backprop.compile(loss, backend=name)
        value = program.forward()
        program.backward(accumulate=False)
        results.append((value, [p.grad for p in model.parameters()]))
    (v_np, g_np), (v_t, g_t) = results
    assert v_t == pytest.approx(v_np, rel=1e-12, abs=1e-15)
    scale = max(map(abs, g_np))
    assert np.allclose(g_t, g_np, rtol=1e-12, atol=1e-12 * scale)


def test_torch_runs_the_numpy_plan_with_the_same_matrix_products():
    _, loss = _batch_loss("relu", points=20)
    numpy_steps = backprop.compile(loss).describe().splitlines()
    torch_steps = backprop.compile(loss, backend="torch", device="cpu").describe().splitlines()
    assert torch_steps[0].startswith("torch (cpu): ")
    assert torch_steps[1:] == numpy_steps[1:]
    assert sum("matmul" in line for line in torch_steps) == 3
    program = backprop.compile(loss, backend="torch")
    assert "backend='torch'" in repr(program)


def test_a_bad_device_is_a_clear_error():
    _, loss = _batch_loss("tanh", points=2)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        backprop.compile(loss, backend="torch", device="gpu0")
    with pytest.raises(ValueError, match="device='cpu' is for backend='torch'"):
        backprop.compile(loss, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            backprop.compile(loss, backend="torch", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu():
    model, loss = _batch_loss("tanh")
    results = []
    for device in ("cpu", "cuda"):
        program = backprop.compile(loss, backend="torch", device=device)
        value = program.forward()
        program.backward(accumulate=False)
        results.append((value, [p.grad for p in model.parameters()]))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    assert np.allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-15)


# ---- fit and train ----------------------------------------------------------------------------


def _fit(compile, **options):
    model = MLP(2, [8, 1], activation="relu", output_activation="linear", seed=1)
    X, y = moons(40, seed=2)
    history = fit(
        model, X, y, epochs=5, optimizer="sgd", lr=0.2, progress=False, compile=compile, **options
    )
    return history, [p.data for p in model.parameters()]


def test_fit_passes_backend_and_device_through(monkeypatch):
    seen = []
    original = backprop.compiled.compile

    def spy(root, **options):
        seen.append((options.get("backend"), options.get("device")))
        return original(root, **options)

    monkeypatch.setattr(backprop.compiled, "compile", spy)
    h_t, w_t = _fit(True, backend="torch", device="cpu")
    assert seen and set(seen) == {("torch", "cpu")}
    h_n, w_n = _fit(True)
    assert w_t == pytest.approx(w_n, rel=1e-9, abs=1e-12)
    assert h_t.loss == pytest.approx(h_n.loss, rel=1e-9)
    assert h_t.accuracy == h_n.accuracy


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(compile=False, backend="torch"), "apply to compiled training"),
        (dict(compile=False, device="cpu"), "apply to compiled training"),
        (dict(compile="python", backend="torch"), "name different backends"),
        (dict(compile=True, backend="jax"), "unknown backend 'jax'"),
        (dict(compile=True, device="cpu"), "device='cpu' is for backend='torch'"),
        (dict(compile=True, backend="torch", device="gpu"), "unknown device 'gpu'"),
    ],
)
def test_fit_refuses_a_backend_or_device_that_cannot_apply(options, message):
    model = MLP(2, [4, 1], seed=0)
    before = [p.data for p in model.parameters()]
    X, y = moons(10, seed=0)
    with pytest.raises(ValueError, match=message):
        fit(model, X, y, epochs=1, progress=False, **options)
    assert [p.data for p in model.parameters()] == before


def test_train_compile_backend_torch_equals_numpy(tmp_path, capsys):
    from backprop.cli import main
    from backprop.serialize import load

    weights = {}
    for backend in ("numpy", "torch"):
        path = tmp_path / f"{backend}.json"
        argv = ["train", "--dataset", "moons", "--samples", "40", "--hidden", "8", "--epochs"]
        argv += ["5", "--compile", "--backend", backend, "--quiet", "--save", str(path)]
        assert main(argv) == 0
        weights[backend] = [p.data for p in load(path).parameters()]
    assert "compiled with torch" in capsys.readouterr().out
    assert weights["torch"] == pytest.approx(weights["numpy"], rel=1e-9, abs=1e-12)


def test_train_backend_without_compile_is_a_one_line_error(capsys):
    from backprop.cli import main

    assert main(["train", "--backend", "torch", "--epochs", "1", "--quiet"]) == 2
    assert "--backend applies to --compile" in capsys.readouterr().err


def test_train_backend_torch_says_what_is_missing(capsys, monkeypatch):
    import importlib.util

    from backprop.cli import main

    argv = ["train", "--compile", "--backend", "torch", "--epochs", "1", "--quiet"]
    if not torch.cuda.is_available():
        assert main(argv + ["--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert main(["train", "--compile", "--device", "cpu", "--epochs", "1", "--quiet"]) == 2
    assert "--device applies to --compile --backend torch" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "needs torch" in err
        and "pip install --break-system-packages '.[torch]' in the backprop" in err
    )
    assert "backprop[" not in err


def test_outputs_are_reported_as_by_numpy():
    rng = random.Random(3)
    model = MLP(2, [4, 1], activation="tanh", seed=3)
    xs = [[Value(rng.uniform(-1, 1)), Value(rng.uniform(-1, 1))] for _ in range(12)]
    scores = [model(x) for x in xs]
    loss = sum((s - 0.5) ** 2 for s in scores)
    reported = []
    for name in ("numpy", "torch"):
        program = backprop.compile(loss, backend=name, outputs=scores)
        program.forward()
        reported.append(program.output_data)
    assert reported[1].shape == (12,)
    assert np.allclose(reported[1], reported[0], rtol=1e-12, atol=0)
