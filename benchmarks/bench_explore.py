"""The explorer page of the moons run: its size, and how long headless Chromium takes to make it
ready (median of a few fresh loads); with --screenshots DIR, the docs' pictures of it.

    python benchmarks/bench_explore.py
    python benchmarks/bench_explore.py --screenshots docs/images

The run is the one docs/explore.md and notebooks/explore.ipynb show: MLP(2, [16, 16, 1]) with
tanh hidden layers and a linear output, 100 moons points, hinge loss, SGD lr 0.5, 100 epochs.
"Ready" is the page's own mark (``bpx.loadMs``: from the
start of navigation to the end of its script, with the first epoch drawn).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from backprop import MLP
from backprop.data import moons
from backprop.train import fit
from backprop.viz.explorer import explore

CHROMIUM = os.environ.get("BACKPROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip


def moons_run():
    X, y = moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], activation="tanh", output_activation="linear", seed=1)
    return fit(model, X, y, loss="hinge", optimizer="sgd", lr=0.5, epochs=100, record=True,
               progress=False, compile=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="fresh page loads to time")
    parser.add_argument(
        "--screenshots", metavar="DIR", help="write explore-{first,middle,last}.png"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    t = time.perf_counter()
    history = moons_run()
    print(f"training with record=True: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    page_html = explore(history).html
    print(f"explore(): {time.perf_counter() - t:.2f} s")
    path = Path(tempfile.mkdtemp()) / "moons.html"
    path.write_text(page_html, encoding="utf-8")
    print(f"page: {len(page_html.encode()) / 1e6:.2f} MB (limit 5 MB)")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ready, scripts, draws = [], [], []
        for _ in range(args.loads):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            ready.append(page.evaluate("bpx.loadMs"))
            scripts.append(page.evaluate("bpx.scriptMs"))
            draws.append(page.evaluate(
                "(() => { const t = performance.now(); for (let k = 1; k <= 20; k++) bpx.frame(k);"
                " return (performance.now() - t) / 20; })()"
            ))  # fmt: skip
            page.close()
        print(f"ready after {statistics.median(ready):.0f} ms (median of {args.loads} loads; "
              f"target 2000 ms), of which the explorer's script "
              f"{statistics.median(scripts):.0f} ms")  # fmt: skip
        print(f"one epoch redrawn (boundary, 35 heatmaps, 304 edges): "
              f"{statistics.median(draws):.1f} ms")  # fmt: skip
        if args.screenshots:
            shoot(browser, path, Path(args.screenshots))
        browser.close()
    return 0


def shoot(browser, path: Path, folder: Path) -> None:
    """The first epoch as it opens; a middle one with the gradients on the edges and a neuron
    clicked; the last with the point of the largest share of the gradient clicked."""
    folder.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.screenshot(path=folder / "explore-first.png", full_page=True)
    page.evaluate("bpx.frame(20)")
    page.click("label:has(#bpx-show-grads)")
    page.click('.bpx-node[data-l="1"][data-j="5"]')
    page.screenshot(path=folder / "explore-middle.png", full_page=True)
    page.click("label:has(#bpx-show-weights)")
    page.keyboard.press("End")
    # the point with the largest share of the last epoch's gradient: the one still being fitted
    page.evaluate(
        "(() => { const s = bpx.shares(); bpx.selectPoint(s.indexOf(Math.max(...s))); })()"
    )
    page.screenshot(path=folder / "explore-last.png", full_page=True)
    page.close()
    print(f"screenshots in {folder}")


if __name__ == "__main__":
    sys.exit(main())
