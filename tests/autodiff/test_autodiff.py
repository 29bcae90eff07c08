"""grad, hessian, jvp, gradcheck, gradgradcheck, detect_anomaly: against PyTorch (float64),
central differences and planted bugs."""

from __future__ import annotations

import gc
import inspect
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
    AnomalyError,
    GradcheckError,
    Value,
    detect_anomaly,
    engine,
    grad,
    gradcheck,
    gradgradcheck,
    hessian,
    jvp,
    no_grad,
    ops,
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


# ---- gradcheck and gradgradcheck ------------------------------------------------------------


@pytest.fixture
def planted_rule():
    """Swap one op's backward rule for a wrong one, and put it back afterwards."""
    saved = []

    def plant(op: ops.Op, rule):
        saved.append((op, op.backward))
        object.__setattr__(op, "backward", rule)

    yield plant
    for op, rule in reversed(saved):
        object.__setattr__(op, "backward", rule)


def neuron(x, w, b):
    h = x * w + b
    h.label = "h"
    o = h.tanh()
    o.label = "o"
    return (o * x).exp()


def test_gradcheck_passes_on_every_op_and_on_a_neuron():
    for case in CASES:
        xs = draw(case, random.Random(case.name + "gc"))
        assert gradcheck(case.ours, xs), case.name
        assert gradgradcheck(case.ours, xs), case.name
    assert gradcheck(neuron, [0.5, -1.2, 0.3])
    assert gradgradcheck(neuron, [0.5, -1.2, 0.3])


def test_gradcheck_catches_a_planted_rule_and_names_the_node(planted_rule):
    planted_rule(ops.TANH, lambda m, g, out, a: (g * (1.0 + out * out),))  # sign flipped
    inputs = [Value(0.5, label="x"), Value(-1.2, label="w"), Value(0.3, label="b")]
    with pytest.raises(GradcheckError) as caught:
        gradcheck(neuron, inputs)
    err = caught.value
    assert err.input == 0 and err.node is not None and err.node.label == "o"
    assert err.node._fn is ops.TANH
    text = str(err)
    assert "input 0 ('x')" in text and "node 'o', op tanh" in text
    assert repr(err.node_analytic) in text and repr(err.node_numeric) in text
    assert err.node_analytic == pytest.approx(1 + math.tanh(0.5 * -1.2 + 0.3) ** 2)
    assert err.node_numeric == pytest.approx(1 - math.tanh(0.5 * -1.2 + 0.3) ** 2, rel=1e-6)
    assert gradcheck(neuron, inputs, raise_exception=False) is False


def test_gradgradcheck_catches_a_rule_right_only_at_first_order(planted_rule):
    # float(out) is the number in every namespace: in a gradient graph the derivative is then
    # a constant, so the first order is right and the second is wrong
    planted_rule(ops.TANH, lambda m, g, out, a: (g * (1.0 - float(out) ** 2),))
    assert gradcheck(neuron, [0.5, -1.2, 0.3])
    with pytest.raises(GradcheckError, match=r"second derivative.*\n.*node 'o', op tanh") as caught:
        gradgradcheck(neuron, [0.5, -1.2, 0.3])
    assert caught.value.node.label == "o"


def test_gradcheck_without_a_wrong_node_blames_the_function():
    def branchy(x):  # a Python branch on .data: each side is right, the whole is not smooth
        return x * 2 if x.data > 0.5 else x * 0 + 1.0

    with pytest.raises(GradcheckError, match="Every node's local derivative agrees") as caught:
        gradcheck(branchy, [0.5 + 1e-7])
    assert caught.value.node is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fn": 3}, TypeError, "fn must be callable"),
        ({"inputs": []}, ValueError, "inputs is empty"),
        ({"inputs": ["a"]}, TypeError, r"inputs\[0\] must be a number"),
        ({"eps": 0.0}, ValueError, "eps must be > 0"),
        ({"atol": -1.0}, ValueError, "atol must be >= 0"),
        ({"rtol": float("nan")}, TypeError, "rtol must be a finite number"),
        ({"fn": lambda x: 3.0}, TypeError, "fn must return a Value"),
    ],
)
def test_gradcheck_rejects_bad_arguments(kwargs, error, match):
    args = {"fn": lambda x: x * x, "inputs": [1.0], **kwargs}
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(error, match=match):
            check(**args)


