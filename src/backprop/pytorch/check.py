"""check_torch: a graph of Values replayed node by node with torch float64 0-d tensors, every
node's data and grad compared in ulps."""

from __future__ import annotations

import math
from collections.abc import Callable

from .._optional import import_torch
from ..engine import Value
from ..ops import SCALAR
from .report import Mismatch, NodeCheck, TorchCheck, ulps_apart

__all__ = ["check_torch"]


def _torch_twins(torch) -> dict[str, tuple[Callable, Callable | None]]:
    """For every op of ops.OPS, torch's forward and, where torch's derivative reads the op's
    result, torch's backward evaluated at backprop's result (None: autograd, at backprop's
    inputs). Evaluating at backprop's own values means a difference is the op's own, never a
    forward difference carried into the backward: near tanh's saturation a 1-ulp difference in
    tanh(x) is thousands of ulps in 1 - tanh(x)^2."""
    aten = torch.ops.aten

    def exponent_grad(g, out, base, exponent):
        # derivatives.yaml, pow_backward_exponent: grad * (0 if base == 0 and exp >= 0 else
        # result * log(base))
        zero = (base == 0.0) & (exponent >= 0.0)
        return g * torch.where(zero, torch.zeros_like(out), out * torch.log(base))

    def pow_tensor(g, out, a, b):
        base_grad = torch.where(b == 0.0, torch.zeros_like(g), g * (b * torch.pow(a, b - 1.0)))
        return (base_grad, exponent_grad(g, out, a, b))

    return {
        "add": (lambda a, b: a + b, None),
        "sub": (lambda a, b: a - b, None),
        "mul": (lambda a, b: a * b, None),
        "div": (lambda a, b: a / b, None),
        "pow": (torch.pow, pow_tensor),
        "powc": (lambda a, k: torch.pow(a, k), None),
        "rpow": (
            lambda a, k: torch.pow(k, a),
            lambda g, out, a, k: (exponent_grad(g, out, torch.full_like(a, k), a),),
        ),
        "neg": (lambda a: -a, None),
        "exp": (torch.exp, lambda g, out, a: (g * out,)),
        "log": (torch.log, None),
        "tanh": (torch.tanh, lambda g, out, a: (aten.tanh_backward(g, out),)),
        "sigmoid": (torch.sigmoid, lambda g, out, a: (aten.sigmoid_backward(g, out),)),
        "relu": (torch.relu, lambda g, out, a: (aten.threshold_backward(g, out, 0.0),)),
        "sqrt": (torch.sqrt, lambda g, out, a: (g / (2.0 * out),)),
        "abs": (torch.abs, None),
        "sign": (torch.sign, None),
        "relu_grad": (lambda g, c: aten.threshold_backward(g, c, 0.0), None),
    }


def check_torch(root: Value, ulps: float = 4) -> TorchCheck:
    """Replay the graph under root in PyTorch, node by node, and compare every data and grad.

    Backprop's side is the graph replayed at the leaves' current values with the same op
    rules and the same order as ``root.backward()`` (so the graph's own .data and .grad are
    left as they are, and a graph whose leaves an optimizer step changed is still checked).
    Each node is checked on its own: torch float64 0-d tensors compute the node's op from
    backprop's values of its inputs, and each gradient contribution with torch's backward rule
    from backprop's grad of the consumer. A difference is therefore the op's own, never rounding
    carried from upstream. ``ulps`` is the tolerance: CPython's and torch's ``tanh`` and ``exp``
    differ by 1-2 ulps.

    ``report.first_mismatch`` is the first node where the numbers go wrong: the first, in the
    forward pass, whose data disagrees, or else the first, in backward order, whose grad does;
    its text names the op whose rule is at fault.
    """
    _check_arguments(root, ulps)
    torch = import_torch("check_torch")
    twins = _torch_twins(torch)
    order = root.topological_order()
    position = {id(v): i for i, v in enumerate(order)}
    inputs = [[position[id(x)] for x in v._prev] for v in order]
    for v in order:
        if v._fn is not None and v._fn.name not in twins:
            raise ValueError(f"check_torch has no torch twin for op {v._fn.name!r} of {v!r}")
    data, stale = _forward(order, inputs)
    grad, sent = _backward(order, inputs, data)
    torch_data, torch_sent = _torch_side(torch, twins, order, inputs, data, grad)
    rows, edges_into = _compare(order, inputs, (data, stale, grad, sent), torch_data, torch_sent)
    mismatches = [r for r in rows if max(r.data_ulps, r.grad_ulps) > ulps]
    first = _first_mismatch(rows, edges_into, order, ulps)
    return TorchCheck(rows, float(ulps), first, mismatches)


def _check_arguments(root: Value, ulps: float) -> None:
    if not isinstance(root, Value):
        raise TypeError(f"check_torch needs a Value, got {type(root).__name__}: {root!r:.60}")
    if isinstance(ulps, bool) or not isinstance(ulps, (int, float)) or not 0 <= ulps < math.inf:
        raise ValueError(f"ulps must be a number >= 0, got {ulps!r}")


