"""Drawing computation graphs: draw_dot() as in the notebook, and text exports.

``draw_dot`` uses Graphviz's ``dot`` program when it is installed. Without it, SVG output (and
inline display in Jupyter) falls back to our own pure-Python drawing of the same record-style
graph, and PNG to a matplotlib drawing of it; a one-time warning says how to install Graphviz.
``to_dot``, ``to_mermaid`` and ``to_json`` export a graph as text.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import warnings
from collections import Counter
from pathlib import Path

import backprop.viz.layout as _limits  # DOT_BENDS_LIMIT, DOT_TIMEOUT: read at each call

from ..engine import Value
from .drawing import Box as _Box
from .drawing import Cluster as _Cluster
from .drawing import Drawing as _Drawing
from .layout import dot_bends, dot_options, layout
from .render import (  # noqa: F401 - text_width, edge_path, svg_drawing: used from here too
    BLOCK_FILL,
    BOX_HEIGHT,
    _cell_widths,
    _png_drawing,
    edge_path,
    svg_drawing,
    text_width,
)

__all__ = [
    "trace",
    "draw_dot",
    "to_dot",
    "to_mermaid",
    "to_json",
    "node_names",
    "legible_rankdir",
    "GraphvizMissing",
    "DOT_INSTALL_HINT",
]

DOT_INSTALL_HINT = (
    "Graphviz's 'dot' program is not installed, so the graph cannot be rendered. Install it with "
    "'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS), "
    "'conda install graphviz' or 'winget install graphviz' (Windows)."
)
FALLBACK_WARNING = (
    "Graphviz's 'dot' program is not installed: drawing the graph with backprop's own "
    "pure-Python renderer instead. For Graphviz's full renderer install it with "
    "'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS), "
    "'conda install graphviz' or 'winget install graphviz' (Windows)."
)
_fallback_warned = False  # the warning above is given once per session


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


def node_names(order: list[Value]) -> dict[int, str]:
    """A readable, unique name for every node, keyed by ``id(node)``.

    A node's label when it has one (a repeated label gets '#2', '#3', ...); otherwise an
    automatic name from what it is: ``v1, v2, ...`` for unlabelled inputs, ``mul1, tanh1, ...``
    for unlabelled results, numbered in ``order`` and never equal to a real label.
    """
    taken = {v.label for v in order if v.label}
    seen: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    names: dict[int, str] = {}
    for v in order:
        if v.label:
            seen[v.label] += 1
            k = seen[v.label]
            names[id(v)] = v.label if k == 1 else f"{v.label}#{k}"
            continue
        stem = "v" if v._fn is None else v._fn.name
        while True:
            counters[stem] += 1
            name = f"{stem}{counters[stem]}"
            if name not in taken:
                break
        names[id(v)] = name
    return names


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
    text = " ".join(text.splitlines())
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def _check_root(root: object, who: str) -> None:
    if not isinstance(root, Value):
        raise TypeError(f"{who} expects a Value, got {type(root).__name__}")


# ---- the drawing: boxes and edges, shared by Graphviz, our SVG and the text exports ----------


def _drawing_at(root: Value, rankdir: str, max_nodes: int | None, depth: int | None) -> _Drawing:
    """The full drawing (depth None), or scopes drawn as boxes ``depth`` levels deep."""
    from .groups import check_depth, grouped_drawing

    if check_depth(depth) is None:
        return _drawing(root, rankdir, max_nodes)
    return grouped_drawing(root, rankdir, depth, _Box, _Cluster, _Drawing, _record_cells)


def _record_cells(v: Value) -> tuple[str, str, str]:
    return (v.label, "data %.4f" % v.data, "grad %.4f" % v.grad)


def _drawing(root: Value, rankdir: str, max_nodes: int | None) -> _Drawing:
    order = root.topological_order()
    title = ""
    shown = order
    if max_nodes is not None and len(order) > max_nodes:
        keep = {id(v) for v in _nearest(root, max_nodes)}
        shown = [v for v in order if id(v) in keep]
        ops = Counter(v._op for v in order if v._op)
        summary = ", ".join(f"{op} \u00d7{k}" for op, k in ops.most_common(6))
        title = (
            f"showing the {len(shown)} nodes nearest the output of {len(order)} "
            f"({summary}); draw_dot(..., max_nodes=None) draws all"
        )
    ids = {id(v): f"n{i}" for i, v in enumerate(shown)}
    boxes: list[_Box] = []
    edges: list[tuple[str, str, bool]] = []
    for v in shown:
        uid = ids[id(v)]
        boxes.append(_Box(uid, "value", _record_cells(v)))
        if v._op:
            boxes.append(_Box(uid + "_op", "op", (v._op,)))
            edges.append((uid + "_op", uid, False))
            hidden = 0
            for child in v._prev:  # operand order, so both edges of a*a are drawn
                if id(child) in ids:
                    edges.append((ids[id(child)], uid + "_op", False))
                else:
                    hidden += 1
            if hidden:
                boxes.append(_Box(uid + "_more", "more", (f"\u2026 {hidden} more",)))
                edges.append((uid + "_more", uid + "_op", True))
    return _Drawing(boxes, edges, rankdir, title)


# ---- Graphviz -------------------------------------------------------------------------------


def _dot_available() -> bool:
    return shutil.which("dot") is not None


def _warn_fallback() -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(FALLBACK_WARNING, stacklevel=4)


def _slow_note(bends: int) -> str:
    return (
        f"this graph has about {bends:,} hidden bends for Graphviz to route (a value used by "
        f"many operations far apart), more than backprop.viz.layout.DOT_BENDS_LIMIT "
        f"({_limits.DOT_BENDS_LIMIT:,}), which dot lays out slowly: drawn with backprop's own "
        "layout"
    )


def _bounded_dot(digraph, fmt: str) -> bytes | None:
    """SVG or PNG from Graphviz in bounded time, or backprop's own drawing with a warning that
    says why: too many bends (``dot_bends``) or ``dot`` not done within ``DOT_TIMEOUT``."""
    drawing, bends = digraph._backprop_drawing, digraph._backprop_bends
    if bends > _limits.DOT_BENDS_LIMIT:
        warnings.warn(_slow_note(bends), stacklevel=4)
        return _own_drawing(drawing, fmt, "python")
    command = ["dot", *dot_options(bends), f"-T{fmt}"]
    try:
        done = subprocess.run(
            command,
            input=digraph.source.encode(digraph.encoding or "utf-8"),
            capture_output=True,
            timeout=_limits.DOT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        warnings.warn(
            f"Graphviz's dot did not finish within {_limits.DOT_TIMEOUT:g} s "
            f"(backprop.viz.layout.DOT_TIMEOUT): drawn with backprop's own layout",
            stacklevel=4,
        )
        return _own_drawing(drawing, fmt, "python")
    if done.returncode != 0:
        return None  # let graphviz run it again and raise its own error
    return done.stdout


def _own_drawing(drawing: _Drawing, fmt: str, engine: str = "auto") -> bytes:
    if fmt == "svg":
        return svg_drawing(drawing, engine).encode("utf-8")
    return _png_drawing(drawing, engine=engine)


def _write_render(digraph, data: bytes, fmt: str, filename, directory, cleanup, outfile) -> str:
    """Write what ``graphviz.Digraph.render`` would: the source (unless ``cleanup``) and the
    rendered file, named as graphviz names them; return the rendered file's path."""
    if outfile is not None:
        out = Path(outfile)
        source = out.with_suffix(".gv")
    else:
        base = Path(directory or digraph.directory or "") / (filename or digraph.filename)
        source, out = base, Path(f"{base}.{fmt}")
    if not cleanup:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(digraph.source, encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return os.fspath(out)


def _digraph_class():
    try:
        import graphviz
    except ImportError as e:  # pragma: no cover - graphviz is a declared dependency
        raise GraphvizMissing(
            "draw_dot needs the graphviz Python package: pip install graphviz"
        ) from e

    class Digraph(graphviz.Digraph):
        """A graphviz.Digraph that draws SVG and PNG in bounded time: with Graphviz when it is
        installed and the graph suits it, else (with a warning saying why) in Python."""

        _backprop_drawing: _Drawing | None = None
        _backprop_bends: int = 0

        def _fallback(self, fmt: str) -> bytes:
            if self._backprop_drawing is None or fmt not in ("svg", "png"):
                raise GraphvizMissing(DOT_INSTALL_HINT)
            _warn_fallback()
            return _own_drawing(self._backprop_drawing, fmt)

        def _ours(self, fmt: str, extra: dict) -> bytes | None:
            """Our bytes for fmt, or None where graphviz's own method should run."""
            if not _dot_available():
                return self._fallback(fmt)
            quiet = ("quiet", "quiet_view")
            unusual = any(v for k, v in extra.items() if k not in quiet and v not in (None, "dot"))
            if self._backprop_drawing is None or fmt not in ("svg", "png") or unusual:
                return None
            return _bounded_dot(self, fmt)

        def pipe(self, format=None, *args, encoding=None, **kwargs):
            data = None if args else self._ours(format or self.format, kwargs)
            if data is None:
                return super().pipe(format, *args, encoding=encoding, **kwargs)
            return data.decode(encoding) if encoding else data

        def render(self, filename=None, directory=None, view=False, cleanup=False, format=None,
                   *, outfile=None, **kwargs):  # fmt: skip
            if outfile is not None:
                fmt = format or Path(outfile).suffix.lstrip(".") or self.format
            else:
                fmt = format or self.format
            data = None if view else self._ours(fmt, kwargs)
            if data is None:
                return super().render(filename, directory=directory, view=view, cleanup=cleanup,
                                      format=format, outfile=outfile, **kwargs)  # fmt: skip
            return _write_render(self, data, fmt, filename, directory, cleanup, outfile)

        def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
            if _dot_available():
                return super()._repr_mimebundle_(include, exclude, **kwargs)
            wanted = set(include) if include is not None else {"image/svg+xml"}
            wanted -= set(exclude or [])
            bundle = {}
            if "image/svg+xml" in wanted:
                bundle["image/svg+xml"] = self._repr_svg_()
            if "image/png" in wanted:
                bundle["image/png"] = self._fallback("png")
            return bundle

        def _repr_svg_(self) -> str:
            return self.pipe(format="svg", encoding="utf-8")

    return Digraph


def draw_dot(
    root: Value,
    format: str = "svg",
    rankdir: str = "LR",
    max_nodes: int | None = 500,
    depth: int | None = None,
):
    """Draw the graph under root as the notebook does: a record 'label | data | grad' for each
    value and a small node for each operation.

    ``depth=k`` groups the graph by ``backprop.scope``: a scope k levels deep is one box (its
    name, size, and its output's data and grad), with its inputs and outputs as its edges, and
    shallower scopes are frames around what they made (see ``backprop.viz.groups``);
    ``depth=None`` (the default) draws every node. ``max_nodes`` applies to ``depth=None``.

    Returns a ``graphviz.Digraph``: it displays inline in Jupyter, and ``.render(path)`` writes a
    file. Without Graphviz's ``dot`` program, SVG (and inline display) and PNG come from
    backprop's own pure-Python drawing, with a one-time warning saying how to install Graphviz.
    A graph of more than ``max_nodes`` values is cut down to the ``max_nodes`` nearest the
    root, with a note saying how much was left out (``max_nodes=None`` draws everything, which
    for tens of thousands of nodes can take Graphviz minutes).
    """
    _check_root(root, "draw_dot")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"rankdir must be one of LR, RL, TB, BT, got {rankdir!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or max_nodes < 1):
        raise ValueError(f"max_nodes must be a positive int or None, got {max_nodes!r}")
    drawing = _drawing_at(root, rankdir, max_nodes, depth)
    if drawing.title:
        warnings.warn(f"graph too large to read: {drawing.title}", stacklevel=2)
    dot = _digraph_class()(format=format, graph_attr={"rankdir": rankdir})
    dot._backprop_drawing = drawing
    dot._backprop_bends = dot_bends([b.id for b in drawing.boxes], [e[:2] for e in drawing.edges])
    if drawing.title:
        dot.attr(label=drawing.title, labelloc="t")
    framed = {uid for c in drawing.clusters for uid in c.boxes}
    for box in drawing.boxes:
        if box.id not in framed:
            _dot_node(dot, box)
    boxes = {box.id: box for box in drawing.boxes}
    for cluster in drawing.clusters:
        if cluster.parent is None:
            _dot_cluster(dot, cluster, drawing.clusters, boxes)
    for tail, head, dashed in drawing.edges:
        if dashed:
            dot.edge(tail, head, style="dashed", color="gray60")
        else:
            dot.edge(tail, head)
    return dot


def _dot_node(dot, box: _Box) -> None:
    if box.kind == "value":
        dot.node(box.id, "{ %s | %s | %s }" % tuple(_escape(c) for c in box.cells),
                 shape="record")  # fmt: skip
    elif box.kind == "op":
        dot.node(box.id, box.cells[0])
    elif box.kind == "block":
        label = "{ %s }" % " | ".join(_escape(c) for c in box.cells)
        dot.node(box.id, label, shape="record", style="filled", fillcolor=BLOCK_FILL)
    else:
        dot.node(box.id, box.cells[0], shape="plaintext", fontcolor="gray40")


def _dot_cluster(dot, cluster: _Cluster, clusters: list[_Cluster], boxes: dict) -> None:
    """A scope's frame as a Graphviz cluster, with its boxes and the frames inside it."""
    with dot.subgraph(name=cluster.id) as sub:
        sub.attr(label=cluster.label, style="rounded,dashed", color="gray55", fontcolor="gray35")
        for uid in cluster.boxes:
            _dot_node(sub, boxes[uid])
        for inner in clusters:
            if inner.parent == cluster.id:
                _dot_cluster(sub, inner, clusters, boxes)


def legible_rankdir(root: Value, screen: tuple[float, float] = (1280.0, 800.0)) -> str:
    """'LR' or 'TB': 'LR' (the notebook's direction) when its drawing fits ``screen`` (pixels)
    unscaled, else the direction whose drawing, scaled to fit, shows its text larger. The
    notebook's neuron is 9 times wider than tall left to right (its text shrinks to 7 pixels
    on a laptop screen) and half as wide as tall top to bottom.
    Estimated with the pure-Python layered layout, and Graphviz's record shapes: cells side by
    side left to right, stacked top to bottom."""
    _check_root(root, "legible_rankdir")
    drawing = _drawing(root, "LR", None)
    edges = [e[:2] for e in drawing.edges]
    scales = {}
    for rankdir in ("LR", "TB"):
        sizes = {}
        for box in drawing.boxes:
            widths = _cell_widths(box)
            stacked = rankdir == "TB" and box.kind == "value"
            sizes[box.id] = (
                (max(widths), BOX_HEIGHT * len(widths)) if stacked else (sum(widths), BOX_HEIGHT)
            )
        placed = layout(sizes, edges, rankdir=rankdir, engine="layered")
        scales[rankdir] = min(screen[0] / max(placed.width, 1), screen[1] / max(placed.height, 1))
    return "TB" if scales["LR"] < 1 and scales["TB"] > scales["LR"] * 1.1 else "LR"


# ---- text exports ---------------------------------------------------------------------------


def to_dot(root: Value, rankdir: str = "LR", depth: int | None = None) -> str:
    """The graph as Graphviz DOT source, the same drawing as ``draw_dot`` (every node; with
    ``depth``, scopes as boxes and frames)."""
    return draw_dot(root, rankdir=rankdir, max_nodes=None, depth=depth).source


_MERMAID_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:_+-=()*/^")


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: anything but plain characters as an entity code."""
    return "".join(ch if ch in _MERMAID_SAFE else f"#{ord(ch)};" for ch in text)


def to_mermaid(root: Value, rankdir: str = "LR", depth: int | None = None) -> str:
    """The graph as a Mermaid flowchart (paste it into Markdown on GitHub, GitLab, ...); with
    ``depth``, scopes as boxes and frames (Mermaid subgraphs), as ``draw_dot`` draws them."""
    _check_root(root, "to_mermaid")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"rankdir must be one of LR, RL, TB, BT, got {rankdir!r}")
    drawing = _drawing_at(root, rankdir, None, depth)
    lines = [f"flowchart {rankdir}"]
    framed = {uid for c in drawing.clusters for uid in c.boxes}
    boxes = {box.id: box for box in drawing.boxes}
    lines.extend(_mermaid_box(box, 1) for box in drawing.boxes if box.id not in framed)
    for cluster in drawing.clusters:
        if cluster.parent is None:
            lines.extend(_mermaid_cluster(cluster, drawing.clusters, boxes, 1))
    lines.extend(f"    {tail} --> {head}" for tail, head, _ in drawing.edges)
    return "\n".join(lines) + "\n"


def _mermaid_box(box: _Box, level: int) -> str:
    text = _mermaid_text(" | ".join(box.cells) if box.kind in ("value", "block") else box.cells[0])
    shape = {"op": '(("%s"))', "block": '[["%s"]]'}.get(box.kind, '["%s"]')
    return f"{'    ' * level}{box.id}{shape % text}"


def _mermaid_cluster(cluster: _Cluster, clusters: list, boxes: dict, level: int) -> list[str]:
    pad = "    " * level
    lines = [f'{pad}subgraph {cluster.id} ["{_mermaid_text(cluster.label)}"]']
    lines.extend(_mermaid_box(boxes[uid], level + 1) for uid in cluster.boxes)
    for inner in clusters:
        if inner.parent == cluster.id:
            lines.extend(_mermaid_cluster(inner, clusters, boxes, level + 1))
    lines.append(f"{pad}end")
    return lines


def _json_number(x: float) -> float | str:
    """A float for JSON, which has no nan or infinity: those become the strings 'nan', 'inf'."""
    return x if math.isfinite(x) else repr(x)


def to_json(root: Value, indent: int | None = 1, depth: int | None = None) -> str:
    """The graph as JSON: every node in topological order (inputs first) with its id, label,
    readable name, data, grad, op and the ids of its inputs in operand order. Non-finite numbers
    are written as the strings "nan", "inf" and "-inf".

    With ``depth``, every node also has its ``scope`` and ``block`` (the id of the box it is
    drawn in at that depth, or null), and ``blocks`` lists each box: its ``scope``, ``size``,
    and the ids of its ``inputs`` (nodes outside it that it uses) and ``outputs``."""
    _check_root(root, "to_json")
    order = root.topological_order()
    names = node_names(order)
    ids = {id(v): f"n{i}" for i, v in enumerate(order)}
    nodes = [
        {
            "id": ids[id(v)],
            "label": v.label,
            "name": names[id(v)],
            "data": _json_number(v.data),
            "grad": _json_number(v.grad),
            "op": v._op or None,
            "op_name": None if v._fn is None else v._fn.name,
            "arg": None if v._arg is None else _json_number(v._arg),
            "inputs": [ids[id(c)] for c in v._prev],
        }
        for v in order
    ]
    doc = {"format": "backprop-graph", "version": 1, "root": ids[id(root)], "nodes": nodes}
    if depth is not None:
        doc.update(_json_blocks(root, order, nodes, ids, depth))
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False)


def _json_blocks(root: Value, order: list[Value], nodes: list[dict], ids: dict, depth) -> dict:
    from .groups import check_depth, group, scope_of

    g = group(root, check_depth(depth))
    block_ids = {path: f"b{i}" for i, path in enumerate(g.members)}
    for v, node in zip(order, nodes):
        node["scope"] = scope_of(v)
        node["block"] = block_ids.get(g.block.get(id(v)))
    blocks = [
        {
            "id": block_ids[path],
            "scope": path,
            "size": len(members),
            "inputs": [ids[id(v)] for v in g.inputs[path]],
            "outputs": [ids[id(v)] for v in g.outputs[path]],
        }
        for path, members in g.members.items()
    ]
    return {"depth": depth, "blocks": blocks}
