"""Loss functions on Values: mse, hinge, binary_cross_entropy (on logits), softmax, cross_entropy.

Every loss takes one prediction per sample and one target per sample, checks that the two
lengths match, and reduces with ``reduction='mean'`` (the default, as in PyTorch), ``'sum'`` or
``'none'`` (a list of per-sample losses). Predictions may be Values or plain numbers.

Targets may be Values too (cross_entropy: rows of class probabilities, such as one-hot rows):
a graph built over target Values is traced once and fed every batch's targets by re-assigning
their ``.data`` (compiled mode), where float targets would be frozen into it as constants. A
Value target is used as it is, unchecked, since its ``.data`` may be a placeholder.

No loss branches on the data: each is one fixed composition of primitives, so the same graph
is right for any input (which is what a compiled replay of it needs). The one exception is the
max-logit shift of softmax and cross_entropy, picked by ``.data`` when the graph is built: a
compiled replay keeps that choice, which is still exact maths (any shift is) but is only an
overflow guard for the numbers it was built with.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

from .engine import Value

__all__ = [
    "mse",
    "hinge",
    "binary_cross_entropy",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "l2_penalty",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")


def _as_value(x: Value | float, what: str) -> Value:
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(x)
    raise TypeError(f"{what} must be a Value or a real number, got {type(x).__name__}: {x!r:.60}")


def _check_pair(name: str, predictions: Sequence, targets: Sequence) -> None:
    if isinstance(predictions, Value) or not isinstance(predictions, Sequence):
        raise TypeError(
            f"{name}: predictions must be a sequence (one per sample), "
            f"got {type(predictions).__name__}"
        )
    if not isinstance(targets, Sequence) or isinstance(targets, str):
        raise TypeError(
            f"{name}: targets must be a sequence (one per sample), got {type(targets).__name__}"
        )
    if len(predictions) != len(targets):
        raise ValueError(
            f"{name}: got {len(predictions)} predictions but {len(targets)} targets; "
            "they must have the same length"
        )
    if len(predictions) == 0:
        raise ValueError(f"{name}: got no samples (empty predictions and targets)")


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
            f"got {reduction!r}"
        )


def _reduce(losses: list[Value], reduction: str) -> Value | list[Value]:
    if reduction == "none":
        return losses
    total = sum(losses[1:], losses[0])
    return total / len(losses) if reduction == "mean" else total


def _target(t: object, name: str) -> float | Value:
    """A target as a float, or the Value itself (a float target y and a Value target Y build
    the same nodes with the same numbers: ``y * s`` lifts y to a leaf, as ``Y * s`` uses Y)."""
    if isinstance(t, Value):
        return t
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise TypeError(
            f"{name}: targets must be real numbers or Values, got {type(t).__name__}: {t!r:.60}"
        )
    return float(t)


def mse(
    predictions: Sequence[Value | float],
    targets: Sequence[float | Value],
    reduction: str = "mean",
) -> Value | list[Value]:
    """Mean squared error: mean of (prediction - target)^2 (the notebook's loss with 'sum')."""
    _check_reduction("mse", reduction)
    _check_pair("mse", predictions, targets)
    losses = [
        (_as_value(p, "mse prediction") - _target(t, "mse")) ** 2
        for p, t in zip(predictions, targets)
    ]
    return _reduce(losses, reduction)


def hinge(
    scores: Sequence[Value | float], targets: Sequence[float | Value], reduction: str = "mean"
) -> Value | list[Value]:
    """The SVM max-margin loss of micrograd's demo: max(0, 1 - y * score), targets y = -1 or +1."""
    _check_reduction("hinge", reduction)
    _check_pair("hinge", scores, targets)
    ys = [_target(t, "hinge") for t in targets]
    bad = [y for y in ys if not isinstance(y, Value) and y not in (-1.0, 1.0)]
    if bad:
        raise ValueError(f"hinge: targets must be -1 or +1, got {bad[0]!r}")
    losses = [(1.0 - y * _as_value(s, "hinge score")).relu() for s, y in zip(scores, ys)]
    return _reduce(losses, reduction)


def _softplus(x: Value) -> Value:
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): e^-|x| <= 1 never overflows. max(x, 0) is
    # written (x + |x|) / 2 so that the gradient at x = 0 is exactly sigmoid(0) = 1/2.
    return (x + x.abs()) * 0.5 + (1.0 + (-x.abs()).exp()).log()