# ---- detect_anomaly -------------------------------------------------------------------------


def buried_log(x):
    h = (x * 2).tanh() + 1
    bad = (h - 3).log()  # the line detect_anomaly must name: log of a negative number
    return (bad * h).exp()


def test_detect_anomaly_names_the_line_of_a_buried_log_of_a_negative_number():
    line = next(
        i for i, text in enumerate(inspect.getsource(buried_log).splitlines()) if "bad = " in text
    )
    line += buried_log.__code__.co_firstlineno
    with detect_anomaly():
        with pytest.raises(AnomalyError) as caught:
            buried_log(Value(0.3))
    text = str(caught.value)
    assert "log" in text and "nan" in text
    assert f"test_autodiff.py:{line} in buried_log" in text
    assert "bad = (h - 3).log()" in text
    assert buried_log(Value(0.3)).data != buried_log(Value(0.3)).data  # outside: nan, no error


def test_detect_anomaly_names_the_node_where_backward_first_makes_inf():
    x = Value(0.0, label="x")
    with detect_anomaly():
        r = x.sqrt()  # finite forward (0), infinite derivative 1 / (2 sqrt(0))
        r.label = "r"
        loss = r * 3 + x
        with pytest.raises(AnomalyError) as caught:
            loss.backward()
    text = str(caught.value)
    assert "backward of sqrt" in text and "'r'" in text and "inf" in text
    assert "test_autodiff.py" in text and "r = x.sqrt()" in text
    with pytest.raises(AnomalyError, match="backward of sqrt"):
        with detect_anomaly():
            grad(loss, x)
    loss.backward()  # outside: inf, no error
    assert x.grad == math.inf


def test_detect_anomaly_names_a_line_through_library_code():
    model = MLP(2, [2, 1], seed=0)
    with detect_anomaly() as anomaly:
        out = model([Value(1.0), Value(2.0)])
    where = anomaly.where(out)
    assert where is not None and "test_autodiff.py" in where and "model([" in where
    assert "nn.py" in where  # the library frame it came through


def test_detect_anomaly_is_off_again_after_the_block_even_after_an_error():
    assert engine._watcher is None and engine._open_blocks == 0
    with pytest.raises(AnomalyError):
        with detect_anomaly() as outer:
            assert engine._watcher is outer and engine._open_blocks == 1
            with detect_anomaly(check_nan=False):
                quiet = Value(-1.0).log()  # nested, not checking: no error, but recorded
            assert outer.where(quiet) is not None
            Value(-1.0).log()
    # outside, making a node tests engine._open_blocks (0) and nothing else
    assert engine._watcher is None and engine._open_blocks == 0
    assert outer.where(quiet) is not None  # the record outlives the block


def test_detect_anomaly_checks_inside_no_grad_and_leaves_finite_work_alone():
    with detect_anomaly():
        assert (Value(2.0) * 3).data == 6.0
        assert math.isnan((Value(float("nan")) + 1).data)  # nan in, nan out: not made here
        with no_grad(), pytest.raises(AnomalyError, match="div"):
            Value(1.0) / 0.0
    with pytest.raises(TypeError, match="check_nan"):
        detect_anomaly(check_nan="yes")


def test_every_op_method_is_watched_by_detect_anomaly():
    with detect_anomaly() as anomaly:
        for case in CASES:
            leaves = [Value(0.7) for _ in range(case.arity)]
            out = case.ours(*leaves)
            assert anomaly.where(out) is not None, case.name


# ---- the pieces under it ------------------------------------------------------------------


def test_comparisons_read_data_and_equality_stays_identity():
    a, b = Value(1.0), Value(2.0)
    assert a < b and a <= 1.0 and b > 1 and b >= Value(2.0) and not (a > b)
    assert max([a, b]) is b and sorted([b, a]) == [a, b]
    assert Value(1.0) != Value(1.0) and a == a and len({a, Value(1.0)}) == 2
    with pytest.raises(TypeError):
        assert a < "x"


