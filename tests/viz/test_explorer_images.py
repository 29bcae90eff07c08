"""The explorer of a run whose inputs are images (issue 21): the first-layer weights as images
that change over the epochs, the clicked point's image, the confusion matrix and misclassified
gallery at each epoch, and a drawing pad whose forward pass equals Python's to 1e-12."""

from __future__ import annotations

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import MLP
from backprop.data import digits
from backprop.train import fit
from backprop.viz.explorer import explore


@pytest.fixture(scope="module")
def digits_run():
    X, y = digits("train")
    model = MLP(64, [8, 10], output_activation="linear", seed=1)
    return fit(model, X[:120], y[:120], loss="cross-entropy", epochs=4, lr=0.02,
               optimizer="adam", record=True, progress=False, image_shape=(8, 8))  # fmt: skip


@pytest.fixture
def page(browser, digits_run, tmp_path):
    path = explore(digits_run).save(tmp_path / "digits.html")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
            requests.append(r.url))  # fmt: skip
    page.route("**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else
               r.continue_())  # fmt: skip
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    page.close()
    assert errors == []
    assert requests == []


def test_image_shape_is_checked_and_only_image_runs_get_the_panel(digits_run):
    assert explore(digits_run).data["imageShape"] == [8, 8]
    with pytest.raises(ValueError, match="64 pixels"):
        explore(digits_run, image_shape=(8, 7))


def test_the_drawing_pad_runs_python_s_forward_pass(page, digits_run):
    pad = page.locator("#bpx-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for k in range(12):  # a stroke down the middle, like a 1
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.02 * k),
                        box["y"] + box["height"] * (0.2 + 0.06 * k))  # fmt: skip
    page.mouse.up()
    for k in (0, page.evaluate("bpx.frames") - 1):
        page.evaluate(f"bpx.frame({k})")
        got = page.evaluate("bpx.pad()")
        x = got["x"]
        assert sum(v > 0 for v in x) >= 6  # the stroke is in the input
        model = digits_run.model_at(page.evaluate("bpx.epoch()"))
        want = [v.data for v in model(x)]
        assert len(got["acts"][-1]) == 10
        assert max(abs(a - b) for a, b in zip(got["acts"][-1], want)) <= 1e-12
        assert page.locator("#bpx-pad-probs .bpx-prob").count() == 10


def test_first_layer_weight_images_change_over_the_epochs(page):
    page.evaluate("bpx.frame(0)")
    first = [page.evaluate(f"bpx.weightImage({j})") for j in range(8)]
    page.evaluate("bpx.frame(bpx.frames - 1)")
    last = [page.evaluate(f"bpx.weightImage({j})") for j in range(8)]
    assert all(a != b for a, b in zip(first, last))
    assert page.locator("#bpx-weight-images canvas").count() == 8


def test_confusion_matrix_and_misclassified_gallery(page, digits_run):
    last = page.evaluate("bpx.frames") - 1
    page.evaluate(f"bpx.frame({last})")
    cells = page.eval_on_selector_all(
        "#bpx-confusion tr",
        "rows => rows.slice(1).map(r => Array.from(r.querySelectorAll('td'),"
        " td => +td.textContent || 0))",
    )
    assert sum(map(sum, cells)) == 120
    right = sum(cells[c][c] for c in range(10))
    assert right == round(digits_run.snapshots[-1].accuracy * 120)
    figures = page.locator("#bpx-misclassified figure")
    assert figures.count() == min(40, 120 - right)
    if figures.count():
        figures.first.click()
        assert page.locator("#bpx-details canvas.bpx-image").count() == 1
        assert "Classified wrong" in page.text_content("#bpx-details")
