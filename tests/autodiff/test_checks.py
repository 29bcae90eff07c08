"""gradcheck and gradgradcheck: they pass on every op, catch a planted rule and name its node,
blame the function when no rule is wrong, and refuse bad arguments."""

from __future__ import annotations

import math
import random

import pytest
from catalog import CASES
from test_autodiff import draw

from backprop import GradcheckError, Value, gradcheck, gradgradcheck, ops


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
