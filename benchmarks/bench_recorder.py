"""explore(Recorder)'s page of microgpt's run (examples/microgpt.py --explore): how long the
recording costs, how long explore() takes, the page's size, and in headless Chromium how long
the page takes to load, to inflate its probe (the loss of "emma", 43,021 nodes, shipped
gzipped), to open the probe's step-through the first time and again at another step, and to
take a step (medians of a few runs). With --screenshots DIR, the docs' pictures: the run early
and late, each head's attention, and the probe's step-through at its top level and inside a
position's block.

    python benchmarks/bench_recorder.py --steps 60
    python benchmarks/bench_recorder.py --steps 60 --screenshots docs/images

No peer records a user's own loop down to the chain rule (TensorBoard and Weights & Biases
stop at curves and histograms), so the figures stand alone; the first line compares the
run with and without recording.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import backprop

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BACKPROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
PAINTED = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


def load_microgpt():
    spec = importlib.util.spec_from_file_location("microgpt", ROOT / "examples" / "microgpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(microgpt, steps: int, path: Path) -> dict:
    """Train with and without --explore; the times of each, and of explore() alone."""
    times = {}
    save = microgpt.Recorder.save

    def timed_save(self, where):
        t = time.perf_counter()
        page = backprop.explore(self.rec)
        times["explore"] = time.perf_counter() - t
        page.save(where)

    microgpt.Recorder.save = timed_save
    try:
        t = time.perf_counter()
        microgpt.train(steps, use_jit=True)
        times["plain"] = time.perf_counter() - t
        t = time.perf_counter()
        microgpt.train(steps, use_jit=True, explore=str(path))
        times["recorded"] = time.perf_counter() - t - times["explore"]
    finally:
        microgpt.Recorder.save = save
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="microgpt's training steps")
    parser.add_argument("--loads", type=int, default=3, help="fresh page loads to time")
    parser.add_argument("--screenshots", metavar="DIR", help="write recorder-microgpt-*.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    microgpt = load_microgpt()
    path = Path(tempfile.mkdtemp()) / "microgpt.html"
    times = record(microgpt, args.steps, path)
    print(
        f"microgpt, {args.steps} steps with --jit: {times['plain']:.1f} s; recorded "
        f"{times['recorded']:.1f} s (the probe graph built at every kept step, the attention "
        f"read, names sampled), then explore() {times['explore']:.1f} s"
    )
    print(f"page: {path.stat().st_size / 1e6:.2f} MB (limit 10 MB)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        rows = {"load": [], "inflate": [], "open": [], "reopen": [], "step": []}
        for _ in range(args.loads):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            rows["load"].append(time.perf_counter() - t)
            page.wait_for_selector("body[data-probe-ready='1']", timeout=120_000)
            rows["inflate"].append(time.perf_counter() - t - rows["load"][-1])
            for key, frame in (("open", "bpr.frames - 1"), ("reopen", "0")):
                t = time.perf_counter()
                page.evaluate(f"bpr.openStepThrough({frame})")
                page.evaluate(PAINTED)
                rows[key].append(time.perf_counter() - t)
            t = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.evaluate(PAINTED)
            rows["step"].append(time.perf_counter() - t)
            nodes = page.evaluate("bpExplain.recorded().names.length")
            page.close()
        words = {
            "load": "page ready (curves, maps, notes drawn)",
            "inflate": "then its probe inflated",
            "open": "the probe's step-through opened",
            "reopen": "opened again at another step",
            "step": "one step (the drawing kept)",
        }
        for key, values in rows.items():
            print(f"{words[key]:40s} {1000 * statistics.median(values):8.0f} ms")
        print(f"(median of {args.loads} fresh loads; the probe graph has {nodes:,} nodes)")
        if args.screenshots:
            shoot(browser, path, Path(args.screenshots))
        browser.close()
    return 0


def shoot(browser, path: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-probe-ready='1']", timeout=120_000)
    page.evaluate("bpr.frame(1)")
    page.screenshot(path=folder / "recorder-microgpt-early.png")
    page.evaluate("bpr.frame(bpr.frames - 1)")
    page.screenshot(path=folder / "recorder-microgpt-late.png")
    page.locator("#bpr-watched-card").screenshot(path=folder / "recorder-microgpt-attention.png")
    page.click("#bpr-step-probe")
    page.wait_for_function("bpr.stepThroughOpen()", timeout=120_000)
    for _ in range(3):  # the mean's two steps, then the last position's block
        page.keyboard.press("ArrowRight")
    page.evaluate(PAINTED)
    page.screenshot(path=folder / "recorder-microgpt-probe.png")
    page.keyboard.press("Enter")  # inside position 4: loss, head, mlp, attention, embedding
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # inside its attention: output, head 3 ... head 0, q k v
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.evaluate(PAINTED)
    page.screenshot(path=folder / "recorder-microgpt-probe-block.png")
    page.close()
    print(f"screenshots in {folder}")


if __name__ == "__main__":
    sys.exit(main())
