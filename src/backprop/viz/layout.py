"""Where to put each box of a graph drawing: Graphviz's dot when installed, else pure Python.

``layout(sizes, edges)`` returns the centre of every box. Three engines, tried in this order by
``engine="auto"``:

- ``"dot"``: the Graphviz program (``dot -Tplain``), the best-looking; needs Graphviz installed.
- ``"grandalf"``: grandalf's Sugiyama layered layout, pure Python (a dependency). Its crossing
  reduction is slow past a couple of thousand boxes, so ``auto`` uses it only below
  ``GRANDALF_LIMIT``.
- ``"layered"``: our own longest-path layering with barycentre ordering: linear time, for big
  graphs (or when both of the others fail).

``"python"`` is ``auto`` without Graphviz. All three place inputs before outputs along the
``rankdir`` direction (LR: left to right).

Graphviz's time grows with the *bends*: an edge across k ranks is routed through k - 1 hidden
points, and a value used by many operations far apart (``x+x+...+x``: 150 terms make 22,000
bends) keeps ``dot`` busy for minutes. ``dot_bends`` estimates them; past ``DOT_BENDS_LIMIT``
``auto`` does not use Graphviz, past ``DOT_BOUNDED_FROM`` it runs with bounded network-simplex
passes (``DOT_BOUNDED_OPTIONS``), and every run of ``dot`` has a timeout (``DOT_TIMEOUT``).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Layout",
    "layout",
    "dot_available",
    "dot_bends",
    "dot_options",
    "GRANDALF_LIMIT",
    "DOT_LIMIT",
    "DOT_BENDS_LIMIT",
    "DOT_TIMEOUT",
]

GRANDALF_LIMIT = 1500  # boxes + bends; grandalf takes ~3 s at 1,000 and grows faster than linearly
DOT_LIMIT = 2500  # boxes; dot takes ~2 s at 2,000 and over a minute at 5,000 (MLPs)
# bends (see dot_bends); with the bounded options below x+x+...+x takes dot 1.6 s at 100 terms
# (9,800 bends), 3.6 s at 120 (14,000); unbounded, 60 terms (3,500 bends) took 13 s
DOT_BENDS_LIMIT = 10_000
DOT_BOUNDED_FROM = 1_000  # bends from which dot runs with DOT_BOUNDED_OPTIONS
DOT_BOUNDED_OPTIONS = ("-Gnslimit=2", "-Gnslimit1=2")  # network-simplex passes per node
DOT_TIMEOUT = 20.0  # seconds before we give up on dot and lay out in Python
RANK_GAP = 36.0  # pixels between ranks (layers)
NODE_GAP = 14.0  # pixels between neighbours within a rank
FRAME_PAD = 6.0  # a frame's margin around its boxes (grouped drawings)
FRAME_LABEL = 12.0  # room for a frame's label above its boxes


@dataclass
class Layout:
    """Box centres in pixels (y grows downwards), the drawing's size, and the engine used."""

    positions: dict[str, tuple[float, float]]
    width: float
    height: float
    engine: str


def dot_available() -> bool:
    """True when Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def dot_bends(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> int:
    """About how many hidden bend points Graphviz routes long edges through: the sum over the
    edges of (ranks crossed - 1), each box ranked one before its first consumer (as ``dot``'s
    ranking tends to). Linear time; the measure of how long ``dot`` will take on fan-out."""
    outputs: dict[str, list[str]] = {name: [] for name in names}
    pending = dict.fromkeys(names, 0)
    for a, b in edges:
        outputs[a].append(b)
        pending[b] += 1
    ready = [name for name in names if pending[name] == 0]
    rank = dict.fromkeys(names, 0)
    order = []
    while ready:
        name = ready.pop()
        order.append(name)
        for b in outputs[name]:
            rank[b] = max(rank[b], rank[name] + 1)
            pending[b] -= 1
            if pending[b] == 0:
                ready.append(b)
    for name in reversed(order):
        if outputs[name]:
            rank[name] = min(rank[b] for b in outputs[name]) - 1
    return sum(max(0, rank[b] - rank[a] - 1) for a, b in edges)


def dot_options(bends: int) -> list[str]:
    """Extra ``dot`` arguments for a graph of ``bends`` (none for a small one, so that small
    drawings stay exactly as Graphviz draws them by default)."""
    return list(DOT_BOUNDED_OPTIONS) if bends > DOT_BOUNDED_FROM else []


ENGINES = ("auto", "dot", "grandalf", "layered", "python")


def check_engine(engine: object) -> None:
    """A ValueError unless ``engine`` names a layout engine (checked before any work)."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(
            f"engine must be auto, dot, grandalf, layered or python, got {engine!r:.60}"
        )


