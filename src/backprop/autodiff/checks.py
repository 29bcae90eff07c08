"""Checking gradients against finite differences: gradcheck() and gradgradcheck(), which name the
first node whose local derivative is wrong."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

from ..engine import Value, set_grad_enabled
from ..ops import SCALAR, Op
from .anomaly import _describe, _quiet
from .reverse import Values, grad
from .sweep import GRAPH

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


# ---- checking gradients against finite differences -----------------------------------------


class GradcheckError(RuntimeError):
    """gradcheck() or gradgradcheck() found a derivative that disagrees with finite differences.

    ``input`` is the index of the input whose derivative is wrong (``wrt`` the second index, for
    second order), ``analytic`` and ``numeric`` the two numbers; ``node`` is the first node whose
    own op's local derivative disagrees with a finite difference of that op (None when every
    node agrees), with ``node_analytic`` and ``node_numeric``.
    """

    def __init__(self, message: str, **facts) -> None:
        super().__init__(message)
        self.input = facts.get("input")
        self.wrt = facts.get("wrt")
        self.analytic = facts.get("analytic")
        self.numeric = facts.get("numeric")
        self.node = facts.get("node")
        self.node_analytic = facts.get("node_analytic")
        self.node_numeric = facts.get("node_numeric")


def _check_tolerances(eps: float, atol: float, rtol: float) -> None:
    for name, x, low in (("eps", eps, "> 0"), ("atol", atol, ">= 0"), ("rtol", rtol, ">= 0")):
        if not isinstance(x, numbers.Real) or isinstance(x, bool) or not math.isfinite(x):
            raise TypeError(f"{name} must be a finite number, got {x!r:.60}")
        if (x <= 0) if low == "> 0" else (x < 0):
            raise ValueError(f"{name} must be {low}, got {x!r}")


def _close(a: float, n: float, atol: float, rtol: float) -> bool:
    return abs(a - n) <= atol + rtol * abs(n)  # torch's rule; False when either is nan


def _inputs_of(inputs: object) -> tuple[list[float], list[str]]:
    """The inputs' values and names: Values keep their labels, numbers are named by index."""
    items = [inputs] if isinstance(inputs, (Value, numbers.Real)) else None
    if items is None:
        if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
            raise TypeError(f"inputs must be numbers or Values, got {inputs!r:.60}")
        items = list(inputs)
    if not items:
        raise ValueError("inputs is empty: give at least one number or Value")
    data, names = [], []
    for i, x in enumerate(items):
        if isinstance(x, Value):
            data.append(x.data)
            names.append(f"input {i} ({x.label!r})" if x.label else f"input {i}")
        elif isinstance(x, numbers.Real) and not isinstance(x, bool):
            data.append(float(x))
            names.append(f"input {i}")
        else:
            raise TypeError(f"inputs[{i}] must be a number or a Value, got {x!r:.60}")
    return data, names


def _call(fn: Callable, data: list[float], labels: Sequence[str] | None = None):
    """fn on fresh leaf Values holding data: (the leaves, fn's outputs as a list of Values)."""
    leaves = [Value(x, label=labels[i] if labels else "") for i, x in enumerate(data)]
    out = fn(*leaves)
    outs = [out] if isinstance(out, Value) else None
    if outs is None:
        if isinstance(out, (list, tuple)) and out and all(isinstance(v, Value) for v in out):
            outs = list(out)
        else:
            raise TypeError(
                f"fn must return a Value (or a list of Values) built from its inputs, "
                f"got {type(out).__name__}: {out!r:.60}"
            )
    return leaves, outs


def _labels(inputs: object) -> list[str]:
    items = [inputs] if not hasattr(inputs, "__iter__") or isinstance(inputs, Value) else inputs
    return [x.label if isinstance(x, Value) else "" for x in items]


def _gradients(outs: list[Value], leaves: list[Value]) -> list[list[float]]:
    """[k][i]: d outs[k] / d leaves[i] (0 where it does not depend on it), as floats."""
    rows = [grad(o, leaves, allow_unused=True) for o in outs]
    return [[0.0 if g is None else g.data for g in row] for row in rows]


