"""Forward mode: jvp(), one sweep in topological order. A rule is linear in its incoming gradient,
so ``backward(m, t, out, *inputs)`` applied to an input's tangent ``t`` is that input's share of
the node's tangent: forward mode reads the same rows of ops.py as reverse mode."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Value, _topological_order, set_grad_enabled
from ..ops import SCALAR
from .anomaly import _anomaly_check, _quiet
from .reverse import Values, _not_replayed, _seeds, _unused_error, _values
from .sweep import GRAPH, _accumulate

__all__ = ["jvp"]


# ---- forward mode ---------------------------------------------------------------------------


def jvp(
    outputs: Values,
    inputs: Values,
    tangents: float | Value | Sequence[float | Value],
    create_graph: bool = False,
    allow_unused: bool = False,
) -> Value | tuple[Value, ...]:
    """The directional derivative of the outputs along tangents, in one forward sweep.

    ``sum_i d(output)/d(input i) * tangents[i]``, as ``torch.func.jvp`` gives it: every node's
    tangent is computed once, from its inputs' tangents, in topological order. Returns a Value
    (a tuple of them when ``outputs`` is a sequence); with ``create_graph=True`` it is a graph.
    """
    outs = _values(outputs, "outputs")
    ins = _values(inputs, "inputs")
    seeds = _seeds(tangents, len(ins), "tangents", keep_values=create_graph)
    _not_replayed(outs)
    order = _topological_order(outs)
    present = set(map(id, order))
    for i, v in enumerate(ins):
        if id(v) not in present and not allow_unused:
            raise _unused_error(i, v)
    graph = create_graph
    m = GRAPH if graph else SCALAR
    seed: dict[int, object] = {}
    for v, s in zip(ins, seeds):
        seed[id(v)] = _accumulate(seed.get(id(v)), s, graph)
    check = _anomaly_check()
    tangent: dict[int, object] = {}
    with _quiet(), set_grad_enabled(True):
        for node in order:
            t, _ = _node_tangent(node, tangent, m, graph, check)
            if id(node) in seed:  # an input: its own tangent adds to what flows into it
                t = _accumulate(t, seed[id(node)], graph)
            if t is not None:
                tangent[id(node)] = t
    result = []
    for out in outs:
        t = tangent.get(id(out), 0.0)
        result.append(t if isinstance(t, Value) else Value(t))
    return result[0] if isinstance(outputs, Value) else tuple(result)


def _node_tangent(node: Value, tangent: dict[int, object], m, graph: bool, check=None):
    """node's tangent from its inputs' tangents (``tangent``: id -> tangent, absent for an input
    that does not depend on the seeded inputs), and its terms: (j, term) for each input j that
    has a tangent. The tangent is None when no input has one (a leaf, or a node that does not
    depend on the seeds). explain(mode="forward") shows these same terms, one step per node.
    """
    fn = node._fn
    t, terms = None, []
    if fn is None:
        return t, terms
    operands = node._prev
    incoming = [tangent.get(id(v)) for v in operands]
    if all(tj is None for tj in incoming):
        return t, terms
    args = (node, *operands) if graph else (node.data, *[v.data for v in operands])
    if fn.has_arg:
        args = (*args, node._arg)
    for j, tj in enumerate(incoming):
        if tj is not None:  # the rule is linear in g: its j-th term is dj * tj
            share = fn.backward(m, tj, *args)[j]
            if check is not None:
                check(node, tj, (share,))
            terms.append((j, share))
            t = _accumulate(t, share, graph)
    return t, terms
