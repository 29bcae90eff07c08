"""explore()'s page in a real headless browser: Debian's chromium driven by playwright.

The page computes everything from the snapshots' weights; these tests hold it to Python: its
predictions at the data points against the model loaded with each snapshot (to 1e-12), and the
step-through of a clicked point against an eager ``backward()`` of that point's loss, bit for
bit. They also drive the page as a learner does: the scrubber, the keys, the gradient toggle, a
dead neuron, a neuron's and a point's details. Skipped only when chromium or playwright is
genuinely absent (CI installs both).
"""

from __future__ import annotations

import hashlib

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import MLP
from backprop.data import blobs, moons
from backprop.train import fit, get_objective
from backprop.viz.explorer import explore, point_loss

# ---- small recorded runs, trained once per module ---------------------------------------------


@pytest.fixture(scope="module")
def moons_run():
    """tanh MLP(2, [6, 6, 1]) on 40 moons points, hinge loss, 24 epochs."""
    X, y = moons(40, noise=0.1, seed=3)
    model = MLP(2, [6, 6, 1], seed=2)
    return fit(model, X, y, loss="hinge", epochs=24, lr=0.05, record=True, progress=False)


@pytest.fixture(scope="module")
def dead_run():
    """A ReLU net whose first hidden neuron is dead from the start (zero on every point), so
    no gradient reaches it and it stays dead."""
    X, y = moons(30, noise=0.1, seed=4)
    model = MLP(2, [4, 1], activation="relu", output_activation="linear", seed=5)
    dead = model.layers[0].neurons[0]
    for w in dead.w:
        w.data = 0.0
    dead.b.data = -5.0
    return fit(model, X, y, loss="hinge", epochs=6, lr=0.05, record=True, progress=False)


@pytest.fixture(scope="module")
def saturated_run():
    """A tanh net whose second hidden neuron sits at tanh(40) = 1 on every point."""
    X, y = moons(30, noise=0.1, seed=4)
    model = MLP(2, [3, 1], seed=6)
    sat = model.layers[0].neurons[1]
    for w in sat.w:
        w.data = 0.0
    sat.b.data = 40.0
    return fit(model, X, y, loss="mse", epochs=4, lr=0.05, record=True, progress=False)


@pytest.fixture(scope="module")
def blobs_run():
    """Three classes and three features (cross-entropy): colour by class, pick two features."""
    data = blobs(36, centers=3, seed=7)
    X = [row + [0.5 * row[0] - row[1]] for row in data.X]
    model = MLP(3, [5, 3], output_activation="linear", seed=8)
    return fit(model, X, data.y, loss="cross-entropy", epochs=12, lr=0.05, record=True,
               progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each run's page, written once per module."""
    paths = {}

    def save(history, **options):
        key = (id(history), tuple(sorted(options.items())))
        if key not in paths:
            folder = tmp_path_factory.mktemp("explore")
            named = {k: list(v) for k, v in options.items()}
            paths[key] = explore(history, **named).save(folder / "run.html")
        return paths[key]

    return save


@pytest.fixture
def open_page(browser, saved):
    """Open an explorer page; fail the test on any console error, page error or request that
    leaves the file (the page must be one offline file)."""
    pages, errors, requests = [], [], []

    def opener(history, width=1400, height=900, **options):
        path = saved(history, **{k: tuple(v) for k, v in options.items()})
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
                requests.append(r.url))  # fmt: skip
        page.route(
            "**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_()
        )  # fmt: skip
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert errors == []
    assert requests == []


def frame(page) -> int:
    return page.evaluate("bpx.frame()")


def boundary_hash(page) -> str:
    url = page.eval_on_selector("#bpx-boundary", "c => c.toDataURL()")
    return hashlib.sha256(url.encode()).hexdigest()


def cursors(page) -> list[str]:
    return [page.get_attribute(s, "data-cursor") for s in ("#bpx-loss", "#bpx-acc")]


def eager_outputs(history, epoch: int) -> list:
    """The model's outputs at every training point, an eager forward pass per point."""
    model = history.model_at(epoch)
    outs = [model(x) for x in history.recording.X]
    return [o.data if not isinstance(o, list) else [v.data for v in o] for o in outs]


# ---- the tests ---------------------------------------------------------------------------------


