"""The optional native kernels (compiled/_native.c) against the numpy code they stand in for.

Each kernel computes what the op's rule computes, so a program replayed with them must give
the numbers the numpy backend gives without them, bit for bit, in float64 and float32, and a
machine without the kernels must still compile, with a one-line notice.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import backprop
from backprop import MLP, Value
from backprop.compiled import kernels, numpy_backend

native = numpy_backend.native_kernels()
needs_native = pytest.mark.skipif(native is None, reason="the native kernels are not built")


def test_the_kernels_are_built_where_a_c_compiler_is():
    # pip install builds them with the system compiler; this machine has one and the Python
    # headers, so a missing module means the build broke, not that it was skipped
    has_compiler = shutil.which(os.environ.get("CC", "cc")) is not None
    has_headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if not (has_compiler and has_headers):
        pytest.skip("no C compiler or no Python headers here")
    assert native is not None


def moons_like(points, seed, activation="relu", sizes=(2, [8, 8, 1])):
    rng = random.Random(seed)
    model = MLP(sizes[0], sizes[1], activation=activation, output_activation="linear", seed=seed)
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(sizes[0])] for _ in range(points)]
    ys = [rng.choice([-1.0, 1.0]) for _ in range(points)]
    scores = [model(x) for x in xs]
    losses = [(1 + -y * s).relu() for y, s in zip(ys, scores)]
    root = sum(losses) * (1.0 / points) + 1e-4 * sum(p * p for p in model.parameters())
    return model, xs, root


def replay(root, monkeypatch, use_native, steps=3, **options):
    """forward/backward/SGD a few times; every loss and the final gradients and parameters."""
    monkeypatch.setattr(kernels, "_native_state", [native if use_native else None])
    program = backprop.compile(root, **options)
    losses = []
    for _ in range(steps):
        losses.append(program.forward())
        program.backward(accumulate=False)
        program.parameter_data -= 0.05 * program.parameter_grad
    grads, data = program.parameter_grad.copy(), program.parameter_data.copy()
    return losses, grads, data, program.executor.native_steps()


def bits(a):
    """The numbers' bit patterns, every nan as one (a nan's sign and payload are not maths:
    x86 gives -nan for inf - inf, and an operand's nan passes through as it was)."""
    a = np.array(a, dtype=np.float64, ndmin=1)
    return np.where(np.isnan(a), -1, a.view(np.int64))


@needs_native
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_relu_network_replays_bit_for_bit_with_and_without_the_kernels(dtype, seed, monkeypatch):
    model, xs, root = moons_like(40, seed)
    params = model.parameters()
    start = [p.data for p in params]
    runs = []
    for use_native in (True, False):
        for p, d in zip(params, start):
            p.data = d
        runs.append(replay(root, monkeypatch, use_native, parameters=params, dtype=dtype))
    (l1, g1, d1, k1), (l2, g2, d2, k2) = runs
    assert k1 == 3 and k2 == 0  # both hidden layers and the hinge's relu use the kernels
    assert (bits(l1) == bits(l2)).all()
    assert (bits(g1) == bits(g2)).all() and (bits(d1) == bits(d2)).all()
    assert np.abs(g1).sum() > 0  # a real gradient, not two zero arrays


