"""explain(root, mode="forward", wrt=leaf)'s page in a real headless browser: Debian's
chromium driven by playwright, as in test_explain_browser.py.

Each page is stepped through with its own controls, and the tangent every node displays (the
view's ``data-grad`` attribute, which holds the number in a node's third cell: its tangent on a
forward page) is compared with Python's, bit for bit, at every step. Skipped only when chromium
or playwright is genuinely absent (CI installs both).
"""

from __future__ import annotations

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)
from graphs import GRAPHS, neuron, reused
from test_explain_browser import STEP_ALL, WALK_LEVELS, cell_texts, same, shown_grads, step_of
from test_forward import leaves_of, some_leaves, state_after

from backprop import Value, jvp
from backprop.viz.stepthrough import explain, fmt


def expected_cells(ex, k: int, order=None) -> list[str]:
    """What each node's third cell says after steps 0..k (or the steps in order): its tangent,
    or '?' until then."""
    done = set()
    for step in ex.steps[: k + 1] if order is None else [ex.steps[j] for j in order]:
        if step.kind == "seed":
            done.update(ex.leaves)
        elif step.kind == "forward":
            done.add(step.node)
    return [f"tangent {fmt(t)}" if i in done else "tangent ?" for i, t in enumerate(ex.tangents)]


def step_through(page, ex):
    """Press Next until it is disabled, checking the tangents shown at every step."""
    assert step_of(page) == 0
    assert same(shown_grads(page), state_after(ex, 0))
    assert cell_texts(page) == expected_cells(ex, 0)
    if any(ex.scopes):  # grouped by scopes: every single step of every level, in page order
        order = [0, *ex.block_steps()[0], len(ex.steps) - 1]
        states = page.evaluate(WALK_LEVELS)
        assert [k for k, _ in states] == order
        for n, (k, tangents) in enumerate(states):
            assert same([float(t) for t in tangents], state_after(ex, k, order[: n + 1])), k
        page.evaluate(f"window.backprop.go({len(ex.block_steps()[1][0]['items']) + 1})")
        assert cell_texts(page) == expected_cells(ex, len(ex.steps) - 1)
        return
    states = page.evaluate(STEP_ALL)
    assert [k for k, _ in states] == list(range(1, len(ex.steps)))
    for k, tangents in states:
        assert same([float(t) for t in tangents], state_after(ex, k)), k
    assert cell_texts(page) == expected_cells(ex, len(ex.steps) - 1)
    assert page.text_content("#bp-title").startswith("Done: ")


@pytest.mark.parametrize("name", GRAPHS)
def test_stepping_through_gives_jvps_tangents(open_page, name):
    root = GRAPHS[name]()
    for wrt in some_leaves(root, 2):
        ex = explain(root, mode="forward", wrt=wrt)
        page = open_page(ex)
        step_through(page, ex)
        shown = shown_grads(page)
        assert same(shown, ex.tangents)
        assert shown[ex.root] == jvp(root, [wrt], [1.0]).data  # bit for bit
        assert page.text_content("#bp-title") == ex.steps[-1].title


def test_the_sweep_count_is_shown(open_page):
    o = neuron()
    w1 = next(v for v in leaves_of(o) if v.label == "w1")
    page = open_page(explain(o, mode="forward", wrt=w1))
    sweeps = " ".join(page.text_content("#bp-sweeps").split())
    assert sweeps == (
        "This graph has 5 leaves: forward mode needs 5 sweeps like this one to get every "
        "gradient (this one is for w1); reverse mode, o.backward(), needs 1."
    )
    assert page.is_visible("#bp-sweeps")
    page.keyboard.press("End")
    words = page.text_content("#bp-lines")
    assert "forward mode needs 5 sweeps like this one" in words
    assert "gets all 5 in 1 sweep" in words
    sums = page.locator("#bp-terms .term.sum").all_text_contents()
    assert len(sums) == 5 and "w1.grad = 1.0  \u2190 this sweep: o.tangent" in sums
    # a tangent of 0 is grey, so the path from w1 stands out
    weight = 'g.vnode[data-name="{}"] text.grad'
    assert (
        page.eval_on_selector(weight.format("x2w2"), "t => getComputedStyle(t).fontWeight") == "400"
    )
    assert (
        page.eval_on_selector(weight.format("x1w1"), "t => getComputedStyle(t).fontWeight") == "600"
    )


