"""notebooks/moons.ipynb runs top to bottom (from its own folder) and reaches micrograd's result."""

import re
from pathlib import Path

import pytest
from run_notebook import execute

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "moons.ipynb"


@pytest.fixture(scope="module")
def executed():
    return execute(NOTEBOOK)


def _text(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_trains_moons_to_at_least_97_percent(executed):
    match = re.search(r"final training accuracy: (\d+)%", _text(executed))
    assert match, _text(executed)[-2000:]
    assert int(match.group(1)) >= 97


def test_notebook_uses_micrograds_setup(executed):
    source = "".join(c.source for c in executed.cells if c.cell_type == "code")
    for piece in [
        'MLP(2, [16, 16, 1], activation="relu", output_activation="linear"',
        "moons(100, noise=0.1",
        "hinge(",
        "l2_penalty(",
        "SGD(",
    ]:
        assert piece in source
    assert "337 parameters" in _text(executed)


def test_notebook_draws_the_data_and_the_decision_boundary(executed):
    images = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 2
    boundary_cell = next(c for c in executed.cells if "plot_decision_boundary(model" in c.source)
    assert any("image/png" in o.get("data", {}) for o in boundary_cell.outputs)
    assert "Figure" in boundary_cell.outputs[-1]["data"]["text/plain"]
