"""detect_anomaly(): where each node was made, and the first nan or inf from finite inputs.

It attaches to the engine through ``engine.watch()``: while a block is open the engine hands it
every node it makes and lets it run backward(), checking each rule's result."""

from __future__ import annotations

import linecache
import math
import sys
import threading
from pathlib import Path

from .. import engine
from ..engine import Value
from ..ops import SCALAR, Op
from .sweep import GRAPH, _backward_into_grads

__all__ = ["detect_anomaly", "AnomalyError"]


# ---- anomaly detection ----------------------------------------------------------------------


class AnomalyError(ArithmeticError):
    """Inside detect_anomaly(): an op made nan or inf from finite inputs, or backward did from a
    finite gradient. The message names the op, the node's label and where it was created."""


_PACKAGE = str(Path(__file__).resolve().parent.parent)  # backprop/
_lock = threading.Lock()
_open: list[detect_anomaly] = []  # the open blocks, innermost last (for the whole process)
_thread = threading.local()  # .quiet: inside a sweep that builds nodes, no forward check


class _quiet:
    """While a sweep builds gradient nodes, their values are checked as results of backward,
    not as forward ops (a rule also builds the branch of a where that it then discards)."""

    def __enter__(self) -> None:
        _thread.quiet = getattr(_thread, "quiet", 0) + 1

    def __exit__(self, *exc) -> None:
        _thread.quiet -= 1


class detect_anomaly:
    """Inside this block each new node records where the user's code created it, and the first
    nan or inf that an op makes from finite inputs, or that backward makes from a finite
    gradient, raises AnomalyError naming the op, the node's label and that file and line.

    Like torch.autograd.detect_anomaly it holds for the whole process while open, and slows
    every op down; outside it, making a node tests one number, as it always did. ``where(node)``
    tells where a node was made; ``check_nan=False`` only records that. The record keeps the
    nodes made in the block alive for as long as the block object lives.
    """

    def __init__(self, check_nan: bool = True) -> None:
        if not isinstance(check_nan, bool):
            raise TypeError(f"check_nan must be True or False, got {check_nan!r:.60}")
        self.check_nan = check_nan
        self._sites: dict[int, tuple[Value, tuple]] = {}

    def __enter__(self) -> detect_anomaly:
        with _lock:
            if _open:
                self._sites = _open[-1]._sites  # nested blocks share one record
            _open.append(self)
            engine.watch(self)
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            _open.remove(self)
            engine.watch(_open[-1] if _open else None)

    def where(self, node: Value) -> str | None:
        """Where the user's code created node ('file.py:12 in f: h = x.log()'), or None."""
        entry = self._sites.get(id(node))
        if entry is None or entry[0] is not node:
            return None
        return _site_text(entry[1])

    # ---- what engine.py calls while the block is open ----

    def node_made(self, out: Value, fn: Op, a: Value, b: Value | None, arg) -> None:
        """Record where out is being made; raise if its op made nan or inf from finite inputs."""
        site = _user_site(sys._getframe(1))
        self._sites[id(out)] = (out, site)  # keeps out alive while the record is
        if not self.check_nan or getattr(_thread, "quiet", 0) or math.isfinite(out.data):
            return
        inputs = [a] if b is None else [a, b]
        if not all(math.isfinite(v.data) for v in inputs):
            return  # nan in, nan out: made earlier
        if arg is not None and not math.isfinite(arg):
            return
        shown = ", ".join(_name(v) for v in inputs) + ("" if arg is None else f", {arg!r}")
        raise AnomalyError(
            f"{fn.name} made {out.data!r} from finite inputs: {fn.name}({shown}), for a new "
            f"node (not labelled yet) made at {_site_text(site)}"
        )

    def backward(self, root: Value, grad: float, create_graph: bool) -> None:
        """root.backward(grad, create_graph), checking what every node's rule gives."""
        m = GRAPH if create_graph else SCALAR
        with _quiet():
            _backward_into_grads(root, grad, m, check=self.check())

    def check(self):
        """check(node, g, grads) for a sweep: raises at the first non-finite result of a
        finite g (None when not checking)."""
        if not self.check_nan:
            return None
        sites = self._sites

        def check(node: Value, g, grads) -> None:
            g_data = g.data if isinstance(g, Value) else g
            if not math.isfinite(g_data):
                return
            for j, gj in enumerate(grads):
                x = gj.data if isinstance(gj, Value) else gj
                if not math.isfinite(x):
                    entry = sites.get(id(node))
                    where = (
                        _site_text(entry[1])
                        if entry is not None and entry[0] is node
                        else "(outside detect_anomaly(), so its line is unknown)"
                    )
                    raise AnomalyError(
                        f"backward of {node._fn.name} at {_describe(node)} made {x!r} for "
                        f"input {j} from the finite gradient {g_data!r}; the node was made "
                        f"at {where}"
                    )

        return check


def _describe(node: Value) -> str:
    label = f"{node.label!r}" if node.label else "(unlabelled)"
    inputs = ", ".join(_name(v) for v in node._prev)
    return f"node {label}, op {node._fn.name} ({node._op}) of {inputs}"


def _name(v: Value) -> str:
    return f"{v.label} = {v.data!r}" if v.label else repr(v.data)


def _anomaly_check():
    """The open detect_anomaly()'s check for a sweep, or None."""
    return _open[-1].check() if _open else None


def _user_site(frame) -> tuple:
    """(file, line, function) of the first frame outside the backprop package, and the
    innermost package frame it called through, past engine.py (or None)."""
    inner = None
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        name = Path(frame.f_code.co_filename).name
        if inner is None and name != "engine.py" and "autodiff" not in frame.f_code.co_filename:
            inner = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    if frame is None:
        return (inner, None)
    return ((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name), inner)


def _site_text(site: tuple) -> str:
    user, inner = site
    if user is None:
        return "an unknown place"
    filename, line, function = user
    text = f"{filename}:{line} in {function}"
    source = linecache.getline(filename, line).strip()
    if source:
        text += f": {source}"
    if inner is not None:
        text += f" (via {Path(inner[0]).name}:{inner[1]} in {inner[2]})"
    return text
