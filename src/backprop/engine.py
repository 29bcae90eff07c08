"""Value: a scalar that remembers how it was computed, and backpropagates through that graph.

Read in order: Value and its chain rule (_backward, topological_order, backward), the ops made
from their rows in ops.py, no_grad, and the hooks the rest of the package attaches by."""

from __future__ import annotations

import numbers
import operator
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import ops
from ._base import Base as _Base
from ._base import native as _native
from .ops import SCALAR, Op
from .ops import to_float as _to_float

__all__ = ["Value", "no_grad", "is_grad_enabled", "set_grad_enabled", "backward_checks", "watch"]


class Value(_Base):
    """A scalar node of a computation graph: ``data`` is its value and ``grad`` the derivative of
    the last ``backward()`` root with respect to it; ``_prev`` holds the operands in order (``a*a``
    keeps both edges), ``_op`` names the operation that made it (``''`` for a leaf)."""

    # _fn is the op's row in ops.OPS, _arg its constant (the 2 of x**2), _a and _b the operands
    # (None when absent). No per-node closure means no reference cycle, so a graph is freed the
    # moment its root is dropped. With the native part (_base.py) its base type holds them.
    __slots__ = () if _Base is not object else ("data", "grad", "label", "_fn", "_a", "_b", "_arg")
    __array_ufunc__ = None  # make numpy scalars defer: np.float64(2) * v calls v.__rmul__

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _to_float(data)
        self.grad = 0.0
        # in a scope() block a leaf's label carries the block's path too (scopes.py)
        self.label = _state.label.named(label) if _open_blocks and _state.scope else label
        self._fn = self._a = self._b = self._arg = None

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The operands, in order: (a, a) for a*a."""
        a, b = self._a, self._b
        return () if a is None else (a,) if b is None else (a, b)

    @property
    def _op(self) -> str:
        """The op that made this node, as drawn: '+', '*', 'tanh', '**2'; '' for a leaf."""
        return "" if self._fn is None else self._fn.label(self._arg)

    @property
    def is_leaf(self) -> bool:
        return self._fn is None

    @property
    def scope(self) -> str:
        """The '/'-joined names of the scope() blocks it was made in ('' outside any), carried by
        its label: relabelling a node takes it out of its scope (scopes.py)."""
        return getattr(self.label, "scope", "")

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    # ---- backpropagation ----------------------------------------------------------------------
    def _backward(self) -> tuple[float, ...]:
        """Apply the chain rule at this node once: add g * d(self)/d(input) into each input.
        Returns what it added, one term per input (nothing for a leaf)."""
        fn = self._fn
        if fn is None:
            return ()
        a, b = self._a, self._b
        if b is not None:
            ga, gb = grads = fn.backward(SCALAR, self.grad, self.data, a.data, b.data)
            a.grad += ga
            b.grad += gb
        elif fn.has_arg:
            (ga,) = grads = fn.backward(SCALAR, self.grad, self.data, a.data, self._arg)
            a.grad += ga
        else:
            (ga,) = grads = fn.backward(SCALAR, self.grad, self.data, a.data)
            a.grad += ga
        return grads

    def topological_order(self) -> list[Value]:
        """Every node under self, each after all of its inputs (self is last): the notebook's
        recursive sort, with an explicit stack (depth is limited only by memory), same order."""
        return _topological_order((self,))

    def backward(self, grad: float = 1.0, create_graph: bool = False) -> None:
        """Backpropagate from this node, adding d(self)/d(leaf) * grad into every leaf's .grad.
        Leaves accumulate, as in PyTorch (zero them between steps: backward() twice doubles
        them); intermediate nodes are reset first, so their .grad is this call's gradient.
        ``create_graph=True``, as in PyTorch, makes every .grad it writes a Value, a graph built
        by the same op rules, to be differentiated again (``backprop.grad`` leaves .grad alone)."""
        for check in backward_checks:
            check(self)
        if _watcher is not None:  # inside detect_anomaly(): it runs backward, checking each step
            return _watcher.backward(self, grad, create_graph)
        if create_graph:
            return _graph_backward(self, grad)
        if _native:  # the lines below, in C (_cvalue_graph.c): the same order, rules and sums
            return _native.backward(self, _to_float(grad))
        order = self.topological_order()
        for node in order:
            if node._fn is not None:
                node.grad = 0.0
        self.grad += _to_float(grad)
        for node in reversed(order):
            node._backward()


def _topological_order(roots) -> list[Value]:
    """Value.topological_order() for several roots at once (a node under two appears once)."""
    order: list[Value] = []
    visited = set()
    stack: list[Value | None] = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node is None:
            order.append(stack.pop())
            continue
        if node in visited:
            continue
        visited.add(node)
        stack += (node, None)  # None marks node: once it is popped, node's inputs are in order
        b = node._b
        if b is not None and b not in visited:
            stack.append(b)
        a = node._a  # pushed last, so visited first: operand order
        if a is not None and a not in visited:
            stack.append(a)
    return order


# ---- the ops: every method comes from its op's row in ops.py ---------------------------------
_NO_LABEL = ""  # the label of a new op node outside any scope: the empty string itself
_new = Value.__new__


def _node(fn: Op, data: float, a: Value, b: Value | None = None, arg=None, label=_NO_LABEL):
    """A new node of op fn (a row of ops.OPS) over a (and b), its value already computed; label
    is the scope's, for the op methods of a scope (scopes.methods_in)."""
    out = _new(Value)
    out.data, out.grad, out.label = data, 0.0, label
    if _open_blocks:  # a no_grad(), scope() or detect_anomaly() block is open somewhere
        return _opened(out, fn, a, b, arg)
    out._fn, out._a, out._b, out._arg = fn, a, b, arg
    return out


