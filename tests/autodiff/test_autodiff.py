"""grad, hessian, jvp (reverse.py, forward.py): every op to the third order and random graphs
against PyTorch (float64) and central differences. gradcheck is tested in test_checks.py,
detect_anomaly in test_anomaly.py, the sweep under them in test_sweep.py."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from catalog import CASES
from hypothesis import given, settings
from hypothesis import strategies as st

import backprop
from backprop import (
    MLP,
    Value,
    engine,
    grad,
    hessian,
    jvp,
    no_grad,
)

torch.set_default_dtype(torch.float64)

KINKS = {"relu", "abs", "sign", "relu_grad"}  # their derivatives jump at 0


def draw(case, rng):
    lo = 0.1 if case.positive else case.low
    while True:
        xs = [rng.uniform(lo, case.high) for _ in range(case.arity)]
        if case.name not in KINKS or min(abs(x) for x in xs) > 1e-2:
            return xs


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= abs_ + rel * max(abs(a), abs(b))


# ---- every op, every order up to 3 ----------------------------------------------------------


def ours_derivative(case, xs, path):
    """d^k case / d x[path[0]] ... d x[path[-1]] by repeated grad(create_graph=True)."""
    leaves = [Value(x) for x in xs]
    d = case.ours(*leaves)
    for i in path:
        (d,) = grad(d, leaves[i], create_graph=True, allow_unused=True)
        if d is None:
            return 0.0
    return d.data


def torch_derivative(case, xs, path):
    leaves = [torch.tensor(x, requires_grad=True) for x in xs]
    d = case.torch(*leaves)
    for i in path:
        if not d.requires_grad:
            return 0.0
        (d,) = torch.autograd.grad(d, leaves[i], create_graph=True, allow_unused=True)
        if d is None:
            return 0.0
    return d.item()


def paths(arity, order):
    return list(itertools.product(range(arity), repeat=order))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_second_and_third_derivatives_of_every_op_match_pytorch(case):
    rng = random.Random(case.name + "higher")
    for _ in range(6):
        xs = draw(case, rng)
        for order in (1, 2, 3):
            for path in paths(case.arity, order):
                ours, ref = ours_derivative(case, xs, path), torch_derivative(case, xs, path)
                assert close(ours, ref, 1e-9, 1e-12), (case.name, xs, path, ours, ref)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_op_at_every_order_up_to_3_matches_central_differences(case):
    rng = random.Random(case.name + "fd")
    for _ in range(4):
        xs = draw(case, rng)
        for order in (1, 2, 3):
            for path in paths(case.arity, order):
                *inner, last = path
                h = 1e-6 * max(1.0, abs(xs[last]))
                up, down = list(xs), list(xs)
                up[last] += h
                down[last] -= h
                fd = (ours_derivative(case, up, inner) - ours_derivative(case, down, inner)) / (
                    2 * h
                )
                exact = ours_derivative(case, xs, path)
                scale = max(1.0, abs(exact))
                assert abs(exact - fd) <= 2e-5 * scale, (case.name, xs, path, exact, fd)


def test_first_order_grad_with_a_graph_equals_backward_bit_for_bit():
    for case in CASES:
        xs = draw(case, random.Random(case.name))
        leaves = [Value(x) for x in xs]
        out = case.ours(*leaves)
        graphs = grad(out, leaves, create_graph=True)
        floats = grad(out, leaves)
        out.backward()
        assert [g.data for g in graphs] == [v.grad for v in leaves], case.name
        assert [g.data for g in floats] == [v.grad for v in leaves], case.name


def test_tanh_and_its_first_six_derivatives_match_pytorch():
    for x0 in (-2.0, -0.3, 0.0, 0.7, 1.9):
        x, tx = Value(x0), torch.tensor(x0, requires_grad=True)
        d, td = x.tanh(), tx.tanh()
        for order in range(1, 7):
            (d,) = grad(d, x, create_graph=True)
            (td,) = torch.autograd.grad(td, tx, create_graph=True)
            assert close(d.data, td.item(), 1e-8, 1e-10), (x0, order, d.data, td.item())


# ---- random graphs --------------------------------------------------------------------------


SMOOTH = [c for c in CASES if c.name not in KINKS]


def random_graph(data, n_leaves, cases=CASES):
    """A random program over the catalog: (case, operand indices) per node."""
    n_ops = data.draw(st.integers(1, 12))
    program = []
    for k in range(n_ops):
        case = cases[data.draw(st.integers(0, len(cases) - 1))]
        program.append(
            (case, [data.draw(st.integers(0, n_leaves + k - 1)) for _ in range(case.arity)])
        )
    return program


def run(program, leaves, apply):
    nodes = list(leaves)
    for case, args in program:
        nodes.append(apply(case, [nodes[i] for i in args]))
    return sum(nodes[len(leaves) :])


def torch_fn(program):
    def f(*leaves):
        return run(program, leaves, lambda c, a: c.torch(*a))

    return f


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_graphs_hessian_and_jvp_match_pytorch(data):
    n = data.draw(st.integers(1, 3))
    xs = data.draw(st.lists(st.floats(0.2, 2.0), min_size=n, max_size=n))
    ts = data.draw(st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n))
    program = random_graph(data, n, SMOOTH)  # at a kink an ulp's difference may flip a branch
    leaves = [Value(x) for x in xs]
    out = run(program, leaves, lambda c, a: c.ours(*a))
    f = torch_fn(program)
    txs = tuple(torch.tensor(x) for x in xs)
    if not math.isfinite(out.data):
        return
    ref_h = torch.autograd.functional.hessian(f, txs)
    ours_h = hessian(out, leaves, allow_unused=True)
    for i in range(n):
        for j in range(n):
            r = ref_h[i][j].item()
            if math.isfinite(r):
                assert close(ours_h[i][j], r, 1e-7, 1e-9), (program, i, j, ours_h, ref_h)
    _, ref_t = torch.func.jvp(f, txs, tuple(torch.tensor(t) for t in ts))
    ours_t = jvp(out, leaves, ts, allow_unused=True)
    if math.isfinite(ref_t.item()):
        assert close(ours_t.data, ref_t.item(), 1e-7, 1e-9), (program, ours_t, ref_t)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_random_graphs_third_order_along_a_direction_matches_pytorch(data):
    n = data.draw(st.integers(1, 3))
    xs = data.draw(st.lists(st.floats(0.2, 2.0), min_size=n, max_size=n))
    program = random_graph(data, n, SMOOTH)
    leaves = [Value(x) for x in xs]
    out = run(program, leaves, lambda c, a: c.ours(*a))
    tleaves = [torch.tensor(x, requires_grad=True) for x in xs]
    tout = torch_fn(program)(*tleaves)
    if not math.isfinite(out.data):
        return
    d, td = out, tout
    for _ in range(3):  # d/dx0 (d/dx_last (d/dx0 ...)): mixed partials along the leaves
        gs = grad(d, leaves, create_graph=True, allow_unused=True)
        d = sum(g for g in gs if g is not None) if any(g is not None for g in gs) else None
        if not td.requires_grad:
            assert d is None or d.data == 0.0 or not d._prev
            return
        tgs = torch.autograd.grad(td, tleaves, create_graph=True, allow_unused=True)
        tgs = [g for g in tgs if g is not None]
        if d is None or not tgs:
            return
        td = sum(tgs)
        if math.isfinite(td.item()):
            assert close(d.data, td.item(), 1e-7, 1e-9), (program, d.data, td.item())
        else:
            return


# ---- grad() ---------------------------------------------------------------------------------


def test_grad_leaves_dot_grad_alone_and_returns_fresh_values():
    x, y = Value(2.0), Value(3.0)
    x.grad = 5.0
    out = x * y + x
    gx, gy = grad(out, [x, y])
    assert (gx.data, gy.data) == (4.0, 2.0)
    assert x.grad == 5.0 and y.grad == 0.0 and out.grad == 0.0
    assert gx.is_leaf and gy.is_leaf


def test_grad_of_several_outputs_with_grad_outputs_like_torch():
    x = Value(0.3)
    a, b = x.exp(), x.sin() if hasattr(x, "sin") else x.tanh()
    (g,) = grad([a, b], x, grad_outputs=[2.0, -1.5])
    tx = torch.tensor(0.3, requires_grad=True)
    (tg,) = torch.autograd.grad([tx.exp(), tx.tanh()], tx, [torch.tensor(2.0), torch.tensor(-1.5)])
    assert g.data == pytest.approx(tg.item(), rel=1e-15)


def test_grad_with_respect_to_an_intermediate_node():
    x = Value(0.5)
    h = x * x
    out = h.tanh() + h * x
    gh, gx = grad(out, [h, x])
    tx = torch.tensor(0.5, requires_grad=True)
    th = tx * tx
    tgh, tgx = torch.autograd.grad(th.tanh() + th * tx, [th, tx])
    assert gh.data == pytest.approx(tgh.item(), rel=1e-15)
    assert gx.data == pytest.approx(tgx.item(), rel=1e-15)


def test_unused_input_is_an_error_unless_allowed():
    x, y = Value(1.0, label="x"), Value(2.0, label="y")
    out = x * 3
    with pytest.raises(ValueError, match=r"input 1 .*'y'.*allow_unused=True"):
        grad(out, [x, y])
    gx, gy = grad(out, [x, y], allow_unused=True)
    assert gx.data == 3.0 and gy is None


def test_grad_of_a_constant_gradient_is_a_value_and_unused_after():
    x = Value(1.5)
    (g,) = grad(x + 1, x, create_graph=True)
    assert isinstance(g, Value) and g.data == 1.0
    assert grad(g, x, allow_unused=True) == (None,)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((1.0, [Value(1.0)]), TypeError, "outputs must be a Value"),
        ((Value(1.0), "x"), TypeError, "inputs must be a Value"),
        ((Value(1.0), []), ValueError, "inputs is empty"),
        ((Value(1.0), [Value(1.0), 2.0]), TypeError, r"inputs\[1\] must be a Value, got float"),
        ((Value(1.0), Value(1.0), [1.0, 2.0]), ValueError, "grad_outputs has 2 entries"),
        ((Value(1.0), Value(1.0), "a"), TypeError, "grad_outputs must be numbers"),
    ],
)
def test_grad_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        grad(*args)


def test_create_graph_records_even_inside_no_grad_and_plain_grad_works_there():
    x = Value(0.7)
    y = x.tanh() * x
    with no_grad():
        (g,) = grad(y, x, create_graph=True)
        (plain,) = grad(y, x)
    (g2,) = grad(g, x)
    assert plain.data == g.data
    assert g2.data == pytest.approx(hessian(y, [x])[0][0], rel=1e-15)


def test_backward_create_graph_matches_torch():
    x, w = Value(0.4, label="x"), Value(-1.3, label="w")
    loss = (x * w).tanh() ** 2 + (w * w).exp()
    loss.backward(create_graph=True)
    assert isinstance(w.grad, Value) and isinstance(x.grad, Value)
    penalty = w.grad * w.grad + x.grad * x.grad
    x.grad = w.grad = 0.0
    penalty.backward()
    tx, tw = torch.tensor(0.4, requires_grad=True), torch.tensor(-1.3, requires_grad=True)
    tloss = (tx * tw).tanh() ** 2 + (tw * tw).exp()
    tloss.backward(create_graph=True)
    tpen = tw.grad * tw.grad + tx.grad * tx.grad
    tx.grad = tw.grad = None
    tpen.backward()
    assert x.grad == pytest.approx(tx.grad.item(), rel=1e-12)
    assert w.grad == pytest.approx(tw.grad.item(), rel=1e-12)


def test_backward_create_graph_accumulates_into_existing_grads():
    x = Value(2.0)
    x.grad = 1.0
    (x * x).backward(create_graph=True)
    assert isinstance(x.grad, Value) and x.grad.data == 5.0


def test_grad_and_jvp_run_the_engines_backward_checks():
    x = Value(1.0)
    y = x * x + 1

    def refuse(root):  # as compiled mode refuses a graph its Program replayed
        if root is y:
            raise RuntimeError("replayed")

    engine.backward_checks.append(refuse)
    try:
        for differentiate in (grad, lambda y, x: jvp(y, x, 1.0)):
            with pytest.raises(RuntimeError, match="replayed"):
                differentiate(y, x)
    finally:
        engine.backward_checks.remove(refuse)
    assert grad(y, x)[0].data == 2.0


# ---- hessian and jvp ------------------------------------------------------------------------


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def test_hessian_matches_torch_functional_hessian():
    for point in [(-1.2, 1.0), (0.3, 0.8), (1.0, 1.0)]:
        leaves = [Value(v) for v in point]
        ours = hessian(rosenbrock(*leaves), leaves)
        ref = torch.autograd.functional.hessian(rosenbrock, tuple(map(torch.tensor, point)))
        for i, j in itertools.product(range(2), range(2)):
            assert ours[i][j] == pytest.approx(ref[i][j].item(), rel=1e-13)
    assert isinstance(ours[0][0], float)


def test_hessian_of_an_mlp_matches_torch():
    model = MLP(2, [3, 1], seed=0)
    params = model.parameters()
    loss = (model([Value(0.5), Value(-0.2)]) - 1.0) ** 2
    ours = hessian(loss, params)

    def f(*ps):
        it = iter(ps)
        w1 = [[next(it) for _ in range(2)] + [next(it)] for _ in range(3)]
        hidden = [(w[0] * 0.5 + w[1] * -0.2 + w[2]).tanh() for w in w1]
        out = (sum(next(it) * h for h in hidden) + next(it)).tanh()
        return (out - 1.0) ** 2

    ref = torch.autograd.functional.hessian(f, tuple(torch.tensor(p.data) for p in params))
    for i, j in itertools.product(range(len(params)), repeat=2):
        assert ours[i][j] == pytest.approx(ref[i][j].item(), rel=1e-9, abs=1e-12)


def test_newton_on_rosenbrock_converges_to_the_minimum():
    x = [-1.2, 1.0]
    for _ in range(8):
        leaves = [Value(v) for v in x]
        f = rosenbrock(*leaves)
        g = [d.data for d in grad(f, leaves)]
        (a, b), (c, d) = hessian(f, leaves)
        det = a * d - b * c
        x = [x[0] - (d * g[0] - b * g[1]) / det, x[1] - (a * g[1] - c * g[0]) / det]
    assert x == pytest.approx([1.0, 1.0], abs=1e-10)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_jvp_of_every_op_matches_torch_func_jvp(case):
    rng = random.Random(case.name + "jvp")
    for _ in range(10):
        xs = draw(case, rng)
        ts = [rng.uniform(-2, 2) for _ in xs]
        leaves = [Value(x) for x in xs]
        ours = jvp(case.ours(*leaves), leaves, ts)
        if case.name == "relu_grad":  # its torch twin calls autograd.grad, which func.jvp refuses
            grads = grad(case.ours(*leaves), leaves)
            ref = sum(g.data * t for g, t in zip(grads, ts))
            assert close(ours.data, ref, 1e-14, 1e-14)
            continue
        _, ref = torch.func.jvp(
            case.torch, tuple(map(torch.tensor, xs)), tuple(map(torch.tensor, ts))
        )
        assert close(ours.data, ref.item(), 1e-12, 1e-14), (case.name, xs, ts, ours, ref)


def test_jvp_equals_grad_dot_tangent_and_counts_as_one_sweep():
    x, y, z = Value(0.3), Value(-0.7), Value(1.1)
    h = (x * y).tanh()
    out = h * z + (h + x).exp() / z
    ts = [0.5, -1.0, 2.0]
    ours = jvp(out, [x, y, z], ts)
    grads = [g.data for g in grad(out, [x, y, z])]
    assert ours.data == pytest.approx(sum(g * t for g, t in zip(grads, ts)), rel=1e-14)
    # an intermediate input: its tangent adds to what flows into it, as grad's semantics give
    both = jvp(out, [x, h], [1.0, 1.0])
    gx, gh = grad(out, [x, h])
    assert both.data == pytest.approx(gx.data + gh.data, rel=1e-14)


def test_jvp_of_several_outputs_and_a_graph_of_tangents():
    x = Value(0.4)
    a, b = x.exp(), x * x * x
    ta, tb = jvp([a, b], x, 1.0)
    assert (ta.data, tb.data) == pytest.approx((math.exp(0.4), 3 * 0.16), rel=1e-15)
    t = jvp(b, x, 1.0, create_graph=True)  # 3x^2 as a graph: differentiate it again
    assert grad(t, x)[0].data == pytest.approx(6 * 0.4, rel=1e-15)


def test_jvp_errors():
    x = Value(1.0)
    with pytest.raises(ValueError, match="tangents has 2 entries"):
        jvp(x * 2, x, [1.0, 2.0])
    with pytest.raises(TypeError, match="tangents"):
        jvp(x * 2, x, "a")
    with pytest.raises(ValueError, match="not used"):
        jvp(x * 2, Value(3.0), 1.0)
    assert jvp(Value(5.0) * 2, x, 1.0, allow_unused=True).data == 0.0


def test_hessian_rejects_bad_arguments_and_fills_zeros():
    x, y = Value(2.0), Value(3.0)
    with pytest.raises(TypeError, match="hessian"):
        hessian([x * y], [x])
    with pytest.raises(ValueError, match="not used"):
        hessian(x * 2, [x, y])
    assert hessian(x * 2 + y, [x, y]) == [[0.0, 0.0], [0.0, 0.0]]
    assert hessian(x * 2, [x, y], allow_unused=True) == [[0.0, 0.0], [0.0, 0.0]]


# ---- compiled replay of gradient graphs -----------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_compiled_replays_a_gradient_penalty_loss_like_eager(activation):
    model = MLP(2, [6, 6, 1], activation=activation, output_activation="linear", seed=3)
    rng = random.Random(0)
    xs = [[Value(rng.uniform(-1, 1)), Value(rng.uniform(-1, 1))] for _ in range(6)]
    ys = [rng.choice([-1.0, 1.0]) for _ in xs]

    def loss_of():
        data_loss = sum((1 - y * model(x)).relu() for x, y in zip(xs, ys))
        penalty = 0
        for x in xs:  # a gradient penalty, (|d score / d x|^2 - 1)^2
            g1, g2 = grad(model(x), x, create_graph=True)
            penalty = penalty + (g1 * g1 + g2 * g2 - 1) ** 2
        return data_loss + 0.5 * penalty + abs(model.parameters()[0])

    program = backprop.compile(loss_of())
    assert ("relu_grad" in program.listing()) == (activation == "relu")
    patterns = set()  # which hidden units are active: it must change, or the test proves little
    for _ in range(4):
        patterns.add(tuple(h.data > 0 for x in xs for h in model.layers[0](x)))
        value = program.forward()
        program.backward(accumulate=False)
        compiled = [p.grad for p in model.parameters()]
        model.zero_grad()
        eager_loss = loss_of()
        eager_loss.backward()
        assert value == pytest.approx(eager_loss.data, rel=1e-9)
        for c, e in zip(compiled, (p.grad for p in model.parameters())):
            assert c == pytest.approx(e, rel=1e-8, abs=1e-10)
        for p in model.parameters():  # big moves: relu patterns and signs change between steps
            p.data += rng.uniform(-0.5, 0.5)
    assert len(patterns) > 1
