"""Drawing computation graphs: trace() collects a graph, draw_dot() draws it with Graphviz."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter

from .engine import Value

__all__ = ["trace", "draw_dot", "GraphvizMissing", "DOT_INSTALL_HINT"]

DOT_INSTALL_HINT = (
    "Graphviz's 'dot' program is not installed, so the graph cannot be rendered. Install it with "
    "'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS), "
    "'conda install graphviz' or 'winget install graphviz' (Windows)."
)


class GraphvizMissing(RuntimeError):
    """The Graphviz 'dot' program (or the graphviz Python package) is not available."""


def trace(root: Value) -> tuple[set[Value], set[tuple[Value, Value]]]:
    """All nodes under root, and the (input, output) edges between them."""
    nodes: set[Value] = set()
    edges: set[tuple[Value, Value]] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        if v in nodes:
            continue
        nodes.add(v)
        for child in v._prev:
            edges.add((child, v))
            stack.append(child)
    return nodes, edges


def _nearest(root: Value, limit: int) -> list[Value]:
    """Up to `limit` nodes, breadth-first from the root (the part of a big graph worth drawing)."""
    seen = {id(root)}
    order = [root]
    i = 0
    while i < len(order) and len(order) < limit:
        for child in order[i]._prev:
            if id(child) not in seen and len(order) < limit:
                seen.add(id(child))
                order.append(child)
        i += 1
    return order


def _escape(text: str) -> str:
    """Escape the characters that mean something inside a Graphviz record label."""
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def _digraph_class():
    try:
        import graphviz
    except ImportError as e:  # pragma: no cover - graphviz is a declared dependency
        raise GraphvizMissing(
            "draw_dot needs the graphviz Python package: pip install graphviz"
        ) from e

    class Digraph(graphviz.Digraph):
        """A graphviz.Digraph whose rendering says how to install Graphviz when it is missing."""

        def pipe(self, *args, **kwargs):
            _require_dot()
            return super().pipe(*args, **kwargs)

        def render(self, *args, **kwargs):
            _require_dot()
            return super().render(*args, **kwargs)

        def _repr_mimebundle_(self, *args, **kwargs):
            _require_dot()
            return super()._repr_mimebundle_(*args, **kwargs)

    return Digraph


def _require_dot() -> None:
    if shutil.which("dot") is None:
        raise GraphvizMissing(DOT_INSTALL_HINT)


def draw_dot(root: Value, format: str = "svg", rankdir: str = "LR", max_nodes: int | None = 500):
    """Draw the graph under root as the notebook does: a record 'label | data | grad' for each
    value and a small node for each operation.

    Returns a ``graphviz.Digraph``: it displays inline in Jupyter, and ``.render(path)`` writes a
    file. A graph of more than ``max_nodes`` values is cut down to the ``max_nodes`` nearest the
    root, with a note saying how much was left out (``max_nodes=None`` draws everything, which
    for tens of thousands of nodes can take Graphviz minutes).
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_dot expects a Value, got {type(root).__name__}")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"rankdir must be one of LR, RL, TB, BT, got {rankdir!r}")
    nodes, edges = trace(root)
    dot = _digraph_class()(format=format, graph_attr={"rankdir": rankdir})
    shown = nodes
    if max_nodes is not None and len(nodes) > max_nodes:
        shown = set(_nearest(root, max_nodes))
        ops = Counter(n._op for n in nodes if n._op)
        summary = ", ".join(f"{op} \u00d7{k}" for op, k in ops.most_common(6))
        message = (
            f"showing the {len(shown)} nodes nearest the output of {len(nodes)} "
            f"({summary}); draw_dot(..., max_nodes=None) draws all"
        )
        warnings.warn(f"graph too large to read: {message}", stacklevel=2)
        dot.attr(label=message, labelloc="t")

    for n in shown:
        uid = str(id(n))
        label = "{ %s | data %.4f | grad %.4f }" % (_escape(n.label), n.data, n.grad)
        dot.node(name=uid, label=label, shape="record")
        if n._op:
            dot.node(name=uid + n._op, label=n._op)
            dot.edge(uid + n._op, uid)
    hidden_inputs = Counter()
    for child, parent in edges:
        if parent not in shown:
            continue
        if child in shown:
            dot.edge(str(id(child)), str(id(parent)) + parent._op)
        else:
            hidden_inputs[parent] += 1
    for parent, k in hidden_inputs.items():
        uid = f"{id(parent)}hidden"
        dot.node(uid, label=f"\u2026 {k} more", shape="plaintext", fontcolor="gray40")
        dot.edge(uid, str(id(parent)) + parent._op, style="dashed", color="gray60")
    return dot
