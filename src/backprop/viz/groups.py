"""Grouped drawings (issue 20): scopes drawn as boxes at a chosen depth.

``draw_dot(root, depth=k)``, ``to_dot``, ``to_mermaid`` and ``to_json`` with ``depth=k`` read each
node's ``Value.scope`` (the '/'-joined path of the ``backprop.scope`` blocks open when it was
made, '' outside any):

- a scope ``k`` levels deep (``"gpt/attn"`` is 2 deep) is drawn as **one box**, with everything
  made inside it (its deeper scopes too). The box's edges are its inputs (values made outside
  it that its nodes use) and its outputs (its values used outside it, or the output itself);
- a shallower scope is drawn as a **frame** (a Graphviz cluster) around what was made in it;
- a node outside any scope is drawn as always: its ``label | data | grad`` record and its op.
  An unlabelled leaf made outside any scope but used in only one (a neuron's weights and
  bias, made before the forward pass opened the neuron's scope) is drawn as part of it.

``depth=1`` shows the top level of a script: one box per top-level scope. ``depth=None`` is the
full drawing without frames, exactly as before scopes existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Value

__all__ = ["scope_of", "check_depth", "Grouping", "group", "grouped_drawing"]


def scope_of(v: Value) -> str:
    """The node's scope path ('' outside any scope, or on an engine without scopes)."""
    return getattr(v, "scope", "") or ""


def _parts(scope: str) -> tuple[str, ...]:
    return tuple(p for p in scope.split("/") if p)


def check_depth(depth: object) -> int | None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be an int >= 1 or None, got {depth!r}")
    return depth


@dataclass
class Grouping:
    """Which block (collapsed scope) each node is in, and the frames around the rest.

    ``block[id(v)]`` is the scope path of v's box, or absent when v is drawn itself;
    ``frame[id(v)]`` is the deepest frame around a node drawn itself ('' for none);
    ``members[path]`` lists a block's nodes in topological order; ``inputs``/``outputs`` its
    edges' far ends (values outside it that it uses; its values used outside it)."""

    order: list[Value]
    block: dict[int, str]
    frame: dict[int, str]
    members: dict[str, list[Value]]
    inputs: dict[str, list[Value]]
    outputs: dict[str, list[Value]]


def _placed_scopes(order: list[Value]) -> dict[int, str]:
    """Each node's scope for grouping: its own, except that an unlabelled leaf made outside any
    scope and used inside exactly one (a neuron's weights and bias, made before the forward
    pass) counts as part of that one. A labelled leaf, or one used in several scopes (an input
    x), stays outside: an input of the boxes that use it."""
    scopes = {id(v): scope_of(v) for v in order}
    users: dict[int, set[str]] = {}
    for v in order:
        for child in v._prev:
            if not child._prev and not child.label and not scopes[id(child)]:
                users.setdefault(id(child), set()).add(scopes[id(v)])
    for key, where in users.items():
        if len(where) == 1 and "" not in where:
            scopes[key] = next(iter(where))
    return scopes


def group(root: Value, depth: int) -> Grouping:
    """Group the graph under root: scopes ``depth`` levels deep become blocks."""
    order = root.topological_order()
    scopes = _placed_scopes(order)
    block: dict[int, str] = {}
    frame: dict[int, str] = {}
    members: dict[str, list[Value]] = {}
    for v in order:
        parts = _parts(scopes[id(v)])
        if len(parts) >= depth:
            path = "/".join(parts[:depth])
            block[id(v)] = path
            members.setdefault(path, []).append(v)
        else:
            frame[id(v)] = "/".join(parts)
    inputs: dict[str, dict[int, Value]] = {path: {} for path in members}  # insertion-ordered
    outputs: dict[str, dict[int, Value]] = {path: {} for path in members}
    for v in order:
        here = block.get(id(v))
        for child in v._prev:
            there = block.get(id(child))
            if there != here:
                if here is not None:
                    inputs[here].setdefault(id(child), child)
                if there is not None:
                    outputs[there].setdefault(id(child), child)
    if id(root) in block:
        outputs[block[id(root)]].setdefault(id(root), root)
    return Grouping(
        order,
        block,
        frame,
        members,
        {path: list(found.values()) for path, found in inputs.items()},
        {path: list(found.values()) for path, found in outputs.items()},
    )


def _block_cells(path: str, g: Grouping) -> tuple[str, ...]:
    """A block's record: its scope's name (the last part of its path: a frame around it names
    the rest), its size and its one output's data and grad (or the number of its outputs)."""
    size = len(g.members[path])
    cells = (_parts(path)[-1], f"{size} node{'s' if size != 1 else ''}")
    outs = g.outputs[path]
    if len(outs) == 1:
        return (*cells, "data %.4f" % outs[0].data, "grad %.4f" % outs[0].grad)
    return (*cells, f"{len(outs)} outputs")


def grouped_drawing(root: Value, rankdir: str, depth: int, box, cluster, drawing, cells):
    """The drawing with blocks and frames (``box``, ``cluster``, ``drawing`` are draw.py's
    dataclasses and ``cells`` its record cells, passed in to keep the import one way)."""
    g = group(root, depth)
    ids: dict[int | str, str] = {}  # id(node) or a block's path -> box id
    boxes = []
    where: dict[str, str] = {}  # box id -> frame path ('' = top level)
    for v in g.order:
        path = g.block.get(id(v))
        if path is None:
            uid = ids[id(v)] = f"n{len(ids)}"
            boxes.append(box(uid, "value", cells(v)))
            where[uid] = g.frame[id(v)]
            if v._op:
                boxes.append(box(uid + "_op", "op", (v._op,)))
                where[uid + "_op"] = g.frame[id(v)]
        elif path not in ids:
            uid = ids[path] = f"b{len(ids)}"
            boxes.append(box(uid, "block", _block_cells(path, g)))
            where[uid] = "/".join(_parts(path)[:-1])
    edges = _grouped_edges(g, ids)
    return drawing(boxes, edges, rankdir, "", clusters=_frames(where, cluster))


def _grouped_edges(g: Grouping, ids: dict) -> list[tuple[str, str, bool]]:
    edges: list[tuple[str, str, bool]] = []
    seen: set[tuple[str, str]] = set()
    for v in g.order:
        here = g.block.get(id(v))
        if here is None and v._op:
            edges.append((ids[id(v)] + "_op", ids[id(v)], False))
        for child in v._prev:
            there = g.block.get(id(child))
            if here is not None and there == here:
                continue  # inside one block
            tail = ids[there] if there is not None else ids[id(child)]
            head = ids[here] if here is not None else ids[id(v)] + "_op"
            if here is None and there is None:
                edges.append((tail, head, False))  # as the full drawing: a*a keeps both
            elif (tail, head) not in seen:
                seen.add((tail, head))
                edges.append((tail, head, False))
    return edges


def _frames(where: dict[str, str], cluster) -> list:
    """One frame per scope path that holds a box, nested by path, outermost first."""
    paths = set()
    for path in where.values():
        parts = _parts(path)
        paths.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
    order = sorted(paths, key=lambda p: (len(_parts(p)), p))
    index = {path: f"cluster_{i}" for i, path in enumerate(order)}
    frames = []
    for path in order:
        parts = _parts(path)
        parent = index.get("/".join(parts[:-1])) if len(parts) > 1 else None
        inside = [uid for uid, p in where.items() if p == path]
        frames.append(cluster(index[path], parts[-1], parent, inside))
    return frames
