"""Recorder: record any training loop, your own included, for ``backprop.explore(rec)``.

    rec = Recorder(model)                     # a Module, or {"name": Value | [Values] | matrix}
    rec.probe(lambda: loss_of(example))       # optional: a graph to step through at each frame
    for step in range(steps):
        loss = ...                            # the step's forward pass
        rec.watch("attention", weights)       # optional: any list or matrix of Values
        rec.note("samples", text)             # optional: a line of text for this step
        loss.backward()
        rec.step(loss, lr=lr)                 # after backward(), before the update
        ...update, zero the gradients...
    backprop.explore(rec).save("run.html")

``step()`` reads every parameter's data and grad at a kept step (so call it after
``backward()`` and before the update, where the grads are the step's). Scalars are kept at
every step; frames (parameters, gradients, watched values and the probe) are thinned as
``fit(record=True)`` thins its epochs: every step until ``max_frames`` are kept, then evenly
spaced ones (every 2nd, then 4th, ... step), always with the first and the latest.

Memory: 16 bytes per parameter per kept frame (its data and grad, as doubles), 8 per watched
number, and for the probe 8 bytes per leaf and 1 per node a browser may compute differently
(exp, log, tanh, x ** -0.5's derivative ...: graphs of up to ``PROBE_NODES`` nodes; a bigger
one keeps only its output), plus its first graph; with the default
``max_frames=201``, a model of 4,000 parameters keeps at most 201 x 64 KB = 12.9 MB of frames
(measured: 13.4 MB at the peak for 4,096 parameters). Each scalar costs 8 bytes per step.
"""

from __future__ import annotations

import math
import numbers
import struct
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .engine import Value
from .nn import MLP, Module
from .ops import libm_nodes, power_in_derivative

__all__ = ["Recorder", "Frame", "MAX_FRAMES", "PROBE_NODES"]

MAX_FRAMES = 201  # as fit(record=True): at most this many frames, evenly spaced
PROBE_NODES = 60_000  # a bigger probe graph keeps only its output (the page does not draw it)
_LOW = struct.Struct("<d")  # a double's bytes, little-endian: byte 0 is its low byte


@dataclass
class Frame:
    """One kept step: the parameters' data and grads (flat, in the Recorder's order), the
    watched values ({name: rows}) and the probe's leaf values (None when not probed)."""

    step: int
    data: array
    grads: array
    watched: dict[str, list[list[float]]] = field(default_factory=dict)
    probe: tuple[list[float], bytes, float] | None = None  # leaf values, hints, output


def _number(x, where: str) -> float:
    v = x.data if isinstance(x, Value) else x
    if isinstance(v, bool) or not isinstance(v, numbers.Real):  # numpy's numbers too
        raise TypeError(f"{where} must be Values or numbers, got {type(x).__name__}: {x!r:.60}")
    return float(v)


def _matrix(name: str, x) -> list[list[Value]]:
    """A parameter as rows of Values: a Value is 1x1, a list a row, a list of lists a matrix."""
    if isinstance(x, Value):
        return [[x]]
    if isinstance(x, Sequence) and not isinstance(x, str):
        if all(isinstance(v, Value) for v in x):
            return [list(x)]
        if all(isinstance(r, Sequence) and not isinstance(r, str) for r in x):
            rows = [list(r) for r in x]
            if all(isinstance(v, Value) for r in rows for v in r):
                return rows
    raise TypeError(
        f"parameter {name!r} must be a Value, a list of Values or a matrix (list of lists) of "
        f"Values, got {type(x).__name__}"
    )


def _named_matrices(params) -> list[tuple[str, list[list[Value]]]]:
    if isinstance(params, MLP):
        out = []
        for n, layer in enumerate(params.layers, start=1):
            out.append((f"layer {n} weights", [list(neuron.w) for neuron in layer.neurons]))
            out.append((f"layer {n} biases", [[neuron.b for neuron in layer.neurons]]))
        return out
    if isinstance(params, Module):
        groups: dict[str, list[Value]] = {}
        for name, p in params.named_parameters():
            groups.setdefault(name.rsplit(".", 1)[0] if "." in name else name, []).append(p)
        return [(name, [values]) for name, values in groups.items()]
    if isinstance(params, (list, tuple)) and params and all(isinstance(p, Value) for p in params):
        return [("parameters", [list(params)])]  # e.g. model.parameters(): one row
    if isinstance(params, Mapping):
        if not params:
            raise ValueError("Recorder needs at least one parameter, got an empty dict")
        out = []
        for name, x in params.items():
            if not isinstance(name, str):
                raise TypeError(f"parameter names must be strings, got {name!r}")
            out.append((name, _matrix(name, x)))
        return out
    raise TypeError(
        "Recorder takes a Module, a list of Values or a dict from names to Values, lists of "
        f"Values or matrices, got {type(params).__name__}"
    )