def gradcheck(
    fn: Callable[..., Values],
    inputs: object,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Compare fn's gradients with central differences; True when they agree.

    ``fn`` builds a Value (or a list of Values) from Values and is called as ``fn(*inputs)``,
    as in torch.autograd.gradcheck; inputs are numbers or Values (only their data is read).
    On a disagreement it raises GradcheckError naming the input whose gradient is wrong and
    the first node whose own op's local derivative disagrees with a finite difference of that
    op (or returns False, with ``raise_exception=False``).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r:.60}")
    _check_tolerances(eps, atol, rtol)
    data, names = _inputs_of(inputs)
    labels = _labels(inputs)
    leaves, outs = _call(fn, data, labels)
    analytic = _gradients(outs, leaves)
    for i in range(len(data)):
        up = [o.data for o in _call(fn, _nudged(data, i, eps))[1]]
        down = [o.data for o in _call(fn, _nudged(data, i, -eps))[1]]
        for k in range(len(outs)):
            numeric = (up[k] - down[k]) / (2 * eps)
            if _close(analytic[k][i], numeric, atol, rtol):
                continue
            if not raise_exception:
                return False
            what = f"output {k}'s gradient" if len(outs) > 1 else "the gradient"
            head = (
                f"{what} with respect to {names[i]} is wrong: analytic {analytic[k][i]!r}, "
                f"numeric {numeric!r} (central differences, eps={eps})"
            )
            found = _first_wrong_node(outs[k], leaves[i], eps, atol, rtol, second_order=False)
            report = _node_report(found, second_order=False)
            if found is None and (kink := _first_kink(outs[k], leaves[i], eps, atol, rtol)):
                node, j, left, right = kink
                report += (
                    f" Here {_describe(node)} is at a kink: its slopes left and right of input "
                    f"{j} are {left!r} and {right!r}, so no derivative exists at this point."
                )
            raise GradcheckError(
                head + "\n" + report,
                input=i,
                analytic=analytic[k][i],
                numeric=numeric,
                **_node_facts(found),
            )
    return True


