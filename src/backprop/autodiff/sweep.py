"""The reverse sweep behind grad() and backward(create_graph=True): adjoints summed in the nodes'
own .grad slots, as floats or, with ``m = GRAPH``, as Values built by the op rules.

``GRAPH`` is the maths namespace whose operations build Values: an op's backward rule run with it
returns its gradient as a graph, which can be differentiated again, so every op gets its higher
derivatives from its one row in ops.py.
"""

from __future__ import annotations

from collections import deque
from itertools import repeat
from operator import attrgetter

from .._base import native as _native
from .._gc import paused
from ..engine import Value, _node, _to_float, _topological_order, set_grad_enabled
from ..ops import SCALAR, Op

__all__ = ["GRAPH", "GraphMath"]


class GraphMath:
    """The maths namespace ``m`` whose operations build Values. Plain numbers stay numbers
    (constants), and a condition (``m.where``) is decided on ``.data``: its derivative is zero
    where it is defined.
    """

    @staticmethod
    def exp(x):
        return x.exp() if isinstance(x, Value) else SCALAR.exp(x)

    @staticmethod
    def log(x):
        return x.log() if isinstance(x, Value) else SCALAR.log(x)

    @staticmethod
    def sqrt(x):
        return x.sqrt() if isinstance(x, Value) else SCALAR.sqrt(x)

    @staticmethod
    def tanh(x):
        return x.tanh() if isinstance(x, Value) else SCALAR.tanh(x)

    @staticmethod
    def sigmoid(x):
        return x.sigmoid() if isinstance(x, Value) else SCALAR.sigmoid(x)

    @staticmethod
    def sign(x):
        return x.sign() if isinstance(x, Value) else SCALAR.sign(x)

    @staticmethod
    def pow(a, b):
        if isinstance(a, Value) or isinstance(b, Value):
            return a**b  # Value ** Value, Value ** k or k ** Value: pow, powc or rpow
        return SCALAR.pow(a, b)

    @staticmethod
    def maximum(a, b):
        if not isinstance(a, Value) and not isinstance(b, Value):
            return SCALAR.maximum(a, b)
        if isinstance(a, Value) and not isinstance(b, Value) and b == 0.0:
            return a.relu()  # relu's own forward rule, max(a, 0)
        return (a - b).relu() + b  # max(a, b) = relu(a - b) + b

    @staticmethod
    def where(cond, x, y):
        return x if cond else y

    @staticmethod
    def node(op: Op, *inputs) -> Value:
        """A node of op (a row of ops.OPS) over the inputs (its constant last, for an op that
        has one); numbers become constant leaves."""
        if op.has_arg:
            x, arg = inputs
            a = x if isinstance(x, Value) else Value(x)
            return _node(op, op.forward(SCALAR, a.data, arg), a, None, arg)
        if len(inputs) == 2 and type(a := inputs[0]) is Value and type(b := inputs[1]) is Value:
            return _node(op, op.forward(SCALAR, a.data, b.data), a, b)  # relu_grad's case
        a, *rest = [v if isinstance(v, Value) else Value(v) for v in inputs]
        if not rest:
            return _node(op, op.forward(SCALAR, a.data), a)
        (b,) = rest
        return _node(op, op.forward(SCALAR, a.data, b.data), a, b)


GRAPH = GraphMath()


_grad_of = attrgetter("grad")
_SKIP = object()  # in a leaf's .grad during a graph sweep: this leaf gets no adjoint
_UNREACHED = object()  # in a wanted node's .grad during a sweep: no root reaches it


