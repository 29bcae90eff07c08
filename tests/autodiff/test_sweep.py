"""The sweep under grad, hessian and jvp: the op table's rules run on Values (GRAPH) give the
float rules' numbers, GRAPH.node makes what the Value methods make, and gradient graphs leave
the collector alone."""

from __future__ import annotations

import gc
import math
import random

import pytest
from catalog import CASES
from test_autodiff import draw

from backprop import Value, engine, grad, ops


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