def gradgradcheck(
    fn: Callable[..., Values],
    inputs: object,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Compare fn's second derivatives (its gradient graph, differentiated) with central
    differences of its first derivatives; True when they agree.

    Called like gradcheck. On a disagreement it raises GradcheckError naming the pair of inputs
    and the first node whose local derivative, as a graph, has a derivative that disagrees
    with a finite difference of the op's own first-order rule.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r:.60}")
    _check_tolerances(eps, atol, rtol)
    data, names = _inputs_of(inputs)
    labels = _labels(inputs)
    leaves, outs = _call(fn, data, labels)
    n = len(data)
    for k, out in enumerate(outs):
        first = grad(out, leaves, create_graph=True, allow_unused=True)
        analytic = [
            [0.0] * n
            if g is None
            else [0.0 if s is None else s.data for s in grad(g, leaves, allow_unused=True)]
            for g in first
        ]
        for j in range(n):
            up_leaves, up_outs = _call(fn, _nudged(data, j, eps))
            down_leaves, down_outs = _call(fn, _nudged(data, j, -eps))
            up = _gradients([up_outs[k]], up_leaves)[0]
            down = _gradients([down_outs[k]], down_leaves)[0]
            for i in range(n):
                numeric = (up[i] - down[i]) / (2 * eps)
                if _close(analytic[i][j], numeric, atol, rtol):
                    continue
                if not raise_exception:
                    return False
                what = f"output {k}'s" if len(outs) > 1 else "the"
                head = (
                    f"{what} second derivative with respect to {names[i]} and {names[j]} is "
                    f"wrong: analytic {analytic[i][j]!r}, numeric {numeric!r} (central "
                    f"differences of the gradient, eps={eps})"
                )
                found = _first_wrong_node(out, leaves[i], eps, atol, rtol, second_order=True)
                if found is None and j != i:
                    found = _first_wrong_node(out, leaves[j], eps, atol, rtol, second_order=True)
                raise GradcheckError(
                    head + "\n" + _node_report(found, second_order=True),
                    input=i,
                    wrt=j,
                    analytic=analytic[i][j],
                    numeric=numeric,
                    **_node_facts(found),
                )
    return True


def _nudged(data: list[float], i: int, h: float) -> list[float]:
    out = list(data)
    out[i] += h
    return out


def _local(fn: Op, xs: list[float], arg) -> tuple[float, ...]:
    """d(node)/d(input j) for every input, from the op's backward rule with g = 1."""
    extra = (arg,) if fn.has_arg else ()
    return fn.backward(SCALAR, 1.0, fn.forward(SCALAR, *xs, *extra), *xs, *extra)


def _first_wrong_node(out: Value, wrt: Value, eps, atol, rtol, second_order: bool):
    """The first node, in topological order, on a path from wrt to out whose op's local
    derivative (first order) or its derivative (second order) disagrees with a finite
    difference of the op's own rule: (node, input j, [input k,] analytic, numeric) or None.
    Nodes where the op has a kink (one-sided differences disagree) are skipped."""
    order = out.topological_order()
    depends = {id(wrt)}
    for node in order:
        if any(id(v) in depends for v in node._prev):
            depends.add(id(node))
    for node in order:
        fn = node._fn
        if fn is None or id(node) not in depends:
            continue
        xs = [v.data for v in node._prev]
        on_path = [j for j, v in enumerate(node._prev) if id(v) in depends]
        found = (_second_order_at if second_order else _first_order_at)(
            fn, xs, node._arg, on_path, eps, atol, rtol
        )
        if found is not None:
            return (node, *found)
    return None


def _first_kink(out: Value, wrt: Value, eps: float, atol: float, rtol: float):
    """The first node on a path from wrt to out where its op has a kink at this point (its
    one-sided slopes differ, as relu's and abs's at 0): (node, input j, left, right) or None."""
    order = out.topological_order()
    depends = {id(wrt)}
    for node in order:
        fn = node._fn
        if fn is None or not any(id(v) in depends for v in node._prev):
            continue
        depends.add(id(node))
        xs = [v.data for v in node._prev]
        extra = (node._arg,) if fn.has_arg else ()
        f0 = fn.forward(SCALAR, *xs, *extra)
        for j, v in enumerate(node._prev):
            if id(v) not in depends:
                continue
            right = (fn.forward(SCALAR, *_nudged(xs, j, eps), *extra) - f0) / eps
            left = (f0 - fn.forward(SCALAR, *_nudged(xs, j, -eps), *extra)) / eps
            if math.isfinite(left) and math.isfinite(right):
                if not _close(right, left, 10 * atol, 10 * rtol):
                    return (node, j, left, right)
    return None


def _first_order_at(fn: Op, xs, arg, on_path, eps, atol, rtol):
    extra = (arg,) if fn.has_arg else ()
    analytic = _local(fn, xs, arg)
    for j in on_path:
        f0 = fn.forward(SCALAR, *xs, *extra)
        up = fn.forward(SCALAR, *_nudged(xs, j, eps), *extra)
        down = fn.forward(SCALAR, *_nudged(xs, j, -eps), *extra)
        numeric = (up - down) / (2 * eps)
        if not all(map(math.isfinite, (f0, up, down))):
            continue  # the op is not finite around this point: a finite difference cannot judge
        if not _close((up - f0) / eps, (f0 - down) / eps, 10 * atol, 10 * rtol):
            continue  # a kink (relu or abs at 0): its one-sided slopes differ
        if not _close(analytic[j], numeric, atol, rtol):
            return (j, analytic[j], numeric)
    return None


def _second_order_at(fn: Op, xs, arg, on_path, eps, atol, rtol):
    extra = (arg,) if fn.has_arg else ()
    leaves = [Value(x) for x in xs]
    with _quiet(), set_grad_enabled(True):
        node = GRAPH.node(fn, *leaves, *extra)
        local_graphs = fn.backward(GRAPH, 1.0, node, *leaves, *extra)
    for j, dj in enumerate(local_graphs):
        if isinstance(dj, Value):
            analytic = [0.0 if s is None else s.data for s in grad(dj, leaves, allow_unused=True)]
        else:
            analytic = [0.0] * len(xs)  # a constant local derivative
        for k in on_path:
            up, down = _local(fn, _nudged(xs, k, eps), arg), _local(fn, _nudged(xs, k, -eps), arg)
            numeric = (up[j] - down[j]) / (2 * eps)
            if not (math.isfinite(up[j]) and math.isfinite(down[j])):
                continue
            if not _close(analytic[k], numeric, atol, rtol):
                return (j, k, analytic[k], numeric)
    return None


def _node_report(found, second_order: bool) -> str:
    if found is None:
        return (
            "Every node's local derivative agrees with a finite difference of its own op: the "
            "difference comes from the function itself (a Python branch on .data, a kink, or a "
            "point where it is not differentiable)."
        )
    if second_order:
        node, j, k, analytic, numeric = found
        return (
            f"First node whose local derivative is wrong: {_describe(node)}: "
            f"d/d(input {k}) of its derivative with respect to input {j} is {analytic!r} from "
            f"its rule as a graph, {numeric!r} by a finite difference of its first-order rule."
        )
    node, j, analytic, numeric = found
    return (
        f"First node whose local derivative is wrong: {_describe(node)}: d/d(input {j}) is "
        f"{analytic!r} by its rule, {numeric!r} by a finite difference of its op."
    )


def _node_facts(found) -> dict:
    if found is None:
        return {}
    return {"node": found[0], "node_analytic": found[-2], "node_numeric": found[-1]}
