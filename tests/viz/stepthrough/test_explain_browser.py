"""explain()'s page in a real headless browser: Debian's chromium driven by playwright.

Each page is stepped through with its own controls and the gradients it displays (the
``data-grad`` attribute of every node) are compared with ``backward()``'s, bit for bit, with
Graphviz's layout and with the pure-Python ones. Skipped only when chromium or playwright is
genuinely absent (CI installs both).
"""

from __future__ import annotations

import math
import shutil

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)
from graphs import GRAPHS, backward_grads, reused
from test_explain import state_after

from backprop import Value
from backprop.viz import draw as viz
from backprop.viz.stepthrough import explain

# every node's box in node order: a big graph keeps those out of view out of the document
NODES = "window.backprop.nodes()"


def shown_grads(page) -> list[float]:
    """The grad each node displays, read back from the DOM."""
    texts = page.evaluate(f"{NODES}.map(g => g.dataset.grad)")
    return [float(t) for t in texts]


def cell_texts(page) -> list[str]:
    return page.evaluate(f"{NODES}.map(g => g.querySelector('text.grad').textContent)")


def same(a, b):
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in
                                    zip(a, b))  # fmt: skip


def step_of(page) -> int:
    return page.evaluate("window.backprop.step()")


STEP_ALL = """() => {
  const next = document.getElementById("bp-next"), states = [];
  const nodes = window.backprop.nodes();
  while (!next.disabled) {  // the real button and its handler, without a round trip per step
    next.click();
    states.push([window.backprop.step(), nodes.map((g) => g.dataset.grad)]);
  }
  return states;
}"""


# a page grouped by scopes: every single step of every level, opening each block in place
WALK_LEVELS = """() => {
  const E = window.bpExplain, flat = E.recorded().steps, states = [];
  const nodes = window.backprop.nodes();
  function level() {
    for (let k = 0; k < E.handle().steps; k++) {
      E.handle().go(k);
      const s = E.handle().data.steps[k];
      if (s.kind === "block") {
        E.openBlock(E.source().blocks.indexOf(s.block));
        level();
        E.close();
      } else if (s.kind !== "enter") {
        states.push([flat.indexOf(s.of || s), nodes.map((g) => g.dataset.grad)]);
      }
    }
  }
  level();
  return states;
}"""


def step_through(page, ex):
    """Press Next until it is disabled, checking the grads shown at every step (a page grouped
    by scopes: every single step of every level, in the page's order)."""
    assert step_of(page) == 0
    assert same(shown_grads(page), state_after(ex, 0))
    if any(ex.scopes):
        order = [0, *ex.block_steps()[0], len(ex.steps) - 1]
        states = page.evaluate(WALK_LEVELS)
        assert [k for k, _ in states] == order
        for n, (k, grads) in enumerate(states):
            assert same([float(g) for g in grads], state_after(ex, k, order[: n + 1])), k
        return
    states = page.evaluate(STEP_ALL)
    assert [k for k, _ in states] == list(range(1, len(ex.steps)))
    for k, grads in states:
        assert same([float(g) for g in grads], state_after(ex, k)), k
    assert page.text_content("#bp-title") == "Done: the backward pass is complete"


@pytest.mark.parametrize("name", GRAPHS)
def test_stepping_through_gives_backward_grads(open_page, name):
    ex = explain(GRAPHS[name]())
    assert ex.layout_engine == "auto"
    page = open_page(ex)
    if shutil.which("dot"):
        assert "layout: dot" in page.text_content(".hint")
    step_through(page, ex)
    assert same(shown_grads(page), backward_grads(GRAPHS[name]))


@pytest.mark.parametrize("name", ["neuron", "reused", "all_ops"])
def test_without_dot_the_python_layout_works(open_page, monkeypatch, tmp_path, name):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz
    ex = explain(GRAPHS[name]())
    page = open_page(ex)
    assert "layout: grandalf" in page.text_content(".hint")
    step_through(page, ex)
    assert same(shown_grads(page), backward_grads(GRAPHS[name]))
    # nodes do not overlap
    boxes = page.eval_on_selector_all(
        "g.vnode rect.box", "rs => rs.map(r => { const b = r.getBoundingClientRect();"
        " return [b.left, b.top, b.right, b.bottom]; })"
    )  # fmt: skip
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] + 1 or b[2] <= a[0] + 1 or a[3] <= b[1] + 1 or b[3] <= a[1] + 1


