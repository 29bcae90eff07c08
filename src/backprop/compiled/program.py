"""compile(root) -> Program: trace a graph once, then replay its forward and backward passes."""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from .. import engine
from ..engine import Value
from .reference import PythonBackend
from .tape import Tape, trace

if TYPE_CHECKING:
    import numpy as np

__all__ = ["compile", "Program", "LeafMismatchError", "Backend", "BACKENDS"]

_data = attrgetter("data")
_grad = attrgetter("grad")


class LeafMismatchError(ValueError):
    """Values handed to a program are not leaves of the graph it traced: the program was
    compiled from other Value objects (a rebuilt model, re-created inputs). Compile again."""


class Executor(Protocol):
    """A tape prepared by one backend. Leaves are in tape order (``tape.leaves``)."""

    def forward(self, leaf_data: np.ndarray) -> float:
        """Recompute every node from the leaves' values; return the root's."""

    def backward(self, grad: float, leaf_grads: np.ndarray) -> Sequence[float]:
        """The leaves' new .grad: leaf_grads plus grad * d(root)/d(leaf), using the values of
        the last forward()."""

    def describe(self) -> str:
        """What the backend made of the tape, for a person to read."""


class Backend(Protocol):
    name: str

    def prepare(self, tape: Tape) -> Executor: ...


class _Deferred:
    """A backend whose module loads on first use, so that ``import backprop`` needs no numpy."""

    def __init__(self, name: str, module: str, attribute: str) -> None:
        self.name, self.module, self.attribute = name, module, attribute

    def load(self, **options) -> Backend:
        """The backend object itself, e.g. ``BACKENDS['torch'].load(device='cuda')``."""
        backend = getattr(importlib.import_module(self.module, __package__), self.attribute)
        return backend(**options)

    def prepare(self, tape: Tape) -> Executor:
        return self.load().prepare(tape)


BACKENDS: dict[str, Backend] = {
    "numpy": _Deferred("numpy", ".numpy_backend", "NumpyBackend"),
    "python": PythonBackend(),
    "torch": _Deferred("torch", ".torch_backend", "TorchBackend"),  # device= picks cpu or cuda
}


