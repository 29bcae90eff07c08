"""Value: a scalar that remembers how it was computed, and backpropagates through that graph."""

from __future__ import annotations

import numbers
import operator
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import repeat
from operator import attrgetter

from . import ops
from ._gc import paused
from .ops import SCALAR, Op

__all__ = ["Value", "no_grad", "is_grad_enabled", "GRAPH", "GraphMath"]


class _GradMode(threading.local):
    enabled = True  # the default on every thread


_grad_mode = _GradMode()
# no_grad() and detect_anomaly() blocks open on any thread: while it is 0, making a node tests
# this one number and nothing else (the thread-local lookup and the anomaly check are skipped)
_open_blocks = 0
_lock = threading.Lock()
# the open backprop.detect_anomaly() (autodiff.py), or None: it sees every new node being made
# (node_made) and runs backward() itself, checking every gradient
_anomaly = None


# ids of roots whose compiled Program (backprop.compiled) replayed forward() without writing the
# intermediate nodes back: eager backward() from them would read stale data, so it refuses.
_replayed_roots: set[int] = set()

# Called with the root at the start of every eager backward() (and, for each output, of
# autodiff.grad()): one that raises refuses the call. Compiled mode registers its replay guard
# here. Empty, it costs backward() one truth test.
backward_checks: list[Callable[[Value], None]] = []


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block on this thread."""
    return _grad_mode.enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops compute values but record no graph (per thread, nestable)."""
    global _open_blocks
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    with _lock:
        _open_blocks += 1
    try:
        yield
    finally:
        _grad_mode.enabled = previous
        with _lock:
            _open_blocks -= 1


def _to_float(data: object) -> float:
    if type(data) is float:
        return data
    if isinstance(data, numbers.Real):  # int, bool, Fraction, numpy scalars
        return float(data)
    if getattr(data, "shape", None) == ():  # a 0-d numpy array
        return _to_float(data.item())
    raise TypeError(
        f"Value needs a real number (int or float), got {type(data).__name__}: {data!r:.60}"
    )


# ---- making nodes: every op's forward rule comes from its row in ops.py ---------------------


def _node(fn: Op, data: float, a: Value, b: Value | None, arg: float | None) -> Value:
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    if _open_blocks:  # a no_grad() or detect_anomaly() block is open somewhere
        return _opened(out, fn, a, b, arg)
    out._fn = fn
    out._a = a
    out._b = b
    out._arg = arg
    return out


def _binary_method(fn: Op, swapped: bool = False):
    """Value's method for a binary op: self op other, or other op self when swapped (for
    __radd__ and its kin). Numbers are lifted to leaf Values; anything else is NotImplemented."""
    forward = fn.forward

    # _node's body, inlined: this is where graph building spends most of its time
    def method(a: Value, b: Value | float) -> Value:
        if type(b) is not Value and (b := _lift(b)) is None:
            return NotImplemented
        out = _new(Value)
        out.data = forward(SCALAR, a.data, b.data)
        out.grad = 0.0
        out.label = ""
        out._arg = None
        if _open_blocks:  # a no_grad() or detect_anomaly() block is open somewhere
            return _opened(out, fn, a, b)
        out._fn = fn
        out._a = a
        out._b = b
        return out

    def swapped_method(b: Value, a: Value | float) -> Value:
        if type(a) is not Value and (a := _lift(a)) is None:
            return NotImplemented
        return method(a, b)

    return swapped_method if swapped else method


def _opened(out: Value, fn: Op, a: Value, b: Value | None, arg: float | None = None) -> Value:
    """The rest of making a node while a no_grad() or detect_anomaly() block is open."""
    if _anomaly is not None:
        _anomaly.node_made(out, fn, a, b, arg)
    if _grad_mode.enabled:
        out._fn, out._a, out._b, out._arg = fn, a, b, arg
    else:
        out._fn = out._a = out._b = out._arg = None
    return out


def _unary_method(fn: Op):
    """Value's method for a unary op, such as v.tanh()."""
    forward = fn.forward

    def method(self: Value) -> Value:
        return _node(fn, forward(SCALAR, self.data), self, None, None)

    method.__doc__ = f"{fn.name}(self), recorded in the graph"
    return method


def _comparison(test):
    """Value's method for < <= > >=: compares .data and returns a bool, recording nothing.
    (== and != stay identity, so that Values can key sets and dicts.)"""

    def method(self: Value, other: Value | float) -> bool:
        if type(other) is Value:
            return test(self.data, other.data)
        if isinstance(other, numbers.Real):
            return test(self.data, float(other))
        return NotImplemented

    return method


def _lift(x: object) -> Value | None:
    """The operand as a Value, or None for a non-number (the op then returns NotImplemented)."""
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real):
        return Value(x)
    return None