def test_big_graph_with_the_layered_layout(open_page):
    x = [Value(float(i % 7) - 3, label=f"x{i}") for i in range(400)]
    root = sum(((xi * xi).tanh() for xi in x), Value(0.0, label="zero"))
    ex = explain(root, layout_engine="layered")
    page = open_page(ex)
    assert "layout: layered" in page.text_content(".hint")
    page.keyboard.press("End")
    assert step_of(page) == len(ex.steps) - 1
    expected = list(ex.grads)
    root.backward()
    assert same(shown_grads(page), [v.grad for v in root.topological_order()]) and same(
        expected, shown_grads(page)
    )
    # the first view is readable (not the whole graph shrunk to dots)
    scale = float(page.get_attribute("#bp-svg", "data-scale"))  # screen px per graph unit
    assert scale > 0.5


def test_buttons_slider_and_keyboard(open_page):
    ex = explain(reused())
    page = open_page(ex)
    last = len(ex.steps) - 1
    assert page.is_disabled("#bp-prev") and page.is_disabled("#bp-first")
    page.click("#bp-last")
    assert step_of(page) == last and page.is_disabled("#bp-next")
    page.click("#bp-prev")
    assert step_of(page) == last - 1
    page.click("#bp-first")
    assert step_of(page) == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert step_of(page) == 2
    page.keyboard.press("ArrowLeft")
    assert step_of(page) == 1
    page.keyboard.press("End")
    assert step_of(page) == last
    page.keyboard.press("Home")
    assert step_of(page) == 0
    # the slider, by mouse-free input and by its own arrow keys
    page.eval_on_selector(
        "#bp-slider", "s => { s.value = 2; s.dispatchEvent(new Event('input')); }"
    )
    assert step_of(page) == 2 and page.input_value("#bp-slider") == "2"
    page.focus("#bp-slider")
    page.keyboard.press("ArrowRight")
    assert step_of(page) == 3  # one step, not two (the page's own key handler stays out)
    assert page.text_content("#bp-counter") == f"step 3 / {last}"
    # the highlighted step: b's _backward() adds to a twice
    page.click("#bp-first")
    page.click("#bp-next")
    page.click("#bp-next")
    assert page.get_attribute("#v1", "class").split().count("cur") == 1  # b = a*a
    assert "rec" in page.get_attribute("#v0", "class").split()  # a receives
    assert page.locator("path.edge.active").count() == 3  # a->op twice, op->b
    terms = page.locator("#bp-terms .term").all_text_contents()
    assert terms[:2] == [
        "a.grad += a.data \u00d7 b.grad = 2.0 \u00d7 1.0 = 2.0so a.grad goes from 1.0 to 3.0",
        "a.grad += a.data \u00d7 b.grad = 2.0 \u00d7 1.0 = 2.0so a.grad goes from 3.0 to 5.0",
    ]
    assert "a.grad = 1.0 + 2.0 + 2.0 = 5.0" in terms[2]
    assert cell_texts(page) == ["grad 5.0", "grad 1.0", "grad 1.0"]


def test_play_and_pause(open_page):
    ex = explain(GRAPHS["all_ops"]())  # many steps at one level (the MLP's are grouped)
    page = open_page(ex)
    page.select_option("#bp-speed", "60")
    page.click("#bp-play")
    assert page.text_content("#bp-play").endswith("Pause")
    page.wait_for_function("window.backprop.step() >= 3")
    page.click("#bp-play")  # pause
    paused_at = step_of(page)
    assert not page.evaluate("window.backprop.playing()")
    page.wait_for_timeout(300)
    assert step_of(page) == paused_at and paused_at < len(ex.steps) - 1
    page.keyboard.press(" ")  # space plays on to the end, then stops by itself
    page.wait_for_function(f"window.backprop.step() === {len(ex.steps) - 1}", timeout=20000)
    page.wait_for_function("!window.backprop.playing()")
    assert page.text_content("#bp-play").endswith("Play")
    assert same(shown_grads(page), backward_grads(GRAPHS["all_ops"]))


