"""Smoke-test what users install: build the wheel, install it (not editable) into a fresh virtual
environment, and run every command and page from that install, in a folder outside the checkout.

    python3 tests/project/wheel_smoke.py           # .ci/run runs it after the test suite

The suite runs against the editable tree, where a file the wheel leaves out is still found; this
catches that (issue 17: the explorer's explore.html was missing from `pip install .`). The
environment gets the wheel's dependencies from pip, as a user's would. Prints one line per check
and a closing 'N passed, N failed' line; exits 1 if any check failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A notebook's code cells, run as Jupyter would: a cell's last bare expression is displayed, so
# an object with _repr_html_ draws its page there.
NOTEBOOK_RUNNER = """
import ast, json, sys
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
scope = {"__name__": "__main__"}
for cell in cells:
    tree = ast.parse("".join(cell["source"]))
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), scope)
    if last is not None:
        shown = eval(compile(ast.Expression(last.value), "<cell>", "eval"), scope)
        html = getattr(shown, "_repr_html_", None)
        print(f"displayed {len(html())} characters of HTML" if html else repr(shown))
"""

PAGES = """
import backprop
from backprop import MLP, Value
from backprop.data import moons

assert "site-packages" in backprop.__file__, backprop.__file__
x, w, b = Value(2.0, label="x"), Value(-3.0, label="w"), Value(1.0, label="b")
o = (x * w + b).tanh()
backprop.explain(o).save("explain.html")
X, y = moons(40, noise=0.1, seed=1)
model = MLP(2, [4, 1], activation="tanh", output_activation="linear", seed=1)
history = backprop.fit(model, X, y, epochs=5, progress=False, record=True)
backprop.explore(history).save("explore.html")
print(repr(history))
"""

DATA = """
from backprop import data
print(len(data.names()), "names")
if hasattr(data, "digits"):
    print(len(data.digits("train")), "+", len(data.digits("test")), "digits")
"""


CHROMIUM_FLAGS = [  # as tests/browser.py runs it on this closed network
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]


class Smoke:
    def __init__(self, work: Path, bin_dir: Path) -> None:
        self.work, self.bin = work, bin_dir
        self.passed = self.failed = 0

    def run(self, name: str, *command: str, expect: tuple[str, ...] = (), creates=()) -> bool:
        """Run one command in the work folder; it must exit 0 and write non-empty files."""
        start = time.perf_counter()
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)  # the checkout must not be importable
        result = subprocess.run(
            command, cwd=self.work, capture_output=True, text=True, env=env, timeout=600
        )
        problems = []
        if result.returncode != 0:
            problems.append(f"exit code {result.returncode}")
        for path in creates:
            file = self.work / path
            if not file.is_file() or file.stat().st_size == 0:
                problems.append(f"wrote no {path}")
            elif path.endswith(".html") and "{{" in file.read_text(encoding="utf-8")[:200]:
                problems.append(f"{path} holds an unfilled template")
        for text in expect:
            if text not in result.stdout + result.stderr:
                problems.append(f"no {text!r} in its output")
        took = time.perf_counter() - start
        if problems:
            self.failed += 1
            print(f"FAIL {name} ({took:.1f} s): {'; '.join(problems)}")
            print("  $ " + " ".join(command))
            for line in (result.stdout + result.stderr).splitlines()[-15:]:
                print(f"  | {line}")
            return False
        self.passed += 1
        print(f"ok   {name} ({took:.1f} s)")
        return True

    def page(self, path: str) -> None:
        """Open a written page in headless chromium: its scripts start with no error."""
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None or not (self.work / path).is_file():
            print(f"skip page {path} (no chromium, or no page)")
            return
        command = [chromium, *CHROMIUM_FLAGS, "--dump-dom", (self.work / path).as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        errors = [line for line in result.stderr.splitlines() if "Uncaught" in line]
        if errors or "<body" not in result.stdout:
            self.failed += 1
            print(f"FAIL page {path}: " + ("; ".join(errors)[:2000] or "no page"))
        else:
            self.passed += 1
            print(f"ok   page {path} runs in chromium")

    def backprop(self, name: str, *arguments: str, **checks) -> bool:
        return self.run(name, str(self.bin / "backprop"), *arguments, **checks)

    def python(self, name: str, *arguments: str, **checks) -> bool:
        return self.run(name, str(self.bin / "python"), *arguments, **checks)


def build_wheel(tmp: Path) -> Path:
    """The wheel of the checkout, built from a copy of it (so that builds never share the
    checkout's build/ folder, and leave nothing in it); returns the wheel's path."""
    source = tmp / "source"
    junk = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.so")
    shutil.copytree(ROOT, source, ignore=junk)
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("*.whl")
    return wheel


def build_and_install(tmp: Path) -> Path:
    """The wheel built from the checkout, installed into a new venv; returns the venv's bin."""
    wheel = build_wheel(tmp)
    print(f"built {wheel.name}")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        cwd=tmp,
    )
    return bin_dir


def main() -> int:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="backprop-wheel-") as name:
        tmp = Path(name)
        bin_dir = build_and_install(tmp)
        work = tmp / "work"
        work.mkdir()
        (work / "points.csv").write_text("x1,x2\n0.5,0.25\n1.5,-0.3\n")
        shutil.copy(ROOT / "notebooks" / "explore.ipynb", work / "explore.ipynb")
        s = Smoke(work, bin_dir)
        s.backprop("--version", "--version", expect=("0.1.0",))
        s.backprop("demo", "demo", "--steps", "20", creates=("neuron.svg",))
        s.backprop(
            "train --save --plot --explore",
            *("train", "--dataset", "moons", "--epochs", "30", "--quiet"),
            *("--save", "model.json", "--plot", "moons.png", "--explore", "run.html"),
            creates=("model.json", "moons.png", "run.html"),
        )
        s.backprop(
            "train --compile",
            *("train", "--dataset", "spiral", "--epochs", "20", "--compile", "--quiet"),
            expect=("training accuracy",),
        )
        s.backprop(
            "predict",
            *("predict", "--model", "model.json", "--data", "points.csv", "--out", "preds.csv"),
            creates=("preds.csv",),
        )
        s.backprop(
            "graph --html --svg",
            *("graph", "tanh(x1*w1 + x2*w2 + b)", "--set", "x1=2", "w1=-3", "x2=0", "w2=1"),
            *("b=6.8813735870195432", "--html", "neuron.html", "--svg", "graph.svg"),
            creates=("neuron.html", "graph.svg"),
        )
        s.backprop(
            "export --to python",
            *("export", "--model", "model.json", "--to", "python", "--out", "model.py"),
            creates=("model.py",),
        )
        s.python(
            "explain() and explore() pages",
            *("-c", PAGES),
            creates=("explain.html", "explore.html"),
            expect=("History(",),
        )
        s.python(
            "notebooks/explore.ipynb",
            *("-c", NOTEBOOK_RUNNER, "explore.ipynb"),
            expect=("displayed",),
        )
        s.python("shipped data sets", "-c", DATA, expect=(" names",))
        s.backprop(
            "train --dataset digits",
            *("train", "--dataset", "digits", "--hidden", "none", "--epochs", "1"),
            *("--batch-size", "256", "--compile", "--quiet"),
            expect=("test accuracy",),
        )
        for page in ("run.html", "neuron.html", "explain.html", "explore.html"):
            s.page(page)
    took = time.perf_counter() - start
    print(f"wheel smoke test: {took:.0f} s")
    print(f"{s.passed} passed, {s.failed} failed")
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
