"""explain()'s page of the one-token attention loss under backprop.scope blocks (issue 20): its
size, its top level's step count, and how long headless Chromium takes to make it ready
(median of a few fresh loads); with --screenshots DIR, the docs' pictures of the block view,
an opened block, and a nudge on the notebook's neuron and on the token graph.

    python benchmarks/bench_explain.py
    python benchmarks/bench_explain.py --screenshots docs/images

The graph is tests/token_graph.py's: microgpt's forward pass for one token (n_embd 16, four
heads, a 27-letter vocabulary), about 4,000 nodes. "Ready" is the page's own mark
(``bpExplain.readyMs``: from the start of navigation to the end of its script, the top level
mounted and the graph drawn); the CPU time is Chromium's ThreadTime metric for the page's main
thread at that point.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from token_graph import tagged_scopes, token_loss  # noqa: E402

from backprop import Value, explain  # noqa: E402

CHROMIUM = os.environ.get("BACKPROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip


def neuron():
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    return o


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="fresh page loads to time")
    parser.add_argument("--screenshots", metavar="DIR", help="write explain-*.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    loss, _ = token_loss()
    with tagged_scopes():
        t = time.perf_counter()
        ex = explain(loss)
        html = ex.html
        elapsed = time.perf_counter() - t
        top = len(ex.block_steps()[1][0]["items"]) + 1
    print(f"explain(): {len(ex.names)} nodes, {len(ex.steps) - 2} steps, {elapsed:.2f} s")
    print(f"top level: {top} steps (limit 40)")
    folder = Path(tempfile.mkdtemp())
    path = folder / "token.html"
    path.write_text(html, encoding="utf-8")
    print(f"page: {len(html.encode()) / 1e6:.2f} MB (limit 5 MB)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ready, cpu = [], []
        for _ in range(args.loads):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            ready.append(page.evaluate("bpExplain.readyMs"))
            metrics = cdp.send("Performance.getMetrics")["metrics"]
            cpu.append(1000 * next(m["value"] for m in metrics if m["name"] == "ThreadTime"))
            page.close()
        print(
            f"ready after {statistics.median(ready):.0f} ms (median of {args.loads} loads; "
            f"target 2000 ms); the page's main thread busy {statistics.median(cpu):.0f} ms "
            "of CPU time by then (which a machine busy with other work does not inflate)"
        )
        if args.screenshots:
            small = folder / "neuron.html"
            explain(neuron()).save(small)
            shoot(browser, path, small, Path(args.screenshots))
        browser.close()
    return 0


def shoot(browser, token: Path, neuron_page: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)

    def open_(path):
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        return page

    page = open_(token)
    attn = page.evaluate(
        "window.backprop.data.steps.findIndex((s) => s.block && s.block.path === 'attn')"
    )
    page.evaluate(f"window.backprop.go({attn})")
    page.screenshot(path=folder / "explain-blocks.png")
    page.click("#bp-open")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.screenshot(path=folder / "explain-block-open.png")
    page.keyboard.press("Escape")
    page.keyboard.press("End")
    i = page.evaluate("window.backprop.names.indexOf('wte[3][0]')")
    page.evaluate(f"window.bpNudge.set({i}, 0.5); window.bpNudge.flush()")
    page.evaluate(f"window.backprop.reveal({i})")
    page.screenshot(path=folder / "explain-nudge-token.png")
    page.close()
    page = open_(neuron_page)
    page.keyboard.press("End")
    page.click("#v0")
    page.fill("#bp-nudge-value", "2.5")
    page.press("#bp-nudge-value", "Enter")
    page.wait_for_timeout(200)
    page.screenshot(path=folder / "explain-nudge-neuron.png")
    page.close()
    print(f"screenshots in {folder}")


if __name__ == "__main__":
    sys.exit(main())