def layout(
    sizes: dict[str, tuple[float, float]],
    edges: Sequence[tuple[str, str]],
    rankdir: str = "LR",
    engine: str = "auto",
    groups: dict[str, str] | None = None,
) -> Layout:
    """Centres for boxes ``sizes[name] = (width, height)`` joined by ``(tail, head)`` edges.

    ``groups`` maps boxes to a '/'-joined group path (a drawing's frames); the Python layout
    then keeps each group's boxes next to each other within a rank (grandalf is skipped, as
    it cannot), and ``dot`` gets no say in it (Graphviz draws frames as clusters itself)."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    check_engine(engine)
    edges = list(dict.fromkeys((a, b) for a, b in edges if a != b))  # no duplicates or loops
    n = len(sizes)
    bends = dot_bends(list(sizes), edges) if engine != "layered" else 0
    if engine == "dot" or (
        engine == "auto" and n <= DOT_LIMIT and bends <= DOT_BENDS_LIMIT and dot_available()
    ):
        try:
            return _dot_layout(sizes, edges, rankdir, dot_options(bends))
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            if engine == "dot":
                raise
            warnings.warn(f"dot could not lay out the graph ({e}); using Python", stacklevel=2)
    small = n + bends <= GRANDALF_LIMIT and not groups
    if engine == "grandalf" or (engine in ("auto", "python") and small):
        try:
            return _grandalf_layout(sizes, edges, rankdir)
        except ImportError:
            if engine == "grandalf":
                raise
    return _layered_layout(sizes, edges, rankdir, groups)


# ---- Graphviz -------------------------------------------------------------------------------


def _dot_layout(sizes, edges, rankdir, options=()) -> Layout:
    names = list(sizes)
    index = {name: i for i, name in enumerate(names)}
    lines = [
        "digraph {",
        f"rankdir={rankdir}; nodesep={NODE_GAP / 72:.3f}; ranksep={RANK_GAP / 72:.3f};",
        'node [shape=box fixedsize=true label=""];',
    ]
    for name, (w, h) in sizes.items():
        lines.append(f"n{index[name]} [width={w / 72:.4f} height={h / 72:.4f}];")
    for a, b in edges:
        lines.append(f"n{index[a]} -> n{index[b]};")
    lines.append("}")
    done = subprocess.run(
        ["dot", *options, "-Tplain"],
        input="\n".join(lines),
        capture_output=True,
        text=True,
        timeout=DOT_TIMEOUT,
    )
    if done.returncode != 0:
        raise ValueError(done.stderr.strip()[:200] or f"exit code {done.returncode}")
    positions: dict[str, tuple[float, float]] = {}
    width = height = 0.0
    for line in done.stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "graph":  # graph scale width height, in inches
            width, height = float(parts[2]) * 72, float(parts[3]) * 72
        elif parts[0] == "node":  # node name x y ... with y growing upwards
            x, y = float(parts[2]) * 72, float(parts[3]) * 72
            positions[names[int(parts[1][1:])]] = (x, height - y)
    if len(positions) != len(sizes):
        raise ValueError(f"dot placed {len(positions)} of {len(sizes)} boxes")
    return Layout(positions, width, height, "dot")


# ---- grandalf -------------------------------------------------------------------------------


class _View:
    __slots__ = ("w", "h", "xy")

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


def _grandalf_layout(sizes, edges, rankdir) -> Layout:
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    # grandalf lays out top to bottom; for LR, swap width and height and transpose afterwards
    lr = rankdir == "LR"
    vertices = {}
    for name, (w, h) in sizes.items():
        v = Vertex(name)
        v.view = _View(h, w) if lr else _View(w, h)
        vertices[name] = v
    graph = Graph(list(vertices.values()), [Edge(vertices[a], vertices[b]) for a, b in edges])
    positions: dict[str, tuple[float, float]] = {}
    offset = 0.0
    for component in graph.C:  # side by side, each one laid out on its own
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = NODE_GAP, RANK_GAP
        sugiyama.init_all(optimize=True)  # inputs next to their consumer, not all far left
        sugiyama.draw()
        boxes = [(v.data, v.view) for v in component.sV]
        left = min(view.xy[0] - view.w / 2 for _, view in boxes)
        top = min(view.xy[1] - view.h / 2 for _, view in boxes)
        right = max(view.xy[0] + view.w / 2 for _, view in boxes)
        for name, view in boxes:
            x, y = view.xy[0] - left + offset, view.xy[1] - top
            positions[name] = (y, x) if lr else (x, y)
        offset += right - left + NODE_GAP * 2
    return _framed(positions, sizes, "grandalf")


# ---- our own layered layout -----------------------------------------------------------------


def _together(layer: list[str], paths: dict[str, tuple[str, ...]], level: int = 0) -> list[str]:
    """The layer's order with each group's boxes moved next to the group's first box (and so
    on, nested, for groups inside groups); boxes outside groups keep their places."""
    out: list[str] = []
    done: set[str] = set()
    for name in layer:
        parts = paths.get(name, ())
        if len(parts) <= level:
            out.append(name)
            continue
        if parts[level] in done:
            continue
        done.add(parts[level])
        members = [m for m in layer if len(paths.get(m, ())) > level and
                   paths[m][level] == parts[level]]  # fmt: skip
        out.extend(_together(members, paths, level + 1))
    return out


def _ranks(names: list[str], edges, inputs, outputs) -> list[list[str]]:
    """Boxes by rank: the longest path from a source, then each box moved as late as possible
    (one rank before its first consumer), so that a long sum's terms sit next to the '+'
    that takes them instead of far away at the inputs."""
    pending = {name: len(inputs[name]) for name in names}
    ready = [name for name in names if pending[name] == 0]
    rank = dict.fromkeys(names, 0)
    order = []
    while ready:  # Kahn's algorithm
        name = ready.pop()
        order.append(name)
        for b in outputs[name]:
            rank[b] = max(rank[b], rank[name] + 1)
            pending[b] -= 1
            if pending[b] == 0:
                ready.append(b)
    if len(order) != len(names):
        raise ValueError("the graph has a cycle")
    for name in reversed(order):
        if outputs[name]:
            rank[name] = min(rank[b] for b in outputs[name]) - 1
    ranks: list[list[str]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    for name in order:
        ranks[rank[name]].append(name)
    return ranks


def _layered_layout(sizes, edges, rankdir, groups=None) -> Layout:
    names = list(sizes)
    inputs: dict[str, list[str]] = {name: [] for name in names}
    outputs: dict[str, list[str]] = {name: [] for name in names}
    for a, b in edges:
        inputs[b].append(a)
        outputs[a].append(b)
    ranks = _ranks(names, edges, inputs, outputs)
    lr = rankdir == "LR"

    def across(name):  # a box's extent across the rank direction
        return sizes[name][1] if lr else sizes[name][0]

    def along(name):
        return sizes[name][0] if lr else sizes[name][1]

    paths = {name: tuple(p for p in path.split("/") if p) for name, path in (groups or {}).items()}
    slot = _barycentre_order(ranks, inputs, outputs, across, paths)
    if paths:  # each group a band of its own across the ranks, so frames do not overlap
        label = FRAME_LABEL if lr else 0.0
        slot, _ = _bands([n for layer in ranks for n in layer], ranks, across, paths, label)
    else:  # centre every rank on the widest one
        extent = [sum(across(n) for n in layer) + NODE_GAP * (len(layer) - 1) for layer in ranks]
        widest = max(extent, default=0.0)
        for i, layer in enumerate(ranks):
            for name in layer:
                slot[name] += (widest - extent[i]) / 2
    positions: dict[str, tuple[float, float]] = {}
    depth = 0.0
    for layer in ranks:
        thickness = max((along(n) for n in layer), default=0.0)
        for name in layer:
            a, c = depth + thickness / 2, slot[name]
            positions[name] = (a, c) if lr else (c, a)
        depth += thickness + RANK_GAP
    return _framed(positions, sizes, "layered")


def _barycentre_order(ranks, inputs, outputs, across, paths) -> dict[str, float]:
    """Order each rank (in place) by the mean position of its neighbours, in four sweeps, and
    return every box's position across the ranks, each rank packed from 0."""
    slot: dict[str, float] = {}

    def place(layer: list[str]) -> None:
        pos = 0.0
        for name in layer:
            slot[name] = pos + across(name) / 2
            pos += across(name) + NODE_GAP

    if paths:
        ranks[0][:] = _together(ranks[0], paths)
    place(ranks[0])
    for sweep in range(4):
        forward = sweep % 2 == 0
        sequence = ranks[1:] if forward else ranks[-2::-1]
        for layer in sequence:
            neighbours = inputs if forward else outputs

            def key(name, neighbours=neighbours):
                near = [slot[m] for m in neighbours[name] if m in slot]
                return sum(near) / len(near) if near else slot.get(name, 0.0)

            layer.sort(key=key)
            if paths:
                layer[:] = _together(layer, paths)
            place(layer)
    return slot


