"""compile(root) -> Program: trace a graph once, then replay its forward and backward passes."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from .._gc import paused
from ..engine import Value
from . import replayed
from .reference import PythonBackend
from .tape import Tape, TraceError, find_outputs, trace

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

    def prepare(self, tape: Tape, **options) -> Executor:
        return self.load().prepare(tape, **options)


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
    keep_graph: bool = False,
    dtype: str = "float64",
    outputs: Sequence[Value] = (),
) -> Program:
    """Trace the graph under root once into a Program that replays forward and backward.

    ``inputs`` names the leaves that ``forward(inputs=...)`` re-assigns (one batch of data);
    ``parameters`` are checked to be leaves of the graph, and get flat arrays
    (``program.parameter_data``, ``parameter_grad``); with them named, the other leaves become
    constants copied now. ``keep_graph=True`` keeps the root and the graph (``root.data`` set by
    forward, ``sync()`` of every node); by default the program holds neither. ``dtype`` is
    'float64' or 'float32' (numpy backend); ``outputs`` are nodes whose values
    ``program.output_data`` reports. ``backend='torch'`` replays with torch tensors on
    ``device`` ('cpu', the default, or 'cuda'). Example::

        xs = [[Value(0.0), Value(0.0)] for _ in range(100)]      # one batch of inputs and
        ys = [Value(0.0) for _ in range(100)]                    # targets, as Values
        loss = loss_fn(model, xs, ys)                            # built once, eagerly
        program = backprop.compile(loss, inputs=[v for row in xs for v in row] + ys,
                                   parameters=model.parameters())
        for xb, yb in batches:                                   # (100, 2) and (100,)
            program.forward(inputs=np.concatenate([xb.ravel(), yb]))
            program.backward(accumulate=False)                   # sets the grads
            program.parameter_data -= 0.05 * program.parameter_grad
        program.sync()                                           # the Values get the numbers

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
    with paused():  # lists of a node each, no cycles: a collection would rescan the graph
        if replayed.is_detached(root):  # compiled before: its graph is in that program's tape
            tape = replayed.tape_of(root)
            if tape is None:
                raise TraceError(
                    f"cannot compile this root again: its program let the graph's tape go "
                    f"(over {LISTING_LIMIT:,} nodes, once nothing else held the root), and "
                    f"{replayed.DETACHED}"
                )
            if outputs:  # nodes the user still holds: found by the ids they had when traced
                tape = dataclasses.replace(tape, output_ids=find_outputs(tape, outputs))
        else:
            tape = trace(root, outputs)
        return Program(tape, root, chosen, inputs, parameters, keep_graph=keep_graph, dtype=dtype)


