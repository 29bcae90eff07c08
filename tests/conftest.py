"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


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
