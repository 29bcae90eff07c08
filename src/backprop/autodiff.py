"""Beyond first-order reverse mode: grad, hessian, jvp, gradcheck, gradgradcheck, detect_anomaly.

Nothing here adds a derivative rule. Higher derivatives run the op table's backward rules with
``engine.GRAPH``, a maths namespace whose operations build Values, so a gradient is a graph that
can be differentiated again. Forward mode reads the same rows: a rule is linear in its incoming
gradient, so ``backward(m, t, out, *inputs)`` applied to an input's tangent ``t`` is that input's
share of the node's tangent.
"""

from __future__ import annotations

import linecache
import math
import numbers
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from . import engine
from .engine import GRAPH, Value, _backpropagate, _topological_order
from .ops import SCALAR, Op

__all__ = [
    "grad",
    "hessian",
    "jvp",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "detect_anomaly",
    "AnomalyError",
]

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
    for check in engine.backward_checks:
        for root in roots:
            check(root)
    if engine._replayed_roots and any(id(r) in engine._replayed_roots for r in roots):
        raise engine._replayed_error()


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
        seed[id(v)] = engine._accumulate(seed.get(id(v)), s, graph)
    check = _anomaly_check()
    tangent: dict[int, object] = {}
    with _quiet(), _grad_enabled():
        for node in order:
            t, _ = _node_tangent(node, tangent, m, graph, check)
            if id(node) in seed:  # an input: its own tangent adds to what flows into it
                t = engine._accumulate(t, seed[id(node)], graph)
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
            t = engine._accumulate(t, share, graph)
    return t, terms


class _grad_enabled:
    """Record graphs inside, even within no_grad(): create_graph asks for one, as in torch."""

    def __enter__(self) -> None:
        self.previous = engine._grad_mode.enabled
        engine._grad_mode.enabled = True

    def __exit__(self, *exc) -> None:
        engine._grad_mode.enabled = self.previous


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
    with _quiet(), _grad_enabled():
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


def _describe(node: Value) -> str:
    label = f"{node.label!r}" if node.label else "(unlabelled)"
    inputs = ", ".join(_name(v) for v in node._prev)
    return f"node {label}, op {node._fn.name} ({node._op}) of {inputs}"


def _name(v: Value) -> str:
    return f"{v.label} = {v.data!r}" if v.label else repr(v.data)


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


# ---- anomaly detection ----------------------------------------------------------------------


class AnomalyError(ArithmeticError):
    """Inside detect_anomaly(): an op made nan or inf from finite inputs, or backward did from a
    finite gradient. The message names the op, the node's label and where it was created."""


_PACKAGE = str(Path(__file__).resolve().parent)
_open: list[detect_anomaly] = []  # the open blocks, innermost last (for the whole process)
_thread = threading.local()  # .quiet: inside a sweep that builds nodes, no forward check


class _quiet:
    """While a sweep builds gradient nodes, their values are checked as results of backward,
    not as forward ops (a rule also builds the branch of a where that it then discards)."""

    def __enter__(self) -> None:
        _thread.quiet = getattr(_thread, "quiet", 0) + 1

    def __exit__(self, *exc) -> None:
        _thread.quiet -= 1


