"""The plain-Python reference backend: replays the tape node by node with the eager op rules."""

from __future__ import annotations

from collections.abc import Iterable

from ..ops import SCALAR
from .tape import Tape

__all__ = ["PythonBackend"]


class PythonBackend:
    """Replays exactly what eager mode computes, in the same order, so it is bit-for-bit equal
    to eager mode. It is as slow as eager backward; it exists to test the fast backends."""

    name = "python"

    def prepare(self, tape: Tape) -> PythonExecutor:
        return PythonExecutor(tape)


class PythonExecutor:
    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.equations = tape.equations()
        self.values = [0.0] * len(tape)

    def forward(self, leaf_data: Iterable[float]) -> float:
        env = self.values
        for i, x in zip(self.tape.leaf_ids, _floats(leaf_data)):
            env[i] = x
        for out, op, ins, arg in self.equations:
            xs = [env[j] for j in ins] + ([] if arg is None else [arg])
            env[out] = op.forward(SCALAR, *xs)
        return env[self.tape.root]

    def backward(self, grad: float, leaf_grads: Iterable[float]) -> list[float]:
        adjoint = self.adjoints(grad, leaf_grads)
        return [adjoint[i] for i in self.tape.leaf_ids]

    def adjoints(self, grad: float, leaf_grads: Iterable[float]) -> list[float]:
        """d(root)/d(node) * grad for every node; leaves start from leaf_grads, as eager."""
        env, adjoint = self.values, [0.0] * len(self.tape)
        for i, g in zip(self.tape.leaf_ids, _floats(leaf_grads)):
            adjoint[i] = g
        adjoint[self.tape.root] += grad
        for out, op, ins, arg in reversed(self.equations):
            xs = [env[j] for j in ins] + ([] if arg is None else [arg])
            for j, g in zip(ins, op.backward(SCALAR, adjoint[out], env[out], *xs)):
                adjoint[j] += g
        return adjoint

    def outputs(self) -> list[float]:
        """The values of the tape's output nodes at the last forward()."""
        return [self.values[i] for i in self.tape.output_ids]

    def describe(self) -> str:
        return f"python: {len(self.equations)} equations replayed one by one"


def _floats(xs: Iterable[float]) -> list[float]:
    # Python floats, not numpy scalars: the scalar rules rely on float semantics (1/0 raises)
    return xs.tolist() if hasattr(xs, "tolist") else list(xs)