def _bands(names, ranks, across, paths, label: float, level: int = 0):
    """Positions across the ranks with every group in a band of its own, nested, and the
    band's thickness: the boxes directly in this band first (each rank's centred), then each
    group's band in order of appearance, with room for its frame and label around it."""
    rank_of = {n: i for i, layer in enumerate(ranks) for n in layer}
    direct = [n for n in names if len(paths.get(n, ())) <= level]
    inner: dict[str, list[str]] = {}
    for n in names:
        if len(paths.get(n, ())) > level:
            inner.setdefault(paths[n][level], []).append(n)
    out: dict[str, float] = {}
    offset = 0.0
    if direct:
        per_rank: dict[int, list[str]] = {}
        for n in direct:
            per_rank.setdefault(rank_of[n], []).append(n)
        extent = {r: sum(across(n) for n in ns) + NODE_GAP * (len(ns) - 1)
                  for r, ns in per_rank.items()}  # fmt: skip
        offset = max(extent.values())
        for r, ns in per_rank.items():
            pos = (offset - extent[r]) / 2
            for n in ns:
                out[n] = pos + across(n) / 2
                pos += across(n) + NODE_GAP
        offset += NODE_GAP
    for members in inner.values():
        band, thickness = _bands(members, ranks, across, paths, label, level + 1)
        start = offset + FRAME_PAD + label
        out.update({n: start + c for n, c in band.items()})
        offset = start + thickness + FRAME_PAD + NODE_GAP
    return out, offset - NODE_GAP if names else 0.0


def _framed(positions, sizes, engine: str) -> Layout:
    """Shift the positions so the drawing starts at (0, 0), and measure it."""
    if not positions:
        return Layout({}, 0.0, 0.0, engine)
    left = min(x - sizes[n][0] / 2 for n, (x, y) in positions.items())
    top = min(y - sizes[n][1] / 2 for n, (x, y) in positions.items())
    moved = {n: (x - left, y - top) for n, (x, y) in positions.items()}
    width = max(x + sizes[n][0] / 2 for n, (x, y) in moved.items())
    height = max(y + sizes[n][1] / 2 for n, (x, y) in moved.items())
    return Layout(moved, width, height, engine)