def test_loads_offline_and_clean(open_page, moons_run):
    page = open_page(moons_run)
    f = page.evaluate("bpx.frames")
    assert f == len(moons_run.snapshots) == 25
    assert page.text_content("#bpx-epoch") == "epoch 0 / 24"
    assert page.locator(".bpx-node").count() == 2 + 6 + 6 + 1
    assert page.locator("path.bpx-edge").count() == 2 * 6 + 6 * 6 + 6
    print(f"\nexplorer page ready {page.evaluate('bpx.loadMs'):.0f} ms after navigation")


def test_predictions_equal_python(open_page, moons_run, blobs_run):
    for history in (moons_run, blobs_run):
        page = open_page(history)
        epochs = [s.epoch for s in history.snapshots]
        for k in (0, 1, len(epochs) // 2, len(epochs) - 1):
            shown = page.evaluate(f"bpx.predictions({k})")
            expected = eager_outputs(history, epochs[k])
            assert len(shown) == len(expected)
            for a, b in zip(shown, expected):
                a, b = (a, b) if isinstance(b, list) else ([a], [b])
                assert all(abs(u - v) <= 1e-12 for u, v in zip(a, b)), (k, a, b)


def test_scrubbing_changes_the_boundary_and_the_cursor(open_page, moons_run):
    page = open_page(moons_run)
    first, first_cursor = boundary_hash(page), cursors(page)
    page.eval_on_selector(
        "#bpx-slider", "s => { s.value = s.max; s.dispatchEvent(new Event('input')); }"
    )
    assert frame(page) == len(moons_run.snapshots) - 1
    assert page.text_content("#bpx-epoch") == "epoch 24 / 24"
    last, last_cursor = boundary_hash(page), cursors(page)
    assert last != first
    assert all(float(b) > float(a) for a, b in zip(first_cursor, last_cursor))
    page.click("#bpx-first")
    assert boundary_hash(page) == first and cursors(page) == first_cursor
    # a click on the loss curve jumps to the epoch under it
    box = page.locator("#bpx-loss").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 16, box["y"] + box["height"] / 2)
    assert frame(page) == len(moons_run.snapshots) - 1


def test_the_gradient_toggle_changes_the_edge_widths(open_page, moons_run):
    page = open_page(moons_run)
    page.evaluate("bpx.frame(3)")
    weights = page.evaluate("bpx.edgeWidths()")
    page.click("label:has(#bpx-show-grads)")
    grads = page.evaluate("bpx.edgeWidths()")
    assert grads != weights
    # width follows |grad| of the update that ended the epoch; the biggest ones stand out
    g = moons_run.snapshots[3].grads
    edges = page.eval_on_selector_all(
        "path.bpx-edge", "es => es.map(e => [+e.dataset.l, +e.dataset.j, +e.dataset.i])"
    )
    offsets, o = {}, 0
    for layer, (m, n) in enumerate(zip([2, 6, 6], [6, 6, 1]), start=1):
        for j in range(n):
            offsets[layer, j] = o
            o += m + 1
    size = [abs(g[offsets[layer, j] + i]) for layer, j, i in edges]
    biggest = max(range(len(size)), key=size.__getitem__)
    assert grads[biggest] == max(grads)
    assert "bpx-top" in page.get_attribute(f"path.bpx-edge >> nth={biggest}", "class")
    page.click("label:has(#bpx-show-weights)")
    assert page.evaluate("bpx.edgeWidths()") == weights
    # epoch 0 has had no update: no gradient yet, and the page says so
    page.click("label:has(#bpx-show-grads)")
    page.keyboard.press("Home")
    assert "no gradient yet" in page.text_content("#bpx-net-teach")


def test_a_dead_relu_neuron_is_marked(open_page, dead_run):
    page = open_page(dead_run)
    for k in (0, page.evaluate("bpx.frames") - 1):
        page.evaluate(f"bpx.frame({k})")
        node = page.locator('.bpx-node[data-l="1"][data-j="0"]')
        assert "dead" in node.get_attribute("class").split()
        assert node.get_attribute("data-state") == "dead"
        assert node.locator(".bpx-badge").text_content() == "dead"
        assert page.locator(".bpx-node.dead").count() == 1
    assert "dead ReLU neuron" in page.text_content("#bpx-details")
    page.click('.bpx-node[data-l="1"][data-j="0"]')
    details = page.text_content("#bpx-details")
    assert "Dead: this ReLU outputs 0 on every training point" in details
    assert "unless something else moves it" in details


