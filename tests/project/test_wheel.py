"""What a regular install gets: the built wheel holds every file of the package's source tree
(page assets, data sets and their licences, py.typed), under the distribution's own name.

The rest of the suite runs against the editable tree, where a file the wheel leaves out is still
found (issue 17: explore.html was missing from `pip install .`). tests/project/wheel_smoke.py,
which .ci/run runs after the suite, installs the wheel into a fresh venv and runs every command.
"""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "backprop"
# built, not shipped as such: bytecode, the extension's C source and in-place builds of it
NOT_SHIPPED = (".pyc", ".c", ".h", ".so", ".pyd", ".o")


def source_files() -> set[str]:
    """Every file of the package's source tree, as the wheel names it (backprop/...)."""
    found = set()
    for path in PACKAGE.rglob("*"):
        relative = path.relative_to(PACKAGE.parent)
        if not path.is_file() or "__pycache__" in relative.parts:
            continue
        if path.name.startswith(".") or path.suffix in NOT_SHIPPED:  # editors' and atomic temps
            continue
        found.add(relative.as_posix())
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    from wheel_smoke import build_wheel  # tests/project/wheel_smoke.py: the build .ci/run installs

    with zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("wheel"))) as archive:
        yield archive


def test_the_wheel_holds_every_file_of_the_package(wheel):
    names = set(wheel.namelist())
    missing = sorted(source_files() - names)
    assert not missing, f"files the wheel leaves out: {missing}"
    # the kinds that issue 17 found missing, and what the other data must include
    for needed in ("backprop/viz/assets/explore.html", "backprop/py.typed"):
        assert needed in names
    assert any(n.startswith("backprop/datasets/") and "LICENSE" in n for n in names)


def test_the_wheel_ships_no_bytecode_or_c_source(wheel):
    shipped = [
        n for n in wheel.namelist() if n.endswith((".pyc", ".c", ".h")) or "__pycache__" in n
    ]
    assert not shipped


def test_the_distribution_name_and_metadata(wheel):
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    meta = Parser().parsestr(wheel.read(meta_name).decode("utf-8"))
    # `backprop` on the package index is another project: never this one's name
    assert meta["Name"] == "backprop-toolkit"
    assert meta["License-Expression"] == "MIT"
    assert "License-File" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Intended Audience :: Education" in classifiers
    assert {n.split("/")[0] for n in wheel.namelist() if not n.startswith("backprop_")} == {
        "backprop"
    }  # the import name stays backprop
