"""explain(): the replayed backward pass, its words and the page (the browser tests are in
test_explain_browser.py)."""

from __future__ import annotations

import html
import math
import random
import re

import pytest
from catalog import CASES
from graphs import all_ops, backward_grads, mlp_loss, neuron, neuron_exp_tanh, reused

from backprop import Value
from backprop.ops import OPS
from backprop.viz.stepthrough import LOCAL_DERIVATIVES, Explanation, explain, fmt


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def state_after(ex: Explanation, k: int, order=None) -> list[float]:
    """Every node's grad after steps 0..k, from the recorded contributions (or after the
    steps in ``order``, a page's order of the step indices)."""
    grads = [0.0] * len(ex.names)
    grads[ex.root] = ex.seed
    for step in ex.steps[1 : k + 1] if order is None else [ex.steps[j] for j in order[1:]]:
        for c in step.contributions:
            grads[c.node] = c.after
    return grads


# ---- the numbers ----------------------------------------------------------------------------


def test_replay_equals_backward_exactly(usual_graph):
    _, build = usual_graph
    ex = explain(build())
    expected = backward_grads(build)
    assert len(ex.grads) == len(expected)
    assert all(same(a, b) for a, b in zip(ex.grads, expected)), (ex.grads, expected)
    assert all(same(a, b) for a, b in zip(state_after(ex, len(ex.steps) - 1), expected))


def test_steps_follow_backward_order(usual_graph):
    root = usual_graph[1]()
    ex = explain(root)
    order = root.topological_order()
    expected = [len(order) - 1 - i for i, v in enumerate(reversed(order)) if v._fn is not None]
    assert [s.node for s in ex.steps[1:-1]] == expected
    assert ex.steps[0].kind == "seed" and ex.steps[-1].kind == "done"
    for step in ex.steps[1:-1]:  # one chain-rule term per operand
        assert [c.node for c in step.contributions] == list(ex.inputs[step.node])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_op_is_explained_with_numbers(case):
    rng = random.Random(case.name)
    low = 0.1 if case.positive else case.low
    xs = [Value(round(rng.uniform(low, case.high), 3), label=f"x{i}") for i in range(case.arity)]
    out = case.ours(*xs)
    out.label = "out"
    ex = explain(out)
    root = len(ex.names) - 1
    step = ex.steps[1]
    assert step.node == root
    assert step.title.startswith("out._backward(): out = ")
    assert len(step.contributions) == len(out._prev)
    for c in step.contributions:
        name = ex.names[c.node]
        target = name if re.fullmatch(r"\w+", name) else f"({name})"
        assert c.text.startswith(f"{target}.grad += ")
        assert c.text.endswith(f" = {fmt(c.term)}")
        assert "out.grad = " in c.text and "\u00d7 1.0" in c.text
    # and the numbers are backward()'s
    out.backward()
    assert all(same(g, v.grad) for g, v in zip(ex.grads, out.topological_order()))


def test_every_op_has_a_local_derivative():
    assert set(LOCAL_DERIVATIVES) == set(OPS)
    for name, rule in LOCAL_DERIVATIVES.items():
        assert len(rule.locals) == OPS[name].arity
        assert "{out}" in rule.computes and rule.why


def test_neuron_words_match_the_notebook():
    ex = explain(neuron())
    texts = [c.text for s in ex.steps for c in s.contributions]
    assert "w1.grad += x1.data \u00d7 x1w1.grad = 2.0 \u00d7 0.5 = 1.0" in texts
    assert "x1.grad += w1.data \u00d7 x1w1.grad = (-3.0) \u00d7 0.5 = -1.5" in texts
    assert (
        "n.grad += (1 \u2212 o.data\u00b2) \u00d7 o.grad = (1 \u2212 0.7071\u00b2) \u00d7 1.0 "
        "= 0.5 \u00d7 1.0 = 0.5"
    ) in texts
    assert "b.grad += 1 \u00d7 n.grad = 1 \u00d7 0.5 = 0.5" in texts
    assert "(x1w1 + x2w2).grad += 1 \u00d7 n.grad = 1 \u00d7 0.5 = 0.5" in texts
    assert ex.steps[0].title == "Start at the output: o.grad = 1.0"
    assert ex.grad_by_name["x1"] == backward_grads(neuron)[0]


