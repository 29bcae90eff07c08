"""explore() with hostile and careless names: every feature, class and title a user controls
reaches the page as text, never as markup or script, and the page starts (issue 17, item 7)."""

from __future__ import annotations

import json
import re

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import MLP
from backprop.data import blobs
from backprop.train import fit
from backprop.viz.explorer import explore

HOSTILE = [
    "<!--<script>",
    "</script><img src=x onerror=alert(1)>",
    'quote " \' """ triple',
    "back\\slash\nnew line",
    "nul\x00byte & <b>bold</b> \u2028 \u2029",
]


@pytest.fixture(scope="module")
def hostile_run():
    data = blobs(30, centers=3, seed=1)
    X = [row + [row[0] - row[1], 0.5 * row[1]] for row in data.X]
    y = [HOSTILE[c] for c in data.y]
    model = MLP(4, [3, 3], output_activation="linear", seed=0)
    return fit(model, X, y, loss="cross-entropy", epochs=3, record=True, progress=False)


def test_the_payload_has_no_markup(hostile_run):
    page = explore(hostile_run, features=HOSTILE[1:], title=HOSTILE[0]).html
    data = page.split('id="bpx-data">', 1)[1].split("</script>", 1)[0]
    assert not re.search(r"[<>&\u2028\u2029]", data)
    back = json.loads(data)
    assert back["features"] == HOSTILE[1:]
    assert sorted(back["classes"]) == sorted(HOSTILE[:3])
    assert back["title"] == HOSTILE[0]
    assert "<!--<script>" not in page  # not even in the <title>


def test_the_page_starts_and_shows_the_names_as_text(browser, hostile_run, tmp_path):
    path = explore(hostile_run, features=HOSTILE[1:], title=HOSTILE[0]).save(tmp_path / "p.html")
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
            requests.append(r.url))  # fmt: skip
    page.route("**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else
               r.continue_())  # fmt: skip
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        options = page.eval_on_selector_all("#bpx-fx option", "os => os.map(o => o.textContent)")
        assert options == HOSTILE[1:]
        legend = page.text_content("#bpx-class-legend")
        for name in HOSTILE[:3]:
            assert name in legend
        assert page.locator("img").count() == 0  # no markup came through
        assert page.title() == HOSTILE[0]
    finally:
        page.close()
    assert errors == []
    assert requests == []


def test_a_recorder_page_with_hostile_names_starts(browser, tmp_path):
    from backprop import Recorder, Value

    w = [Value(0.5), Value(-0.25)]
    rec = Recorder({HOSTILE[0]: w, HOSTILE[1]: [[Value(1.0)]]}, title=HOSTILE[2])
    rec.probe(lambda: (w[0] * w[1]).tanh())
    for _ in range(3):
        rec.watch(HOSTILE[3], [[w[0], w[1]], [w[0]]])
        rec.note(HOSTILE[4], HOSTILE[0])
        rec.step(w[0] * w[0], **{HOSTILE[1]: 1.0})
    path = explore(rec).save(tmp_path / "rec.html")
    text = path.read_text(encoding="utf-8")
    data = text.split('id="bpr-data">', 1)[1].split("</script>", 1)[0]
    assert not re.search(r"[<>&\u2028\u2029]", data)
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        names = page.eval_on_selector_all("canvas.bpr-map", "cs => cs.map(c => c.dataset.name)")
        assert names == [HOSTILE[0], HOSTILE[1], HOSTILE[3]]
        assert HOSTILE[0] in page.text_content("#bpr-notes")
        assert page.locator("img").count() == 0
        assert page.title() == HOSTILE[2]
    finally:
        page.close()
    assert errors == []
