"""notebooks/explore.ipynb runs top to bottom and shows the explorer inline, in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from run_notebook import execute

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"


@pytest.fixture(scope="module")
def executed():
    return execute(NOTEBOOK)


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_the_notebook_trains_a_tanh_network_on_moons_with_recording(executed):
    text = "".join(o.get("text", "") for o in _outputs(executed))
    assert "101 snapshots, epochs 0 to 100" in text, text
    match = re.search(r"accuracy (\d+)% -> (\d+)%", text)
    assert match and int(match.group(2)) >= 97 > int(match.group(1))
    source = "".join(c.source for c in executed.cells if c.cell_type == "code")
    assert 'activation="tanh"' in source and "record=True" in source


def test_the_explorer_shows_inline_in_a_browser(executed, browser, tmp_path):
    html = [o["data"]["text/html"] for o in _outputs(executed) if "text/html" in o.get("data", {})]
    assert len(html) == 1 and html[0].startswith("<iframe srcdoc=")
    notebook_page = tmp_path / "notebook-output.html"
    notebook_page.write_text(f"<!DOCTYPE html><html><body>{html[0]}</body></html>", "utf-8")
    errors, requests = [], []
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(notebook_page.as_uri())
    page.frame_locator("iframe").locator("#bpx-app").wait_for(state="visible")
    inner = page.frames[1]
    inner.wait_for_function("document.body.dataset.ready === '1'")
    assert inner.evaluate("window.bpx.frames") == 101
    canvas = inner.locator("canvas").first
    assert canvas.bounding_box()["width"] > 100  # drawn at a readable size inside the cell
    page.close()
    assert not errors, errors
    assert [u for u in requests if not u.startswith(("file:", "about:", "data:"))] == []