def _forward(order: list[Value], inputs: list[list[int]]) -> tuple[list[float], list[bool]]:
    """backprop's data, each node's op replayed with eager's own rule at the leaves' current
    values, and whether the node's .data is not that (stale)."""
    n = len(order)
    data = [0.0] * n
    stale = [False] * n
    for i, v in enumerate(order):
        fn = v._fn
        if fn is None:
            data[i] = v.data
            continue
        xs = [data[j] for j in inputs[i]] + ([v._arg] if fn.has_arg else [])
        data[i] = fn.forward(SCALAR, *xs)
        stale[i] = not _same(data[i], v.data)
    return data, stale


def _backward(order: list[Value], inputs: list[list[int]], data: list[float]):
    """backprop's grads, in eager's order, and per node what each consumer sent it."""
    n = len(order)
    grad = [0.0] * n
    grad[n - 1] = 1.0
    sent: list[list[tuple[int, float]]] = [[] for _ in range(n)]  # per node: (consumer, amount)
    for i in range(n - 1, -1, -1):
        fn = order[i]._fn
        if fn is None:
            continue
        xs = [data[j] for j in inputs[i]] + ([order[i]._arg] if fn.has_arg else [])
        for j, g in zip(inputs[i], fn.backward(SCALAR, grad[i], data[i], *xs)):
            grad[j] += g
            sent[j].append((i, g))
    return grad, sent


def _torch_side(torch, twins, order, inputs, data, grad):
    """torch: each node's op from backprop's inputs, and each contribution to an input's grad
    from backprop's grad of the node: (torch_data, {(consumer, edge k): amount})."""

    def tensor(x: float, requires_grad: bool = False):
        return torch.tensor(x, dtype=torch.float64, requires_grad=requires_grad)

    torch_data = list(data)
    torch_sent: dict[tuple[int, int], float] = {}
    for i, v in enumerate(order):
        fn = v._fn
        if fn is None:
            continue
        forward, backward = twins[fn.name]
        args = [tensor(data[j], requires_grad=backward is None) for j in inputs[i]]
        extra = [v._arg] if fn.has_arg else []
        with torch.enable_grad():
            out = forward(*args, *extra)
        torch_data[i] = out.item()
        g = tensor(grad[i])
        if backward is None:
            contributions = torch.autograd.grad(out, args, grad_outputs=g, allow_unused=True)
            contributions = [torch.zeros(()) if c is None else c for c in contributions]
        else:
            with torch.no_grad():
                ins = [a.detach() for a in args]
                contributions = backward(g, tensor(data[i]), *ins, *extra)
        for k, c in enumerate(contributions):
            torch_sent[(i, k)] = float(c)
    return torch_data, torch_sent


def _compare(order, inputs, ours, torch_data, torch_sent):
    """A NodeCheck per node, and per node its incoming edges as (consumer, ours, theirs,
    ulps)."""
    data, stale, grad, sent = ours
    n = len(order)
    rows = []
    edges_into: list[list[tuple[int, float, float, float]]] = []
    for i, v in enumerate(order):
        edges = []
        torch_grad = 1.0 if i == n - 1 else 0.0
        k_of: dict[int, int] = {}
        for consumer, amount in sent[i]:
            k = _edge(inputs[consumer], i, k_of, consumer)
            theirs = torch_sent[(consumer, k)]
            torch_grad += theirs
            edges.append((consumer, amount, theirs, ulps_apart(amount, theirs)))
        rows.append(
            NodeCheck(
                index=i,
                node=v,
                label=v.label,
                op=v._op,
                data=data[i],
                torch_data=torch_data[i],
                data_ulps=ulps_apart(data[i], torch_data[i]),
                grad=grad[i],
                torch_grad=torch_grad,
                grad_ulps=max((e[3] for e in edges), default=0.0),
                stale=stale[i],
            )
        )
        edges_into.append(edges)
    return rows, edges_into


def _first_mismatch(rows, edges_into, order, ulps) -> Mismatch | None:
    """The first node, in the forward pass, whose data disagrees, or else the first, in
    backward order, whose grad does, with the consumer whose backward rule sent it most off."""
    for r in rows:
        if r.data_ulps > ulps:
            return Mismatch(
                r.node, r.index, r.label, r.op, "data", r.data, r.torch_data, r.data_ulps,
                r.node, r.index, r.label, r.op,
            )  # fmt: skip
    for r in reversed(rows):
        if r.grad_ulps > ulps:
            consumer, amount, theirs, u = max(edges_into[r.index], key=lambda e: e[3])
            src = order[consumer]
            return Mismatch(
                r.node, r.index, r.label, r.op, "grad", r.grad, r.torch_grad, u,
                src, consumer, src.label, src._op, amount, theirs,
            )  # fmt: skip
    return None


def _edge(operands: list[int], j: int, seen: dict[int, int], consumer: int) -> int:
    """Which operand position of ``consumer`` node ``j`` is, the next one each time (a*a)."""
    start = seen.get(consumer, -1) + 1
    k = operands.index(j, start)
    seen[consumer] = k
    return k


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)
