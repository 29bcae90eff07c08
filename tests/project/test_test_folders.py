"""The tests' own layout: tests/ mirrors src/backprop, and a test file's name is unique.

A module's tests sit where the module sits (src/backprop/viz/page.py: tests/viz/test_page.py);
tests/project/ holds the checks of the project as a whole (docs, README, notebooks, the wheel,
the layers, DEVELOPING.md's recipes). There is no __init__.py: pytest imports each test file by
its bare name, and the shared helpers in tests/ by theirs (pyproject's ``pythonpath``), so two
test files of one name would clash.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import backprop

TESTS = Path(__file__).resolve().parents[1]
SRC = Path(backprop.__file__).parent


def _test_files() -> list[Path]:
    return [p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts]


def test_every_test_file_name_is_unique():
    counts = Counter(p.name for p in _test_files())
    clashes = sorted(name for name, n in counts.items() if n > 1)
    assert not clashes, (
        f"two test files share a name (pytest would import one as the other): {clashes}"
    )


def test_no_folder_is_a_package():
    found = [str(p.relative_to(TESTS)) for p in TESTS.rglob("__init__.py")]
    assert not found, f"tests/ has no __init__.py (test files import helpers by name): {found}"


def test_every_folder_mirrors_a_package_folder():
    folders = [
        p.relative_to(TESTS)
        for p in TESTS.rglob("*")
        if p.is_dir() and "__pycache__" not in p.parts and not p.name.startswith(".")
    ]
    stray = [str(f) for f in folders if f.parts[0] != "project" and not (SRC / f).is_dir()]
    assert not stray, f"tests/ folders that mirror no folder of src/backprop: {stray}"