class _Elsewhere:
    """What a Value's .data or .grad holds while a Program keeps the number in its own array.

    It is not a number: reading it mid-training (arithmetic, float(), comparisons, formatting)
    raises and says where the number is, instead of giving a stale value silently.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __repr__(self) -> str:
        return f"<in {self.where}>"

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(
            f"this number lives in {self.where}, which changes it every step: call "
            f"program.sync() to write it back to the Values before reading it"
        )

    __float__ = __int__ = __index__ = __bool__ = __format__ = __round__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __neg__ = __abs__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = None  # type: ignore[assignment]


class _Constant:
    """A constant leaf's number after compile(): what the listing shows in place of the Value
    (and what a second compile of a detached root reads and writes, as of any leaf)."""

    __slots__ = ("data", "grad", "label")

    def __init__(self, data: float) -> None:
        self.data, self.grad, self.label = data, 0.0, ""


LISTING_LIMIT = 100_000  # without keep_graph, a program keeps its tape (for listing) up to this


class Program:
    """A traced graph: ``forward()`` and ``backward()`` replay it over its leaves' numbers.

    The leaves' numbers live in two flat float64 arrays, ``leaf_data`` and ``leaf_grad``:
    parameters first (``parameter_data``, ``parameter_grad``, in ``parameters`` order), then
    inputs (``input_data``, ``input_grad``), then the other leaves. Until the arrays are used,
    a program reads its leaves' ``.data`` at every ``forward()`` and writes their ``.grad`` at
    every ``backward()``, as eager mode does. From the first use of ``parameter_data`` or
    ``parameter_grad`` (and of ``input_data``, or ``forward(inputs=...)``) the program keeps
    those numbers in its arrays instead, and the Values hold a marker that refuses to be read
    until ``sync()`` writes the numbers back.

    Without ``keep_graph=True`` the program keeps only what replay needs: the root Value cut
    from its graph (``forward()`` sets its ``.data``; eager ``backward()`` from it is refused),
    not the intermediate nodes, nor (with ``parameters=``) the constant leaves, whose numbers
    are copied at compile time.
    """

    def __init__(
        self,
        tape: Tape,
        root: Value,
        backend: Backend,
        inputs: Sequence[Value] | None = None,
        parameters: Sequence[Value] | None = None,
        *,
        keep_graph: bool = False,
        dtype: str = "float64",
    ) -> None:
        _check_options(backend, keep_graph, dtype)
        self.n_nodes = len(tape)
        self.n_outputs = len(tape.output_ids)
        self.keep_graph, self.dtype = keep_graph, dtype
        self.inputs: list[Value] = [] if inputs is None else list(inputs)
        self.parameters: list[Value] | None = None if parameters is None else list(parameters)
        self.n_parameters = 0 if self.parameters is None else len(self.parameters)
        self.n_inputs = len(self.inputs)
        replay_tape = self._order_leaves(tape)
        del tape
        self.backend = backend
        self._prepare(replay_tape)
        keep_tape = keep_graph or self.n_nodes <= LISTING_LIMIT
        self.tape: Tape | None = replay_tape if keep_tape else None
        # the root Value, whose .data forward() sets; without keep_graph it is cut from its
        # graph (a Value with no op and no operands), so that holding it keeps no graph alive
        self.root: Value = root
        if not keep_graph and (root._fn is not None or replayed.is_detached(root)):
            # the tape, even past LISTING_LIMIT, while the root may be compiled again: until
            # nobody else references the root (forward() checks)
            replayed.detach(root, replay_tape)
        self._make_views()
        self._ran_forward = False

    def _order_leaves(self, tape: Tape) -> Tape:
        """The tape with its leaves in program order (parameters, inputs, the other leaves),
        ``self.leaves`` the Values the program reads and writes, and ``leaf_data`` holding the
        constants' numbers (with parameters= named, the other leaves are copied now)."""
        import numpy as np

        if self.parameters is None and not self.inputs:  # nothing named: the tape's order
            self.leaves = list(tape.leaves)
            self._leaf_id_set = None
            self.leaf_data = np.zeros(len(self.leaves))
            self.leaf_grad = np.zeros(len(self.leaves))
            return dataclasses.replace(tape, leaves=list(tape.leaves), n_constants=0)
        # positions found by sorting ids (a million parameters cost a fraction of a second)
        leaf_ids = np.fromiter(map(id, tape.leaves), np.int64, len(tape.leaves))
        by_id = np.argsort(leaf_ids)
        sorted_ids = leaf_ids[by_id]

        def positions(values: list[Value], what: str) -> np.ndarray:
            ids = np.fromiter(map(id, values), np.int64, len(values))
            at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
            found = sorted_ids[at] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
            if not found.all():
                i = int(np.argmin(found))
                raise LeafMismatchError(
                    f"{what} {i} ({values[i]!r}) is not a leaf of this program's graph: it was "
                    f"traced from other Value objects. Compile the graph that uses these Values."
                )
            return by_id[at]

        input_positions = positions(self.inputs, "input")  # checked first, as named first
        named = [] if self.parameters is None else [positions(self.parameters, "parameter")]
        first = np.concatenate(named + [input_positions]).astype(np.intp)
        ordered = np.sort(first)  # sorting beats np.unique's hash table on large arrays
        if (ordered[1:] == ordered[:-1]).any():
            raise ValueError("a Value appears twice among the parameters and inputs")
        rest = np.ones(len(tape.leaves), dtype=bool)
        rest[first] = False
        order = np.concatenate([first, np.flatnonzero(rest)]).tolist()
        leaves = list(map(tape.leaves.__getitem__, order))
        n_live = len(first) if self.parameters is not None else len(leaves)
        self.leaves: list[Value] = leaves[:n_live]
        self._leaf_id_set: frozenset[int] | None = None  # for check_leaves, made when needed
        self.leaf_data = np.zeros(len(leaves))
        self.leaf_grad = np.zeros(len(leaves))
        self.leaf_data[n_live:] = _read(leaves[n_live:], _data, "data")
        constants = [_Constant(x) for x in self.leaf_data[n_live:].tolist()]
        return dataclasses.replace(
            tape,
            leaf_ids=[tape.leaf_ids[k] for k in order],
            leaves=self.leaves + constants,
            n_constants=len(constants),
            _leaf_of=None,
        )

    def _prepare(self, replay_tape: Tape) -> None:
        """The backend's executor; in float64 its own leaf stretches become leaf_data and
        leaf_grad, so that a step copies them neither in nor out."""
        import numpy as np

        options = {} if self.dtype == "float64" else {"dtype": self.dtype}
        self.executor = self.backend.prepare(replay_tape, **options)
        shared = getattr(self.executor, "leaf_val", None), getattr(self.executor, "leaf_adj", None)
        if all(a is not None and a.dtype == np.float64 for a in shared):  # not in float32
            shared[0][...], shared[1][...] = self.leaf_data, self.leaf_grad
            self.leaf_data, self.leaf_grad = shared
        if replay_tape.output_ids and not hasattr(self.executor, "outputs"):
            raise ValueError(f"the {self.backend.name} backend cannot report outputs= values")

    def _make_views(self) -> None:
        """The parameters' and inputs' stretches of the arrays, and their markers."""
        import numpy as np

        # which stretches of leaf_data the Values hold (False) and which the arrays (True)
        self._owned = {"parameters": False, "inputs": False}
        self._tokens = {
            "parameters": (
                _Elsewhere("program.parameter_data"),
                _Elsewhere("program.parameter_grad"),
            ),
            "inputs": (_Elsewhere("program.input_data"), _Elsewhere("program.input_grad")),
        }
        self._token_refs: dict[str, int] = {}
        self._zeros = np.zeros(len(self.leaf_grad))
        p, i = self.n_parameters, self.n_parameters + self.n_inputs
        self._views = {
            "parameter_data": self.leaf_data[:p],
            "parameter_grad": self.leaf_grad[:p],
            "input_data": self.leaf_data[p:i],
            "input_grad": self.leaf_grad[p:i],
        }

    # ---- the flat arrays --------------------------------------------------------------------

    def _array(self, name: str, group: str):
        if group == "parameters" and self.parameters is None:
            raise AttributeError(
                f"{name} needs the parameters named: compile(root, parameters=model.parameters())"
            )
        if self._owned[group]:
            self._take_assignments(group)
        else:
            self._own(group)
        return self._views[name]

    def _assign(self, name: str, group: str, value) -> None:
        if value is self._views[name] and self._owned[group]:
            return  # `program.parameter_data -= ...` hands back the view itself
        self._array(name, group)[...] = value

    parameter_data = property(
        lambda self: self._array("parameter_data", "parameters"),
        lambda self, v: self._assign("parameter_data", "parameters", v),
        doc="The parameters' data, a float64 view in ``parameters`` order (update in place).",
    )
    parameter_grad = property(
        lambda self: self._array("parameter_grad", "parameters"),
        lambda self, v: self._assign("parameter_grad", "parameters", v),
        doc="The parameters' grads, a float64 view in ``parameters`` order.",
    )
    input_data = property(
        lambda self: self._array("input_data", "inputs"),
        lambda self, v: self._assign("input_data", "inputs", v),
        doc="The inputs' data, a float64 view in ``inputs`` order.",
    )
    input_grad = property(
        lambda self: self._array("input_grad", "inputs"),
        lambda self, v: self._assign("input_grad", "inputs", v),
        doc="The inputs' grads, a float64 view in ``inputs`` order.",
    )

    def _group(self, group: str) -> tuple[int, int]:
        if group == "parameters":
            return 0, self.n_parameters
        return self.n_parameters, self.n_parameters + self.n_inputs

    def _own(self, group: str) -> None:
        """Move a group's numbers from its Values into the arrays; the Values get markers."""
        if self._owned[group]:
            return
        start, stop = self._group(group)
        values = self.leaves[start:stop]
        self.leaf_data[start:stop] = _read(values, _data, "data")
        self.leaf_grad[start:stop] = _read(values, _grad, "grad")
        data_token, grad_token = self._tokens[group]
        _set_all(values, "data", data_token)
        _set_all(values, "grad", grad_token)
        self._owned[group] = True
        self._token_refs[group] = sys.getrefcount(data_token) + sys.getrefcount(grad_token)

    def _take_assignments(self, group: str) -> None:
        """Numbers assigned to an owned Value's .data or .grad (``p.data = 0.5``, a
        ``model.zero_grad()``) go into the arrays: a reference count says whether any was."""
        data_token, grad_token = self._tokens[group]
        refs = sys.getrefcount(data_token) + sys.getrefcount(grad_token)
        if refs == self._token_refs[group]:
            return
        start, stop = self._group(group)
        for k in range(start, stop):
            v = self.leaves[k]
            if v.data is not data_token:
                self.leaf_data[k] = _read([v], _data, "data")[0]
                v.data = data_token
            if v.grad is not grad_token:
                self.leaf_grad[k] = _read([v], _grad, "grad")[0]
                v.grad = grad_token
        self._token_refs[group] = sys.getrefcount(data_token) + sys.getrefcount(grad_token)

    def _release(self, group: str) -> None:
        """Write a group's numbers back to its Values, which hold them again from now on."""
        if not self._owned[group]:
            return
        self._take_assignments(group)
        start, stop = self._group(group)
        values = self.leaves[start:stop]
        _set_all(values, "data", self.leaf_data[start:stop])
        _set_all(values, "grad", self.leaf_grad[start:stop])
        self._owned[group] = False

    # ---- replay -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Program({self.n_nodes} nodes, {len(self.leaf_data)} leaves, "
            f"backend={self.backend.name!r})"
        )

    def __str__(self) -> str:
        if self.tape is None:
            return f"{self!r}\n(compile with keep_graph=True to keep the tape for a listing)"
        return f"{self!r}\n{self.tape.listing(limit=40)}"

    def listing(self, limit: int | None = None) -> str:
        """The tape, one node a line: '%7 = mul %3 %5'."""
        if self.tape is None:
            raise ValueError(
                f"this program of {self.n_nodes} nodes kept no tape: compile with "
                f"keep_graph=True to list it"
            )
        return self.tape.listing(limit)

    @property
    def output_data(self) -> np.ndarray:
        """The values of the ``outputs`` nodes named at compile time, at the last forward()."""
        import numpy as np

        return np.asarray(self.executor.outputs(), dtype=np.float64)

    def describe(self) -> str:
        """How the backend runs the tape (for numpy: its fused, vectorized steps)."""
        return self.executor.describe()

    def check_leaves(self, values: Iterable[Value], what: str = "value") -> None:
        """Raise LeafMismatchError unless every value is a leaf this program reads."""
        values = list(values)
        if self._leaf_id_set is None:
            self._leaf_id_set = frozenset(map(id, self.leaves))
        if all(map(self._leaf_id_set.__contains__, map(id, values))):
            return
        i, bad = next((i, v) for i, v in enumerate(values) if id(v) not in self._leaf_id_set)
        raise LeafMismatchError(
            f"{what} {i} ({bad!r}) is not a leaf of this program's graph: it was traced "
            f"from other Value objects. Compile the graph that uses these Values."
        )

    def _gather(self) -> None:
        """Bring the leaves' numbers up to date in leaf_data: Values read where they hold
        them, assignments to owned Values taken."""
        owned = self._owned
        p, i = self.n_parameters, self.n_parameters + self.n_inputs
        if owned["parameters"]:
            self._take_assignments("parameters")
        elif p:
            self.leaf_data[:p] = _read(self.leaves[:p], _data, "data")
        if owned["inputs"]:
            self._take_assignments("inputs")
        elif i > p:
            self.leaf_data[p:i] = _read(self.leaves[p:i], _data, "data")
        if len(self.leaves) > i:
            self.leaf_data[i : len(self.leaves)] = _read(self.leaves[i:], _data, "data")

    def forward(self, inputs=None) -> float:
        """Recompute the graph from the leaves' numbers and return the root's value (also set
        as root.data when compiled with keep_graph=True).

        ``inputs``, when given, is one array of numbers for the ``inputs`` leaves named at
        compile time (any nesting, e.g. a (batch, features) array, flattened in row order);
        it goes into ``input_data`` without touching the input Values.
        """
        if inputs is not None:
            self._assign_inputs(inputs)
        self._gather()
        value = self.executor.forward(self.leaf_data)
        self._ran_forward = True
        self.root.data = value
        if self.keep_graph:
            replayed.mark_replayed(self.root)  # until sync(): see replayed.py
        elif self.tape is None:
            replayed.drop_tape_if_alone(self.root)
        return value

    def backward(self, grad: float = 1.0, *, accumulate: bool = True) -> None:
        """Add grad * d(root)/d(leaf) into every leaf's grad, with the last forward's values.

        Leaves accumulate, as in eager mode: zero the grads between steps. ``accumulate=False``
        sets every leaf's grad instead, ignoring what it held: ``zero_grad()`` and
        ``backward()`` in one pass instead of three.
        """
        try:
            grad = float(grad)
        except (TypeError, ValueError):
            raise TypeError(f"grad must be a real number, got {grad!r:.60}") from None
        if not self._ran_forward:
            self.forward()
        if accumulate:
            self._gather_grads()
            new = self.executor.backward(grad, self.leaf_grad)
        else:
            new = self.executor.backward(grad, self._zeros)
        if new is not self.leaf_grad:
            self.leaf_grad[...] = new
        self._scatter_grads()

    def _gather_grads(self) -> None:
        owned = self._owned
        p, i = self.n_parameters, self.n_parameters + self.n_inputs
        if owned["parameters"]:
            self._take_assignments("parameters")
        elif p:
            self.leaf_grad[:p] = _read(self.leaves[:p], _grad, "grad")
        if owned["inputs"]:
            self._take_assignments("inputs")
        elif i > p:
            self.leaf_grad[p:i] = _read(self.leaves[p:i], _grad, "grad")
        if len(self.leaves) > i:
            self.leaf_grad[i : len(self.leaves)] = _read(self.leaves[i:], _grad, "grad")

    def _scatter_grads(self) -> None:
        """Write the grads of the leaves whose Values hold their numbers."""
        owned = self._owned
        p, i = self.n_parameters, self.n_parameters + self.n_inputs
        if not owned["parameters"] and not owned["inputs"]:
            _set_all(self.leaves, "grad", self.leaf_grad[: len(self.leaves)])
            return
        if not owned["parameters"] and p:
            _set_all(self.leaves[:p], "grad", self.leaf_grad[:p])
        if not owned["inputs"] and i > p:
            _set_all(self.leaves[p:i], "grad", self.leaf_grad[p:i])
        if len(self.leaves) > i:
            _set_all(self.leaves[i:], "grad", self.leaf_grad[i : len(self.leaves)])

    def zero_grad(self) -> None:
        """Set every leaf's grad to 0 (parameters, inputs and the graph's other leaves)."""
        self.leaf_grad[...] = 0.0
        for group in ("parameters", "inputs"):
            if self._owned[group]:
                self._take_assignments(group)  # an assigned grad is zeroed too
                self.leaf_grad[slice(*self._group(group))] = 0.0
        self._scatter_grads()

    def sync(self) -> None:
        """Write the numbers back to the Values: the parameters' and inputs' data and grads
        (which hold them again from then on), and, with keep_graph=True, every intermediate
        node's data and grad as eager forward and backward would (a Python loop over nodes:
        for looking at or drawing the graph, not for training)."""
        self._gather()
        self._release("parameters")
        self._release("inputs")
        if not self.keep_graph:
            return
        reference = PythonBackend().prepare(self.tape)
        reference.forward(self.leaf_data)
        adjoint = reference.adjoints(1.0, [0.0] * len(self.leaf_data))
        order = self.root.topological_order()
        for node, value, g in zip(order, reference.values, adjoint):
            if node._fn is not None:
                node.data, node.grad = value, g
        replayed.unmark_replayed(self.root)

    def __del__(self) -> None:
        # the Values must not keep markers of a program that is gone: write the numbers back
        try:
            for group in ("parameters", "inputs"):
                self._release(group)
        except Exception:  # noqa: BLE001  (a half-built program holds nothing to release)
            pass
        # the root may outlive the program (a detached one as a plain Value holding the last
        # loss); its id must not stay marked, or be reused marked
        if getattr(self, "root", None) is not None:
            if self.keep_graph:
                replayed.unmark_replayed(self.root)
            else:
                replayed.release(self.root)

    def _assign_inputs(self, inputs) -> None:
        import numpy as np

        try:
            flat = np.asarray(inputs, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"inputs must be numbers, got {inputs!r:.80}") from None
        if flat.size != self.n_inputs:
            raise ValueError(
                f"inputs has {flat.size} numbers, but the program was compiled with "
                f"{self.n_inputs} input leaves"
            )
        self.input_data = flat