def test_search_details_neighbourhood_and_zoom(open_page):
    ex = explain(GRAPHS["neuron"]())
    page = open_page(ex)
    page.fill("#bp-search", "x1")
    assert page.locator("g.vnode.match").count() == 3  # x1, x1w1, x1w1 + x2w2
    assert page.text_content("#bp-found").startswith("3 found")
    page.press("#bp-search", "Enter")
    assert page.is_visible("#bp-node")
    assert page.text_content("#bp-node h3") == "x1"
    assert step_of(page) == 0  # typing in the search box does not step
    page.click("#bp-node button")  # go to where x1's grad is complete
    assert step_of(page) == ex.steps.index(
        next(s for s in ex.steps if any(ex.names[c.node] == "x1" for c in s.contributions))
    )
    assert "Terms received so far:" in page.text_content("#bp-node")
    # only the neighbourhood of the current step stays visible
    page.check("#bp-near")
    visible = page.eval_on_selector_all(
        "g.vnode", "gs => gs.filter(g => getComputedStyle(g).display !== 'none').length"
    )
    assert 0 < visible < len(ex.names)
    page.uncheck("#bp-near")
    visible = page.eval_on_selector_all(
        "g.vnode", "gs => gs.filter(g => getComputedStyle(g).display !== 'none').length"
    )
    assert visible == len(ex.names)
    # zoom buttons and the wheel change the view box; fit shows everything
    view = page.get_attribute("#bp-svg", "data-view")
    page.click("#bp-zoomin")
    zoomed = page.get_attribute("#bp-svg", "data-view")
    assert float(zoomed.split()[2]) < float(view.split()[2])
    page.mouse.move(400, 400)
    page.mouse.wheel(0, 400)
    assert float(page.get_attribute("#bp-svg", "data-view").split()[2]) > float(zoomed.split()[2])
    page.mouse.move(300, 400)  # drag to pan
    page.mouse.down()
    page.mouse.move(500, 450, steps=4)
    page.mouse.up()
    panned = page.get_attribute("#bp-svg", "data-view").split()
    page.click("#bp-fit")
    assert page.get_attribute("#bp-svg", "data-view").split()[:2] != panned[:2]


def test_jupyter_iframe_runs_the_page(browser):
    ex = explain(GRAPHS["neuron"]())
    page = browser.new_page()
    try:
        page.set_content(f"<html><body>{ex._repr_html_()}</body></html>")
        frame = page.frame_locator("iframe")
        frame.locator("body[data-ready='1']").wait_for()
        frame.locator("#bp-last").click()
        assert frame.locator("#bp-title").text_content() == "Done: the backward pass is complete"
        grad = frame.locator("#v0").get_attribute("data-grad")
        assert float(grad) == backward_grads(GRAPHS["neuron"])[0]
    finally:
        page.close()


def test_draw_dot_fallback_svg_renders_in_the_browser(browser, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(viz, "_fallback_warned", True)
    root = GRAPHS["neuron"]()
    root.backward()
    svg = viz.draw_dot(root).pipe(format="svg").decode()
    page = browser.new_page()
    try:
        page.set_content(svg)
        texts = page.eval_on_selector_all("text", "ts => ts.map(t => t.textContent)")
        assert "grad -1.5000" in texts and "tanh" in texts
        width = page.eval_on_selector("svg", "s => s.getBoundingClientRect().width")
        assert width > 300
    finally:
        page.close()


def test_odd_graphs_load_cleanly(open_page):
    """A lone input, nan and infinity, and a very long label."""
    lone = explain(Value(4.0, label="only"))
    page = open_page(lone)
    page.keyboard.press("End")
    assert shown_grads(page) == [1.0]
    x = Value(-1.0, label="x" * 80)
    ex = explain(x.sqrt() + x.log() * 0 + Value(0.0).log())
    page = open_page(ex)
    states = page.evaluate(STEP_ALL)
    assert same([float(g) for g in states[-1][1]], ex.grads)
    assert any(math.isnan(g) for g in ex.grads)
    name = page.text_content("#v0 text.name")
    assert len(name) == 28 and name.endswith("\u2026")


def test_page_from_the_graph_command(browser, tmp_path, capsys, notebook_neuron):
    """backprop graph --html, stepped through with the arrow keys: the grads shown at the end
    are those of backward() on the notebook's neuron (the same expression, built by hand)."""
    from backprop.cli import main

    path = tmp_path / "neuron.html"
    argv = ["graph", "tanh(x1*w1 + x2*w2 + b)", "--set", "x1=2", "w1=-3", "x2=0", "w2=1",
            "b=6.8813735870195432", "--html", str(path)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    notebook_neuron.o.backward()
    expected = {name: leaf.grad for name, leaf in notebook_neuron.leaves.items()}
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        steps = page.evaluate("window.backprop.steps")
        for _ in range(steps - 1):
            page.keyboard.press("ArrowRight")
        assert page.text_content("#bp-title") == "Done: the backward pass is complete"
        for name, grad in expected.items():
            assert float(page.get_attribute(f'g.vnode[data-name="{name}"]', "data-grad")) == grad
        shown = page.text_content('g.vnode[data-name="x1"] text.grad')
        assert shown == "grad -1.5"
    finally:
        page.close()