def _depth(x) -> int:
    """1 for a list of numbers, 2 for a matrix, 3 for a list of matrices (by the first item)."""
    depth = 0
    while isinstance(x, Sequence) and not isinstance(x, str):
        depth += 1
        if not x:
            break
        x = x[0]
    return depth


class Recorder:
    """Records a training loop for ``backprop.explore(rec)``: scalars at every step, and at
    kept steps every named parameter's data and gradient, watched values and a probe graph.

    ``params``: a Module (an MLP is shown layer by layer as weight matrices and bias rows), a
    list of Values (``model.parameters()``, shown as one row) or a dict from names to Values,
    lists of Values or matrices (lists of lists of Values), such as microgpt's ``state_dict``.
    ``max_frames`` bounds the kept steps (see the module's docstring for the memory cost);
    ``image_shape`` (rows, columns) says the model's inputs are images. ``title`` names the
    page.
    """

    def __init__(
        self,
        params,
        *,
        max_frames: int = MAX_FRAMES,
        image_shape: tuple[int, int] | None = None,
        title: str | None = None,
    ) -> None:
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 2:
            raise ValueError(f"max_frames must be an int of at least 2, got {max_frames!r}")
        if image_shape is not None:
            if (
                not isinstance(image_shape, (tuple, list))
                or len(image_shape) != 2
                or not all(isinstance(k, int) and k > 0 for k in image_shape)
            ):
                raise ValueError(f"image_shape must be (rows, columns), got {image_shape!r}")
            image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.matrices = _named_matrices(params)
        if not any(row for _, rows in self.matrices for row in rows):
            raise ValueError(f"Recorder needs at least one parameter, got none in {params!r:.60}")
        self.params: list[Value] = [v for _, rows in self.matrices for row in rows for v in row]
        self.shapes = [[len(row) for row in rows] for _, rows in self.matrices]
        self.max_frames = max_frames
        self.image_shape = image_shape
        self.title = title
        self.steps = 0  # steps recorded so far
        self.scalars: dict[str, array] = {}
        self.frames: list[Frame] = []
        self.latest: Frame | None = None  # the newest step, when it is not a kept one
        self.stride = 1  # a step is kept when its number is a multiple of this
        self._pending: dict[str, list[list[float]]] = {}
        self.notes: dict[str, list[tuple[int, str]]] = {}  # name -> (step, text), every one
        self.labels: dict[str, tuple] = {}  # watched name -> (row labels, column labels)
        self._probe: Callable[[], Value] | None = None
        self.probe_root: Value | None = None  # the probe's graph at its first kept step
        self._probe_ops: list[str | None] = []
        self._probe_hints: tuple[list[int], list[int]] = ([], [])  # ops.libm_nodes

    # ---- recording ---------------------------------------------------------------------------
    def watch(self, name: str, values, *, rows=None, columns=None) -> None:
        """Record ``values`` (a list or a matrix of Values or numbers; rows may differ in
        length, as causal attention's do) under ``name`` for the coming ``step()``; a list of
        matrices (one per head, say) is watched as ``name [0]``, ``name [1]``, ... ``rows``
        and ``columns`` optionally label them (e.g. the tokens of attention's queries and
        keys); the page writes the labels beside the map."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"watch() needs a name (a non-empty str), got {name!r}")
        if _depth(values) == 3:  # a list of matrices (e.g. one per head): a map for each
            for k, matrix in enumerate(values):
                self.watch(f"{name} [{k}]", matrix, rows=rows, columns=columns)
            return
        if isinstance(values, (Value, numbers.Real)):
            values = [values]
        if not isinstance(values, Sequence) or isinstance(values, str):
            kind = type(values).__name__
            raise TypeError(f"watch({name!r}) takes a list or a matrix, got {kind}")
        if values and all(isinstance(r, Sequence) and not isinstance(r, str) for r in values):
            table = [[_number(v, f"watch({name!r})") for v in row] for row in values]
        else:
            table = [[_number(v, f"watch({name!r})") for v in values]]
        for what, labels in (("rows", rows), ("columns", columns)):
            if labels is not None and (
                not isinstance(labels, Sequence)
                or isinstance(labels, str)
                or not all(isinstance(t, str) for t in labels)
            ):
                raise TypeError(f"watch({name!r}, {what}=...) takes a list of str, got {labels!r}")
        if rows is not None or columns is not None:
            self.labels[name] = (
                None if rows is None else list(rows),
                None if columns is None else list(columns),
            )
        self._pending[name] = table

    def note(self, name: str, text: str) -> None:
        """Record a line of text under ``name`` for the coming step, e.g. the names a language
        model samples every k steps; the page lists them up to the cursor's step."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"note() needs a name (a non-empty str), got {name!r}")
        if not isinstance(text, str):
            raise TypeError(f"note({name!r}) takes a str, got {type(text).__name__}")
        self.notes.setdefault(name, []).append((self.steps, text))

    def probe(self, fn: Callable[[], Value]) -> None:
        """Build ``fn()`` (a graph of the parameters, e.g. the loss of one fixed example) at
        every kept step, for the page's step-through of its backward pass at that step."""
        if not callable(fn):
            raise TypeError(f"probe() takes a function that returns a Value, got {fn!r}")
        self._probe = fn

    def step(self, loss=None, **scalars) -> None:
        """Record one step: ``loss`` (a Value or a number) and any named numbers; at a kept
        step, also every parameter's data and grad, the values watched since the last step and
        the probe."""
        values = dict(scalars)
        if loss is not None:
            values = {"loss": loss, **values}
        for name, v in values.items():
            x = _number(v, f"step()'s {name}")
            series = self.scalars.get(name)
            if series is None:  # a scalar first seen now: nan for the steps before it
                series = self.scalars[name] = array("d", [math.nan] * self.steps)
            series.append(x)
        for series in self.scalars.values():
            if len(series) == self.steps:  # not given at this step
                series.append(math.nan)
        step, self.steps = self.steps, self.steps + 1
        frame = Frame(
            step,
            array("d", [p.data for p in self.params]),
            array("d", [p.grad for p in self.params]),
            self._pending,
        )
        self._pending = {}
        if step % self.stride:
            self.latest = frame
            return
        if self._probe is not None:
            frame.probe = self._run_probe()
        self.frames.append(frame)
        self.latest = None
        if len(self.frames) >= self.max_frames:  # keep every other frame, from the first
            self.frames = self.frames[::2]
            self.stride *= 2

    def _run_probe(self) -> tuple[list[float], bytes, float]:
        """The probe's graph at this step: its leaves' values, the hints (ops.libm_nodes:
        the low byte of each node's value that a browser's maths library may round otherwise,
        then of each ``x ** k`` node's power in its derivative) and its output. The first
        graph is kept (``probe_root``) for its shape; a bigger graph than ``PROBE_NODES``
        keeps only its output."""
        root = self._probe()
        if not isinstance(root, Value):
            raise TypeError(f"the probe function must return a Value, got {type(root).__name__}")
        order = root.topological_order()
        ops = [None if v._fn is None else v._fn.name for v in order]
        if self.probe_root is None:
            self.probe_root, self._probe_ops = root, ops
            self._probe_hints = libm_nodes(ops, [v._arg for v in order])
        elif ops != self._probe_ops:
            raise ValueError(
                "the probe built a graph of another shape than at its first step "
                f"({len(self._probe_ops)} nodes at first, {len(ops)} now): a probe must build "
                "the same graph every time, e.g. the loss of one fixed example"
            )
        if len(order) > PROBE_NODES:
            return [], b"", root.data
        leaves = [v.data for v, op in zip(order, ops) if op is None]
        hinted, bhinted = self._probe_hints
        low = [_LOW.pack(order[i].data)[0] for i in hinted]
        for i in bhinted:
            v = order[i]
            low.append(_LOW.pack(power_in_derivative(v._prev[0].data, v._arg))[0])
        return leaves, bytes(low), root.data

    def kept(self) -> list[Frame]:
        """The kept frames, with the latest step's last when it was not kept."""
        return self.frames + ([self.latest] if self.latest is not None else [])

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.matrices[:4])
        more = f", +{len(self.matrices) - 4}" if len(self.matrices) > 4 else ""
        return (
            f"Recorder({self.steps} steps, {len(self.kept())} frames of {len(self.params)} "
            f"parameters in {names}{more}; scalars {sorted(self.scalars)})"
        )
