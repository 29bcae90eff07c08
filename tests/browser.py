"""Debian's chromium, headless, for the browser tests (driven by playwright): where it is, the
flags it needs on this closed network, and the skip when it or playwright is genuinely absent
(CI installs both). Import it from a test module: a missing browser skips that module."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("BACKPROP_CHROMIUM") or (
    "/usr/bin/chromium"
    if os.path.exists("/usr/bin/chromium")
    else shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these, chromium calls home and is refused
    "--disable-component-update",
    "--disable-sync",
]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
