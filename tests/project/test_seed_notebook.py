"""The user's notebook runs unmodified from notebooks/, and shows the right numbers."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest
from run_notebook import execute

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "seed_notebook.ipynb"
SHARED_SEED = ROOT.parent / "shared" / "seed" / "seed_notebook.ipynb"

# Probe cells run after each cell that matches. They only read variables and print JSON; the
# notebook's own cells run exactly as written.
PROBES = [
    (
        lambda src: "o.backward()" in src,
        "{'x1': x1.grad, 'w1': w1.grad, 'x2': x2.grad, 'w2': w2.grad, 'b': b.grad, 'o': o.data}",
    ),
    (
        lambda src: "n = MLP(3, [4, 4, 1])" in src,
        "{'nparams': len(n.parameters()), 'out': type(n(x)).__name__}",
    ),
    (lambda src: src.strip() == "ypred", "{'ypred': [v.data for v in ypred], 'ys': ys}"),
]


def probe_cell(expr: str):
    return nbformat.v4.new_code_cell(f"import json as _j; print('PROBE', _j.dumps({expr}))")


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        for matches, expr in PROBES:
            if cell.cell_type == "code" and matches(cell.source):
                cells.append(probe_cell(expr))
    nb.cells = cells
    return execute(nb, NOTEBOOK.parent)


def outputs(nb, cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def probes(nb):
    found = []
    for cell in nb.cells:
        for line in outputs(nb, cell).splitlines():
            if line.startswith("PROBE "):
                found.append(json.loads(line[len("PROBE ") :]))
    return found


def test_notebook_is_the_users_file_unmodified():
    if not SHARED_SEED.exists():
        pytest.skip(f"no copy of the user's original notebook to compare with at {SHARED_SEED}")
    digest = hashlib.sha256
    assert digest(NOTEBOOK.read_bytes()).digest() == digest(SHARED_SEED.read_bytes()).digest()


def test_notebook_runs_with_no_error(executed):
    for cell in executed.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out


def test_manual_and_automatic_backprop_numbers(executed):
    p = probes(executed)
    neurons = [x for x in p if "x1" in x]
    # o.backward() on the tanh neuron, then on the exp-form one: both give the lecture's numbers
    assert len(neurons) == 2
    for got in neurons:
        assert got["x1"] == pytest.approx(-1.5, abs=1e-9)
        assert got["w1"] == pytest.approx(1.0, abs=1e-9)
        assert got["x2"] == pytest.approx(0.5, abs=1e-9)
        assert got["w2"] == 0.0
        assert got["b"] == pytest.approx(0.5, abs=1e-9)
        assert got["o"] == pytest.approx(0.7071067811865476, abs=1e-12)


def test_mlp_has_41_parameters(executed):
    got = next(x for x in probes(executed) if "nparams" in x)
    assert got == {"nparams": 41, "out": "Value"}


def test_loss_falls_and_predictions_approach_targets(executed):
    text = "".join(outputs(executed, c) for c in executed.cells)
    losses = [float(v) for v in re.findall(r"Step: \d+ loss: ([-\d.e]+)", text)]
    assert len(losses) == 200
    assert losses[-1] < losses[0] / 10
    assert losses[-1] < 0.05
    got = next(x for x in probes(executed) if "ypred" in x)
    for pred, target in zip(got["ypred"], got["ys"]):
        assert abs(pred - target) < 0.2


def test_graphs_are_drawn(executed):
    svgs = [
        o
        for c in executed.cells
        for o in c.get("outputs", [])
        if "image/svg+xml" in o.get("data", {})
    ]
    assert len(svgs) >= 10
    assert any("x1w1" in o["data"]["image/svg+xml"] for o in svgs)
