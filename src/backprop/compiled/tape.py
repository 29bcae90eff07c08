"""Tracing: a graph of Values recorded once as a flat tape of op codes, operands and constants."""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from ..engine import Value
from ..ops import OPS, Op

__all__ = ["Tape", "TraceError", "trace", "OP_LIST"]

# Op codes are positions in this list; a leaf has code -1. One table serves eager and compiled.
OP_LIST: list[Op] = list(OPS.values())
# keyed by id: hashing an Op (a dataclass) per node would cost more than the rest of tracing
_CODE_OF: dict[int, int] = {id(op): code for code, op in enumerate(OP_LIST)}
_CODE_OF[id(None)] = -1
_CODE_BY_OP: dict = {op: code for code, op in enumerate(OP_LIST)}  # an Op hashes by identity
_CODE_BY_OP[None] = -1
# has_arg by op code, with the leaves' code -1 last (indexing with -1 reads it): False
_HAS_ARG = [op.has_arg for op in OP_LIST] + [False]
MAX_ARITY = max(op.arity for op in OP_LIST)
# a node's operands are its slots _a and _b (None when missing), as engine.Value stores them
_OPERANDS = (attrgetter("_a"), attrgetter("_b"))
_fn_of, _arg_of, _label_of = attrgetter("_fn"), attrgetter("_arg"), attrgetter("label")
if MAX_ARITY > len(_OPERANDS):
    raise ImportError(f"compiled mode reads 2 operands per node; ops.OPS has arity {MAX_ARITY}")


class TraceError(ValueError):
    """The graph cannot be recorded (for example it holds an op that ops.OPS does not know)."""