def test_a_saturated_tanh_neuron_is_marked(open_page, saturated_run):
    page = open_page(saturated_run)
    node = page.locator('.bpx-node[data-l="1"][data-j="1"]')
    assert node.get_attribute("data-state") == "saturated"
    assert page.evaluate("bpx.states(0)")[0] == ["ok", "saturated", "ok"]
    node.click()
    assert "Saturated" in page.text_content("#bpx-details")


def test_a_neuron_shows_its_weights_and_gradient_over_the_epochs(open_page, moons_run):
    page = open_page(moons_run)
    page.evaluate("bpx.frame(10)")
    page.click('.bpx-node[data-l="2"][data-j="3"]')
    assert page.text_content("#bpx-details h2") == "Neuron 4 of hidden layer 2"
    assert page.locator("#bpx-details svg.bpx-mini").count() == 2
    assert page.locator("#bpx-details .bpx-w").count() == 6 + 1  # 6 weights and the bias
    assert "selected" in page.get_attribute('.bpx-node[data-l="2"][data-j="3"]', "class")
    # each weight line runs over every frame: one point per frame in its path
    path = page.get_attribute("#bpx-details svg.bpx-mini path.bpx-line", "d")
    assert path.count("L") == len(moons_run.snapshots) - 1


def point_on_canvas(page, history, i):
    """Where point i is drawn on the boundary canvas, in page pixels."""
    data = page.evaluate("JSON.parse(document.getElementById('bpx-data').textContent)")
    lo, hi, x = data["lo"], data["hi"], history.recording.X[i]
    box = page.locator("#bpx-boundary").bounding_box()
    u = (x[0] - lo[0]) / (hi[0] - lo[0])
    v = (x[1] - lo[1]) / (hi[1] - lo[1])
    return box["x"] + u * box["width"], box["y"] + (1 - v) * box["height"]


def loneliest_point(history) -> int:
    """The point farthest from its nearest neighbour, so that a click finds only it."""
    X = history.recording.X

    def gap(i):
        return min((X[i][0] - X[j][0]) ** 2 + (X[i][1] - X[j][1]) ** 2 for j in range(len(X))
                   if j != i)  # fmt: skip

    return max(range(len(X)), key=gap)


def test_a_point_opens_its_backward_pass_equal_to_eager_backward(open_page, moons_run):
    page = open_page(moons_run)
    k = 12
    page.evaluate(f"bpx.frame({k})")
    i = loneliest_point(moons_run)
    page.mouse.click(*point_on_canvas(page, moons_run, i))
    assert page.text_content("#bpx-details h2").startswith(f"Point #{i} ")
    forward = page.evaluate(f"bpx.forward({k}, {i})")
    assert len(forward) == 4 and [len(a) for a in forward] == [2, 6, 6, 1]
    shown = page.eval_on_selector_all(
        "#bpx-details .bpx-cell", "cs => cs.map(c => +c.dataset.value)"
    )
    assert shown == [v for layer in forward for v in layer]
    assert "share of the epoch's gradient" in page.text_content("#bpx-details")
    shares = page.evaluate(f"bpx.shares({k})")
    assert abs(sum(shares) - 1) < 1e-9  # the points' parts add up to the whole gradient

    page.click("#bpx-step-point")
    assert page.is_visible("#bpx-overlay") and page.evaluate("bpx.stepThroughOpen()")
    assert page.text_content("#bpx-overlay-title").startswith(f"Point #{i} at epoch 12")
    page.keyboard.press("End")  # the step-through has the keys now, not the epoch scrubber
    assert frame(page) == k
    assert page.text_content("#bp-title") == "Done: the backward pass is complete"

    epoch = moons_run.snapshots[k].epoch
    model = moons_run.model_at(epoch)
    objective = get_objective(moons_run.loss_name)
    target = objective.target(moons_run.recording.y[i])
    loss, _, _ = point_loss(model, moons_run.recording.X[i], target, objective)
    loss.backward()
    expected = [v.grad for v in loss.topological_order()]
    got = page.eval_on_selector_all(
        "#bpx-overlay g.vnode", "gs => gs.sort((a, b) => a.dataset.i - b.dataset.i)"
        ".map(g => g.dataset.grad)"
    )  # fmt: skip
    assert [float(g) for g in got] == expected  # bit for bit
    grads_of_params = {id(p): p.grad for p in model.parameters()}
    assert any(g != 0 for g in grads_of_params.values())

    page.keyboard.press("Escape")
    assert not page.is_visible("#bpx-overlay")
    assert page.evaluate("window.backprop === undefined")  # the view is unmounted
    page.keyboard.press("ArrowRight")
    assert frame(page) == k + 1
    # and it opens again at the new epoch, for the same point
    page.click("#bpx-step-point")
    assert page.text_content("#bpx-overlay-title").startswith(f"Point #{i} at epoch 13")
    page.click("#bpx-back")
    assert not page.evaluate("bpx.stepThroughOpen()")


