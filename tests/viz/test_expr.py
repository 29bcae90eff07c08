"""The safe expression parser behind `backprop graph`: what it builds and what it refuses."""

from __future__ import annotations

import math

import pytest
from graphs import NEURON_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from backprop import Value
from backprop.viz.expr import MAX_LENGTH, POINTER_WIDTH, ExpressionError, build, parse

NEURON = NEURON_DATA


def test_the_notebook_neuron(notebook_neuron):
    root, leaves = build("tanh(x1*w1 + x2*w2 + b)", NEURON)
    root.backward()
    ref = notebook_neuron.o
    ref.backward()
    assert root.data == ref.data
    assert [leaves[k].grad for k in ("x1", "w1", "x2", "w2", "b")] == [
        v.grad for v in notebook_neuron.leaves.values()
    ]
    labels = [v.label for v in root.topological_order()]
    assert labels[-1] == "tanh(x1*w1 + x2*w2 + b)"
    assert "x1*w1" in labels and "x1*w1 + x2*w2" in labels


def test_ops_map_onto_the_engine():
    root, leaves = build("2*x + x**2 - 2**x + x/y - -y + +x + exp(log(sqrt(abs(x))))", {
        "x": 3.0, "y": -2.0})  # fmt: skip
    ops = {v._fn.name for v in root.topological_order() if v._fn is not None}
    assert ops == {"mul", "add", "powc", "sub", "rpow", "div", "neg", "exp", "log", "sqrt", "abs"}
    x = leaves["x"]
    assert len(leaves) == 2 and x.label == "x"  # one leaf per variable, however often used
    root.backward()
    h = 1e-6
    f = lambda x: 2 * x + x**2 - 2**x + x / -2.0 - 2.0 + x + math.sqrt(abs(x))  # noqa: E731
    assert x.grad == pytest.approx((f(3 + h) - f(3 - h)) / (2 * h), rel=1e-5)
    both, _ = build("x ** y + sigmoid(x) + relu(y)", {"x": 2.0, "y": 3.0})
    assert {v._fn.name for v in both.topological_order() if v._fn} == {"pow", "add", "sigmoid",
                                                                        "relu"}  # fmt: skip


def test_numbers_are_leaves_and_exponents_constants():
    root, _ = build("x ** -3 + 2.5", {"x": 2.0})
    nodes = root.topological_order()
    powc = next(v for v in nodes if v._fn is not None and v._fn.name == "powc")
    assert powc._arg == -3.0
    assert any(v.label == "2.5" and v.is_leaf for v in nodes)
    assert root.data == 2.0**-3 + 2.5


def test_long_sub_expressions_stay_unlabelled_and_the_root_is_out():
    text = "tanh(alpha*beta + gamma*delta + epsilon)"
    root, _ = build(text, dict.fromkeys(["alpha", "beta", "gamma", "delta", "epsilon"], 1.0))
    assert root.label == "out"
    assert build("x", {"x": 1.0})[0].label == "x"


