"""explain(root, mode="forward", wrt=leaf): one forward-mode sweep, step by step. Its tangents
are jvp's bit for bit and backward()'s gradients to rounding; the page counts the sweeps (the
browser tests are in test_forward_browser.py)."""

from __future__ import annotations

import json
import math
import random
import re

import pytest
from catalog import CASES
from graphs import GRAPHS, backward_grads, neuron
from test_explain import same

from backprop import MLP, Value, jvp
from backprop.viz.stepthrough import ForwardExplanation, explain, fmt


def leaves_of(root: Value) -> list[Value]:
    return [v for v in root.topological_order() if v._fn is None]


def some_leaves(root: Value, k: int = 6) -> list[Value]:
    """Every leaf of a small graph; k of a big one (the first, the last and some between)."""
    leaves = leaves_of(root)
    if len(leaves) <= k:
        return leaves
    rng = random.Random(len(leaves))
    return [leaves[0], leaves[-1], *rng.sample(leaves[1:-1], k - 2)]


def state_after(ex: ForwardExplanation, k: int, order=None) -> list[float]:
    """Every node's tangent after steps 0..k, as the page's data sets them (0.0: not yet); or
    after the steps in ``order``, a page's order of the step indices."""
    tangents = [0.0] * len(ex.names)
    for step in ex.steps[: k + 1] if order is None else [ex.steps[j] for j in order]:
        if step.kind == "seed":
            for i in ex.leaves:
                tangents[i] = ex.tangents[i]
        elif step.kind == "forward":
            tangents[step.node] = step.tangent
    return tangents


def page_data(ex) -> dict:
    text = ex.html.split('<script type="application/json" id="bp-data">')[1]
    return json.loads(text.split("</script>")[0].replace("<\\/", "</"))


def mlp_loss() -> Value:
    model = MLP(2, [3, 1], seed=5)
    xs = [[0.5, -1.0], [1.0, 2.0], [-0.5, 0.25]]
    ys = [1.0, -1.0, 1.0]
    return sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), Value(0.0)) / len(xs)


# ---- the numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", GRAPHS)
def test_tangents_are_jvps_and_backwards(name):
    root = GRAPHS[name]()
    order = root.topological_order()
    expected_grads = backward_grads(GRAPHS[name])
    for wrt in some_leaves(root):
        ex = explain(root, mode="forward", wrt=wrt)
        w = ex.wrt
        assert order[w] is wrt and ex.names[w] == ex.names[order.index(wrt)]
        # the same computation as jvp: equal bit for bit, at the root and at every node
        assert same(ex.tangent, jvp(root, [wrt], [1.0]).data)
        for v, t in zip(order, ex.tangents):
            assert same(t, jvp(v, [wrt], [1.0], allow_unused=True).data), (ex.names, t)
        # backward() adds the same derivatives in another order: equal to rounding
        assert math.isclose(ex.tangent, expected_grads[w], rel_tol=1e-12, abs_tol=1e-12)
        assert all(same(a, b) for a, b in zip(ex.grads, expected_grads))  # one reverse sweep
        # the page's last state is the tangents, and the done step says the root's
        assert all(same(a, b) for a, b in zip(state_after(ex, len(ex.steps) - 1), ex.tangents))
        assert ex.steps[-1].tangent == ex.tangent
        assert ex.steps[-1].title.startswith(f"Done: {_ref(ex.names[ex.root])}.tangent = ")