class Value:
    """A scalar node of a computation graph.

    ``data`` is its value and ``grad`` the derivative of the last ``backward()`` root with
    respect to it. ``_prev`` holds the operands in order (``a*a`` keeps both edges), ``_op``
    names the operation that made it (``''`` for a leaf).
    """

    # _fn is the op's row in ops.OPS and _arg its constant (the 2 of x**2). No per-node
    # closure means no reference cycle, so a graph is freed the moment its root is dropped.
    # The operands sit in two slots, _a and _b (None when absent), rather than in a tuple: one
    # object fewer per node for the garbage collector to track, and the graph is most of the
    # heap while it is alive.
    __slots__ = ("data", "grad", "label", "_fn", "_a", "_b", "_arg")
    __array_ufunc__ = None  # make numpy scalars defer: np.float64(2) * v calls v.__rmul__

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _to_float(data)
        self.grad = 0.0
        self.label = label
        self._fn: Op | None = None
        self._a: Value | None = None
        self._b: Value | None = None
        self._arg: float | None = None

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The operands, in order: (a, a) for a*a."""
        a, b = self._a, self._b
        if a is None:
            return ()
        return (a,) if b is None else (a, b)

    @property
    def _op(self) -> str:
        """The op that made this node, as drawn: '+', '*', 'tanh', '**2'; '' for a leaf."""
        fn = self._fn
        return "" if fn is None else fn.label(self._arg)

    @property
    def is_leaf(self) -> bool:
        return self._fn is None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    # ---- the ops ------------------------------------------------------------------------------

    __add__ = _binary_method(ops.ADD)
    __radd__ = _binary_method(ops.ADD, swapped=True)
    __sub__ = _binary_method(ops.SUB)
    __rsub__ = _binary_method(ops.SUB, swapped=True)
    __mul__ = _binary_method(ops.MUL)
    __rmul__ = _binary_method(ops.MUL, swapped=True)
    __truediv__ = _binary_method(ops.DIV)
    __rtruediv__ = _binary_method(ops.DIV, swapped=True)
    __neg__ = _unary_method(ops.NEG)
    __abs__ = abs = _unary_method(ops.ABS)
    exp = _unary_method(ops.EXP)
    log = _unary_method(ops.LOG)
    tanh = _unary_method(ops.TANH)
    sigmoid = _unary_method(ops.SIGMOID)
    relu = _unary_method(ops.RELU)
    sqrt = _unary_method(ops.SQRT)
    sign = _unary_method(ops.SIGN)

    __lt__ = _comparison(operator.lt)
    __le__ = _comparison(operator.le)
    __gt__ = _comparison(operator.gt)
    __ge__ = _comparison(operator.ge)

    def __pos__(self) -> Value:
        return self

    def __pow__(self, other: Value | float) -> Value:
        if isinstance(other, Value):  # both base and exponent get a gradient
            return _node(ops.POW, ops.POW.forward(SCALAR, self.data, other.data), self, other, None)
        if isinstance(other, numbers.Real):
            k = float(other)
            return _node(ops.POWC, ops.POWC.forward(SCALAR, self.data, k), self, None, k)
        return NotImplemented

    def __rpow__(self, other: float) -> Value:
        if isinstance(other, numbers.Real):  # 2 ** v: a constant base
            k = float(other)
            return _node(ops.RPOW, ops.RPOW.forward(SCALAR, self.data, k), self, None, k)
        return NotImplemented

    # ---- backpropagation ----------------------------------------------------------------------

    def _backward(self) -> None:
        """Apply the chain rule at this node once: add g * d(self)/d(input) into each input."""
        fn = self._fn
        if fn is None:
            return
        a, b = self._a, self._b
        if b is not None:
            ga, gb = fn.backward(SCALAR, self.grad, self.data, a.data, b.data)
            a.grad += ga
            b.grad += gb
        elif fn.has_arg:
            (ga,) = fn.backward(SCALAR, self.grad, self.data, a.data, self._arg)
            a.grad += ga
        else:
            (ga,) = fn.backward(SCALAR, self.grad, self.data, a.data)
            a.grad += ga

    def topological_order(self) -> list[Value]:
        """Every node under self, each after all of its inputs (self is last).

        The notebook's recursive depth-first sort, with an explicit stack instead of recursion
        so that depth is limited only by memory: inputs are visited in operand order, and the
        order is the same as the recursive version's.
        """
        return _topological_order((self,))

    def backward(self, grad: float = 1.0, create_graph: bool = False) -> None:
        """Backpropagate from this node, adding d(self)/d(leaf) * grad into every leaf's .grad.

        Leaves accumulate, as in PyTorch: call ``zero_grad()`` (or set ``p.grad = 0``) between
        steps. Calling ``backward()`` twice therefore doubles the leaves' gradients, exactly like
        PyTorch's ``backward(retain_graph=True)``. Intermediate nodes are reset first, so their
        ``.grad`` always holds this call's gradient and never compounds across calls.

        ``create_graph=True``, as in PyTorch, makes every ``.grad`` it writes a Value, a graph
        built by the same op rules, so that it can be differentiated again (``backprop.grad``
        does the same without touching ``.grad``).
        """
        if backward_checks:
            for check in backward_checks:
                check(self)
        if _replayed_roots and id(self) in _replayed_roots:
            raise _replayed_error()
        if _anomaly is not None:  # inside detect_anomaly(): it runs backward, checking each step
            _anomaly.backward(self, grad, create_graph)
            return
        if create_graph:
            _backward_into_grads(self, grad, GRAPH)
            return
        order = self.topological_order()
        for node in order:
            if node._fn is not None:
                node.grad = 0.0
        self.grad += _to_float(grad)
        # _backward()'s body, inlined: this loop runs once per node of every training step
        for node in reversed(order):
            fn = node._fn
            if fn is None:
                continue
            a, b = node._a, node._b
            if b is not None:
                ga, gb = fn.backward(SCALAR, node.grad, node.data, a.data, b.data)
                a.grad += ga
                b.grad += gb
            elif fn.has_arg:
                (ga,) = fn.backward(SCALAR, node.grad, node.data, a.data, node._arg)
                a.grad += ga
            else:
                (ga,) = fn.backward(SCALAR, node.grad, node.data, a.data)
                a.grad += ga


_new = Value.__new__


def _replayed_error() -> RuntimeError:
    return RuntimeError(
        "this graph was replayed by a compiled Program, whose forward() leaves the "
        "intermediate nodes' data as traced: use program.backward(), or call "
        "program.sync() before an eager backward()"
    )


def _topological_order(roots) -> list[Value]:
    """Every node under the roots, each after all of its inputs: Value.topological_order()
    for several roots at once (a node under two of them appears once)."""
    order: list[Value] = []
    visited = set()
    stack: list[Value | None] = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node is None:  # the marker: the node under it now has all its inputs in order
            order.append(stack.pop())
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append(node)
        stack.append(None)
        b = node._b
        if b is not None and b not in visited:
            stack.append(b)
        a = node._a  # pushed last, so visited first: operand order
        if a is not None and a not in visited:
            stack.append(a)
    return order


# ---- gradients as graphs: higher order from the same rows ----------------------------------


class GraphMath:
    """The maths namespace ``m`` whose operations build Values. An op's backward rule run with
    it returns its gradient as a graph, which can be differentiated again: every op gets its
    higher derivatives from its one row in ops.py. Plain numbers stay numbers (constants), and
    a condition (``m.where``) is decided on ``.data``: its derivative is zero where it is defined.
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
            return _node(op, op.forward(SCALAR, a.data, b.data), a, b, None)  # relu_grad's case
        a, *rest = [v if isinstance(v, Value) else Value(v) for v in inputs]
        if not rest:
            return _node(op, op.forward(SCALAR, a.data), a, None, None)
        (b,) = rest
        return _node(op, op.forward(SCALAR, a.data, b.data), a, b, None)


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
            for v in order:
                if v._fn is None and id(v) not in keep:
                    v.grad = _SKIP
        for root, seed in zip(roots, seeds):
            if root.grad is not _SKIP:
                root.grad = _accumulate(root.grad, seed, graph)
        if not graph:
            _sweep_floats(order, check)
        else:
            # A graph is asked for, so it is recorded even inside no_grad(), as torch's
            # create_graph does. The collector is paused: the sweep makes no cycles, only
            # many new nodes, and each of its passes would rescan the whole live graph (fit()
            # pauses it for the same reason).
            previous, _grad_mode.enabled = _grad_mode.enabled, True
            try:
                with paused(promote=True):
                    _sweep_graph(order, m, check)
            finally:
                _grad_mode.enabled = previous
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