def _check_options(backend: Backend, keep_graph: bool, dtype: str) -> None:
    if not isinstance(keep_graph, bool):
        raise TypeError(f"keep_graph must be True or False, got {keep_graph!r}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if dtype != "float64" and backend.name != "numpy":
        raise ValueError(f"dtype={dtype!r} is for the numpy backend, not {backend.name!r}")


def _set_all(values: Sequence[Value], name: str, numbers) -> None:
    """values[k].name = numbers[k] (an array, a list, or one object for all), with no Python
    loop: new floats made in C when the native module is built."""
    if hasattr(numbers, "dtype"):  # a float64 array
        native = _native_io()
        if native is not None:
            native.write_numbers(values, Value, name, numbers)
            return
        numbers = numbers.tolist()
    if not isinstance(numbers, list):
        numbers = repeat(numbers)
    deque(map(setattr, values, repeat(name), numbers), maxlen=0)


def _native_io():
    """The native module when it has read_numbers/write_numbers (as tape.py finds it)."""
    from .tape import _native

    module = _native()
    return module if hasattr(module, "write_numbers") else None


def _value_type():
    """Value's native part (backprop._cvalue, whose read_data reads .data from its doubles:
    10 us for 4,192 leaves against 72 us through read_numbers), or None without it."""
    from .._base import native

    return native if hasattr(native, "read_data") else None


def _read(values: Sequence[Value], getter, what: str) -> np.ndarray:
    """The values' .data (or .grad) as a float64 array, or the TypeError eager mode gives for
    a non-number, naming the leaf.

    The numbers are listed and handed to numpy, which picks the array's type from them: float
    (or int, bool) when every one is a real number, object, string or complex when one is not
    (None, a str, a complex, a Value). That type is the check, so it costs no extra pass
    (np.fromiter, in contrast, turns None into nan and '2.5' into 2.5)."""
    import numpy as np  # already loaded after the first call: a dictionary lookup

    native = _native_io()
    if native is not None:  # one pass in C; a non-number sends us to the path below
        out = np.empty(len(values))
        value_type = _value_type()
        if what == "data" and value_type is not None:  # the doubles themselves, no float made
            if value_type.read_data(values, out) < 0:
                return out
        elif native.read_numbers(values, Value, what, out) < 0:
            return out

    numbers_ = list(map(getter, values))
    array = np.array(numbers_)
    kind = array.dtype.kind
    if kind == "f" and array.dtype == np.float64 and array.ndim == 1:
        return array
    if kind in "fiub" and array.ndim == 1:
        return array.astype(np.float64)
    # find the culprit only on the error path, so the normal path stays loop-free
    out = np.empty(len(numbers_))
    for i, x in enumerate(numbers_):
        out[i] = _real(x, i, values[i], what)
    return out


def _real(x, i: int, value: Value, what: str) -> float:
    """x as a float if eager mode takes it as a number, else its TypeError naming the leaf."""
    import numbers

    if isinstance(x, numbers.Real) and not isinstance(x, Value):
        return float(x)  # a Fraction, a big int, a numpy scalar among floats
    if isinstance(x, _Elsewhere):
        x._refuse()
    raise TypeError(
        f"leaf {i} ({value.label or 'unlabelled'}) has .{what} = {x!r:.60}: Value needs a real "
        f"number (int or float), got {type(x).__name__}"
    )