def test_keys_buttons_and_play(open_page, moons_run):
    page = open_page(moons_run)
    last = len(moons_run.snapshots) - 1
    assert page.is_disabled("#bpx-prev") and page.is_disabled("#bpx-first")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert frame(page) == 2
    page.keyboard.press("ArrowLeft")
    assert frame(page) == 1
    page.keyboard.press("End")
    assert frame(page) == last and page.is_disabled("#bpx-next")
    page.keyboard.press("Home")
    assert frame(page) == 0
    page.click("#bpx-next")
    assert frame(page) == 1
    page.click("#bpx-last")
    page.click("#bpx-prev")
    assert frame(page) == last - 1
    page.focus("#bpx-slider")  # the slider's own arrow keys move one frame, not two
    page.keyboard.press("ArrowLeft")
    assert frame(page) == last - 2
    # play runs to the end and stops by itself; space pauses and plays
    page.select_option("#bpx-speed", "16")
    page.click("#bpx-first")
    page.click("#bpx-play")
    assert page.text_content("#bpx-play").endswith("Pause")
    page.wait_for_function("bpx.frame() >= 3")
    page.keyboard.press(" ")
    paused = frame(page)
    assert not page.evaluate("bpx.playing()")
    page.wait_for_timeout(120)
    assert frame(page) == paused < last
    page.keyboard.press(" ")
    page.wait_for_function(f"bpx.frame() === {last} && !bpx.playing()", timeout=20000)
    assert page.text_content("#bpx-play").endswith("Play")


def test_more_than_two_features_pick_the_plane(open_page, blobs_run):
    page = open_page(blobs_run, features=("a", "b", "c"))
    assert page.is_visible("#bpx-axes")
    X = blobs_run.recording.X
    spread = [sum(x[q] ** 2 for x in X) / len(X) - (sum(x[q] for x in X) / len(X)) ** 2
              for q in range(3)]  # fmt: skip
    fx, fy = sorted(sorted(range(3), key=lambda q: -spread[q])[:2])  # the two that vary most
    assert page.evaluate("bpx.plane()") == [fx, fy]
    (held,) = {0, 1, 2} - {fx, fy}
    assert f"{'abc'[held]} held at its mean" in page.text_content("#bpx-held")
    assert page.locator("#bpx-class-legend .bpx-key").count() >= 3
    before = boundary_hash(page)
    page.select_option("#bpx-fy", str(held))
    assert page.evaluate("bpx.plane()") == [fx, held]
    assert f"{'abc'[fy]} held at its mean" in page.text_content("#bpx-held")
    assert boundary_hash(page) != before
    page.select_option("#bpx-fx", str(held))  # the same feature on both axes swaps them
    assert page.evaluate("bpx.plane()") == [held, fx]


def test_inline_in_jupyter(browser, moons_run):
    """_repr_html_ is an iframe that runs the page."""
    page = browser.new_page()
    try:
        page.set_content(f"<html><body>{explore(moons_run)._repr_html_()}</body></html>")
        inner = page.frame_locator("iframe")
        inner.locator("body[data-ready='1']").wait_for()
        inner.locator("#bpx-last").click()
        assert inner.locator("#bpx-epoch").text_content() == "epoch 24 / 24"
    finally:
        page.close()
