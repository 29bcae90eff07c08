"""The roots that eager backward() must refuse, because a compiled Program replays their graph.

A Program's ``forward()`` recomputes the numbers in its own arrays and writes only the root's
value back: the graph's intermediate nodes keep the numbers they had when traced. An eager
``root.backward()`` (or ``backprop.grad``) would read those stale numbers, so it is refused
through the engine's hook (``engine.backward_checks``) for a root that is

- detached: ``compile(root)`` with ``keep_graph=False`` (the default) keeps the root Value but
  cuts it from its graph, so that dropping your reference to the graph frees it; or
- replayed: with ``keep_graph=True``, from ``forward()`` until ``sync()`` writes every node.
"""

from __future__ import annotations

import sys

from .. import engine
from ..engine import Value
from ..ops import SCALAR
from .tape import OP_LIST

__all__ = ["detach", "release", "tape_of", "mark_replayed", "unmark_replayed", "refuse"]

# id(root) -> [tape or None, number of programs holding it detached]; a program releases its
# root when it is deleted (it holds the root, so the id cannot be reused meanwhile)
_detached: dict[int, list] = {}
_replayed: set[int] = set()  # ids of keep_graph=True roots replayed since their last sync()

DETACHED = (
    "this Value is the root of a compiled Program (keep_graph=False), which keeps it detached "
    "from its graph so that the graph can be freed: backpropagate with program.backward(), or "
    "compile with keep_graph=True to keep the graph for eager backward() after sync()"
)
REPLAYED = (
    "this graph was replayed by a compiled Program, whose forward() leaves the intermediate "
    "nodes' data as traced: use program.backward(), or call program.sync() before an eager "
    "backward()"
)


def detach(root, tape) -> None:
    """Cut root from its graph (a Value with no op and no operands, whose .data the program
    sets), remembering the program's tape (None when too large to keep), so that compiling
    the root again replays the same graph."""
    entry = _detached.get(id(root))
    if entry is None:
        root._fn = root._a = root._b = root._arg = None
        _detached[id(root)] = [tape, 1]
    else:
        entry[1] += 1
        if entry[0] is None:
            entry[0] = tape


def _alone(root, entry) -> bool:
    """Whether only the programs reference root (besides this call's two references)."""
    return sys.getrefcount(root) <= entry[1] + 3  # the caller's, root's here, getrefcount's


def release(root) -> None:
    """A program that held root detached is being deleted. The last one gives the root its
    graph back, rebuilt from the tape with the leaves' current numbers, when someone else
    still references the root."""
    entry = _detached.get(id(root))
    if entry is None:
        return
    alone = _alone(root, entry)
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _detached[id(root)]
    if entry[0] is not None and not alone:
        reattach(root, entry[0])


def reattach(root, tape) -> None:
    """Rebuild root's graph from a tape: the leaves are the tape's Values (a constant copied
    at compile time becomes a new leaf holding its number), every other node is made as eager
    mode makes it, by its op's forward rule; the root is the last node."""
    codes, columns, args, labels = tape.codes, tape.columns, tape.args, tape.labels
    nodes: list = [None] * len(codes)
    for i, leaf in zip(tape.leaf_ids, tape.leaves):
        nodes[i] = leaf if isinstance(leaf, Value) else Value(leaf.data)
    last = len(codes) - 1
    for i, code in enumerate(codes):
        if code < 0:
            continue
        op = OP_LIST[code]
        a = nodes[columns[0][i]]
        b = nodes[columns[1][i]] if op.arity == 2 else None
        arg = args[i] if op.has_arg else None
        if b is not None:
            data = op.forward(SCALAR, a.data, b.data)
        elif arg is not None:
            data = op.forward(SCALAR, a.data, arg)
        else:
            data = op.forward(SCALAR, a.data)
        node = root if i == last else Value.__new__(Value)
        node.data, node.grad, node.label = data, 0.0, labels[i]
        node._fn, node._a, node._b, node._arg = op, a, b, arg
        nodes[i] = node


def drop_tape_if_alone(root) -> None:
    """Forget a detached root's tape once nobody but its programs references the root (a
    graph too large to keep for listing is kept only while the root may be compiled again)."""
    entry = _detached.get(id(root))
    if entry is not None and entry[0] is not None and _alone(root, entry):
        entry[0] = None


def is_detached(root) -> bool:
    return id(root) in _detached


def tape_of(root):
    """The tape of a detached root's graph, or None."""
    entry = _detached.get(id(root))
    return None if entry is None else entry[0]


def mark_replayed(root) -> None:
    _replayed.add(id(root))


def unmark_replayed(root) -> None:
    _replayed.discard(id(root))


def refuse(root) -> None:
    """The engine hook: raises for a root a Program replays (see the module docstring)."""
    if _detached and id(root) in _detached:
        raise RuntimeError(DETACHED)
    if _replayed and id(root) in _replayed:
        raise RuntimeError(REPLAYED)


if refuse not in engine.backward_checks:
    engine.backward_checks.append(refuse)