class detect_anomaly:
    """Inside this block each new node records where the user's code created it, and the first
    nan or inf that an op makes from finite inputs, or that backward makes from a finite
    gradient, raises AnomalyError naming the op, the node's label and that file and line.

    Like torch.autograd.detect_anomaly it holds for the whole process while open, and slows
    every op down; outside it, making a node tests one number, as it always did. ``where(node)``
    tells where a node was made; ``check_nan=False`` only records that. The record keeps the
    nodes made in the block alive for as long as the block object lives.
    """

    def __init__(self, check_nan: bool = True) -> None:
        if not isinstance(check_nan, bool):
            raise TypeError(f"check_nan must be True or False, got {check_nan!r:.60}")
        self.check_nan = check_nan
        self._sites: dict[int, tuple[Value, tuple]] = {}

    def __enter__(self) -> detect_anomaly:
        with engine._lock:
            if _open:
                self._sites = _open[-1]._sites  # nested blocks share one record
            _open.append(self)
            engine._anomaly = self
            engine._open_blocks += 1
        return self

    def __exit__(self, *exc) -> None:
        with engine._lock:
            _open.remove(self)
            engine._anomaly = _open[-1] if _open else None
            engine._open_blocks -= 1

    def where(self, node: Value) -> str | None:
        """Where the user's code created node ('file.py:12 in f: h = x.log()'), or None."""
        entry = self._sites.get(id(node))
        if entry is None or entry[0] is not node:
            return None
        return _site_text(entry[1])

    # ---- what engine.py calls while the block is open ----

    def node_made(self, out: Value, fn: Op, a: Value, b: Value | None, arg) -> None:
        """Record where out is being made; raise if its op made nan or inf from finite inputs."""
        site = _user_site(sys._getframe(1))
        self._sites[id(out)] = (out, site)  # keeps out alive while the record is
        if not self.check_nan or getattr(_thread, "quiet", 0) or math.isfinite(out.data):
            return
        inputs = [a] if b is None else [a, b]
        if not all(math.isfinite(v.data) for v in inputs):
            return  # nan in, nan out: made earlier
        if arg is not None and not math.isfinite(arg):
            return
        shown = ", ".join(_name(v) for v in inputs) + ("" if arg is None else f", {arg!r}")
        raise AnomalyError(
            f"{fn.name} made {out.data!r} from finite inputs: {fn.name}({shown}), for a new "
            f"node (not labelled yet) made at {_site_text(site)}"
        )

    def backward(self, root: Value, grad: float, create_graph: bool) -> None:
        """root.backward(grad, create_graph), checking what every node's rule gives."""
        m = GRAPH if create_graph else SCALAR
        with _quiet():
            engine._backward_into_grads(root, grad, m, check=self.check())

    def check(self):
        """check(node, g, grads) for a sweep: raises at the first non-finite result of a
        finite g (None when not checking)."""
        if not self.check_nan:
            return None
        sites = self._sites

        def check(node: Value, g, grads) -> None:
            g_data = g.data if isinstance(g, Value) else g
            if not math.isfinite(g_data):
                return
            for j, gj in enumerate(grads):
                x = gj.data if isinstance(gj, Value) else gj
                if not math.isfinite(x):
                    entry = sites.get(id(node))
                    where = (
                        _site_text(entry[1])
                        if entry is not None and entry[0] is node
                        else "(outside detect_anomaly(), so its line is unknown)"
                    )
                    raise AnomalyError(
                        f"backward of {node._fn.name} at {_describe(node)} made {x!r} for "
                        f"input {j} from the finite gradient {g_data!r}; the node was made "
                        f"at {where}"
                    )

        return check


def _anomaly_check():
    """The open detect_anomaly()'s check for a sweep, or None."""
    return None if engine._anomaly is None else engine._anomaly.check()


def _user_site(frame) -> tuple:
    """(file, line, function) of the first frame outside the backprop package, and the
    innermost package frame it called through, past engine.py (or None)."""
    inner = None
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        name = Path(frame.f_code.co_filename).name
        if inner is None and name not in ("engine.py", "autodiff.py"):
            inner = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    if frame is None:
        return (inner, None)
    return ((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name), inner)


def _site_text(site: tuple) -> str:
    user, inner = site
    if user is None:
        return "an unknown place"
    filename, line, function = user
    text = f"{filename}:{line} in {function}"
    source = linecache.getline(filename, line).strip()
    if source:
        text += f": {source}"
    if inner is not None:
        text += f" (via {Path(inner[0]).name}:{inner[1]} in {inner[2]})"
    return text