def test_keys_buttons_and_what_a_step_highlights(open_page):
    root = reused()
    a = root.topological_order()[0]
    ex = explain(root, mode="forward", wrt=a)
    page = open_page(ex)
    last = len(ex.steps) - 1
    assert page.is_disabled("#bp-prev") and page.is_disabled("#bp-first")
    # step 0 seeds a: it is the current node, and its tangent 1 is shown
    assert "cur" in page.get_attribute("#v0", "class").split()
    assert cell_texts(page) == ["tangent 1.0", "tangent ?", "tangent ?"]
    page.keyboard.press("ArrowRight")
    assert step_of(page) == 1
    # b = a*a: b is current, a (read twice) is its input, and the edges into b flow
    assert "cur" in page.get_attribute("#v1", "class").split()
    assert "rec" in page.get_attribute("#v0", "class").split()
    assert page.locator("path.edge.active").count() == 3  # a->op twice, op->b
    flow = page.eval_on_selector("path.edge.active", "e => getComputedStyle(e).animationDirection")
    assert flow == "reverse"  # the dashes run with the arrows, forward
    terms = page.locator("#bp-terms .term").all_text_contents()
    assert terms == [
        "b.tangent = a.data \u00d7 a.tangent + a.data \u00d7 a.tangent\n"
        "= 2.0 \u00d7 1.0 + 2.0 \u00d7 1.0\n"
        "= 2.0 + 2.0 = 4.0"
    ]
    height = page.eval_on_selector("#bp-terms .term", "e => e.getBoundingClientRect().height")
    assert height > 40  # its rows are shown on their own lines
    assert cell_texts(page) == ["tangent 1.0", "tangent 4.0", "tangent ?"]
    page.keyboard.press("End")
    assert step_of(page) == last and page.is_disabled("#bp-next")
    assert shown_grads(page) == [1.0, 4.0, 5.0]
    page.keyboard.press("ArrowLeft")
    assert step_of(page) == last - 1
    page.keyboard.press("ArrowLeft")
    assert cell_texts(page) == ["tangent 1.0", "tangent 4.0", "tangent ?"]
    assert shown_grads(page) == [1.0, 4.0, 0.0]
    page.keyboard.press("Home")
    assert step_of(page) == 0
    page.keyboard.press(" ")  # space plays
    page.wait_for_function(f"window.backprop.step() === {last}", timeout=20000)
    page.click("#bp-first")
    assert step_of(page) == 0 and page.text_content("#bp-counter") == f"step 0 / {last}"


def test_node_details_speak_of_tangents(open_page):
    o = neuron()
    w1 = next(v for v in leaves_of(o) if v.label == "w1")
    ex = explain(o, mode="forward", wrt=w1)
    page = open_page(ex)
    page.click('g.vnode[data-name="n"]')
    box = page.text_content("#bp-node")
    assert "tangent now = ?" in box and "grad" not in box and "exactly" not in box
    page.click("#bp-node button")  # go to its step
    assert step_of(page) == ex.steps.index(
        next(s for s in ex.steps if s.node == ex.names.index("n"))
    )
    assert "tangent now = 2.0" in page.text_content("#bp-node")
    page.keyboard.press("End")
    page.click('g.vnode[data-name="o"]')
    box = page.text_content("#bp-node")
    assert "tangent now = 1.0" in box and "(tangent exactly 0.9999999999999996" in box


def test_without_dot_the_python_layout_works(open_page, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz
    root = GRAPHS["all_ops"]()
    ex = explain(root, mode="forward", wrt=leaves_of(root)[1])
    page = open_page(ex)
    assert "layout: grandalf" in page.text_content(".hint")
    step_through(page, ex)


def test_jupyter_iframe_runs_the_page(browser):
    x = Value(0.5, label="x")
    y = (x * x).tanh()
    ex = explain(y, mode="forward", wrt=x)
    page = browser.new_page()
    try:
        page.set_content(f"<html><body>{ex._repr_html_()}</body></html>")
        frame = page.frame_locator("iframe")
        frame.locator("body[data-ready='1']").wait_for()
        frame.locator("#bp-last").click()
        shown = frame.locator(f"#v{ex.root}").get_attribute("data-grad")
        assert float(shown) == jvp(y, [x], [1.0]).data
    finally:
        page.close()