def test_accumulation_shows_each_contribution():
    ex = explain(reused())
    b_step = ex.steps[2]
    assert b_step.title == "b._backward(): b = a \u00d7 a"
    assert [c.text for c in b_step.contributions] == [
        "a.grad += a.data \u00d7 b.grad = 2.0 \u00d7 1.0 = 2.0"
    ] * 2
    assert [(c.before, c.after) for c in b_step.contributions] == [(1.0, 3.0), (3.0, 5.0)]
    assert b_step.sums == [
        "a is used 3 times (1 by c, 2 by b), so its gradient is the sum of one term per use: "
        "a.grad = 1.0 + 2.0 + 2.0 = 5.0"
    ]
    assert ex.grad_by_name == {"a": 5.0, "b": 1.0, "c": 1.0}


def test_relu_says_why_it_passes_or_blocks():
    on = Value(2.0, label="x").relu()
    off = Value(-2.0, label="x").relu()
    assert "Here relu1.data = 2.0 > 0, so the local derivative is 1." in explain(on).steps[1].lines
    off_step = explain(off).steps[1]
    assert "Here relu1.data = 0.0 \u2264 0, so the local derivative is 0." in off_step.lines
    assert off_step.contributions[0].text == "x.grad += 0 \u00d7 relu1.grad = 0 \u00d7 1.0 = 0.0"


def test_unlabelled_nodes_get_readable_names():
    x = Value(3.0)
    ex = explain((x * 2).tanh() + x)
    assert ex.names == ["v1", "v2", "mul1", "tanh1", "add1"]
    assert ex.steps[0].title == "Start at the output: add1.grad = 1.0"


def test_the_users_graph_is_left_as_it_was():
    root = mlp_loss()
    order = root.topological_order()
    for i, v in enumerate(order):
        v.grad = float(i)  # whatever the user had there
    before = [(v.data, v.grad, v.label, v._op) for v in order]
    ex = explain(root)
    assert [(v.data, v.grad, v.label, v._op) for v in order] == before
    assert ex.grads == backward_grads(mlp_loss)  # a fresh backward, not an accumulation


def test_after_backward_the_page_shows_the_same_grads():
    root = neuron_exp_tanh()
    root.backward()
    assert explain(root).grads == [v.grad for v in root.topological_order()]


def test_seed_and_non_finite_numbers():
    x = Value(0.0, label="x")
    ex = explain(x.log() * 2.0, grad=3.0)
    assert ex.steps[0].title == "Start at the output: mul1.grad = 3.0"
    assert math.isinf(ex.grad_by_name["x"]) and fmt(ex.grad_by_name["x"]) == "inf"
    assert '"Infinity"' in ex.html or '"-Infinity"' in ex.html  # JSON has no inf: strings
    leaf = explain(Value(4.0, label="only"))
    assert [s.kind for s in leaf.steps] == ["seed", "done"] and leaf.grads == [1.0]


def test_fmt():
    assert [fmt(x) for x in (2.0, -3.0, 0.5, 0.70710678, 6.8813735870195432, -0.0)] == [
        "2.0", "-3.0", "0.5", "0.7071", "6.8814", "0.0"
    ]  # fmt: skip
    assert fmt(1e-7) == "1e-07" and fmt(0.00004) == "4e-05" and fmt(2.5e9) == "2.5e+09"
    assert fmt(float("nan")) == "nan" and fmt(-math.inf) == "-inf"
    assert fmt(0.9999999999999996) == "1.0"