def compile(
    root: Value,
    *,
    backend: str = "numpy",
    device: str | None = None,
    inputs: Sequence[Value] | None = None,
    parameters: Sequence[Value] | None = None,
) -> Program:
    """Trace the graph under root once into a Program that replays forward and backward.

    ``inputs`` names the leaves that ``forward(inputs=...)`` re-assigns (one batch of data);
    ``parameters`` are checked to be leaves of the graph. ``backend='torch'`` replays with torch
    tensors on ``device`` ('cpu', the default, or 'cuda'). Example::

        xs = [[Value(0.0), Value(0.0)] for _ in range(100)]      # one batch of inputs and
        ys = [Value(0.0) for _ in range(100)]                    # targets, as Values
        loss = loss_fn(model, xs, ys)                            # built once, eagerly
        program = backprop.compile(loss, inputs=[v for row in xs for v in row] + ys,
                                   parameters=model.parameters())
        for xb, yb in batches:                                   # (100, 2) and (100,)
            program.forward(inputs=np.concatenate([xb.ravel(), yb]))
            program.backward(accumulate=False)                   # sets the grads
            for p in model.parameters():
                p.data -= 0.05 * p.grad

    Tracing records what the graph is, not the Python that built it: branches taken on
    ``.data`` and Python numbers in expressions are frozen (see docs/compiled.md).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    chosen = BACKENDS[backend]
    if device is not None:
        if backend != "torch":
            raise ValueError(
                f"device={device!r} is for backend='torch'; the {backend} backend runs on the CPU"
            )
        chosen = chosen.load(device=device)  # checks the device before tracing
    return Program(trace(root), root, chosen, inputs, parameters)


class Program:
    """A traced graph: ``forward()`` and ``backward()`` replay it over the leaves' current data.

    What it writes: ``forward()`` sets ``root.data``; ``backward()`` accumulates into every
    leaf's ``.grad`` exactly as ``root.backward()`` would (or sets it: ``accumulate=False``).
    Intermediate nodes keep the data and grad they had when traced (writing a million Values
    back would cost what eager costs); ``sync()`` writes them, to look at or draw the graph.
    """

    def __init__(
        self,
        tape: Tape,
        root: Value,
        backend: Backend,
        inputs: Sequence[Value] | None = None,
        parameters: Sequence[Value] | None = None,
    ) -> None:
        self.tape = tape
        self.root = root
        self.leaves: list[Value] = tape.leaves  # the program holds them: their ids stay unique
        self._leaf_ids = frozenset(map(id, self.leaves))
        self.inputs: list[Value] = [] if inputs is None else list(inputs)
        self.check_leaves(self.inputs, "input")
        if parameters is not None:
            self.check_leaves(parameters, "parameter")
        self.backend = backend
        self.executor = backend.prepare(tape)
        self._ran_forward = False

    def __repr__(self) -> str:
        return (
            f"Program({len(self.tape)} nodes, {len(self.leaves)} leaves, "
            f"backend={self.backend.name!r})"
        )

    def __str__(self) -> str:
        return f"{self!r}\n{self.tape.listing(limit=40)}"

    def listing(self, limit: int | None = None) -> str:
        """The tape, one node a line: '%7 = mul %3 %5'."""
        return self.tape.listing(limit)

    def describe(self) -> str:
        """How the backend runs the tape (for numpy: its fused, vectorized steps)."""
        return self.executor.describe()

    def check_leaves(self, values: Iterable[Value], what: str = "value") -> None:
        """Raise LeafMismatchError unless every value is a leaf of this program's graph."""
        values = list(values)
        if all(map(self._leaf_ids.__contains__, map(id, values))):
            return
        i, bad = next((i, v) for i, v in enumerate(values) if id(v) not in self._leaf_ids)
        raise LeafMismatchError(
            f"{what} {i} ({bad!r}) is not a leaf of this program's graph: it was traced "
            f"from other Value objects. Compile the graph that uses these Values."
        )

    def forward(self, inputs: Iterable[float] | None = None) -> float:
        """Recompute the graph from the leaves' current .data; set and return root.data.

        ``inputs``, when given, is first assigned to the ``inputs`` leaves named at compile
        time (any nesting, e.g. a (batch, features) array, flattened in row order).
        """
        if inputs is not None:
            self._assign_inputs(inputs)
        leaf_data = self._read(_data, "data")
        value = self.executor.forward(leaf_data)
        self.root.data = value
        self._ran_forward = True
        engine._replayed_roots.add(id(self.root))  # until sync(): see Value.backward
        return value

    def backward(self, grad: float = 1.0, *, accumulate: bool = True) -> None:
        """Add grad * d(root)/d(leaf) into every leaf's .grad, with the last forward's values.

        Leaves accumulate, as in eager mode: zero the grads between steps. ``accumulate=False``
        sets every leaf's .grad instead, ignoring what it held: ``zero_grad()`` and
        ``backward()`` in one pass over the leaves instead of three.
        """
        try:
            grad = float(grad)
        except (TypeError, ValueError):
            raise TypeError(f"grad must be a real number, got {grad!r:.60}") from None
        if not self._ran_forward:
            self.forward()
        if accumulate:
            old = self._read(_grad, "grad")
        else:
            import numpy as np

            old = np.zeros(len(self.leaves))
        new = self.executor.backward(grad, old)
        new = new.tolist() if hasattr(new, "tolist") else list(new)
        deque(map(setattr, self.leaves, repeat("grad"), new), maxlen=0)  # no Python loop

    def zero_grad(self) -> None:
        """Set every leaf's .grad to 0 (parameters, inputs and the graph's constants)."""
        deque(map(setattr, self.leaves, repeat("grad"), repeat(0.0)), maxlen=0)

    def sync(self) -> None:
        """Write every intermediate node's .data and .grad as eager forward and backward would
        (a Python loop over nodes: for inspecting or drawing the graph, not for training)."""
        reference = PythonBackend().prepare(self.tape)
        reference.forward(self._read(_data, "data"))
        adjoint = reference.adjoints(1.0, [0.0] * len(self.leaves))
        order = self.root.topological_order()
        for node, value, g in zip(order, reference.values, adjoint):
            if node._fn is not None:
                node.data, node.grad = value, g
        engine._replayed_roots.discard(id(self.root))

    def __del__(self) -> None:
        # the root may outlive the program; its id must not stay marked (or be reused marked)
        replayed = getattr(engine, "_replayed_roots", None)
        if replayed is not None and hasattr(self, "root"):
            replayed.discard(id(self.root))

    def _assign_inputs(self, inputs) -> None:
        import numpy as np

        try:
            flat = np.asarray(inputs, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"inputs must be numbers, got {inputs!r:.80}") from None
        if flat.size != len(self.inputs):
            raise ValueError(
                f"inputs has {flat.size} numbers, but the program was compiled with "
                f"{len(self.inputs)} input leaves"
            )
        deque(map(setattr, self.inputs, repeat("data"), flat.tolist()), maxlen=0)

    def _read(self, getter, what: str) -> np.ndarray:
        import numpy as np  # already loaded after the first call: a dictionary lookup

        n = len(self.leaves)
        try:
            return np.fromiter(map(getter, self.leaves), float, n)
        except (TypeError, ValueError):
            # find the culprit only on the error path, so the normal path stays loop-free
            for i, v in enumerate(self.leaves):
                x = getter(v)
                if not isinstance(x, (int, float)):
                    raise TypeError(
                        f"leaf {i} ({v.label or 'unlabelled'}) has .{what} = {x!r:.60}: "
                        f"a program reads real numbers only"
                    ) from None
            raise
