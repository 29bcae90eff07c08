"""Saving and loading models as readable JSON (never pickle): architecture, weights, metadata.

A file looks like this (one weight per line, so it diffs and reads well)::

    {
      "format": "backprop-model",
      "version": 1,
      "architecture": {"type": "MLP", "nin": 2, "nouts": [16, 16, 1],
                       "activation": ["relu", "relu", "linear"]},
      "metadata": {"loss": "hinge", "classes": [0, 1], ...},
      "weights": {
        "layers.0.neurons.0.w.0": 0.6888437030500962,
        ...
      }
    }

``save`` writes to a temporary file in the same folder and renames it over the target, so a
crash never leaves half a file. ``load`` checks the whole file before touching any model.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from .nn import ACTIVATIONS, MLP, Module

__all__ = [
    "save",
    "load",
    "load_metadata",
    "write_text_atomic",
    "write_atomic",
    "ModelFileError",
    "FORMAT",
    "VERSION",
]

FORMAT = "backprop-model"
VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: corrupt, truncated, or for another architecture."""


def _architecture(model: Module) -> dict[str, Any]:
    if not isinstance(model, MLP):
        raise TypeError(f"save() supports MLP models, got {type(model).__name__}")
    arch = model.architecture()
    return {"type": "MLP", **arch}


def _encode(doc: dict[str, Any]) -> str:
    head = {k: v for k, v in doc.items() if k != "weights"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)},")
    lines.append('  "weights": {')
    items = list(doc["weights"].items())
    for i, (name, x) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"    {json.dumps(name)}: {json.dumps(x, allow_nan=False)}{comma}")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save(model: Module, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model's architecture and weights (and optional JSON-able metadata) to path."""
    path = Path(path)
    arch = _architecture(model)
    weights = model.state_dict()
    for name, x in weights.items():
        if not math.isfinite(x):
            raise ValueError(f"cannot save: parameter {name} is {x} (training diverged?)")
    doc = {"format": FORMAT, "version": VERSION, "architecture": arch}
    doc["metadata"] = dict(metadata or {})
    doc["weights"] = weights
    try:
        text = _encode(doc)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot save: metadata is not JSON-serializable ({e})") from None
    return write_text_atomic(path, text)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write text to a temporary file beside path, then rename it over path: readers see the
    old file or the new one, never half of one (os.replace is atomic)."""
    return write_atomic(path, text.encode("utf-8"))


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write bytes as ``write_text_atomic`` does. The file gets the mode a plain ``open(path,
    "w")`` would give it: an existing file keeps its own, a new one the umask's default (0644
    under umask 022). Writing through a symlink replaces the file it points to, not the link."""
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    # os.open applies the umask to 0o666, as open() does; mkstemp would make it 0600
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"cannot create a temporary file beside {target}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid number in a model file")


def _read(path: str | Path) -> dict[str, Any]:
    """The parsed, fully checked document (architecture and weights agree)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a text file, so not a backprop model") from None
    if not text.strip():
        raise ModelFileError(f"{path}: the file is empty")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        kind = _kind_of_text(text)
        if kind:
            raise ModelFileError(
                f"{path}: this looks like {kind}, not a saved backprop model"
            ) from None
        # a model file is one object: cut short, it ends before its closing brace
        truncated = text.lstrip().startswith("{") and (
            e.pos >= len(text.rstrip()) or not text.rstrip().endswith("}")
        )
        hint = " (the file looks truncated)" if truncated else ""
        raise ModelFileError(
            f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}{hint}"
        ) from None
    except ValueError as e:  # NaN / Infinity
        raise ModelFileError(f"{path}: {e}") from None

    def fail(message: str):
        raise ModelFileError(f"{path}: {message}")

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        kind = _kind_of_json(doc)
        if kind:
            fail(f"this looks like {kind}, not a saved backprop model")
        fail(f'not a backprop model file (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        fail(f"unsupported format version {doc.get('version')!r} (this backprop reads {VERSION})")
    for key in ("architecture", "weights"):
        if not isinstance(doc.get(key), dict):
            fail(f"missing or malformed {key!r} section")
    if not isinstance(doc.get("metadata", {}), dict):
        fail("'metadata' must be an object")
    arch = doc["architecture"]
    if arch.get("type") != "MLP":
        fail(f"unknown architecture type {arch.get('type')!r}")
    nin, nouts, acts = arch.get("nin"), arch.get("nouts"), arch.get("activation")
    if isinstance(nin, bool) or not isinstance(nin, int) or nin < 1:
        fail(f"architecture nin must be a positive int, got {nin!r}")
    if (
        not isinstance(nouts, list)
        or not nouts
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in nouts)
    ):
        fail(f"architecture nouts must be a list of positive ints, got {nouts!r}")
    if (
        not isinstance(acts, list)
        or len(acts) != len(nouts)
        or any(a not in ACTIVATIONS for a in acts)
    ):
        fail(
            f"architecture activation must list one of {list(ACTIVATIONS)} per layer, got {acts!r}"
        )
    weights = doc["weights"]
    for name, x in weights.items():
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            fail(f"weight {name!r} must be a finite number, got {x!r:.60}")
    doc.setdefault("metadata", {})
    return doc


def _kind_of_text(text: str) -> str | None:
    """What a file that is not JSON looks like, for the error message; None if unsure."""
    head = text.lstrip()[:2000]
    lines = [line for line in head.splitlines() if line.strip()][:5]
    lower = head.lower()
    if lower.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if lower.startswith("<svg") or (lower.startswith("<?xml") and "<svg" in lower):
        return "an SVG drawing"
    if lower.startswith("<"):
        return "an XML file"
    if lower.startswith(("digraph", "graph ", "strict ")):
        return "a Graphviz DOT file"
    if lower.startswith("flowchart"):
        return "a Mermaid flowchart"
    if lines and not head.startswith(("{", "[")) and all("," in line for line in lines):
        return "a CSV file"
    return None


def _kind_of_json(doc: object) -> str | None:
    if isinstance(doc, dict) and "cells" in doc and "nbformat" in doc:
        return "a Jupyter notebook"
    if isinstance(doc, dict) and doc.get("format") == "backprop-graph":
        return "a graph exported by backprop graph --json"
    return None


def _build(doc: dict[str, Any], path: str | Path) -> MLP:
    arch = doc["architecture"]
    model = MLP(arch["nin"], arch["nouts"], activation=arch["activation"])
    try:
        model.load_state_dict(doc["weights"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: weights do not match the architecture: {e}") from None
    return model


def load(path: str | Path, model: Module | None = None) -> MLP:
    """Read a model file. With ``model``, load the weights into it (its architecture must match
    the file's; on any error it is left unchanged) and return it; else build a new MLP."""
    doc = _read(path)
    fresh = _build(doc, path)  # checks the weights against the file's own architecture
    if model is None:
        return fresh
    if not isinstance(model, MLP):
        raise TypeError(f"load() can fill an MLP, got {type(model).__name__}")
    theirs = {"type": "MLP", **model.architecture()}
    if theirs != doc["architecture"]:
        raise ModelFileError(
            f"{path}: the file holds {_describe(doc['architecture'])}, "
            f"but the model is {_describe(theirs)}"
        )
    model.load_state_dict(fresh.state_dict())
    return model


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata saved with a model (the loss, the class labels ...), after checking the file."""
    doc = _read(path)
    _build(doc, path)
    return doc["metadata"]


def _describe(arch: dict[str, Any]) -> str:
    sizes = [arch["nin"], *arch["nouts"]]
    return f"an MLP {sizes} with activations {arch['activation']}"
