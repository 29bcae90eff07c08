"""Reverse mode to any order: grad() and hessian(), and the argument checks they share."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from .. import engine
from ..engine import Value
from ..ops import SCALAR
from .anomaly import _anomaly_check, _quiet
from .sweep import GRAPH, _backpropagate

__all__ = ["grad", "hessian"]

Values = Value | Sequence[Value]


# ---- checking arguments ---------------------------------------------------------------------


def _values(x: object, what: str) -> list[Value]:
    """x as a non-empty list of Values (a single Value, or a list or tuple of them)."""
    if isinstance(x, Value):
        return [x]
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise TypeError(f"{what} must be a Value or a sequence of Values, got {x!r:.60}")
    items = list(x)
    if not items:
        raise ValueError(f"{what} is empty: give at least one Value")
    for i, v in enumerate(items):
        if not isinstance(v, Value):
            raise TypeError(f"{what}[{i}] must be a Value, got {type(v).__name__}: {v!r:.60}")
    return items


def _seeds(x: object, n: int, what: str, keep_values: bool) -> list:
    """n seeds (grad_outputs or tangents): numbers, or Values when they may build a graph."""
    if x is None:
        return [1.0] * n
    items = [x] if isinstance(x, (Value, numbers.Real)) else None
    if items is None:
        if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
            raise TypeError(f"{what} must be numbers or Values, got {x!r:.60}")
        items = list(x)
    if len(items) != n:
        raise ValueError(f"{what} has {len(items)} entries, but there are {n} to match")
    out = []
    for i, s in enumerate(items):
        if isinstance(s, Value):
            out.append(s if keep_values else s.data)
        elif isinstance(s, numbers.Real):
            out.append(float(s))
        else:
            raise TypeError(f"{what}[{i}] must be a number or a Value, got {s!r:.60}")
    return out


def _not_replayed(roots: list[Value]) -> None:
    """engine.backward_checks, run for each root (compiled mode refuses a replayed graph)."""
    for check in engine.backward_checks:
        for root in roots:
            check(root)


def _unused_error(i: int, v: Value) -> ValueError:
    return ValueError(
        f"input {i} ({v!r}) is not used by the outputs: nothing under them depends on it. "
        f"Pass allow_unused=True to get None for it"
    )


# ---- reverse mode, to any order -------------------------------------------------------------


def grad(
    outputs: Values,
    inputs: Values,
    grad_outputs: float | Value | Sequence[float | Value] | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Value | None, ...]:
    """d(sum of grad_outputs * outputs)/d(input) for every input, as torch.autograd.grad.

    Returns one Value per input and leaves every ``.grad`` alone. With ``create_graph=True``
    the returned Values are graphs built by the op rules, so they can be differentiated again::

        x = Value(0.5)
        (dy,) = grad(x.tanh(), x, create_graph=True)   # 1 - tanh(x)^2, as a graph
        (d2y,) = grad(dy, x)                           # -2 tanh(x) (1 - tanh(x)^2)

    An input that the outputs do not depend on is an error, unless ``allow_unused=True``: then
    its entry is None, as in torch. (While it runs, the nodes' ``.grad`` slots hold the sweep's
    sums, as in backward(); every one is put back before it returns.)
    """
    outs = _values(outputs, "outputs")
    ins = _values(inputs, "inputs")
    seeds = _seeds(grad_outputs, len(outs), "grad_outputs", keep_values=create_graph)
    _not_replayed(outs)
    m = GRAPH if create_graph else SCALAR
    check = _anomaly_check()
    with _quiet():
        adjoint = _backpropagate(outs, seeds, m, wanted=ins, check=check)
    result: list[Value | None] = []
    for i, v in enumerate(ins):
        g = adjoint.get(id(v))
        if g is None:
            if not allow_unused:
                raise _unused_error(i, v)
            result.append(None)
        else:
            result.append(g if isinstance(g, Value) else Value(g))
    return tuple(result)


def hessian(root: Value, inputs: Values, allow_unused: bool = False) -> list[list[float]]:
    """The matrix of second derivatives d^2 root / d(input i) d(input j), as lists of floats.

    One reverse sweep builds the gradient as a graph, then one more per input differentiates
    it (an entry the gradient does not depend on is 0).
    """
    if not isinstance(root, Value):
        raise TypeError(f"hessian() needs a Value root, got {type(root).__name__}: {root!r:.60}")
    ins = _values(inputs, "inputs")
    first = grad(root, ins, create_graph=True, allow_unused=allow_unused)
    rows = []
    for g in first:
        if g is None:
            rows.append([0.0] * len(ins))
            continue
        second = grad(g, ins, allow_unused=True)
        rows.append([0.0 if s is None else s.data for s in second])
    return rows
