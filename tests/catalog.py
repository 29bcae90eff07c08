"""One shared catalog of test functions: each op as a backprop function and its PyTorch twin.

Adding an op to backprop.ops means adding a row here, and every gradient test picks it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    arity: int
    ours: Callable  # Values -> Value
    torch: Callable  # tensors -> tensor
    low: float = -3.0  # domain to draw inputs from, away from kinks
    high: float = 3.0
    positive: bool = False  # inputs drawn from (0.1, high) instead


def _case(name, arity, ours, torch, **kw) -> Case:
    return Case(name, arity, ours, torch, **kw)


def _relu_grad(g, c):
    from backprop import grad

    return grad(c.relu(), c, grad_outputs=g, create_graph=True)[0]


def _torch_relu_grad(g, c):
    import torch

    return torch.autograd.grad(c.relu(), c, g, create_graph=True)[0]


UNARY = [
    _case("neg", 1, lambda a: -a, lambda a: -a),
    _case("exp", 1, lambda a: a.exp(), lambda a: a.exp()),
    _case("log", 1, lambda a: a.log(), lambda a: a.log(), positive=True),
    _case("tanh", 1, lambda a: a.tanh(), lambda a: a.tanh()),
    _case("sigmoid", 1, lambda a: a.sigmoid(), lambda a: a.sigmoid()),
    _case("relu", 1, lambda a: a.relu(), lambda a: a.relu()),
    _case("sqrt", 1, lambda a: a.sqrt(), lambda a: a.sqrt(), positive=True),
    _case("abs", 1, lambda a: abs(a), lambda a: a.abs()),
    _case("square", 1, lambda a: a**2, lambda a: a**2),
    _case("cube", 1, lambda a: a**3, lambda a: a**3),
    _case("pow_frac", 1, lambda a: a**0.5, lambda a: a**0.5, positive=True),
    _case("pow_neg", 1, lambda a: a**-1.5, lambda a: a**-1.5, positive=True),
    _case("pow_zero", 1, lambda a: a**0, lambda a: a**0),
    _case("rpow", 1, lambda a: 2**a, lambda a: 2**a),
    _case("rpow_frac", 1, lambda a: 0.5**a, lambda a: 0.5**a),
    _case("radd", 1, lambda a: 1.5 + a, lambda a: 1.5 + a),
    _case("rsub", 1, lambda a: 1 - a, lambda a: 1 - a),
    _case("rmul", 1, lambda a: 2 * a, lambda a: 2 * a),
    _case("rdiv", 1, lambda a: 1 / a, lambda a: 1 / a, positive=True),
    _case("div_const", 1, lambda a: a / 3.0, lambda a: a / 3.0),
    _case("sign", 1, lambda a: a.sign(), lambda a: a.sign()),
]

BINARY = [
    _case("add", 2, lambda a, b: a + b, lambda a, b: a + b),
    _case("sub", 2, lambda a, b: a - b, lambda a, b: a - b),
    _case("mul", 2, lambda a, b: a * b, lambda a, b: a * b),
    _case("div", 2, lambda a, b: a / b, lambda a, b: a / b, positive=True),
    _case("pow", 2, lambda a, b: a**b, lambda a, b: a**b, positive=True),
    # relu's derivative g * [c > 0], an op of its own in gradient graphs: made by grad()
    _case("relu_grad", 2, lambda g, c: _relu_grad(g, c), lambda g, c: _torch_relu_grad(g, c)),
]

CASES = UNARY + BINARY