def _binary_method(fn: Op, strict: bool = False, label: str = _NO_LABEL):
    """Value's method for a binary op, a op b, and its mirror b op a (__radd__ and kin). Numbers
    are lifted to leaf Values; anything else is NotImplemented (a TypeError when strict). A label
    carrying a scope makes the methods of that scope (scopes.methods_in)."""
    if _native:  # the same methods in C (_cvalue_ops.c)
        return _native.op_method(fn, 2, 0, strict, label), _native.op_method(fn, 2, 1, 0, label)
    forward = fn.forward

    def method(a: Value, b: Value | float) -> Value:
        if type(b) is not Value and (b := _lift(b)) is None:
            if strict:
                raise TypeError(f"{fn.name}: a Value's other operand must be a Value or a number")
            return NotImplemented
        return _node(fn, forward(SCALAR, a.data, b.data), a, b, None, label)

    def mirrored(b: Value, a: Value | float) -> Value:
        if type(a) is not Value and (a := _lift(a)) is None:
            return NotImplemented
        return method(a, b)

    return method, mirrored


def _unary_method(fn: Op, label: str = _NO_LABEL):
    """Value's method for a unary op, such as v.tanh()."""
    if _native:  # the same method in C (_cvalue_ops.c)
        return _native.op_method(fn, 1, 0, 0, label)
    forward = fn.forward
    return lambda self: _node(fn, forward(SCALAR, self.data), self, None, None, label)


def _pow(self: Value, other: Value | float) -> Value:
    if isinstance(other, Value):  # both base and exponent get a gradient
        return _node(ops.POW, ops.POW.forward(SCALAR, self.data, other.data), self, other)
    return _with_constant(ops.POWC, self, other)


def _with_constant(fn: Op, self: Value, k: float) -> Value:
    """powc (self ** k) or rpow (k ** self) for a number k."""
    if not isinstance(k, numbers.Real):
        return NotImplemented
    return _node(fn, fn.forward(SCALAR, self.data, float(k)), self, None, float(k))


def _comparison(test):
    """< <= > >= compare .data and record nothing (== stays identity: Values key dicts)."""

    def method(self: Value, other: Value | float) -> bool:
        if type(other) is Value:
            return test(self.data, other.data)
        return test(self.data, float(other)) if isinstance(other, numbers.Real) else NotImplemented

    return method


def _lift(x: object) -> Value | None:
    """The operand as a Value, or None for a non-number (the op then returns NotImplemented)."""
    if isinstance(x, Value):
        return x
    return Value(x) if isinstance(x, numbers.Real) else None


if _native:  # the C twins of _node() and _topological_order() (_cvalue_ops.c, _cvalue_graph.c)
    _node, _topological_order = _native.node, _native.topological_order
    _native.bind(Value, SCALAR, _lift, lambda *args: _opened(*args))