@needs_native
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_the_kernels_agree_on_nan_inf_signed_zeros_and_every_path(dtype, accumulate, monkeypatch):
    # relu of a nan stays nan; its derivative passes g where c is nan and gives 0 at c = 0
    x = [Value(v) for v in [math.nan, math.inf, -math.inf, 0.0, -0.0, 2.0, -3.0, 1e-300]]
    k = Value(0.5)
    relus = [(xi * k).relu() for xi in x]  # a contiguous run: the kernels' case
    shared = [(xi * k).relu() * 2 + r for xi, r in zip(x, relus)]  # gradients added, not stored
    consts = [Value(c).relu() for c in (1.0, -1.0, 3.0, -2.0, 0.5, 4.0, -7.0, 9.0)]
    gathered = [(x[i] * x[(i * 3) % 8]).relu() for i in range(8)]  # a gathered input
    # tanh's derivative near |y| = 1, where 1 - y*y cancels, and sigmoid's at its ends
    near_one = [Value(v) for v in [0.5, 3.0, 9.0, 19.0, -19.5, 25.0, -0.25, 1e-9]]
    curves = [xi.tanh() + xi.sigmoid() for xi in x + near_one]  # leaves: a contiguous run
    root = sum(shared) + sum(c * k for c in consts) + sum(g * k for g in gathered) + sum(curves)
    leaves = x + near_one + [k]
    root.backward()  # eager mode's numbers, which both replays must give
    expected = [v.grad for v in leaves]
    runs = []
    for use_native in (True, False):
        monkeypatch.setattr(numpy_backend, "TINY", 0)  # eight nodes: arrays, not Python floats
        monkeypatch.setattr(kernels, "_native_state", [native if use_native else None])
        program = backprop.compile(root, parameters=leaves, dtype=dtype)
        value = program.forward()
        program.parameter_grad[...] = 0.25  # what accumulate=True adds to
        program.backward(accumulate=accumulate)
        runs.append((value, program.parameter_grad.copy(), program.executor))
    (v1, g1, ex1), (v2, g2, ex2) = runs
    assert bits(v1) == bits(v2)
    differ = np.flatnonzero(bits(g1) != bits(g2))
    assert not differ.size, [(leaves[i].label or i, g1[i], g2[i]) for i in differ]
    # the constants' relu (forward only), tanh and sigmoid (backward, added into the leaves),
    # and the products' relu (both, stored into the products' slots)
    assert ex1.native_steps() == 4 and ex2.native_steps() == 0, ex1.describe()
    if dtype == "float32":
        return
    # and eager mode's, nan for nan and inf for inf; to 1e-6 only, since numpy's tanh and exp
    # are not libm's to the last digit, and 1 - y*y near |y| = 1 magnifies that digit
    for e, g in zip(expected, g1):
        g -= 0.25 if accumulate else 0.0
        assert math.isclose(e, g, rel_tol=1e-6) or (math.isnan(e) and math.isnan(g)), (e, g)


@needs_native
def test_strided_slots_keep_numpy_s_rule(monkeypatch):
    # relu over every other leaf reads (and sends gradients to) a strided grid of slots: no
    # kernel takes that, so the step stays numpy's, with numpy's numbers
    xs = [Value(v) for v in [-2.0, 1.0, 0.5, -1.0, 3.0, 2.0, -0.5, 4.0, 1.5, -3.0]]
    root = sum(x.relu() * (i + 1) for i, x in enumerate(xs[::2])) + sum(xs[1::2])
    runs = []
    for use_native in (True, False):
        monkeypatch.setattr(numpy_backend, "TINY", 0)
        monkeypatch.setattr(kernels, "_native_state", [native if use_native else None])
        program = backprop.compile(root, parameters=xs)
        program.forward()
        program.backward(accumulate=False)
        runs.append((program.parameter_grad.copy(), program.executor.native_steps()))
    (g1, k1), (g2, k2) = runs
    assert k1 == 0 and k2 == 0
    assert (bits(g1) == bits(g2)).all() and g1.tolist()[:4] == [0.0, 1.0, 2.0, 1.0]


