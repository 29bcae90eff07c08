"""explore() as a new user meets it (issue 17, item 12): a 64-feature run (the 8x8 digits) keeps
to max_bytes and says what it left out, picks informative axes, keeps 64 input names and the
squares legible and clickable; the dead-ReLU note follows the epoch; a point with a zero
gradient says so and offers one that teaches more."""

from __future__ import annotations

import re

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import MLP
from backprop.data import digits, moons
from backprop.train import fit
from backprop.viz.explorer import explore

BUDGET = 3_000_000


@pytest.fixture(scope="module")
def digits_run():
    X, y = digits("train")
    X, y = X[:150], y[:150]
    model = MLP(64, [16, 10], output_activation="linear", seed=0)
    return fit(model, X, y, loss="cross-entropy", epochs=3, lr=0.01, optimizer="adam",
               record=True, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def dying_run():
    """A ReLU net where one hidden neuron is dead from the start and a second dies at epoch 4."""
    X, y = moons(30, noise=0.1, seed=4)
    model = MLP(2, [6, 1], activation="relu", output_activation="linear", seed=2)
    return fit(model, X, y, loss="hinge", epochs=8, lr=0.3, optimizer="sgd", record=True,
               progress=False)  # fmt: skip


@pytest.fixture
def open_page(browser, tmp_path):
    pages, errors = [], []

    def opener(explorer, width=1400, height=1000):
        path = explorer.save(tmp_path / f"p{len(pages)}.html")
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else
                   r.continue_())  # fmt: skip
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert errors == []


def boxes(page, selector):
    return page.eval_on_selector_all(
        selector,
        "es => es.map(e => { const r = e.getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; })",
    )


def overlapping(rects):
    rects = sorted(rects, key=lambda r: (r[0], r[1]))
    return [
        (a, b)
        for k, a in enumerate(rects)
        for b in rects[k + 1 :]
        if a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5
    ]


def test_a_wide_run_keeps_to_max_bytes_and_says_what_it_left_out(digits_run, open_page):
    ex = explore(digits_run, max_bytes=BUDGET)
    assert len(ex.html.encode()) <= BUDGET
    assert ex.data["thinned"]["stepThrough"]["nodes"] > 1000
    page = open_page(ex)
    sub = page.text_content("#bpx-sub")
    assert "budget" in sub and "step-through" in sub, sub
    page.evaluate("bpx.selectPoint(0)")
    assert "left out of this page" in page.text_content("#bpx-details")
    assert page.locator("#bpx-step-point").count() == 0


def test_thinned_frames_are_said(open_page):
    X, y = moons(40, noise=0.1, seed=1)
    h = fit(MLP(2, [4, 1], seed=0), X, y, loss="hinge", epochs=30, record=True, progress=False)
    ex = explore(h, max_bytes=460_000)
    kept, recorded = ex.data["thinned"]["frames"]
    assert kept == len(ex.data["frames"]) < recorded == 31
    assert len(ex.html.encode()) <= 460_000
    sub = open_page(ex).text_content("#bpx-sub")
    assert f"keeps {kept} of the 31 recorded snapshots" in sub


def test_default_axes_vary_most_and_the_held_note_is_short(digits_run, open_page):
    X = digits_run.recording.X
    n = len(X)
    spread = [sum(x[q] ** 2 for x in X) / n - (sum(x[q] for x in X) / n) ** 2 for q in range(64)]
    top = sorted(range(64), key=lambda q: -spread[q])[:2]
    page = open_page(explore(digits_run, max_bytes=BUDGET))
    assert page.evaluate("bpx.plane()") == sorted(top)
    held = page.text_content("#bpx-held")
    assert "the other 62 features held at their means" in held
    assert len(held) < 300


def test_64_inputs_names_and_squares_do_not_overlap_and_clicks_hit(digits_run, open_page):
    page = open_page(explore(digits_run, max_bytes=BUDGET), height=1700)  # all in view
    names = boxes(page, ".bpx-node.bpx-input .bpx-node-name")
    assert len(names) == 64
    assert overlapping(names) == []
    squares = boxes(page, ".bpx-node")
    assert len(squares) == 64 + 16 + 10
    assert overlapping(squares) == []
    for j in range(16):  # the centre of every hidden square selects that neuron
        r = boxes(page, f".bpx-node[data-l='1'][data-j='{j}']")[0]
        page.mouse.click((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)
        assert page.text_content("#bpx-details h2") == f"Neuron {j + 1} of hidden layer 1"


def test_the_dead_relu_note_follows_the_epoch(dying_run, open_page):
    page = open_page(explore(dying_run))
    last = page.evaluate("bpx.frames") - 1
    states = [page.evaluate(f"bpx.states({k})") for k in (0, last)]
    counts = [sum(row.count("dead") for row in frame) for frame in states]
    assert counts[0] != counts[1]
    for k, count in zip((0, last), counts):
        page.evaluate(f"bpx.frame({k})")
        text = page.text_content("#bpx-details")
        assert re.search(rf"\b{count} dead ReLU neurons?\b", text), (k, text)
        assert "never change" not in text
    page.evaluate(f"bpx.selectNeuron(1, {page.evaluate('bpx.states()')[0].index('dead')})")
    text = page.text_content("#bpx-details")
    assert "cannot recover" not in text and "unless something else moves it" in text


def test_a_point_with_a_zero_gradient_offers_one_that_teaches(dying_run, open_page):
    page = open_page(explore(dying_run))
    last = page.evaluate("bpx.frames") - 1
    page.evaluate(f"bpx.frame({last})")
    n = len(dying_run.recording.X)
    grads = [page.evaluate(f"bpx.pointGradient({last}, {i})") for i in range(n)]
    flat = [i for i, g in enumerate(grads) if not any(g)]
    assert flat, "the run should have a point past the margin"
    page.evaluate(f"bpx.selectPoint({flat[0]})")
    note = page.text_content("#bpx-zero-note")
    assert "every gradient in this point's backward pass is 0" in note
    wrong = page.evaluate("bpx.predictions()")
    page.click("#bpx-better-point")
    better = int(re.search(r"Point #(\d+)", page.text_content("#bpx-details h2")).group(1))
    assert any(grads[better])
    y = dying_run.recording.y
    misclassified = [i for i in range(n) if (wrong[i] > 0) != (y[i] == 1)]
    if misclassified:
        assert better in misclassified


def test_long_input_names_and_layer_titles_stay_inside_the_diagram(digits_run, open_page):
    names = [f"r{q // 8}c{q % 8} (/16)" for q in range(64)]
    page = open_page(explore(digits_run, features=names, max_bytes=BUDGET), height=1700)
    svg = boxes(page, "#bpx-net-svg")[0]
    for box in boxes(page, ".bpx-node.bpx-input .bpx-node-name"):
        assert box[0] >= svg[0] - 0.5
    for box in boxes(page, "#bpx-net-svg text.bpx-layer-label"):
        assert svg[0] - 0.5 <= box[0] and box[2] <= svg[2] + 0.5