HOSTILE = [
    ("__import__('os').system('ls')", "attribute access", 0),
    ("__import__('os')", "unknown function '__import__'", 0),
    ("x.__class__", "attribute access", 0),
    ("exp.__globals__", "attribute access", 0),
    ("open('/etc/passwd')", "unknown function 'open'", 0),
    ("eval('1')", "unknown function 'eval'", 0),
    ("x[0]", "indexing", 0),
    ("lambda: 1", "lambda is not allowed", 0),
    ("[x for x in y]", "comprehensions are not allowed", 0),
    ("(x for x in y)", "generator expressions", 0),
    ("x + {1: 2}", "dicts are not allowed", 4),
    ("x ** 100000", "exponent 100000 is too large", 5),
    ("x ** -1e9", "exponent -1e9 is too large", 5),
    ("x * 1e400", "the number 1e400 is too large", 4),
    ("x * 10**4000", "exponent 4000 is too large", 8),
    ("x * 99999999999999999999999", "is too large", 4),
    ("x // 2", "operator // is not supported", 0),
    ("x % 2", "operator % is not supported", 0),
    ("~x", "operator ~ is not supported", 0),
    ("x < 2", "comparisons are not allowed", 0),
    ("x and y", "'and' / 'or'", 0),
    ("x if y else z", "'if ... else'", 0),
    ("(y := 2)", "':=' is not allowed", 1),
    ("'a' + x", "strings are not allowed", 0),
    ("f'{x}'", "strings are not allowed", 0),
    ("1j * x", "complex numbers", 0),
    ("True * x", "True / False", 0),
    ("None", "None is not allowed", 0),
    ("tanh(x, y)", "takes exactly one argument, got 2", 0),
    ("tanh(*xs)", "takes exactly one argument", 0),
    ("tanh(x=1)", "no keyword arguments", 0),
    ("tanh(x)(y)", "only calls of tanh", 0),
    ("tanh", "'tanh' is a function", 0),
    ("x + __builtins__", "names starting with '__'", 4),
    ("x +", "syntax error: the expression ends too early", 3),
    ("  x * ", "syntax error: the expression ends too early", 5),
    ("tanh(x", "'(' was never closed", 4),
    ("x; import os", "syntax error", None),
    ("x\nimport os", "single line", 1),
    ("", "empty", 0),
    ("   ", "empty", 0),
    ("x" + "+x" * 1500, "characters long", None),
    ("-" * 1500 + "x", "nests deeper than", None),
    ("(" * 300 + "x" + ")" * 300, "too many nested parentheses", None),
    ("   foo(x)", "unknown function 'foo'", 3),
]


@pytest.mark.parametrize("text, message, column", HOSTILE, ids=[h[0][:30] for h in HOSTILE])
def test_hostile_expressions_are_refused(text, message, column):
    with pytest.raises(ExpressionError) as info:
        build(text, {"x": 1.0, "y": 2.0, "z": 3.0, "xs": 1.0})
    e = info.value
    assert message in str(e)
    assert "\n" not in str(e)  # one line
    if column is not None:
        assert e.column == column, (e.column, e.pointer())
    line, caret = e.pointer().split("\n")
    if len(text) <= POINTER_WIDTH:
        assert caret == " " * e.column + "^" and len(line) >= e.column
    else:  # a long expression is cut around the caret
        assert len(line) <= POINTER_WIDTH + 6 and caret.strip() == "^"


def test_caret_counts_characters_not_bytes():
    with pytest.raises(ExpressionError) as info:
        parse("tanh(x) + ééé(x)")
    assert "variable names must be ASCII" in str(info.value) or "unknown function" in str(
        info.value
    )
    assert info.value.pointer().split("\n")[1].index("^") == 10


def test_missing_variables_are_named_and_pointed_at():
    with pytest.raises(ExpressionError) as info:
        build("x*y + z*y", {"x": 1.0})
    assert info.value.missing == ["y", "z"]
    assert str(info.value) == "no value for y, z (at column 3)"
    with pytest.raises(TypeError, match="must be a number"):
        build("x", {"x": "1"})
    with pytest.raises(TypeError, match="must be a str"):
        parse(b"x")


def test_parse_lists_variables_in_order():
    assert parse("tanh(x1*w1 + x2*w2 + b) * x1").variables == ("x1", "w1", "x2", "w2", "b")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="xy0123456789.+-*/() e_tanhsqrlogbp[]'\",:;=<>!@#$%^&|~`{}\\", max_size=40))
def test_fuzz_only_expression_errors(text):
    """Whatever the text, parsing either builds a graph or raises ExpressionError, nothing else."""
    try:
        root, _ = build(text, {"x": 0.5, "y": 2.0, "e": 1.0})
    except ExpressionError as e:
        assert 0 <= e.column <= len(text)
    else:
        assert isinstance(root, Value)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "+-"])