@dataclass
class Tape:
    """A graph in topological order: node i is computed by OP_LIST[codes[i]] from the nodes
    columns[0][i], columns[1][i], ... (-1 past the op's arity) and the constant args[i] (nan
    when the op takes none).

    Leaves (code -1) read their value from ``leaves[k].data``, where node ``leaf_ids[k]`` is the
    k-th leaf. The root is the last node. Arrays are the standard library's, so that tracing
    needs no numpy (which reads them without copying).
    """

    codes: array  # of int: compact stdlib arrays, a fifth of a list's memory on large graphs
    columns: list[array]  # columns[k][i]: the k-th operand of node i, or -1
    args: array  # of float
    leaf_ids: list[int]
    leaves: list[Value]
    labels: list[str] = field(repr=False)
    _leaf_of: dict[int, Value] | None = field(default=None, repr=False)
    output_ids: list[int] = field(default_factory=list)  # nodes whose values a replay reports
    n_constants: int = 0  # the last leaves are constants: nobody reads their gradients
    # id() of each node's Value when traced (int64 array): to find outputs= among the nodes
    # of a root compiled again after its program cut it from its graph (program.py)
    node_ids: object = field(default=None, repr=False)

    @property
    def root(self) -> int:
        return len(self.codes) - 1

    def __len__(self) -> int:
        return len(self.codes)

    def operands(self, i: int) -> tuple[int, ...]:
        code = self.codes[i]
        arity = OP_LIST[code].arity if code >= 0 else 0
        return tuple(column[i] for column in self.columns[:arity])

    def equations(self) -> list[tuple[int, Op, tuple[int, ...], float | None]]:
        """(out, op, inputs, arg) for every non-leaf node, in order: the program to replay."""
        return [
            (i, OP_LIST[c], self.operands(i), self.args[i] if OP_LIST[c].has_arg else None)
            for i, c in enumerate(self.codes)
            if c >= 0
        ]

    def line(self, i: int) -> str:
        """Node i as one line of a listing: '%7 = mul %3 %5', '%0 = leaf 2.0  # x1'."""
        code = self.codes[i]
        if code < 0:
            if self._leaf_of is None:
                self._leaf_of = dict(zip(self.leaf_ids, self.leaves))
            text = f"%{i} = leaf {self._leaf_of[i].data!r}"
        else:
            op = OP_LIST[code]
            text = f"%{i} = {op.name} " + " ".join(f"%{j}" for j in self.operands(i))
            if op.has_arg:
                text += f", {self.args[i]!r}"
        return f"{text}  # {self.labels[i]}" if self.labels[i] else text

    def listing(self, limit: int | None = None) -> str:
        """The tape as text, one node a line; past ``limit`` lines, the first and last ones."""
        n = len(self.codes)
        if limit is None or n <= limit:
            return "\n".join(map(self.line, range(n)))
        head = [self.line(i) for i in range(limit // 2)]
        tail = [self.line(i) for i in range(n - (limit - limit // 2), n)]
        return "\n".join(head + [f"... {n - limit} more nodes ..."] + tail)


def trace(root: Value, outputs: Sequence[Value] = ()) -> Tape:
    """Record the graph under root, in the order ``root.topological_order()`` gives;
    ``outputs`` (nodes of the graph) are listed as ``output_ids``."""
    if not isinstance(root, Value):
        raise TypeError(f"compile() needs a Value, got {type(root).__name__}: {root!r:.60}")
    import numpy as np  # a program keeps its leaves in numpy arrays anyway

    native = _native()
    codes = None
    if native is not None:  # the sort, the operand lookup and the op codes in C, in one pass
        try:
            order, col_a, col_b, node_ids, code_bytes = native.trace_graph(root, Value, _CODE_BY_OP)
        except KeyError:  # an op outside the table: found and named below
            order, col_a, col_b, node_ids, code_bytes = native.trace_graph(root, Value)
        ids = np.frombuffer(node_ids, dtype=np.int64)
        columns = [array("q"), array("q")]
        columns[0].frombytes(col_a)
        columns[1].frombytes(col_b)
        if code_bytes is not None:
            codes = array("h")
            codes.frombytes(code_bytes)
        del col_a, col_b, code_bytes
    else:
        order = root.topological_order()
        ids = np.fromiter(map(id, order), np.int64, len(order))
    # map() over attrgetter keeps the per-node work in C, and a node's position is found by
    # sorting ids, not by a dictionary of a million entries: tracing a graph costs less than
    # one eager backward over it
    try:
        if codes is None:
            codes = array("h", map(_CODE_OF.__getitem__, map(id, map(_fn_of, order))))
    except KeyError:
        bad = next(v for v in order if id(v._fn) not in _CODE_OF)
        raise TraceError(
            f"cannot compile op {bad._fn!r} of node {bad!r}: it is not a row of ops.OPS"
        ) from None
    sorted_ids = by_id = None

    def positions(values_ids: np.ndarray) -> np.ndarray:
        """The position in order of each id, -1 for ids not in it (None: no operand)."""
        nonlocal sorted_ids, by_id
        if sorted_ids is None:
            by_id = np.argsort(ids)
            sorted_ids = ids[by_id]
        at = np.minimum(np.searchsorted(sorted_ids, values_ids), len(order) - 1)
        return np.where(sorted_ids[at] == values_ids, by_id[at], -1)

    if native is None:
        columns = []
        for operand in _OPERANDS:
            column = array("q")
            operand_ids = np.fromiter(map(id, map(operand, order)), np.int64, len(order))
            column.frombytes(positions(operand_ids).astype(np.int64).tobytes())
            columns.append(column)
    output_ids = []
    if outputs:
        output_ids = positions(np.array([id(v) for v in outputs], dtype=np.int64)).tolist()
    if -1 in output_ids:
        bad = output_ids.index(-1)
        raise TraceError(f"output {bad} ({outputs[bad]!r:.60}) is not a node of the graph")
    code_array = np.frombuffer(codes, dtype=np.int16) if len(codes) else np.zeros(0, np.int16)
    args = array("d", [math.nan]) * len(order)
    has_arg = np.array(_HAS_ARG, dtype=bool)[code_array]
    for i in np.flatnonzero(has_arg).tolist():  # only the nodes that have a constant
        args[i] = order[i]._arg
    leaf_ids = np.flatnonzero(code_array < 0).tolist()
    leaves = list(map(order.__getitem__, leaf_ids))
    labels = list(map(_label_of, order))
    tape = Tape(codes, columns, args, leaf_ids, leaves, labels, output_ids=output_ids)
    tape.node_ids = ids
    return tape


def _native():
    """compiled/_native.c's module for trace_graph, or None (not built, BACKPROP_NATIVE=0, or
    a build older than trace_graph): then tracing runs in Python and numpy, with the same
    result."""
    if not _NATIVE:
        module = None
        if os.environ.get("BACKPROP_NATIVE", "1") != "0":
            try:
                from . import _native as module
            except ImportError:
                module = None
        _NATIVE.append(module if hasattr(module, "trace_graph") else None)
    return _NATIVE[0]


_NATIVE: list = []  # [the module or None], once looked up


def find_outputs(tape: Tape, outputs: Sequence[Value]) -> list[int]:
    """The positions of ``outputs`` among a tape's nodes, by the ids its nodes had when traced
    (the nodes themselves may be gone): each found Value must also have its node's op, and
    its operands the ids of its node's operands, so that a Value whose id was reused cannot
    pass for a node. TraceError for one that is not a node of the graph."""
    import numpy as np

    ids = tape.node_ids
    found = []
    for k, v in enumerate(outputs):
        at = np.flatnonzero(ids == id(v)) if ids is not None else ()
        i = int(at[0]) if len(at) else -1
        if i >= 0 and isinstance(v, Value) and _CODE_OF.get(id(v._fn)) == tape.codes[i]:
            operands = [getattr(v, name) for name in ("_a", "_b")]
            expected = [column[i] for column in tape.columns]
            if all(
                (x is None and j < 0) or (x is not None and j >= 0 and ids[j] == id(x))
                for x, j in zip(operands, expected)
            ):
                found.append(i)
                continue
        raise TraceError(f"output {k} ({v!r:.60}) is not a node of the graph")
    return found