def _sweep_floats(order, check) -> None:
    """backward()'s loop, with a check."""
    for node in reversed(order):
        fn = node._fn
        if fn is None:
            continue
        a, b = node._a, node._b
        if b is not None:
            ga, gb = grads = fn.backward(SCALAR, node.grad, node.data, a.data, b.data)
            a.grad += ga
            b.grad += gb
        else:
            if fn.has_arg:
                (ga,) = grads = fn.backward(SCALAR, node.grad, node.data, a.data, node._arg)
            else:
                (ga,) = grads = fn.backward(SCALAR, node.grad, node.data, a.data)
            a.grad += ga
        if check is not None:
            check(node, node.grad, grads)


def _sweep_graph(order, m, check) -> None:
    """The same loop with m building Values: the rules get the nodes themselves, not numbers.
    A .grad of None means no adjoint yet; a leaf whose .grad is _SKIP gets none."""
    add = Value.__add__
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


def _backward_into_grads(root: Value, grad, m, check=None) -> None:
    """backward() through _backpropagate: leaves accumulate into .grad (in the same order as
    backward() adds), intermediates get this call's adjoint. With m = GRAPH every .grad
    written is a Value."""
    seed = grad if isinstance(grad, Value) else _to_float(grad)
    _backpropagate([root], [seed], m, check=check, into_grads=True)
