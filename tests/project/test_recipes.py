"""DEVELOPING.md's recipes stay true: every file it names exists, and each place a recipe lists
agrees with the others, so that an op, a loss, a dataset or a page added in one place and
missed in another fails here by name."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

import backprop
from backprop import losses, ops
from backprop.engine import Value

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(backprop.__file__).parent
GUIDE = ROOT / "DEVELOPING.md"
SUFFIXES = (".py", ".js", ".css", ".html", ".md", ".c", ".txt", "/")


def _repo_files() -> list[str]:
    skip = {".git", "build", ".hypothesis", ".ruff_cache", "__pycache__", ".benchmarks"}
    paths = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if skip.isdisjoint(rel.parts):
            paths.append(rel.as_posix() + ("/" if path.is_dir() else ""))
    return paths


def _named_paths(text: str) -> list[str]:
    """The file and folder names the guide writes in backticks (placeholders such as NAME.js
    and patterns such as explore*.js included; words with spaces or calls left out)."""
    found = []
    for token in re.findall(r"`([^`\s]+)`", text):
        if token.endswith(SUFFIXES) and token[0] != "." and "(" not in token and "=" not in token:
            found.append(token)
    return found


def test_every_file_the_guide_names_exists():
    files = _repo_files()
    missing = []
    for token in _named_paths(GUIDE.read_text(encoding="utf-8")):
        pattern = re.sub(r"<\w+>", "*", token.replace("NAME", "*"))
        if not any(
            fnmatch.fnmatch(f, pattern) or fnmatch.fnmatch(f, "*/" + pattern) for f in files
        ):
            missing.append(token)
    assert not missing, f"DEVELOPING.md names files that do not exist: {missing}"


def test_every_module_is_in_the_layout():
    text = GUIDE.read_text(encoding="utf-8")
    modules = [p for p in SRC.rglob("*") if p.suffix in (".py", ".c") and p.name != "__init__.py"]
    absent = [str(p.relative_to(SRC)) for p in modules if f"{p.name}`" not in text]
    assert not absent, f"DEVELOPING.md's layout does not name {absent}"


# ---- an op --------------------------------------------------------------------------------


def _functions(namespace: type, skip: set[str] = frozenset()) -> set[str]:
    return {n for n in vars(namespace) if not n.startswith("_") and n not in skip}


def test_the_maths_namespaces_offer_the_same_functions():
    """A rule may call any function of m, with m any of these: a function added to one only
    would fail in compiled replay (numpy, torch) or in a gradient graph (GraphMath)."""
    from backprop.autodiff.sweep import GraphMath
    from backprop.compiled.numpy_math import NumpyMath
    from backprop.compiled.torch_backend import TorchMath

    scalar = _functions(ops.ScalarMath)
    for namespace, skip in ((NumpyMath, set()), (TorchMath, set()), (GraphMath, {"node"})):
        found = _functions(namespace, skip)
        assert found == scalar, (
            f"{namespace.__name__} lacks {sorted(scalar - found)} and has {sorted(found - scalar)} "
            "beyond ops.ScalarMath"
        )


def _op_methods() -> set[str]:
    """Value's methods that make a node of an op: its operators and named ops (v.tanh())."""
    dunders = {"add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow"}
    names = {f"__{d}__" for d in dunders | {"neg", "abs"}} | {"abs"}
    return names | {name for name in ops.OPS if callable(getattr(Value, name, None))}


def test_a_jit_result_refuses_every_op_method():
    from backprop.compiled.jit import JitResult

    let_through = [
        n for n in sorted(_op_methods()) if JitResult.__dict__.get(n) is not JitResult._refuse
    ]
    assert not let_through, f"add these to JitResult's refused methods: {let_through}"


def _replay_js_ops() -> dict[str, str]:
    text = (SRC / "viz" / "assets" / "replay.js").read_text(encoding="utf-8")
    body = text[text.index("const OPS = {") : text.index("\n  };", text.index("const OPS = {"))]
    rows = re.split(r"\n    (?=\w+: \{)", body)[1:]
    return {row.split(":", 1)[0]: row for row in rows}