def test_every_rule_run_with_graph_gives_the_float_rules_numbers():
    for case in CASES:
        xs = draw(case, random.Random(case.name + "graph"))
        out = case.ours(*[Value(x) for x in xs])
        fn, operands = out._fn, out._prev
        extra = (out._arg,) if fn.has_arg else ()
        floats = fn.backward(ops.SCALAR, 0.75, out.data, *[v.data for v in operands], *extra)
        graphs = fn.backward(engine.GRAPH, Value(0.75), out, *operands, *extra)
        assert [g.data if isinstance(g, Value) else g for g in graphs] == list(floats), case.name


def test_graph_node_makes_every_op_from_its_row_as_the_value_methods_do():
    # GRAPH.node is how a rule builds an op that has no operator (relu_grad); it must make the
    # same node as the Value method for every op: the same data, operands and constant
    for case in CASES:
        xs = draw(case, random.Random(case.name + "node"))
        operands = [Value(x) for x in xs]
        ref = case.ours(*operands)
        fn = ref._fn
        extra = (ref._arg,) if fn.has_arg else ()
        made = engine.GRAPH.node(fn, *ref._prev, *extra)
        assert (made._fn, made._prev, made._arg) == (fn, ref._prev, ref._arg), case.name
        assert made.data == ref.data or (math.isnan(made.data) and math.isnan(ref.data))
    lifted = engine.GRAPH.node(ops.POWC, 3.0, 2.0)  # a number becomes a leaf; k stays a float
    assert (lifted.data, lifted._arg, lifted._a.data) == (9.0, 2.0, 3.0)


def test_hessian_rejects_bad_arguments_and_fills_zeros():
    x, y = Value(2.0), Value(3.0)
    with pytest.raises(TypeError, match="hessian"):
        hessian([x * y], [x])
    with pytest.raises(ValueError, match="not used"):
        hessian(x * 2, [x, y])
    assert hessian(x * 2 + y, [x, y]) == [[0.0, 0.0], [0.0, 0.0]]
    assert hessian(x * 2, [x, y], allow_unused=True) == [[0.0, 0.0], [0.0, 0.0]]


def test_detect_anomaly_checks_a_create_graph_backward_too():
    x = Value(0.0, label="x")
    with detect_anomaly():
        y = x.sqrt() * 2
        with pytest.raises(AnomalyError, match="backward of sqrt"):
            y.backward(create_graph=True)
        z = x * x + 1
        z.backward(create_graph=True)  # fine: no error, and .grad is a graph
    assert isinstance(x.grad, Value)


def test_gradient_graphs_make_no_reference_cycles():
    import gc

    gc.collect()
    gc.disable()
    try:
        xs = [Value(random.random()) for _ in range(5)]
        out = sum((x * x).tanh() for x in xs)
        grads = grad(out, xs, create_graph=True)
        second = grad(sum(grads), xs)
        del out, grads, second
        assert gc.collect() == 0  # freed by reference counting alone
    finally:
        gc.enable()


def test_gradcheck_at_a_kink_names_the_kinked_node():
    def f(x):
        h = x * 2
        h.label = "h"
        r = h.relu()
        r.label = "r"
        return r + x

    with pytest.raises(GradcheckError, match=r"node 'r', op relu .* is at a kink") as caught:
        gradcheck(f, [0.0])
    assert caught.value.node is None  # no rule is wrong


def test_a_gradient_graph_does_not_wait_in_the_young_generation():
    """The sweep's new nodes move to the oldest generation, so the first allocation after it
    does not run a collection over all of them; a program's own gc.freeze() is left alone."""
    xs = [Value(0.1 * k) for k in range(300)]
    loss = sum((x * x).tanh() for x in xs)
    collections = []

    def seen(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(seen)
    try:
        grads = grad(loss, xs, create_graph=True)  # about 2,000 new nodes
    finally:
        gc.callbacks.remove(seen)
    assert collections == [], collections
    assert gc.get_count()[0] < 100, gc.get_count()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        grad(grads[0], xs, allow_unused=True, create_graph=True)
        assert gc.get_freeze_count() == frozen  # nothing of the program's unfrozen
    finally:
        gc.unfreeze()