@needs_native
def test_a_bound_kernel_rejects_bad_buffers_and_arguments():
    a, b, c = np.zeros(8), np.zeros(8), np.zeros(8)
    kernel = native.backward("relu", a, b, c, False)
    assert "relu_backward(store) x8, float64" in repr(kernel)
    assert "tanh_backward(add) x8, float32" in repr(
        native.backward("tanh", *(v.astype(np.float32) for v in (a, b, c)), True)
    )
    with pytest.raises(ValueError, match="no backward kernel for op 'exp'"):
        native.backward("exp", a, b, c, False)
    with pytest.raises(TypeError, match="takes an op name, 3 buffers"):
        native.backward("relu", a, b, c)
    with pytest.raises(TypeError, match="no arguments"):
        kernel(1)
    with pytest.raises(ValueError, match="float32 items"):
        native.backward("sigmoid", a, b.astype(np.float32), c, True)
    with pytest.raises(ValueError, match="has 4"):
        native.relu_forward(a, c[:4])
    with pytest.raises(TypeError, match="not float64 or float32"):
        native.relu_forward(a.astype(np.int64), c)
    with pytest.raises(ValueError, match="contiguous"):
        native.relu_forward(a[::2], c[:4])
    fresh = np.zeros(8)
    before = sys.getrefcount(fresh)
    with pytest.raises(ValueError, match="overlaps"):
        native.relu_forward(fresh, fresh)
    assert sys.getrefcount(fresh) == before  # a failed bind let go of the buffers it had taken
    assert sys.getrefcount(b) == before + 1  # while a live kernel (bound above) holds b
    a = np.zeros(8)
    with pytest.raises(ValueError, match="read-only"):
        frozen = np.zeros(8)
        frozen.flags.writeable = False
        native.relu_forward(a, frozen)
    with pytest.raises(TypeError, match="takes 2 buffers"):
        native.relu_forward(a)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_without_a_c_compiler_the_install_goes_on_and_replay_says_so_once(tmp_path):
    # the package built and installed where the compiler is missing: no extension, a wheel
    # all the same, and a compiled program that gives the kernels' numbers with numpy alone
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("*.so", "__pycache__", "build", "*.egg-info")
    shutil.copytree(os.path.join(ROOT, "src"), source / "src", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    env = dict(os.environ, CC=str(tmp_path / "no-such-cc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("backprop*.whl")  # backprop_toolkit-...whl
    target = tmp_path / "site"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert not list(target.glob("backprop/compiled/_native*.so"))
    script = textwrap.dedent(
        """
        import random
        import backprop
        from backprop import MLP, Value
        assert backprop.__file__.startswith(%r), backprop.__file__
        rng = random.Random(0)
        model = MLP(2, [8, 1], seed=0)
        xs = [[Value(rng.uniform(-1, 1)) for _ in range(2)] for _ in range(30)]
        root = sum(model(x).relu() for x in xs)
        for _ in range(2):  # a second compile says nothing more
            program = backprop.compile(root, parameters=model.parameters())
        print(repr(program.forward()))
        program.backward(accumulate=False)
        print(repr(program.parameter_grad.tolist()))
        """
        % str(target)
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(target)),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    # compiled mode's one line (the engine may say its own of its native part)
    notice = [line for line in ran.stderr.splitlines() if "native kernels" in line]
    assert len(notice) == 1 and "native kernels unavailable" in notice[0], ran.stderr
    assert "uses numpy alone" in notice[0]
    value, grads = ran.stdout.splitlines()
    rng = random.Random(0)  # the same program here, with the kernels when they are built
    model = MLP(2, [8, 1], seed=0)
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(2)] for _ in range(30)]
    root = sum(model(x).relu() for x in xs)
    program = backprop.compile(root, parameters=model.parameters())
    assert repr(program.forward()) == value
    program.backward(accumulate=False)
    assert repr(program.parameter_grad.tolist()) == grads


def test_backprop_native_0_turns_the_kernels_off_without_a_notice():
    script = "from backprop.compiled import numpy_backend as nb; print(nb.native_kernels())"
    env = dict(os.environ, BACKPROP_NATIVE="0")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "None" and done.stderr == ""


_MAKERS = [
    lambda a, b: a + b,
    lambda a, b: a * a,
    lambda a, b: a.tanh(),
    lambda a, b: (a * 0.5).exp(),
    lambda a, b: a - b * 2.0,
    lambda a, b: a**2,
    lambda a, b: 2.0**a,
]


def _random_graph(rng: random.Random):
    nodes = [Value(rng.uniform(-1, 1)) for _ in range(rng.randint(1, 6))]
    for _ in range(rng.randint(0, 60)):
        nodes.append(rng.choice(_MAKERS)(rng.choice(nodes), rng.choice(nodes[-5:])))
    return nodes[-1]


@needs_native
def test_the_native_trace_records_the_tape_pythons_trace_records(monkeypatch):
    """trace_graph (C) against the sort and lookups of tape.trace in Python and numpy: the
    same nodes in the same order, the same operand positions and ids, on random graphs with
    shared nodes (x*x, a node used by several), a deep chain, and a root that is a leaf."""
    from backprop.compiled import tape

    assert tape._native() is not None
    rng = random.Random(7)
    roots = [_random_graph(rng) for _ in range(150)] + [Value(3.0)]
    chain = Value(0.5)
    for _ in range(50_000):  # deeper than any recursion limit
        chain = chain * 0.999 + 1e-3
    roots.append(chain)
    with_c = [tape.trace(r) for r in roots]
    monkeypatch.setattr(tape, "_NATIVE", [None])
    for r, t in zip(roots, with_c):
        p = tape.trace(r)
        assert list(t.codes) == list(p.codes) and t.leaf_ids == p.leaf_ids
        assert all(x is y for x, y in zip(t.leaves, p.leaves))
        assert [list(c) for c in t.columns] == [list(c) for c in p.columns]
        assert t.node_ids.tolist() == p.node_ids.tolist()
        assert t.labels == p.labels
        assert bits(list(t.args)).tolist() == bits(list(p.args)).tolist()
    with pytest.raises(TypeError):
        native.trace_graph(chain)
    odd = Value(1.0) + 2.0
    odd._b = 5  # not a Value: the C walk asks getattr and fails cleanly
    with pytest.raises(AttributeError):
        native.trace_graph(odd, Value)


@needs_native
def test_leaves_numbers_are_read_and_written_in_c_as_in_python():
    """read_numbers/write_numbers against getattr/setattr: exact floats and ints in one pass;
    anything else (None, a bool, a numpy scalar, a str) reported by index, for Python to read
    (and to name, if it is not a number); a subclass goes through getattr."""
    from backprop.compiled.jit import JitResult

    values = [Value(float(i) / 3) for i in range(50)]
    values[7].grad = 3  # an int
    out = np.empty(50)
    assert native.read_numbers(values, Value, "data", out) == -1
    assert out.tolist() == [v.data for v in values]
    assert native.read_numbers(values, Value, "grad", out) == -1 and out[7] == 3.0
    for k, bad in [(3, None), (4, True), (5, np.float64(2.0)), (6, "2.5"), (9, 10**400)]:
        values[k].data = bad
        assert native.read_numbers(values, Value, "data", out) == k
        values[k].data = 1.0
    numbers = np.linspace(-1, 1, 50)
    native.write_numbers(values, Value, "grad", numbers)
    assert [v.grad for v in values] == numbers.tolist()
    assert all(type(v.grad) is float for v in values)
    odd = JitResult.__new__(JitResult)
    odd.data, odd.grad = 2.0, 0.0
    native.write_numbers([odd], Value, "grad", np.array([5.0]))
    assert native.read_numbers([odd], Value, "grad", out[:1]) == -1 and out[0] == 5.0
    with pytest.raises(ValueError):
        native.read_numbers(values, Value, "data", np.empty(3))
    x, w = Value(2.0, label="x"), Value(-3.0, label="w")
    program = backprop.compile((x * w).tanh(), parameters=[x, w])
    w.data = None
    with pytest.raises(TypeError, match=r"\(w\) has .data = None"):
        program.forward()
