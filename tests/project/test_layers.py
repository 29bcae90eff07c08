"""The package's layers point one way: core, then training and compile, then drawing, then the
command line. No module imports a module of a higher layer, and no two modules import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import backprop

SRC = Path(backprop.__file__).parent

# the lowest layer first; a module may import only its own layer or lower ones
LAYERS = [
    {"_gc", "_optional", "_base", "_cvalue", "ops", "engine", "scopes", "autodiff", "nn"},
    {
        "data",
        "datasets",
        "losses",
        "optim",
        "serialize",
        "train",
        "compiled",
        "pytorch",
        "recorder",
    },
    {"viz"},
    {"cli", "__main__"},
]


def _layer(module: str) -> int:
    top = module.split(".")[1]
    for k, names in enumerate(LAYERS):
        if top in names:
            return k
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = ["backprop", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every backprop module and the backprop modules it imports (at any depth in the file)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                found.add(target)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backprop"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("backprop")}
        graph[name] = {t for t in found if t != name}
    return graph


def test_every_import_points_down_the_layers():
    wrong = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _imports().items()
        if module != "backprop"  # the package itself re-exports from every layer
        for target in targets
        if target != "backprop" and _layer(target) > _layer(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_import_each_other():
    graph = _imports()
    circles = sorted(
        f"{a} <-> {b}"
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph.get(b, ()) and not b.startswith(a + ".")
    )
    assert not circles, circles


def test_the_page_assets_are_real_files_in_the_package():
    from backprop.viz.assets import read_asset

    assert "function" in read_asset("explain.js")
    assert ":root" in read_asset("explain.css")
    assert not list(SRC.rglob("*_assets.py"))
