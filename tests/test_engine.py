"""Value and backward(): every op against central differences and PyTorch (float64)."""

from __future__ import annotations

import gc
import math
import random
import sys
import threading

import numpy as np
import pytest
import torch
from catalog import CASES
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from backprop import Value, is_grad_enabled, no_grad
from backprop.ops import OPS

torch.set_default_dtype(torch.float64)


def run_ours(case, xs):
    leaves = [Value(x) for x in xs]
    out = case.ours(*leaves)
    out.backward()
    return out.data, [v.grad for v in leaves]


def run_torch(case, xs):
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = case.torch(*leaves)
    out.backward()
    return out.item(), [0.0 if v.grad is None else v.grad.item() for v in leaves]


def central_difference(case, xs, i, h=1e-6):
    up, down = list(xs), list(xs)
    up[i] += h
    down[i] -= h
    return (case.ours(*map(Value, up)).data - case.ours(*map(Value, down)).data) / (2 * h)


def draw(case, rng):
    lo = 0.1 if case.positive else case.low
    return [rng.uniform(lo, case.high) for _ in range(case.arity)]


def same(a: float, b: float, rel: float = 0.0) -> bool:
    """Equal, both nan, or within rel; rel=0 means bit for bit."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return rel > 0 and abs(a - b) <= rel * max(abs(a), abs(b))


# ---- every op -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_gradient_matches_central_differences(case):
    rng = random.Random(case.name)
    for _ in range(20):
        xs = draw(case, rng)
        if case.name in ("relu", "abs", "sign", "relu_grad") and abs(xs[-1]) < 1e-3:
            continue  # the kink
        _, grads = run_ours(case, xs)
        for i in range(case.arity):
            fd = central_difference(case, xs, i)
            assert grads[i] == pytest.approx(fd, rel=1e-6, abs=1e-6), (case.name, xs, i)


# Arithmetic is IEEE, so it agrees bit for bit. Transcendental functions come from different
# libm builds (CPython's is glibc, PyTorch's CPU kernels use SLEEF): values may differ by an ulp
# or two, and torch's sqrt is not even correctly rounded. So the rule is: values within 2 ulps,
# and wherever the values agree exactly, the gradients agree exactly too, because every
# derivative is computed with PyTorch's own formula. Except where PyTorch rewrites the
# expression itself: 1/x becomes reciprocal(x), x**0.5 sqrt(x), x**3 x*x*x.
REWRITTEN_BY_TORCH = {"rdiv", "pow_frac", "cube", "pow"}
ULP2 = 4.5e-16


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_matches_pytorch_float64(case):
    rng = random.Random(case.name + "torch")
    exact_grads = case.name not in REWRITTEN_BY_TORCH
    for _ in range(200):
        xs = draw(case, rng)
        ours, ours_grads = run_ours(case, xs)
        ref, ref_grads = run_torch(case, xs)
        assert same(ours, ref, ULP2), (case.name, xs, ours, ref)
        rel = 0.0 if (exact_grads and ours == ref) else 1e-13
        for g, r in zip(ours_grads, ref_grads):
            assert same(g, r, rel), (case.name, xs, ours_grads, ref_grads)


def test_every_primitive_is_covered_by_the_catalog():
    covered = set()
    for case in CASES:
        xs = [0.7] * case.arity
        out = case.ours(*map(Value, xs))
        covered.add(out._fn.name)
    assert covered == set(OPS)


# Edge inputs where the maths is undefined or overflows: the result is PyTorch's (nan or inf),
# never an exception, never a complex number.
EDGES = [
    ("tanh", [1000.0]),
    ("tanh", [-1000.0]),
    ("sigmoid", [-1000.0]),
    ("sigmoid", [1000.0]),
    ("exp", [1000.0]),
    ("exp", [-1000.0]),
    ("log", [-1.0]),
    ("log", [0.0]),
    ("sqrt", [-4.0]),
    ("sqrt", [0.0]),
    ("rdiv", [0.0]),
    ("pow_frac", [-8.0]),
    ("pow_neg", [0.0]),
    ("pow_neg", [-2.0]),
    ("square", [1e200]),
    ("cube", [-1e200]),
    ("rpow", [5000.0]),
    ("rpow", [-5000.0]),
    ("div", [1.0, 0.0]),
    ("div", [0.0, 0.0]),
    ("div", [-1.0, 0.0]),
    ("pow", [-8.0, 0.5]),
    ("pow", [0.0, -1.0]),
    ("pow", [0.0, 2.0]),
    ("pow", [0.0, 0.0]),
    ("pow", [-2.0, 3.0]),
    ("pow", [1e10, 100.0]),
    ("pow", [-1e10, 101.0]),
    ("relu", [0.0]),
    ("abs", [0.0]),
    ("log", [float("inf")]),
    ("exp", [float("nan")]),
]


@pytest.mark.parametrize("name,xs", EDGES, ids=lambda e: str(e))
def test_undefined_maths_gives_what_pytorch_gives(name, xs):
    case = next(c for c in CASES if c.name == name)
    ours, ours_grads = run_ours(case, xs)
    ref, ref_grads = run_torch(case, xs)
    assert isinstance(ours, float)
    assert same(ours, ref, 1e-15), (ours, ref)
    for g, r in zip(ours_grads, ref_grads):
        assert same(g, r, 1e-15), (ours_grads, ref_grads)


def test_zero_to_the_minus_one_and_negative_zero():
    assert (Value(0.0) ** -1).data == math.inf
    assert (Value(-0.0) ** -1).data == -math.inf
    assert (Value(-0.0) ** -2).data == math.inf
    assert (1 / Value(-0.0)).data == -math.inf


# ---- composite expressions ------------------------------------------------------------------


def test_micrograd_readme_example():
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert round(g.data, 4) == 24.7041
    assert round(a.grad, 4) == 138.8338
    assert round(b.grad, 4) == 645.5773
    # and exactly what PyTorch computes
    ta = torch.tensor(-4.0, requires_grad=True)
    tb = torch.tensor(2.0, requires_grad=True)
    tc = ta + tb
    td = ta * tb + tb**3
    tc = tc + tc + 1
    tc = tc + 1 + tc + (-ta)
    td = td + td * 2 + (tb + ta).relu()
    td = td + 3 * td + (tb - ta).relu()
    tg = (tc - td) ** 2 / 2.0
    tg = tg + 10.0 / ((tc - td) ** 2)
    tg.backward()
    assert g.data == tg.item()
    assert a.grad == ta.grad.item()
    assert b.grad == tb.grad.item()


def test_notebook_neuron_step_by_step(notebook_neuron):
    nb = notebook_neuron
    x1, x2, w1, w2 = nb.x1, nb.x2, nb.w1, nb.w2
    x1w1, x2w2, s, n, o = nb.x1w1, nb.x2w2, nb.s, nb.n, nb.o
    o.grad = 1.0
    o._backward()
    assert n.grad == pytest.approx(0.5, abs=1e-12)
    assert x1.grad == 0.0  # nothing below n has moved yet
    n._backward()
    s._backward()
    x1w1._backward()
    x2w2._backward()
    assert x1.grad == pytest.approx(-1.5)
    assert w1.grad == pytest.approx(1.0)
    assert x2.grad == pytest.approx(0.5)
    assert w2.grad == 0.0


def test_tanh_written_as_exp_matches_tanh():
    def neuron(expform):
        x1, w1, b = Value(2.0), Value(-3.0), Value(6.8813735870195432)
        n = x1 * w1 + b
        if expform:
            e = (2 * n).exp()
            o = (e - 1) / (e + 1)
        else:
            o = n.tanh()
        o.backward()
        return o.data, x1.grad, w1.grad

    for ours, ref in zip(neuron(True), neuron(False)):
        assert ours == pytest.approx(ref, rel=1e-12)


# ---- the Value type -------------------------------------------------------------------------


def test_attributes_of_a_leaf_and_a_result():
    a = Value(2, label="a")
    assert isinstance(a.data, float) and a.data == 2.0
    assert a.grad == 0.0 and a.label == "a" and a._prev == () and a._op == ""
    out = a * a
    assert out._prev == (a, a)  # both edges kept
    assert out._op == "*"
    assert (a + 1)._op == "+"
    assert (a**2)._op == "**2"
    assert (a**0.5)._op == "**0.5"
    assert a.tanh()._op == "tanh" and a.exp()._op == "exp"


def test_operands_are_kept_in_order():
    a, b = Value(1.0), Value(2.0)
    assert (a - b)._prev == (a, b)
    assert (b - a)._prev == (b, a)
    c = 1 - a
    assert c._prev[1] is a and c._prev[0].data == 1.0


@pytest.mark.parametrize("bad", ["abc", None, [1], (1.0,), {"a": 1}, 1 + 2j, object()], ids=repr)
def test_bad_data_raises_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        Value(bad)


def test_numpy_scalars_and_ints_are_stored_as_float():
    for x in [3, np.float64(2.5), np.float32(1.5), np.int64(7), np.array(4.0), True]:
        v = Value(x)
        assert type(v.data) is float and v.data == float(x)


def test_numpy_scalar_on_the_left_makes_a_value():
    v = Value(3.0)
    for out in [np.float64(2.0) * v, np.float64(2.0) + v, np.float32(1.0) - v]:
        assert isinstance(out, Value)
    (np.float64(2.0) * v).backward()
    assert v.grad == 2.0


def test_unsupported_operand_gives_type_error():
    v = Value(1.0)
    with pytest.raises(TypeError, match="str"):
        v + "a"
    with pytest.raises(TypeError):
        "a" * v
    with pytest.raises(TypeError):
        v ** "x"


def test_repr():
    assert repr(Value(2.0)) == "Value(data=2.0, grad=0.0)"
    assert repr(Value(-1.5, label="w1")) == "Value(data=-1.5, grad=0.0, label='w1')"


def test_sum_of_values():
    xs = [Value(float(i)) for i in range(10)]
    s = sum(xs)
    s.backward()
    assert s.data == 45.0
    assert all(x.grad == 1.0 for x in xs)


def test_value_exponent_gets_its_gradient():
    a, b = Value(3.0), Value(2.0)
    out = a**b
    out.backward()
    assert out.data == 9.0
    assert a.grad == 6.0
    assert b.grad == pytest.approx(9.0 * math.log(3.0), rel=1e-15)


# ---- backward() -----------------------------------------------------------------------------


def test_reused_node_gets_the_full_sum():
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0
    x = Value(-2.0)
    (x * x).backward()
    assert x.grad == -4.0
    y = Value(1.5)
    z = y * y * y + y
    z.backward()
    assert y.grad == 3 * 1.5**2 + 1


def test_gradients_accumulate_across_graphs_like_pytorch():
    a = Value(2.0)
    (a * 3).backward()
    (a * 4).backward()
    assert a.grad == 7.0


def test_backward_twice_doubles_the_leaves_and_never_compounds():
    x = Value(0.5)
    h = x.tanh()
    o = h * h
    o.backward()
    first_x, first_h = x.grad, h.grad
    o.backward()
    assert x.grad == 2 * first_x  # leaves accumulate, like retain_graph=True in torch
    assert h.grad == first_h  # intermediates hold this call's gradient

    tx = torch.tensor(0.5, requires_grad=True)
    to = tx.tanh() ** 2
    to.backward(retain_graph=True)
    to.backward()
    assert x.grad == pytest.approx(tx.grad.item(), rel=1e-15)


def test_zero_grad_by_hand_then_backward_gives_fresh_gradient():
    x = Value(1.0)
    out = x * 5
    out.backward()
    x.grad = 0.0
    out.backward()
    assert x.grad == 5.0


def test_backward_with_a_seed():
    x = Value(2.0)
    (x * x).backward(3.0)
    assert x.grad == 12.0


def test_backward_from_a_leaf():
    x = Value(2.0)
    x.backward()
    assert x.grad == 1.0


def test_topological_order_is_the_notebooks_and_puts_every_node_after_its_inputs():
    x1, x2, w1, w2, b = (Value(v) for v in (2.0, 0.0, -3.0, 1.0, 6.88))
    h = x1 * w1 + x2 * w2
    o = (h + b).tanh() * h  # h is used twice
    unrelated = Value(1.0) * x1  # made from a leaf of the graph, but not under o

    topo, visited = [], set()

    def build(v):  # the notebook's recursive version
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                build(child)
            topo.append(v)

    build(o)
    order = o.topological_order()
    assert order == topo  # the same order as the notebook's recursive sort
    assert unrelated not in order
    assert order[-1] is o
    position = {id(v): i for i, v in enumerate(order)}
    for v in order:
        for child in v._prev:
            assert position[id(child)] < position[id(v)]


def test_a_million_op_chain_backpropagates_and_is_freed():
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + 1e-6
    y.backward()
    assert x.grad == 1.0
    assert y.data == pytest.approx(2.0)
    del y  # freeing a million-deep chain must not overflow the C stack either


def test_sum_of_many_terms_is_fine():
    xs = [Value(1.0) for _ in range(50_000)]
    s = sum(x * x for x in xs)
    s.backward()
    assert s.data == 50_000.0 and xs[-1].grad == 2.0


def test_graph_makes_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        x = [Value(random.random()) for _ in range(10)]
        out = sum((xi * xi).tanh() for xi in x)
        out.backward()
        del out
        assert gc.collect() == 0  # nothing was left for the cycle collector
    finally:
        gc.enable()


def test_node_uses_slots():
    v = Value(1.0)
    assert not hasattr(v, "__dict__")
    with pytest.raises(AttributeError):
        v.anything = 1


# ---- no_grad --------------------------------------------------------------------------------


def test_no_grad_builds_no_graph_and_restores():
    a = Value(2.0)
    with no_grad():
        assert not is_grad_enabled()
        b = a * 3 + 1
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert b.data == 7.0 and b._prev == () and b._op == ""
    c = a * 3
    assert c._prev[0] is a


def test_no_grad_is_thread_local():
    seen = {}
    inside = threading.Event()
    done = threading.Event()

    def worker():
        inside.wait()
        seen["enabled"] = is_grad_enabled()
        seen["graph"] = (Value(1.0) * 2)._prev != ()
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    with no_grad():
        inside.set()
        done.wait(5)
    t.join()
    assert seen == {"enabled": True, "graph": True}


def test_no_grad_restores_after_an_exception():
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError
    assert is_grad_enabled()


# ---- property-based ---------------------------------------------------------------------------

finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(finite, finite, finite)
def test_algebraic_identities(a, b, c):
    def grads(f):
        vs = [Value(a), Value(b), Value(c)]
        out = f(*vs)
        out.backward()
        return out.data, [v.grad for v in vs]

    pairs = [
        (lambda x, y, z: x + y, lambda x, y, z: y + x),
        (lambda x, y, z: x * y, lambda x, y, z: y * x),
        (lambda x, y, z: x * (y + z), lambda x, y, z: x * y + x * z),
        (lambda x, y, z: x - y, lambda x, y, z: x + (-y)),
        (lambda x, y, z: (x + y) + z, lambda x, y, z: x + (y + z)),
        (lambda x, y, z: x * x, lambda x, y, z: x**2),
        (lambda x, y, z: x.tanh(), lambda x, y, z: 2 * (2 * x).sigmoid() - 1),
        (lambda x, y, z: x.exp().log(), lambda x, y, z: x + 0 * y),
    ]
    for f, g in pairs:
        (fv, fg), (gv, gg) = grads(f), grads(g)
        assert fv == pytest.approx(gv, rel=1e-9, abs=1e-9)
        assert fg == pytest.approx(gg, rel=1e-7, abs=1e-7)


def random_program(draw_int, n_leaves, n_ops):
    """A random graph as a list of (op, operand indices) over leaves and earlier results."""
    program = []
    for k in range(n_ops):
        avail = n_leaves + k
        case = CASES[draw_int(0, len(CASES) - 1)]
        args = [draw_int(0, avail - 1) for _ in range(case.arity)]
        program.append((case, args))
    return program


def run_program(program, values, apply):
    nodes = list(values)
    for case, args in program:
        nodes.append(apply(case, [nodes[i] for i in args]))
    return nodes


def _sign_of_nan(step, nodes) -> bool:
    case, args = step
    return case.name == "sign" and math.isnan(nodes[args[0]].data)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_random_graphs_match_pytorch(data):
    n_leaves = data.draw(st.integers(1, 4))
    n_ops = data.draw(st.integers(1, 25))
    leaves = data.draw(st.lists(st.floats(0.2, 2.0), min_size=n_leaves, max_size=n_leaves))
    program = random_program(lambda lo, hi: data.draw(st.integers(lo, hi)), n_leaves, n_ops)
    ours_leaves = [Value(x) for x in leaves]
    ours = run_program(program, ours_leaves, lambda c, a: c.ours(*a))
    # the output sums every node, so every node's gradient matters
    out = sum(ours[n_leaves:])
    ref_leaves = [torch.tensor(x, requires_grad=True) for x in leaves]
    ref = run_program(program, ref_leaves, lambda c, a: c.torch(*a))
    ref_out = sum(ref[n_leaves:])
    out.backward()
    ref_out.backward()
    for k, step in enumerate(program):
        if _sign_of_nan(step, ours):
            # sign(nan) is nan here, as in numpy and IEEE 754, where torch's CPU kernel gives
            # 0: the two part ways from this node on, so the example is not a comparison
            assert math.isnan(ours[n_leaves + k].data) and ref[n_leaves + k].item() == 0.0
            reject()
    for o, r in zip(ours, ref):
        assert same(o.data, r.item(), 1e-12) or (abs(o.data) < 1e-300 and abs(r.item()) < 1e-300), (
            program,
            o.data,
            r.item(),
        )
    if not math.isfinite(ref_out.item()):
        return
    for v, t in zip(ours_leaves, ref_leaves):
        g = 0.0 if t.grad is None else t.grad.item()
        assert same(v.grad, g, 1e-9) or abs(v.grad - g) < 1e-9, (program, v.grad, g)


def test_deep_graphs_need_no_raised_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000  # the engine never raises it as a workaround


# ---- the engine's hooks ---------------------------------------------------------------------


def test_backward_checks_see_the_root_and_can_refuse():
    from backprop import engine
    from backprop.autodiff import grad

    seen = []

    def refuse(root):
        seen.append(root)
        if root.label == "no":
            raise RuntimeError("refused")

    x = Value(2.0)
    y = x * x
    engine.backward_checks.append(refuse)
    try:
        y.backward()
        assert seen == [y] and x.grad == 4.0
        y.label = "no"
        with pytest.raises(RuntimeError, match="refused"):
            y.backward()
        with pytest.raises(RuntimeError, match="refused"):
            grad(y, x)
        assert x.grad == 4.0  # a refused call changes nothing
    finally:
        engine.backward_checks.remove(refuse)
    y.backward()
    assert x.grad == 8.0


def test_paused_collector_is_restored_and_nests():
    from backprop._gc import paused

    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused(promote=True):
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()


# ---- scope ----------------------------------------------------------------------------------


def test_scope_names_the_nodes_made_inside_it_and_nests():
    from backprop import scope

    x = Value(2.0, label="x")
    with scope("gpt"):
        with scope("attn"):
            y = (x * 3).tanh()
            k = Value(1.5, label="k")
        z = y + k
    w = z * 2
    assert (y.scope, y._prev[0].scope, k.scope, z.scope) == ("gpt/attn",) * 3 + ("gpt",)
    assert (x.scope, w.scope, Value(1.0).scope) == ("", "", "")
    assert k.label == "k" and y.label == "" and not y.label
    w.backward()
    assert x.grad == pytest.approx(6.0 * (1 - math.tanh(6.0) ** 2), rel=1e-9)


def test_scope_as_a_decorator_and_on_its_own_thread():
    from backprop import scope

    @scope("softmax")
    def f(v):
        return v.exp() / (v.exp() + 1)

    seen = {}

    def other():
        seen["scope"] = (Value(1.0) * 2).scope

    with scope("outer"):
        out = f(Value(0.5))
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert out.scope == "outer/softmax" and f(Value(0.5)).scope == "softmax"
    assert seen == {"scope": ""}


def test_scope_with_no_grad_and_bad_names():
    from backprop import scope

    with scope("s"), no_grad():
        v = Value(1.0) * 2
    assert v._prev == () and v.scope == "s"
    for bad in ("", "a/b", 3):
        with pytest.raises(ValueError, match="scope"):
            scope(bad)


def test_in_a_scope_constants_blocks_and_watchers_are_as_outside_it():
    # (with the native part, a thread in scopes only makes its nodes in C: the same nodes)
    from backprop import engine, scope
    from backprop.engine import set_grad_enabled

    made = []

    class Watcher:
        def node_made(self, out, fn, a, b, arg):
            made.append(fn.name)

    x = Value(2.0)
    with scope("s"):
        y = x * 3.0 + 1
        with no_grad():
            n = x * 2
            with set_grad_enabled(True):
                r = x * 5
        engine.watch(Watcher())
        try:
            w = x.exp()
        finally:
            engine.watch(None)
        after = x - 1
    assert [v.scope for v in (y, y._prev[0]._prev[1], y._prev[1], n, r, w, after)] == ["s"] * 7
    assert y._prev[0]._prev[1].data == 3.0 and y._prev[1].data == 1.0
    assert (n._prev, r._op, r._prev) == ((), "*", (x, r._prev[1]))
    assert made == ["exp"] and engine._open_blocks == 0
    (y + r + w + after).backward()
    assert x.grad == 3.0 + 5.0 + math.exp(2.0) + 1.0
    assert (x * 2).scope == ""


def test_outside_a_scope_nodes_carry_nothing():
    from backprop import engine

    v = Value(1.0) * 2
    assert type(v.label) is str and engine._open_blocks == 0


def test_a_scopes_op_methods_label_their_nodes_in_both_builds():
    from backprop import engine, ops, scope
    from backprop.scopes import _label, methods_in

    x = Value(2.0, label="x")
    node = engine._node(ops.ADD, 4.0, x, x, None, _label("net/l0"))  # the C twin takes it too
    assert (node.scope, node._op, node.data, node._prev) == ("net/l0", "+", 4.0, (x, x))
    mul = methods_in("net/l0")["mul"]
    with scope("outer"):
        inside = mul(x, x)  # a scope's method keeps its own scope inside another block
        leaf = Value(1.0, label="w")
    outside = mul(x, 3.0)
    scopes = (inside.scope, outside.scope, leaf.scope, leaf.label)
    assert scopes == ("net/l0", "net/l0", "outer", "w")
    (inside + outside).backward()
    assert x.grad == 2 * 2.0 + 3.0


def test_engine_py_reads_top_down_and_stays_short():
    from pathlib import Path

    from backprop import engine

    lines = Path(engine.__file__).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 325
    where = {
        name: next(i for i, line in enumerate(lines) if line.startswith(name))
        for name in (
            "class Value",
            "    def _backward",
            "    def topological_order",
            "    def backward",
            "def _binary_method",
            "def no_grad",
        )
    }
    assert where["class Value"] < 100
    assert list(where.values()) == sorted(where.values())


# ---- the native part (backprop._cvalue), and the same behaviour without it ------------------


def test_the_native_part_is_used_unless_turned_off():
    import os

    from backprop._base import NATIVE

    off = os.environ.get("BACKPROP_NATIVE") == "0"
    assert NATIVE is not off or not NATIVE  # (where it is not built, NATIVE is False)
    if NATIVE:
        assert Value.__mro__[1].__module__ == "backprop._cvalue"
        assert sys.getsizeof(Value(1.0) * 2) <= 90


def test_graph_nodes_cost_the_collector_nothing_until_a_grad_is_a_value():
    from backprop._base import NATIVE

    x = Value(0.5)
    y = (x * x).tanh()
    if NATIVE:
        assert not gc.is_tracked(x) and not gc.is_tracked(y)
    y.backward(create_graph=True)  # x.grad is a graph that reaches x back: a cycle
    assert gc.is_tracked(x) and gc.is_tracked(x.grad)
    assert all(gc.is_tracked(v) for v in x.grad.topological_order())


def test_create_graph_cycles_are_collected():
    import tracemalloc

    def step():
        x = Value(0.3)
        y = (x * x.exp()).tanh() * x
        y.backward(create_graph=True)
        x.grad.backward()  # and once more through the gradient graph

    for _ in range(5):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(50):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 20_000, grown  # flat: each step's cycle is freed


def test_data_and_grad_give_back_what_was_put_there():
    import struct

    v = Value(1.0)
    for x in (3, True, "marker", None, 2.5, -0.0, math.inf):
        v.data = x
        assert v.data is x or (v.data == x and type(v.data) is type(x))
    # a float whose bits are a signalling NaN (the native part's tag) comes back bit for bit
    odd = struct.unpack("<d", struct.pack("<Q", 0x7FF4000000001234))[0]
    v.data = odd
    assert struct.pack("<d", v.data) == struct.pack("<d", odd)
    v.grad = 0
    assert v.grad == 0 and type(v.grad) is int
    w = Value(2.0) * 3
    w.data = "stale"  # what a compiled Program leaves: an op reading it fails as in Python
    with pytest.raises(TypeError):
        w * 2


def test_copies_and_pickles_keep_every_field():
    import copy
    import pickle

    x = Value(2.0, label="x")
    y = x * 3
    c = copy.deepcopy(y)
    assert (c.data, c._op, c._prev[0].data, c._prev[0].label) == (6.0, "*", 2.0, "x")
    p = pickle.loads(pickle.dumps(x))
    assert (p.data, p.grad, p.label, p._prev) == (2.0, 0.0, "x", ())


def test_a_number_operand_becomes_the_leaf_value_would_make():
    from backprop import scope

    for k in (2, 2.5, True, -0.0):
        out = k + Value(1.0)
        leaf = out._prev[0]
        assert (leaf._fn, leaf._prev, leaf.label, leaf.grad) == (None, (), "", 0.0)
        assert type(leaf.data) is float and leaf.data == float(k)
    with scope("s"):
        assert (3 * Value(1.0))._prev[0].scope == "s"
    with pytest.raises(OverflowError):
        Value(1.0) + 10**400


def test_square_root_powers_follow_torch_at_special_values():
    # C's pow(-inf, 0.5) is inf and pow(-0.0, -0.5) is inf; torch (and numpy) take x ** 0.5 as
    # sqrt(x) and x ** -0.5 as 1 / sqrt(x): nan and -inf
    torch = pytest.importorskip("torch")
    for a in [-math.inf, -4.0, -0.0, 0.0, 1e-300, 2.0, 3.7, math.inf, math.nan]:
        for k in [0.5, -0.5]:
            ours = (Value(a) ** k).data
            theirs = (torch.tensor(a, dtype=torch.float64) ** k).item()
            assert repr(ours) == repr(theirs), (a, k, ours, theirs)