Value.__add__, Value.__radd__ = _binary_method(ops.ADD)
Value.__sub__, Value.__rsub__ = _binary_method(ops.SUB)
Value.__mul__, Value.__rmul__ = _binary_method(ops.MUL)
Value.__truediv__, Value.__rtruediv__ = _binary_method(ops.DIV)
Value.__pow__, Value.__rpow__ = _pow, lambda self, k: _with_constant(ops.RPOW, self, k)
for _name, _op in [("__neg__", ops.NEG), ("__abs__", ops.ABS), ("abs", ops.ABS)] + [
    (name, ops.OPS[name]) for name in ("exp", "log", "tanh", "sigmoid", "relu", "sqrt", "sign")
]:
    setattr(Value, _name, _unary_method(_op))
for _name in ("lt", "le", "gt", "ge"):
    setattr(Value, f"__{_name}__", _comparison(getattr(operator, _name)))
Value.__pos__ = lambda self: self


# ---- no_grad and the blocks that change how nodes are made -----------------------------------
class _State(threading.local):
    enabled = True  # grad mode, on every thread by default
    scope = ""  # the path of the scope() blocks open on this thread
    label = ""  # the label of its new op nodes: scopes.py's empty label of that path


_state = _State()
# no_grad(), scope() and detect_anomaly() blocks open on any thread: while it is 0, making a
# node tests this one number and nothing else (the thread-local state is not read)
_open_blocks = 0
_lock = threading.Lock()


def _opened(out: Value, fn: Op, a: Value, b: Value | None, arg: float | None = None) -> Value:
    """The rest of making a node while a no_grad(), scope() or detect_anomaly() block is open."""
    if _watcher is not None:
        _watcher.node_made(out, fn, a, b, arg)
    if out.label is _NO_LABEL:  # (a node nn made in its own scope keeps that one)
        out.label = _state.label
    if not _state.enabled:
        fn = a = b = arg = None
    out._fn, out._a, out._b, out._arg = fn, a, b, arg
    return out


def _count_block(k: int) -> None:
    global _open_blocks
    with _lock:
        _open_blocks += k
        if _native:  # and this thread's label, when only scopes are open: C makes its nodes
            _native.set_open(_open_blocks, _watcher is not None)
            _native.set_scope_label(_state.label if _state.enabled and _state.scope else None)


@contextmanager
def _block(**changes) -> Iterator[None]:
    """A block that changes how this thread makes nodes (``enabled``, ``scope``, ``label``)."""
    saved = {name: getattr(_state, name) for name in changes}
    vars(_state).update(changes)
    counted = not _state.enabled or "scope" in changes  # only these need the slow path
    _count_block(counted)
    try:
        yield
    finally:
        vars(_state).update(saved)
        _count_block(-counted)


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block on this thread."""
    return _state.enabled


def set_grad_enabled(mode: bool):
    """Within this block ops record a graph (mode True) or not (per thread, nestable)."""
    return _block(enabled=bool(mode))


def no_grad():
    """Within this block ops compute values but record no graph (per thread, nestable)."""
    return _block(enabled=False)


# ---- hooks: how the rest of the package attaches, without writing the engine's globals -----
# Each is called with the root at the start of every eager backward() (and, per output, of
# autodiff.grad()), and refuses the call by raising: compiled mode's replay guard is one.
backward_checks: list[Callable[[Value], None]] = []
_watcher = None  # the open detect_anomaly(), attached with watch()
# backward(create_graph=True): set by autodiff/ (which builds on the engine) when imported
_graph_backward: Callable[[Value, object], None] | None = None


def watch(watcher) -> None:
    """Attach (or, with None, detach) the one watcher of every node made and of backward():
    ``watcher.node_made(out, fn, a, b, arg)`` sees each new node and ``watcher.backward(root,
    grad, create_graph)`` runs backward() in its place. detect_anomaly() is one; while one is
    attached, making a node takes the slow path."""
    global _watcher
    before, _watcher = _watcher, watcher
    _count_block((watcher is not None) - (before is not None))


def __getattr__(name: str):  # GRAPH and GraphMath moved to autodiff/sweep.py
    if name in ("GRAPH", "GraphMath"):
        return getattr(sys.modules["backprop.autodiff.sweep"], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