def binary_cross_entropy(
    logits: Sequence[Value | float], targets: Sequence[float | Value], reduction: str = "mean"
) -> Value | list[Value]:
    """Binary cross-entropy on logits (PyTorch's binary_cross_entropy_with_logits), targets in
    [0, 1]: softplus(x) - x * y, which stays finite for logits of any size."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_pair("binary_cross_entropy", logits, targets)
    ys = [_target(t, "binary_cross_entropy") for t in targets]
    bad = [y for y in ys if not isinstance(y, Value) and not 0.0 <= y <= 1.0]
    if bad:
        raise ValueError(f"binary_cross_entropy: targets must lie in [0, 1], got {bad[0]!r}")
    losses = []
    for x, y in zip(logits, ys):
        x = _as_value(x, "binary_cross_entropy logit")
        losses.append(_softplus(x) - x * y)
    return _reduce(losses, reduction)


def _logits(z: Sequence[Value | float], name: str) -> list[Value]:
    if isinstance(z, Value) or not isinstance(z, Sequence) or len(z) == 0:
        raise TypeError(f"{name}: expected a non-empty list of logits, got {z!r:.60}")
    return [_as_value(x, f"{name} logit") for x in z]


def _shifted(zs: list[Value]) -> list[Value]:
    # Subtract the largest logit: softmax is unchanged by a shift, and exp() then sees only
    # numbers <= 0, so it cannot overflow. The shift is a graph node, not a frozen constant,
    # so the derivative stays exact.
    top = max(zs, key=lambda v: v.data)
    return [z - top for z in zs]


def log_softmax(logits: Sequence[Value | float]) -> list[Value]:
    """log(softmax(z)) computed stably as (z - max) - log(sum(exp(z - max)))."""
    s = _shifted(_logits(logits, "log_softmax"))
    exps = [v.exp() for v in s]
    log_total = sum(exps[1:], exps[0]).log()
    return [v - log_total for v in s]


def softmax(logits: Sequence[Value | float]) -> list[Value]:
    """exp(z_i) / sum_j exp(z_j), stable for large logits."""
    s = _shifted(_logits(logits, "softmax"))
    exps = [v.exp() for v in s]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


def cross_entropy(
    logits: Sequence[Sequence[Value | float]],
    targets: Sequence[int | Sequence[float | Value]],
    reduction: str = "mean",
) -> Value | list[Value]:
    """Softmax cross-entropy for k classes, as PyTorch's cross_entropy: ``logits`` holds one list
    of k scores per sample, and ``targets`` one class index (0 .. k-1) per sample or one row of
    k class probabilities per sample (a one-hot row, floats or Values)::

        cross_entropy([[2.0, 0.5, -1.0]], [0])                 # a class index
        cross_entropy([[2.0, 0.5, -1.0]], [[1.0, 0.0, 0.0]])   # the same loss, one-hot

    A row gives a graph whose shape does not depend on the class: -sum_k p_k * log_softmax_k.
    For a one-hot row of floats it computes the same numbers as the class index.
    """
    _check_reduction("cross_entropy", reduction)
    _check_pair("cross_entropy", logits, targets)
    losses = []
    for i, (z, t) in enumerate(zip(logits, targets)):
        zs = _logits(z, "cross_entropy")
        # log softmax(z)_k = (z_k - max) - log(sum(exp(z - max)))
        s = _shifted(zs)
        exps = [v.exp() for v in s]
        log_total = sum(exps[1:], exps[0]).log()
        if isinstance(t, Sequence) and not isinstance(t, str):
            probs = _probabilities(t, len(zs), i)
            # the zero terms of a one-hot row add exact zeros: the sum is log_softmax_t
            terms = [p * (v - log_total) for p, v in zip(probs, s)]
            losses.append(-sum(terms[1:], terms[0]))
            continue
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or not 0 <= t < len(zs):
            raise ValueError(
                f"cross_entropy: target {i} must be a class index in 0..{len(zs) - 1}, got "
                f"{t!r:.60} (or a row of {len(zs)} class probabilities)"
            )
        losses.append(log_total - s[int(t)])  # -log softmax(z)[t]
    return _reduce(losses, reduction)


def _probabilities(row: Sequence, k: int, i: int) -> list[float | Value]:
    if len(row) != k:
        raise ValueError(
            f"cross_entropy: target {i} has {len(row)} class probabilities for {k} logits"
        )
    probs = [_target(p, "cross_entropy") for p in row]
    bad = [p for p in probs if not isinstance(p, Value) and not 0.0 <= p <= 1.0]
    if bad:
        raise ValueError(f"cross_entropy: target {i} holds {bad[0]!r}, not a probability in [0, 1]")
    return probs


def l2_penalty(parameters: Iterable[Value], alpha: float = 1e-4) -> Value:
    """alpha * sum(p^2): micrograd's regularisation term, added to a data loss."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha >= 0:
        raise ValueError(f"l2_penalty: alpha must be a number >= 0, got {alpha!r}")
    if not math.isfinite(alpha):
        raise ValueError(f"l2_penalty: alpha must be finite, got {alpha!r}")
    params = list(parameters)
    if not params:
        return Value(0.0)
    squares = [p * p for p in params]
    return alpha * sum(squares[1:], squares[0])