def test_the_pages_replay_exactly_the_ops_they_say_they_replay():
    from backprop.viz.explorer import HINTED_OPS
    from backprop.viz.recorder_page import REPLAYABLE

    rows = _replay_js_ops()
    assert set(rows) == set(REPLAYABLE)
    assert set(rows) <= set(ops.OPS)
    libm = {name for name, row in rows.items() if "libm: true" in row}
    assert libm <= HINTED_OPS, "an op whose Math function browsers may round differently"


def test_every_expression_function_is_listed_for_the_user():
    from backprop.cli.graph import EPILOG
    from backprop.viz.expr import FUNCTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"Functions: `([a-z0-9 ]+)`", readme)
    assert listed, "README.md's 'Functions: `...`' line"
    assert set(FUNCTIONS) == set(listed.group(1).split())
    assert all(re.search(rf"\b{name}\b", EPILOG) for name in FUNCTIONS)


# ---- a loss -------------------------------------------------------------------------------


def test_every_loss_has_a_test():
    tests = (ROOT / "tests" / "test_losses.py").read_text(encoding="utf-8")
    names = [n for n in losses.__all__ if callable(getattr(losses, n))]
    untested = [n for n in names if not re.search(rf"\b{n}\(", tests)]
    assert not untested, f"tests/test_losses.py never calls {untested}"


def test_every_training_loss_is_known_everywhere():
    from backprop import serialize
    from backprop.cli.commands import build_parser
    from backprop.train.objectives import OBJECTIVES

    assert set(OBJECTIVES) == set(serialize.LOSSES)
    assert {n for n, o in OBJECTIVES.items() if o.binary} == set(serialize.BINARY_LOSSES)
    train = next(
        a.choices["train"]
        for a in build_parser()._actions
        if getattr(a, "choices", None) and "train" in a.choices
    )
    choices = next(a.choices for a in train._actions if "--loss" in a.option_strings)
    assert set(choices) == set(OBJECTIVES)
    page = (SRC / "viz" / "assets" / "explore_model.js").read_text(encoding="utf-8")
    for name, objective in OBJECTIVES.items():
        if objective.binary:  # cross-entropy is the explorer's remaining case
            assert page.count(f'D.loss === "{name}"') >= 2, f"pointLoss and lossSlope: {name}"


# ---- a dataset ----------------------------------------------------------------------------


def test_every_dataset_is_named_in_the_train_command_description():
    from backprop.cli.train import cmd_train
    from backprop.data import DATASETS

    assert all(re.search(rf"\b{name}\b", cmd_train.__doc__) for name in DATASETS)


@pytest.mark.parametrize("name", ["names.txt", "digits.csv.gz"])
def test_a_shipped_file_has_its_licence_beside_it(name):
    folder = SRC / "datasets"
    assert (folder / name).is_file()
    assert (folder / f"{name.split('.')[0]}.LICENSE.txt").is_file()


def test_every_shipped_data_file_has_a_licence():
    folder = SRC / "datasets"
    data = [p for p in folder.iterdir() if p.is_file() and p.suffix not in (".py",)]
    stems = {p.name.split(".")[0] for p in data if not p.name.endswith(".LICENSE.txt")}
    assert all((folder / f"{stem}.LICENSE.txt").is_file() for stem in stems), stems


# ---- a page -------------------------------------------------------------------------------


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_page_is_a_page():
    """A page renders with _render() and takes html, the atomic save and the Jupyter view from
    the base class (a page of its own save() drifted once: it was not atomic)."""
    import backprop.viz.explorer  # noqa: F401 - the pages register as subclasses when imported
    import backprop.viz.recorder_page  # noqa: F401
    import backprop.viz.stepthrough  # noqa: F401
    from backprop.viz.page import Page

    pages = [c for c in _subclasses(Page) if c.__module__.startswith("backprop.")]
    assert len(pages) >= 3
    for page in pages:
        assert any("_render" in vars(c) for c in page.__mro__[:-2]), page
        for name in ("html", "save", "_repr_html_"):
            assert name not in vars(page), f"{page.__name__} overrides Page.{name}"