def _ref(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_#]*", name) else f"({name})"


def test_an_mlp_loss_for_every_parameter():
    loss = mlp_loss()
    loss.backward()
    params = [v for v in leaves_of(loss) if v.grad != 0.0][:6]
    assert params
    for p in params:
        ex = explain(loss, mode="forward", wrt=p)
        assert same(ex.tangent, jvp(loss, [p], [1.0]).data)
        assert math.isclose(ex.tangent, p.grad, rel_tol=1e-12, abs_tol=1e-14)


@pytest.mark.parametrize("name", GRAPHS)
def test_one_step_per_op_node_in_topological_order(name):
    root = GRAPHS[name]()
    ex = explain(root, mode="forward", wrt=leaves_of(root)[0])
    kinds = [s.kind for s in ex.steps]
    assert kinds[0] == "seed" and kinds[-1] == "done"
    assert set(kinds[1:-1]) <= {"forward"}
    assert [s.node for s in ex.steps[1:-1]] == [i for i, op in enumerate(ex.ops) if op]
    assert ex.steps[0].node == ex.wrt
    # a node's inputs all come before it, so their tangents are known when it is computed
    for s in ex.steps[1:-1]:
        assert all(p < s.node for p in ex.inputs[s.node])


def test_the_neuron_in_words():
    o = neuron()
    w1 = next(v for v in leaves_of(o) if v.label == "w1")
    ex = explain(o, mode="forward", wrt=w1)
    by_title = {s.title: s for s in ex.steps}
    assert ex.steps[0].title == "Seed the tangents: w1.tangent = 1, every other leaf's 0"
    assert "The 4 other leaves do not move" in ex.steps[0].lines[0]
    mul = by_title["x1w1.tangent, from x1w1 = x1 \u00d7 w1"]
    assert mul.formulas == [
        "x1w1.tangent = w1.data \u00d7 x1.tangent + x1.data \u00d7 w1.tangent\n"
        "= (-3.0) \u00d7 0.0 + 2.0 \u00d7 1.0\n"
        "= 0.0 + 2.0 = 2.0"
    ]
    assert "x1 does not depend on w1 (tangent 0): its term is 0." in mul.lines
    assert [(t.node, t.local, t.tangent, t.term) for t in mul.terms] == [
        (ex.names.index("x1"), -3.0, None, None),
        (ex.names.index("w1"), 2.0, 1.0, 2.0),
    ]
    nothing = by_title["x2w2.tangent, from x2w2 = x2 \u00d7 w2"]
    assert "None of its inputs depends on w1, so neither does x2w2" in " ".join(nothing.lines)
    assert nothing.tangent == 0.0
    tanh = by_title["o.tangent, from o = tanh(n)"]
    assert tanh.formulas == [
        "o.tangent = (1 \u2212 o.data\u00b2) \u00d7 n.tangent\n"
        "= (1 \u2212 0.7071\u00b2) \u00d7 2.0\n"
        "= 0.5 \u00d7 2.0 = 1.0"
    ]
    done = ex.steps[-1]
    assert done.title == "Done: o.tangent = 1.0 = \u2202o/\u2202w1"
    words = " ".join(done.lines)
    assert "This graph has 5 leaves, so forward mode needs 5 sweeps" in words
    assert "o.backward(), gets all 5 in 1 sweep" in words
    assert "w1.grad = 1.0  \u2190 this sweep: o.tangent" in done.sums
    assert len(done.sums) == 5
    # the forward sentences for ops whose reverse wording speaks of gradients flowing back
    add = by_title["n.tangent, from n = (x1w1 + x2w2) + b"]
    assert "a sum adds its inputs' tangents" in add.lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_op_is_explained_with_numbers(case):
    rng = random.Random(case.name + "forward")
    low = 0.1 if case.positive else case.low
    xs = [Value(round(rng.uniform(low, case.high), 3), label=f"x{i}") for i in range(case.arity)]
    out = case.ours(*xs)
    out.label = "out"
    for wrt in xs:
        ex = explain(out, mode="forward", wrt=wrt)
        assert same(ex.tangent, jvp(out, [wrt], [1.0]).data)
        step = ex.steps[-2]
        assert step.node == ex.root and step.kind == "forward"
        assert step.title.startswith("out.tangent, from out = ")
        (formula,) = step.formulas
        assert formula.startswith("out.tangent = ")
        assert formula.endswith(f" = {fmt(ex.tangent)}")
        assert len(step.terms) == len(out._prev)
        for v in xs:
            v.grad = 0.0
        out.backward()
        assert math.isclose(ex.tangent, wrt.grad, rel_tol=1e-12, abs_tol=1e-12)


def test_an_input_that_does_not_depend_on_wrt_adds_nothing():
    """jvp skips the terms of inputs without a tangent (so an infinite local derivative times
    a tangent of 0 gives no nan), and so does the page."""
    x, y = Value(0.0, label="x"), Value(2.0, label="y")
    out = x.sqrt() * y  # d sqrt(x)/dx = 1/(2 sqrt 0) = inf
    out.label = "out"
    ex = explain(out, mode="forward", wrt=y)
    assert ex.tangent == 0.0 == jvp(out, [y], [1.0]).data
    assert ex.tangent_by_name["sqrt1"] == 0.0
    assert not any(math.isnan(t) for t in ex.tangents)


def test_a_reused_leaf_gets_one_term_per_use():
    a = Value(3.0, label="a")
    b = a * a
    b.label = "b"
    ex = explain(b, mode="forward", wrt=a)
    (formula,) = ex.steps[1].formulas
    assert formula == (
        "b.tangent = a.data \u00d7 a.tangent + a.data \u00d7 a.tangent\n"
        "= 3.0 \u00d7 1.0 + 3.0 \u00d7 1.0\n"
        "= 3.0 + 3.0 = 6.0"
    )
    assert ex.tangent == 6.0 and ex.sweeps == 1


def test_the_users_graph_is_left_as_it_was():
    o = neuron()
    order = o.topological_order()
    for k, v in enumerate(order):
        v.grad = float(k)
    before = [(v.data, v.grad, v.label) for v in order]
    explain(o, mode="forward", wrt=order[0])
    assert [(v.data, v.grad, v.label) for v in o.topological_order()] == before


# ---- the sweep count ------------------------------------------------------------------------


def test_the_page_counts_the_sweeps():
    o = neuron()
    leaves = leaves_of(o)
    ex = explain(o, mode="forward", wrt=leaves[2])
    assert ex.sweeps == len(ex.leaves) == 5
    text = re.sub(r"<[^>]+>", "", ex.html)
    assert "This graph has 5 leaves: forward mode needs\n  5 sweeps like this one" in text
    assert "reverse mode,\n  o.backward(), needs 1." in text
    mlp = GRAPHS["mlp_loss"]()
    ex = explain(mlp, mode="forward", wrt=leaves_of(mlp)[0])
    assert ex.sweeps == len(leaves_of(mlp)) == 94
    assert "This graph has <b>94 leaves</b>" in ex.html and "<b>94 sweeps</b>" in ex.html


def test_one_leaf_is_one_sweep_either_way():
    x = Value(0.5, label="x")
    ex = explain(x.tanh(), mode="forward", wrt=x)
    assert ex.sweeps == 1
    assert "This graph has <b>1 leaf</b>: forward mode needs\n  <b>1 sweep</b>" in ex.html
    assert ex.steps[0].title == "Seed the tangents: x.tangent = 1"
    # a graph that is one leaf: the seed is the answer
    ex = explain(x, mode="forward", wrt=x)
    assert ex.tangent == 1.0 and [s.kind for s in ex.steps] == ["seed", "done"]


# ---- the page -------------------------------------------------------------------------------


def test_the_page_data_says_tangent():
    o = neuron()
    ex = explain(o, mode="forward", wrt=leaves_of(o)[1])
    data = page_data(ex)
    assert data["mode"] == "forward" and data["cell"] == "tangent" and data["cellStart"] == "?"
    assert [s["kind"] for s in data["steps"]] == [s.kind for s in ex.steps]
    assert data["stepOf"] == _step_index(ex)  # leaves: -1, seeded at step 0
    assert data["lastTouch"] == [0 if op is None else k for k, op in zip(_step_index(ex), ex.ops)]
    cells = re.findall(r'<text class="grad"[^>]*>([^<]*)</text>', ex.html)
    assert len(cells) == len(ex.names)
    assert all(c == "tangent ?" for c in cells) and "grad 0.0" not in ex.html
    # the legend explains a tangent; the reverse page's words about gradients are gone
    page = re.sub(r"<[^>]+>", "", ex.html)
    for words in ("tangent is the derivative", "&part;node/&part;w1", '"x dot"',
                  "not computed yet", "tangents flow the same way"):  # fmt: skip
        assert words in page, words
    assert "Gradients flow the other way" not in page
    assert '<html lang="en" class="bp-explain bp-forward">' in ex.html


def _step_index(ex) -> list[int]:
    at = [-1] * len(ex.names)
    for k, s in enumerate(ex.steps):
        if s.kind == "forward":
            at[s.node] = k
    return at


def test_page_is_self_contained_and_displays_in_jupyter(tmp_path):
    root = GRAPHS["all_ops"]()
    ex = explain(root, mode="forward", wrt=leaves_of(root)[0])
    page = ex.html
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for external in ("<link", "@import", " src=", "url(http", "//cdn", "https://"):
        assert external not in page
    assert ex.save(tmp_path / "page.html").read_text(encoding="utf-8") == page
    assert ex._repr_html_().startswith('<iframe srcdoc="')
    assert repr(ex) == (
        "<ForwardExplanation of the forward sweep for 'x' up to 'add9': 28 nodes, 28 steps, "
        "1 of 2 sweeps>"
    )


def test_hostile_labels_cannot_break_out_of_the_page():
    evil = Value(1.0, label="</script><script>alert(1)</script><b>&amp;")
    page = explain(evil * 2, mode="forward", wrt=evil).html
    assert page.count("</script>") == 2
    assert "<b>&amp;" not in page.split("<main>")[1].split("<script")[0]
    assert "<b>&amp;" not in page.split("<header>")[1].split("</header>")[0]


def test_reverse_mode_is_the_default_page():
    o = neuron()
    assert explain(o).html == explain(o, mode="reverse").html
    assert type(explain(o)).__name__ == "Explanation"
    assert "bp-forward" not in explain(o).html.split("<style>")[0]
    assert '"mode"' not in explain(o).html.split('id="bp-data">')[1]


# ---- bad input ------------------------------------------------------------------------------


def test_bad_input_is_a_clear_error():
    o = neuron()
    leaves = leaves_of(o)
    n = o._prev[0]
    with pytest.raises(ValueError, match="mode must be 'reverse' or 'forward', got 'sideways'"):
        explain(o, mode="sideways")
    with pytest.raises(ValueError, match="mode must be"):
        explain(o, mode=None)
    with pytest.raises(ValueError, match="needs wrt="):
        explain(o, mode="forward")
    with pytest.raises(TypeError, match="wrt must be a Value.*got float: 2.0"):
        explain(o, mode="forward", wrt=2.0)
    with pytest.raises(ValueError, match="is not in the graph of"):
        explain(o, mode="forward", wrt=Value(1.0, label="elsewhere"))
    with pytest.raises(ValueError, match="wrt must be a leaf.*'n' is the result of add"):
        explain(o, mode="forward", wrt=n)
    with pytest.raises(ValueError, match="wrt= is for mode='forward'"):
        explain(o, wrt=leaves[0])
    with pytest.raises(ValueError, match="wrt= is for mode='forward'"):
        explain(o, mode="reverse", wrt=leaves[0])
    with pytest.raises(ValueError, match="forward mode seeds wrt's tangent with 1, got grad=2.0"):
        explain(o, 2.0, mode="forward", wrt=leaves[0])
    with pytest.raises(TypeError, match="expects a Value"):
        explain(1.0, mode="forward", wrt=leaves[0])
    big = sum((Value(float(i)) for i in range(60)), Value(0.0))
    with pytest.raises(ValueError, match="more than max_nodes=50"):
        explain(big, mode="forward", wrt=leaves_of(big)[0], max_nodes=50)