def test_a_long_flat_chain_is_not_nesting(op):
    """x+x+...+x is written flat: it parses up to MAX_LENGTH characters, whatever its length."""
    ops = op * 1000
    terms = ["x"]
    for o in ops:
        if len("".join(terms)) + 2 > MAX_LENGTH:
            break
        terms += [o, "x"]
    text = "".join(terms)
    assert len(text) > MAX_LENGTH - 2
    root, leaves = build(text, {"x": 1.0})
    root.backward()
    if op == "+":
        assert root.data == 1000.0 and leaves["x"].grad == 1000.0
    assert math.isfinite(root.data)


def test_real_nesting_is_still_limited_and_the_message_is_short():
    text = "-" * 150 + "x"
    with pytest.raises(ExpressionError, match="nests deeper than 100") as info:
        parse(text)
    line, caret = info.value.pointer().split("\n")
    assert len(line) <= POINTER_WIDTH + 6 and line.startswith("...") and line.endswith("...")
    assert line[caret.index("^")] == "-"
    # x+(x+(x+...)) nests to the right: each level counts
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("x+(" * 101 + "x" + ")" * 101)


def test_a_syntax_error_at_the_end_points_at_the_end():
    with pytest.raises(ExpressionError) as info:
        parse("x +")
    assert info.value.pointer() == "x +\n   ^"


# ---- named parts and sign (issue 17, item 12) --------------------------------------------------


def test_named_parts_label_their_nodes_like_the_lecture():
    root, leaves = build("n = x1*w1 + x2*w2 + b; o = tanh(n)", NEURON)
    flat, flat_leaves = build("tanh(x1*w1 + x2*w2 + b)", NEURON)
    root.backward()
    flat.backward()
    assert root.data == flat.data and root.label == "o"
    assert [leaves[k].grad for k in NEURON] == [flat_leaves[k].grad for k in NEURON]
    labels = [v.label for v in root.topological_order()]
    assert labels[-2:] == ["n", "o"] and labels.count("n") == 1
    assert parse("n = x*y; n + z").variables == ("x", "y", "z")
    # a name that only renames a leaf leaves the leaf's own label
    root, leaves = build("a = x; b = a*2; b + y", {"x": 1.0, "y": 2.0})
    assert leaves["x"].label == "x" and root.data == 4.0
    assert any(v.label == "b" for v in root.topological_order())


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("x; y", "each part before a ';' must name a sub-expression", 0),
        ("n = n + 1", "n is used before it is named here", 0),
        ("o = x + n; n = y; o*n", "n is used before it is named here", 11),
        ("n = x; n = y; n", "n is named twice", 7),
        ("n = x*2; m = x", "n is named but never used", 0),
        ("tanh = x; tanh", "'tanh' is a function and cannot name a part", 0),
        ("__n = x; __n", "names starting with '__'", 0),
        ("n = x*2;", "a part is empty", 8),
        ("n = x +; n", "ends too early", 7),
        ("n = open(x); n", "unknown function 'open'", 4),
        ("n == x", "comparisons are not allowed", 0),
    ],
)
def test_bad_named_parts_point_at_the_spot(text, message, column):
    with pytest.raises(ExpressionError) as info:
        build(text, {"x": 1.0, "y": 2.0, "n": 3.0})
    assert message in str(info.value) and info.value.column == column, info.value.pointer()


def test_a_missing_value_in_a_later_part_is_pointed_at():
    with pytest.raises(ExpressionError) as info:
        build("n = x*2; o = n + q", {"x": 1.0})
    assert info.value.missing == ["q"] and info.value.column == 17


def test_sign_is_allowed():
    root, leaves = build("sign(x) * y", {"x": -2.0, "y": 3.0})
    assert root.data == -3.0
    assert any(v._fn is not None and v._fn.name == "sign" for v in root.topological_order())