def test_bad_input():
    with pytest.raises(TypeError, match="expects a Value, got float"):
        explain(1.0)
    with pytest.raises(TypeError):
        explain(Value(1.0), grad="x")
    big = sum((Value(float(i)) for i in range(60)), Value(0.0))
    with pytest.raises(ValueError, match="more than max_nodes=50"):
        explain(big, max_nodes=50)


# ---- the page -------------------------------------------------------------------------------


def test_page_is_self_contained(tmp_path):
    ex = explain(all_ops())
    page = ex.html
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for external in ("<link", "@import", " src=", "url(http", "//cdn", "https://"):
        assert external not in page
    assert re.findall(r"http://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]
    path = ex.save(tmp_path / "page.html")
    assert path.read_text(encoding="utf-8") == page


def test_hostile_labels_cannot_break_out_of_the_page():
    evil = Value(1.0, label="</script><script>alert(1)</script><b>&amp;")
    page = explain(evil * 2).html
    assert page.count("</script>") == 2  # the data block's and the code's own
    assert "<b>&amp;" not in page.split("<main>")[1].split("<script")[0]


def test_jupyter_display_is_an_isolated_iframe():
    ex = explain(neuron())
    shown = ex._repr_html_()
    assert shown.startswith('<iframe srcdoc="') and 'sandbox="allow-scripts"' in shown
    srcdoc = shown.split('srcdoc="')[1].split('" sandbox')[0]
    assert '"' not in srcdoc and html.unescape(srcdoc) == ex.html
    assert "backward pass from 'o'" in repr(ex)


def test_page_lists_its_layout_engine_and_legend():
    page = explain(neuron(), layout_engine="layered").html
    assert "layout: layered" in page
    for words in ("How to read this page", "Gradients flow the other way", "grad is final"):
        assert words in page.replace("<code>", "").replace("</code>", "")


def test_long_sums_are_written_as_a_learner_would():
    from backprop.viz.stepthrough import _sum_text

    assert _sum_text([1.0, -0.5, 2.0]) == "1.0 \u2212 0.5 + 2.0"
    long = _sum_text([1.0] * 30)
    assert long.count("1.0") == 11 and "(19 more terms)" in long
    x = Value(3.0, label="x")
    ex = explain(x**3.0 + 2**x)
    titles = [s.title for s in ex.steps]
    assert "powc1._backward(): powc1 = x ** 3" in titles
    assert "rpow1._backward(): rpow1 = 2 ** x" in titles


def test_backprop_explain_stays_the_function():
    """Importing the drawing modules must not shadow the function re-exported as
    backprop.explain (its module is backprop.viz.stepthrough, a different name)."""
    import importlib

    import backprop
    import backprop.viz

    explain(Value(1.0))
    importlib.import_module("backprop.viz.stepthrough")
    assert callable(backprop.explain) and backprop.explain is explain
    assert backprop.viz.explain is explain
    assert backprop.explain(Value(2.0)).grads == [1.0]


def test_a_subclass_of_value_is_copied_too():
    class Tagged(Value):
        __slots__ = ("tag",)

    a = Tagged(3.0, label="a")
    a.tag = "mine"
    ex = explain(a * a)
    assert ex.grad_by_name["a"] == 6.0 and a.grad == 0.0 and a.tag == "mine"


def test_docs_name_source_files_that_exist():
    """docs/explain.md points readers to modules by path: each one must be there."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    text = (root / "docs" / "explain.md").read_text(encoding="utf-8")
    paths = re.findall(r"`(backprop/[\w/]+\.(?:py|js|css|html))`", text)
    assert paths, "docs/explain.md names no source file"
    for p in paths:
        assert (root / "src" / p).exists(), f"docs/explain.md names {p}, which does not exist"


def test_an_unknown_layout_engine_is_refused_when_explain_is_called():
    from backprop import Value
    from backprop.viz.stepthrough import explain

    x = Value(2.0, label="x")
    with pytest.raises(ValueError, match="engine must be auto, dot"):
        explain(x * x, layout_engine="bogus")
