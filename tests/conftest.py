"""Fixtures shared by the test modules, in every folder: the notebook's neuron and the usual
graphs (built by graphs.py), and a headless browser for the pages."""

from __future__ import annotations

import pytest
from graphs import GRAPHS, Neuron, build_neuron


@pytest.fixture
def notebook_neuron() -> Neuron:
    """The notebook's neuron, fresh and before backward(): x1, x2, w1, w2, b -> x1w1, x2w2, s
    -> n -> o = tanh(n), each labelled as in the notebook (``.o`` is the root)."""
    return build_neuron()


@pytest.fixture(params=list(GRAPHS), ids=list(GRAPHS))
def usual_graph(request):
    """Each of the usual graphs in turn (graphs.GRAPHS), as ``(name, build)``: ``build()``
    makes a fresh copy, so a test can compare two sweeps of the same graph."""
    return request.param, GRAPHS[request.param]


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (see browser.py); skips without one."""
    from browser import ARGS, CHROMIUM, sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Open explain() pages in the module's browser (offline: every request but the file is
    refused); fail the test on any console error or page error."""
    pages, errors = [], []

    def opener(ex, width=1300, height=800):
        path = ex.save(tmp_path / f"page{len(pages)}.html")
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route(
            "**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_()
        )  # fmt: skip  (no network: the page must not need it)
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert errors == []
