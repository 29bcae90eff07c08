"""Value: a scalar that remembers how it was computed, and backpropagates through that graph."""

from __future__ import annotations

import numbers
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from . import ops
from .ops import SCALAR, Op

__all__ = ["Value", "no_grad", "is_grad_enabled"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block on this thread."""
    return getattr(_state, "grad_enabled", True)


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops compute values but record no graph (per thread, nestable)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


def _to_float(data: object) -> float:
    if type(data) is float:
        return data
    if isinstance(data, numbers.Real):  # int, bool, Fraction, numpy scalars
        return float(data)
    shape = getattr(data, "shape", None)
    if shape == ():  # a 0-d numpy array
        return _to_float(data.item())
    raise TypeError(
        f"Value needs a real number (int or float), got {type(data).__name__}: {data!r:.60}"
    )


class Value:
    """A scalar node of a computation graph.

    ``data`` is its value and ``grad`` the derivative of the last ``backward()`` root with
    respect to it. ``_prev`` holds the operands in order (``a*a`` keeps both edges), ``_op``
    names the operation that made it (``''`` for a leaf).
    """

    # _fn is the op's row in ops.OPS and _arg its constant (the 2 of x**2). No per-node
    # closure means no reference cycle, so a graph is freed the moment its root is dropped.
    __slots__ = ("data", "grad", "label", "_prev", "_fn", "_arg")
    __array_ufunc__ = None  # make numpy scalars defer: np.float64(2) * v calls v.__rmul__

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _to_float(data)
        self.grad = 0.0
        self.label = label
        self._prev: tuple[Value, ...] = ()
        self._fn: Op | None = None
        self._arg: float | None = None

    @property
    def _op(self) -> str:
        fn = self._fn
        return "" if fn is None else fn.label(self._arg)

    @property
    def is_leaf(self) -> bool:
        return self._fn is None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # ---- building the graph -------------------------------------------------------------------

    def _apply(self, fn: Op, inputs: tuple[Value, ...], arg: float | None = None) -> Value:
        """Run fn's forward rule on the inputs and record the node (unless in no_grad)."""
        xs = [v.data for v in inputs]
        if arg is not None:
            xs.append(arg)
        out = Value.__new__(Value)
        out.data = fn.forward(SCALAR, *xs)
        out.grad = 0.0
        out.label = ""
        if getattr(_state, "grad_enabled", True):
            out._prev, out._fn, out._arg = inputs, fn, arg
        else:
            out._prev, out._fn, out._arg = (), None, None
        return out

    def __add__(self, other: Value | float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else self._apply(ops.ADD, (self, other))

    def __radd__(self, other: float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else other._apply(ops.ADD, (other, self))

    def __sub__(self, other: Value | float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else self._apply(ops.SUB, (self, other))

    def __rsub__(self, other: float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else other._apply(ops.SUB, (other, self))

    def __mul__(self, other: Value | float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else self._apply(ops.MUL, (self, other))

    def __rmul__(self, other: float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else other._apply(ops.MUL, (other, self))

    def __truediv__(self, other: Value | float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else self._apply(ops.DIV, (self, other))

    def __rtruediv__(self, other: float) -> Value:
        other = _lift(other)
        return NotImplemented if other is None else other._apply(ops.DIV, (other, self))

    def __pow__(self, other: Value | float) -> Value:
        if isinstance(other, Value):  # both base and exponent get a gradient
            return self._apply(ops.POW, (self, other))
        if isinstance(other, numbers.Real):
            return self._apply(ops.POWC, (self,), float(other))
        return NotImplemented

    def __rpow__(self, other: float) -> Value:
        if isinstance(other, numbers.Real):  # 2 ** v: a constant base
            return self._apply(ops.RPOW, (self,), float(other))
        return NotImplemented

    def __neg__(self) -> Value:
        return self._apply(ops.NEG, (self,))

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return self._apply(ops.ABS, (self,))

    def exp(self) -> Value:
        return self._apply(ops.EXP, (self,))

    def log(self) -> Value:
        return self._apply(ops.LOG, (self,))

    def tanh(self) -> Value:
        return self._apply(ops.TANH, (self,))

    def sigmoid(self) -> Value:
        return self._apply(ops.SIGMOID, (self,))

    def relu(self) -> Value:
        return self._apply(ops.RELU, (self,))

    def sqrt(self) -> Value:
        return self._apply(ops.SQRT, (self,))

    def abs(self) -> Value:
        return self._apply(ops.ABS, (self,))

    def __float__(self) -> float:
        return self.data

    # ---- backpropagation ----------------------------------------------------------------------

    def _backward(self) -> None:
        """Apply the chain rule at this node once: add g * d(self)/d(input) into each input."""
        fn = self._fn
        if fn is None:
            return
        inputs = self._prev
        xs = [v.data for v in inputs]
        if fn.has_arg:
            xs.append(self._arg)
        grads = fn.backward(SCALAR, self.grad, self.data, *xs)
        for v, g in zip(inputs, grads):
            v.grad += g

    def topological_order(self) -> list[Value]:
        """Every node under self, each after all of its inputs (self is last).

        An explicit stack instead of recursion, so depth is limited only by memory. Inputs are
        visited in operand order, giving the same order as the recursive version.
        """
        order: list[Value] = []
        visited: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for child in reversed(node._prev):
                if id(child) not in visited:
                    stack.append((child, False))
        return order

    def backward(self, grad: float = 1.0) -> None:
        """Backpropagate from this node, adding d(self)/d(leaf) * grad into every leaf's .grad.

        Leaves accumulate, as in PyTorch: call ``zero_grad()`` (or set ``p.grad = 0``) between
        steps. Calling ``backward()`` twice therefore doubles the leaves' gradients, exactly like
        PyTorch's ``backward(retain_graph=True)``. Intermediate nodes are reset first, so their
        ``.grad`` always holds this call's gradient and never compounds across calls.
        """
        order = self.topological_order()
        for node in order:
            if node._fn is not None:
                node.grad = 0.0
        self.grad += _to_float(grad)
        for node in reversed(order):
            node._backward()


def _lift(x: object) -> Value | None:
    """The operand as a Value, or None for a non-number (the op then returns NotImplemented)."""
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real):
        return Value(x)
    return None