def _backpropagate(roots, seeds, m=SCALAR, wanted=None, check=None, into_grads=False) -> dict:
    """One reverse sweep from the roots: {id(node): d(sum of seed * root)/d(node)} for the
    wanted nodes under them (every node when None).

    The adjoints are summed in the nodes' own .grad slots, in backward()'s order, and every
    .grad is put back afterwards; ``into_grads=True`` leaves them there instead, leaves having
    started from their .grad, which is backward(). With ``m = SCALAR`` they are floats; with
    ``m = GRAPH`` Values (or numbers, for constants), graphs built by the op rules, and leaves
    that are not wanted get none. ``check(node, g, grads)`` sees every rule's result.
    """
    order = _topological_order(roots)
    graph = m is not SCALAR
    saved = list(map(_grad_of, order))
    wanted = [] if wanted is None else list(wanted)
    saved_wanted = [v.grad for v in wanted]
    done = False
    try:
        for v in wanted:
            v.grad = _UNREACHED
        # every .grad to "nothing yet" (None, or 0.0 for floats), at C speed: map() over setattr
        deque(map(setattr, order, repeat("grad"), repeat(None if graph else 0.0)), maxlen=0)
        if into_grads:  # leaves start from their .grad
            for v, g0 in zip(order, saved):
                if v._fn is None:
                    v.grad = g0
        elif graph and wanted:
            keep = {id(v) for v in wanted if v._fn is None}
            skipped = [v for v in order if v._fn is None and id(v) not in keep]
            deque(map(setattr, skipped, repeat("grad"), repeat(_SKIP)), maxlen=0)
        for root, seed in zip(roots, seeds):
            if root.grad is not _SKIP:
                root.grad = _accumulate(root.grad, seed, graph)
        if not graph and check is None and _native:
            _native.sweep(order)  # backward()'s loop, in C (_cvalue_graph.c)
        elif not graph:
            for node in reversed(order):  # backward()'s loop, with a check
                grads = node._backward()
                if check is not None and grads:
                    check(node, node.grad, grads)
        else:
            # A graph is asked for, so it is recorded even inside no_grad(), as torch's
            # create_graph does. The collector is paused: the sweep makes no cycles, only
            # many new nodes, and each of its passes would rescan the whole live graph.
            with set_grad_enabled(True), paused(promote=True):
                _sweep_graph(order, m, check)
        if into_grads:
            if graph:
                for v in order:
                    if not isinstance(v.grad, Value):
                        v.grad = Value(v.grad)
            done = True
            return {}
        nodes = wanted or order
        return {id(v): v.grad for v in nodes if v.grad is not _UNREACHED and v.grad is not None}
    finally:
        if not done:  # grad(), or a backward() that raised: every .grad as it was
            deque(map(setattr, order, repeat("grad"), saved), maxlen=0)
        for v, g0 in zip(wanted, saved_wanted):
            v.grad = g0


def _sweep_graph(order, m, check) -> None:
    """The chain rule with m building Values: the rules get the nodes themselves, not numbers.
    A .grad of None means no adjoint yet; a leaf whose .grad is _SKIP gets none."""
    add = Value.__add__
    if _native and check is None:  # this loop, in C (_cvalue_graph.c)
        return _native.sweep_graph(order, m, add, _accumulate, _SKIP)
    for node in reversed(order):
        fn = node._fn
        if fn is None or (g := node.grad) is None:
            continue
        a, b = node._a, node._b
        if b is not None:
            ga, gb = grads = fn.backward(m, g, node, a, b)
        elif fn.has_arg:
            (ga,) = grads = fn.backward(m, g, node, a, node._arg)
        else:
            (ga,) = grads = fn.backward(m, g, node, a)
        if check is not None:
            check(node, g, grads)
        # (the same lines for a and for b, written out: this runs once per edge)
        total = a.grad
        if total is None:  # most nodes have one consumer: the first term is the adjoint
            a.grad = ga
        elif type(total) is Value and type(ga) is Value:
            a.grad = add(total, ga)  # total + ga, without the operator's dispatch
        elif total is not _SKIP:
            a.grad = _accumulate(total, ga, True)
        if b is None:
            continue
        total = b.grad
        if total is None:
            b.grad = gb
        elif type(total) is Value and type(gb) is Value:
            b.grad = add(total, gb)
        elif total is not _SKIP:
            b.grad = _accumulate(total, gb, True)


def _accumulate(total, g, graph: bool):
    """total + g, where None means nothing yet. Floats add as backward() adds them (from 0.0);
    in a graph, a zero number adds nothing and adding to a zero number builds no node."""
    if not graph:
        return (0.0 if total is None else total) + g
    if total is None or (type(total) is float and total == 0.0 and isinstance(g, Value)):
        return g
    if type(g) is float and g == 0.0:
        return total
    return total + g


def _backward_into_grads(root: Value, grad, m=GRAPH, check=None) -> None:
    """backward() through _backpropagate: leaves accumulate into .grad (in the same order as
    backward() adds), intermediates get this call's adjoint. With m = GRAPH every .grad
    written is a Value: backward(create_graph=True)."""
    seed = grad if isinstance(grad, Value) else _to_float(grad)
    _backpropagate([root], [seed], m, check=check, into_grads=True)
