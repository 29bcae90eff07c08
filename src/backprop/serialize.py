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
crash never leaves half a file; it refuses to write through a symbolic link. ``load`` checks the
whole file before touching any model, and its declared sizes before building anything: a file
over MAX_FILE_BYTES, or whose architecture has more than MAX_PARAMETERS parameters or a
different count from its weights, is refused in one line; so is a device (only a regular
file or a pipe is read, and never more than MAX_FILE_BYTES), a key written twice, or metadata
that does not fit the model (repeated classes, feature names not one per input, a label column
outside a row). ``MLP`` itself refuses more than MAX_PARAMETERS. ``prediction_task`` reads and
checks the metadata's ``loss`` and ``classes``, which ``backprop predict`` answers with.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

from ._optional import shown as _short
from .nn import ACTIVATIONS, MLP, Module

__all__ = [
    "save",
    "load",
    "load_metadata",
    "load_with_metadata",
    "prediction_task",
    "write_text_atomic",
    "write_atomic",
    "ModelFileError",
    "FORMAT",
    "VERSION",
    "MAX_PARAMETERS",
    "MAX_FILE_BYTES",
    "LOSSES",
]

FORMAT = "backprop-model"
VERSION = 1
# A model file is untrusted input: its sizes are checked before anything is allocated. A
# scalar parameter takes about 200 bytes as a Value with its Neuron, so the limit is ~200 MB;
# raise it (backprop.serialize.MAX_PARAMETERS = ...) to load a bigger model you trust.
MAX_PARAMETERS = 1_000_000
MAX_FILE_BYTES = 100 * 2**20  # a file of MAX_PARAMETERS weights takes about 50 MB
# the losses a model's metadata may name (backprop.train's objectives), and their outputs
LOSSES = ("hinge", "bce", "mse", "cross-entropy")
BINARY_LOSSES = ("hinge", "bce", "mse")


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
    under umask 022). A symbolic link is refused (OSError ELOOP, naming where it points): the
    write would land in another file than the one named."""
    path = Path(path)
    if path.is_symlink():
        raise OSError(
            errno.ELOOP,
            f"is a symbolic link (to {_link_target(path)}): not writing "
            "through it; give the file's own path or remove the link",
            str(path),
        )
    target = path
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


def _link_target(path: Path) -> str:
    try:
        return repr(os.readlink(path))
    except OSError:  # pragma: no cover - it was a link a moment ago
        return "somewhere else"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid number in a model file")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: an object naming a key twice is refused (json would keep the
    last value silently, so a weight written twice would load whichever came last)."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"the key {_short(key)} appears twice in one object")
            seen.add(key)
    return doc


def _read_bytes(path: Path) -> bytes:
    """At most MAX_FILE_BYTES of a regular file or a pipe (``--model <(...)``); a device such
    as /dev/zero, a socket, a folder or a file too big is refused in one line."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: {e.strerror or e}") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise ModelFileError(f"{path}: {kind}, not a model file")
    too_big = ModelFileError(
        f"{path}: over the {MAX_FILE_BYTES:,} bytes a model file may have "
        "(backprop.serialize.MAX_FILE_BYTES)"
    )
    if info.st_size > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{path}: {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,} a model file may have "
            "(backprop.serialize.MAX_FILE_BYTES)"
        )
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # bounded: a size of 0 may not be the truth
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: {e.strerror or e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_big
    return data


def _read(path: str | Path) -> dict[str, Any]:
    """The parsed, fully checked document (architecture and weights agree)."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Notepad) is not part of the text
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a text file, so not a backprop model") from None
    if not text.strip():
        raise ModelFileError(f"{path}: the file is empty")
    try:
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
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
    except _DuplicateKey as e:
        raise ModelFileError(f"{path}: {e}") from None
    except ValueError as e:  # NaN / Infinity, or an integer of thousands of digits
        if "integer string conversion" in str(e):
            raise ModelFileError(
                f"{path}: holds a number of over {sys.get_int_max_str_digits():,} digits, "
                "not a model file"
            ) from None
        raise ModelFileError(f"{path}: {e}") from None
    except RecursionError:  # [[[[...]]]]: the parser recurses once per level
        raise ModelFileError(
            f"{path}: nested too deeply to be a model file (a model file nests 3 levels)"
        ) from None

    def fail(message: str):
        raise ModelFileError(f"{path}: {message}")

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        kind = _kind_of_json(doc)
        if kind:
            fail(f"this looks like {kind}, not a saved backprop model")
        fail(f'not a backprop model file (no "format": "{FORMAT}")')
    if isinstance(doc.get("version"), bool) or doc.get("version") != VERSION:
        fail(
            f"unsupported format version {_short(doc.get('version'))} "
            f"(this backprop reads {VERSION})"
        )
    for key in ("architecture", "weights"):
        if not isinstance(doc.get(key), dict):
            fail(f"missing or malformed {key!r} section")
    if not isinstance(doc.get("metadata", {}), dict):
        fail("'metadata' must be an object")
    _check_architecture(doc["architecture"], fail)
    weights = doc["weights"]
    for name, x in weights.items():
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            fail(f"weight {_short(name)} must be a finite number, got {_short(x, 60)}")
    expected = _parameter_count(doc["architecture"])
    if len(weights) != expected:
        fail(
            f"the architecture {_describe(doc['architecture'])} has {expected:,} parameters "
            f"but the file holds {len(weights):,} weights"
        )
    doc.setdefault("metadata", {})
    _check_metadata(doc["metadata"], doc["architecture"], fail)
    mismatch = _name_mismatch(doc["architecture"], weights)
    if mismatch:
        fail(f"weights do not match the architecture: {mismatch}")
    return doc


def _weight_names(arch: dict[str, Any]):
    """The names of an MLP's parameters, in MLP.state_dict() order, without building it."""
    sizes = [arch["nin"], *arch["nouts"]]
    for i, (fan_in, n) in enumerate(zip(sizes, sizes[1:])):
        for j in range(n):
            for k in range(fan_in):
                yield f"layers.{i}.neurons.{j}.w.{k}"
            yield f"layers.{i}.neurons.{j}.b"


def _name_mismatch(arch: dict[str, Any], weights: dict[str, Any]) -> str:
    """What is missing from and unexpected in the weights' names, as load_state_dict says it
    ("" when they fit): checked here so that nothing need be built to check a file."""
    expected = list(_weight_names(arch))
    known = set(expected)
    missing = [n for n in expected if n not in weights]
    unexpected = [n for n in weights if n not in known]
    parts = []
    if missing:
        parts.append(f"missing {len(missing):,} ({', '.join(map(_short, missing[:3]))}...)")
    if unexpected:
        parts.append(
            f"unexpected {len(unexpected):,} ({', '.join(map(_short, unexpected[:3]))}...)"
        )
    return "; ".join(parts)


def _check_metadata(metadata: dict[str, Any], arch: dict[str, Any], fail) -> None:
    """The metadata train --save writes, where present, against the model: its classes are
    distinct, its feature names one text per input, its label column a place in a row."""
    nin = arch["nin"]
    classes = metadata.get("classes")
    if isinstance(classes, list) and all(isinstance(c, (str, int, float, bool)) for c in classes):
        texts: set[str] = set()
        values: set[object] = set()  # 1, 1.0 and True are one value
        for c in classes:
            if str(c) in texts or c in values:
                fail(f"metadata classes name {_short(c)} twice (they must be distinct)")
            texts.add(str(c))
            values.add(c)
    names = metadata.get("feature_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            fail(f"metadata feature_names must be a list of texts, got {_short(names)}")
        if len(names) != nin:
            fail(f"metadata lists {len(names):,} feature_names for a model of {nin:,} inputs")
    column = metadata.get("label_column")
    if column is not None and (
        isinstance(column, bool) or not isinstance(column, int) or not -nin - 1 <= column <= nin
    ):
        fail(
            f"metadata label_column must be a column of a row of {nin + 1:,} cells "
            f"(-{nin + 1:,} to {nin:,}) or null, got {_short(column)}"
        )


def _check_architecture(arch: dict[str, Any], fail) -> None:
    """The architecture's fields, and its size against MAX_PARAMETERS: before any allocation."""
    if arch.get("type") != "MLP":
        fail(f"unknown architecture type {_short(arch.get('type'))}")
    nin, nouts, acts = arch.get("nin"), arch.get("nouts"), arch.get("activation")
    if isinstance(nin, bool) or not isinstance(nin, int) or nin < 1:
        fail(f"architecture nin must be a positive int, got {_short(nin)}")
    if (
        not isinstance(nouts, list)
        or not nouts
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in nouts)
    ):
        fail(f"architecture nouts must be a list of positive ints, got {_short(nouts)}")
    if (
        not isinstance(acts, list)
        or len(acts) != len(nouts)
        or any(not isinstance(a, str) or a not in ACTIVATIONS for a in acts)
    ):
        fail(
            f"architecture activation must list one of {list(ACTIVATIONS)} per layer, "
            f"got {_short(acts)}"
        )
    count = _parameter_count(arch)
    if count > MAX_PARAMETERS:
        fail(
            f"{_describe(arch)} has {_count_text(count)} parameters, "
            f"over the limit of {MAX_PARAMETERS:,} (backprop.serialize.MAX_PARAMETERS)"
        )


def _parameter_count(arch: dict[str, Any]) -> int:
    """Weights and biases of an MLP: (fan-in + 1) per neuron, counted without building it."""
    sizes = [arch["nin"], *arch["nouts"]]
    return sum((fan_in + 1) * n for fan_in, n in zip(sizes, sizes[1:]))


def prediction_task(path: str | Path, n_outputs: int, metadata: dict[str, Any]) -> tuple:
    """(loss, classes) that a model's outputs answer with (``backprop predict``, the exported
    script): the metadata's ``loss`` and ``classes`` (train --save writes them) checked against
    the model's ``n_outputs``, or the defaults (hinge for one output, else cross-entropy;
    classes 0..k-1). A ModelFileError names anything that does not fit."""

    def fail(message: str):
        raise ModelFileError(f"{path}: {message}")

    loss = metadata.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in LOSSES):
        fail(f"metadata loss must be one of {', '.join(LOSSES)}, got {_short(loss)}")
    if loss is None:
        loss = "hinge" if n_outputs == 1 else "cross-entropy"
    binary = loss in BINARY_LOSSES
    if binary and n_outputs != 1:
        fail(f"metadata loss {loss!r} reads one output, but the model has {n_outputs:,}")
    wanted = 2 if binary else n_outputs
    classes = metadata.get("classes")
    if classes is None:
        return loss, list(range(wanted))
    if not isinstance(classes, list) or any(
        not isinstance(c, (str, int, float, bool)) for c in classes
    ):
        fail(f"metadata classes must be a list of labels (text or numbers), got {_short(classes)}")
    if len(classes) != wanted:
        fail(
            f"metadata lists {len(classes):,} classes for a model with {n_outputs:,} output(s) "
            f"and loss {loss!r}, which needs {wanted:,}"
        )
    return loss, classes


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
    """The model of a checked document (its size is within MAX_PARAMETERS)."""
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
    doc = _read(path)  # checks the weights' names against the file's own architecture
    if model is None:
        return _build(doc, path)
    if not isinstance(model, MLP):
        raise TypeError(f"load() can fill an MLP, got {type(model).__name__}")
    theirs = {"type": "MLP", **model.architecture()}
    if theirs != doc["architecture"]:
        raise ModelFileError(
            f"{path}: the file holds {_describe(doc['architecture'])}, "
            f"but the model is {_describe(theirs)}"
        )
    try:
        model.load_state_dict(doc["weights"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: weights do not match the architecture: {e}") from None
    return model


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata saved with a model (the loss, the class labels ...), after checking the file."""
    return _read(path)["metadata"]  # checked whole (weight names too), but nothing built


def load_with_metadata(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """``(load(path), load_metadata(path))`` from one reading of the file (a pipe, such as
    ``--model <(...)``, can be read only once)."""
    doc = _read(path)
    return _build(doc, path), doc["metadata"]


def _describe(arch: dict[str, Any]) -> str:
    sizes = [arch["nin"], *arch["nouts"]]
    return f"an MLP {_short(sizes)} with activations {_short(arch['activation'])}"


def _count_text(n: int) -> str:
    """n with thousands separators, or its number of digits when that would be long."""
    return f"{n:,}" if n < 10**30 else f"a {n.bit_length() * 0.30103:,.0f}-digit number of"
