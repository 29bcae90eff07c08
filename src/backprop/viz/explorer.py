"""explore(history): one offline page to watch a training run learn, epoch by epoch.

``fit(..., record=True)`` keeps a snapshot of the parameters and gradients at every epoch (see
``backprop.train.Snapshot``); ``explore(history)`` turns them into a page that computes
everything else in the browser: heatmaps, decision boundaries and each point's forward and
backward pass, from the weights. Nothing is stored as an image.

The page's data (a JSON object in ``<script id="bpx-data" type="application/json">``):

- ``title``, ``loss`` ('hinge', 'bce', 'mse', 'cross-entropy'), ``binary`` (one output for two
  classes, else one output per class), ``classes`` (display names), ``features`` (input names);
- ``X`` (the training rows), ``y`` (their class indices), ``mean``, ``lo``, ``hi`` (per feature:
  the mean, and the plotted range);
- ``sizes`` ([nin, h1, ..., nout]), ``activations`` (one per layer: 'tanh', 'relu', 'sigmoid',
  'linear'), ``P`` (parameter count). Parameters come in ``model.parameters()`` order: layer by
  layer, neuron by neuron, each neuron's weights then its bias;
- ``frames``: ``[{epoch, loss, accuracy}]``, F of them; ``params`` and ``grads``: base64 of a
  little-endian Float64Array of F*P numbers, frame after frame;
- ``tapes`` and ``tapeOfClass``: a point's loss graph, one tape per graph shape (binary losses
  share one; cross-entropy has one per class), ``targetOfClass`` the target leaf's value. A
  tape lists its nodes in ``topological_order()``: ``ops`` (op name or null for a leaf),
  ``inputs``, ``args`` (an op's constant), ``leaves`` (per node: null, ``{"param": p}``,
  ``{"input": j}``, ``{"target": true}`` or ``{"const": x}``), ``root``, ``hinted`` (the nodes
  whose forward value the hints pin down) and ``view`` (the step-through's drawing: the SVG
  markup and the structural fields of explain()'s page data; null when it was left out to keep
  the page under ``max_bytes``);
- ``hints``: base64 of a Uint8Array, [frame][point][k] with stride ``H``: the low byte of the
  IEEE-754 double that Python computed for the k-th hinted node of that point's tape.
  Browsers' ``Math.tanh``, ``exp`` and ``log`` may differ from CPython's in the last bit or
  two; the page takes its own result and moves it to the nearest double with that low byte,
  which is Python's number exactly (any error under 128 ulps is corrected). Every other op is
  IEEE arithmetic, exact in both. So the page's step-through of a point equals, bit for bit,
  ``backward()`` on a model loaded with that snapshot;
- ``derivatives``: explain()'s ``LOCAL_DERIVATIVES`` templates, so the page words each step as
  explain() does;
- ``thinned``, only when something was left out to keep the page under ``max_bytes``:
  ``maxBytes``, ``frames`` ([kept, recorded]) when frames were thinned, ``stepThrough``
  ({bytes, nodes}) when the drawings were left out, ``pointsBytes`` when the training points
  alone take more than the budget.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import struct
from array import array
from dataclasses import dataclass

from ..engine import Value
from ..ops import OPS, SCALAR
from ..train import History, Snapshot, get_objective
from .assets import read_asset
from .page import Page, fill, scripts
from .stepthrough import _json_float

__all__ = ["explore", "Explorer", "point_loss", "Tape", "HINTED_OPS", "PAGE_BUDGET"]

# ops whose result a browser's Math library may round differently from CPython's libm: the
# page corrects them with one byte each (see the module docstring)
HINTED_OPS = frozenset({"tanh", "sigmoid", "exp", "log", "pow", "rpow"})
PAGE_BUDGET = 4_500_000  # bytes of page a run may fill before its frames are thinned
NUMBER_CHARS = 13  # the widest number fmt() writes, e.g. '-1234567.1234'


def point_loss(model, x, target, objective) -> tuple[Value, list[Value], Value | None]:
    """One point's loss graph, as the page replays it: the data loss of that point alone (the
    l2 penalty belongs to the whole batch, not to one point), with the inputs as Values named
    after the features so that the graph shows how the loss responds to moving the point.

    Returns (loss, the input Values, the target Value or None when the target is a class
    index, as cross-entropy's is).
    """
    objective = get_objective(objective)
    inputs = [Value(float(v), label=f"x{j + 1}") for j, v in enumerate(x)]
    outputs = _labelled_forward(model, inputs)
    if objective.binary:
        leaf = Value(float(target), label="y")
        loss = objective.loss([outputs], [leaf])
    else:
        leaf = None
        loss = objective.loss([outputs], [int(target)])
    loss.label = "loss"
    return loss, inputs, leaf


def _labelled_forward(model, inputs: list[Value]):
    """model(inputs) as MLP.__call__ computes it, op for op, with names a learner can follow:
    w{layer}_{neuron}_{input} and b{layer}_{neuron} for the parameters that have no label yet,
    z{layer}_{neuron} for a neuron's sum w . x + b and h{layer}_{neuron} for its output (``out``
    for the network's)."""
    x = inputs
    last = len(model.layers)
    for n, layer in enumerate(model.layers, start=1):
        outs = []
        for j, neuron in enumerate(layer.neurons, start=1):
            for k, w in enumerate(neuron.w, start=1):
                w.label = w.label or f"w{n}_{j}_{k}"  # a label of the user's own stays
            neuron.b.label = neuron.b.label or f"b{n}_{j}"
            out = neuron(x)
            if out._fn is not None and out._fn.arity == 1 and out._prev[0]._fn is not None:
                out._prev[0].label = f"z{n}_{j}"  # the sum, below its activation
            single = n == last and len(layer.neurons) == 1
            out.label = "out" if single else (f"out{j}" if n == last else f"h{n}_{j}")
            outs.append(out)
        x = outs
    return x[0] if len(x) == 1 else x


@dataclass
class Tape:
    """A point's loss graph flattened in topological_order(), as the page gets it."""

    ops: list[str | None]
    inputs: list[list[int]]
    args: list[float | None]
    leaves: list[dict | None]
    hinted: list[int]
    root: int
    order: list[Value]  # the graph it was read from (at the first frame's weights)
    _hinted_fn: object = None

    @classmethod
    def read(cls, root: Value, params: list[Value], inputs: list[Value], target) -> Tape:
        order = root.topological_order()
        index = {id(v): i for i, v in enumerate(order)}
        param_of = {id(p): k for k, p in enumerate(params)}
        input_of = {id(v): j for j, v in enumerate(inputs)}
        leaves: list[dict | None] = []
        for v in order:
            if v._fn is not None:
                leaves.append(None)
            elif id(v) in param_of:
                leaves.append({"param": param_of[id(v)]})
            elif id(v) in input_of:
                leaves.append({"input": input_of[id(v)]})
            elif target is not None and v is target:
                leaves.append({"target": True})
            else:
                leaves.append({"const": v.data})
        ops = [None if v._fn is None else v._fn.name for v in order]
        return cls(
            ops=ops,
            inputs=[[index[id(p)] for p in v._prev] for v in order],
            args=[v._arg for v in order],
            leaves=leaves,
            hinted=[i for i, op in enumerate(ops) if op in HINTED_OPS],
            root=index[id(root)],
            order=order,
        )

    def evaluate(self, params: list[float], x: list[float], target: float | None) -> list[float]:
        """Every node's data, from the op table's forward rules: what building the graph with
        these numbers gives (the same rows, in the same order, as eager mode)."""
        values: list[float] = []
        for op, ins, arg, leaf in zip(self.ops, self.inputs, self.args, self.leaves):
            if op is None:
                if "param" in leaf:
                    values.append(params[leaf["param"]])
                elif "input" in leaf:
                    values.append(x[leaf["input"]])
                elif "target" in leaf:
                    values.append(target)
                else:
                    values.append(leaf["const"])
                continue
            operands = [values[i] for i in ins]
            if arg is not None:
                operands.append(arg)
            values.append(OPS[op].forward(SCALAR, *operands))
        return values

    def hinted_values(self):
        """A function (params, x, target) -> the hinted nodes' data, equal to evaluate()'s but
        about ten times faster: the tape written out as straight-line Python, where +, - and *
        are the operators themselves (as in the op table's rows) and other ops call their row."""
        if self._hinted_fn is None:
            inline = {"add": "+", "sub": "-", "mul": "*"}
            lines, space = ["def hinted(p, x, t):"], {"SCALAR": SCALAR}
            for i, (op, ins, arg, leaf) in enumerate(
                zip(self.ops, self.inputs, self.args, self.leaves)
            ):
                if op is None:
                    source = (
                        f"p[{leaf['param']}]" if "param" in leaf
                        else f"x[{leaf['input']}]" if "input" in leaf
                        else "t" if "target" in leaf
                        else repr(leaf["const"])
                    )  # fmt: skip
                elif op in inline:
                    source = f"v{ins[0]} {inline[op]} v{ins[1]}"
                else:
                    space[f"f_{op}"] = OPS[op].forward
                    operands = [f"v{k}" for k in ins] + ([repr(arg)] if arg is not None else [])
                    source = f"f_{op}(SCALAR, {', '.join(operands)})"
                lines.append(f"    v{i} = {source}")
            lines.append(f"    return [{', '.join(f'v{i}' for i in self.hinted)}]")
            exec(compile("\n".join(lines), "<explorer tape>", "exec"), space)  # noqa: S102
            self._hinted_fn = space["hinted"]
        return self._hinted_fn

    def as_json(self, view: dict) -> dict:
        return {
            "ops": self.ops,
            "inputs": self.inputs,
            "args": self.args,
            "leaves": self.leaves,
            "hinted": self.hinted,
            "root": self.root,
            "view": view,
        }


def _b64(numbers: array) -> str:
    if struct.pack("=d", 1.0) != struct.pack("<d", 1.0):  # pragma: no cover - big-endian host
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _low_byte(x: float) -> int:
    return struct.pack("<d", x)[0]


def _thin(snapshots: list[Snapshot], keep: int) -> list[Snapshot]:
    """At most ``keep`` (>= 2) snapshots, evenly spaced, always the first and the last."""
    if len(snapshots) <= keep:
        return snapshots
    picks = sorted({round(k * (len(snapshots) - 1) / (keep - 1)) for k in range(keep)})
    return [snapshots[k] for k in picks]


class Explorer(Page):
    """A training run as a page: displays inline in Jupyter, ``.save(path)`` writes it
    atomically (the ``Page`` base class)."""

    frame_height = 860  # pixels of the inline view in Jupyter

    def __init__(self, data: dict, step_view: str) -> None:
        self.data = data
        self.title = data["title"]
        self._step_view = step_view

    @property
    def epochs(self) -> list[int]:
        """The epochs the page can show."""
        return [f["epoch"] for f in self.data["frames"]]

    def _render(self) -> str:
        return _page(self.data, self._step_view)

    def __repr__(self) -> str:
        d = self.data
        return (
            f"<Explorer of {d['title']!r}: {len(d['frames'])} frames, {len(d['X'])} points, "
            f"MLP{tuple(d['sizes'])}>"
        )


def explore(
    history,
    *,
    title: str | None = None,
    features: list[str] | None = None,
    max_bytes: int | None = None,
    image_shape: tuple[int, int] | None = None,
):
    """The explorer page of a ``fit(..., record=True)`` run: scrub through the epochs, see the
    decision boundary and every neuron learn, click a point to step through its backward pass.
    Given a ``backprop.Recorder``, the page of that recorded loop (see ``recorder_page``;
    ``max_bytes`` defaults to 9.5 MB there, 4.5 MB here).

    ``features`` names the input columns (default x1, x2, ...). A run that would make the page
    bigger than ``max_bytes`` keeps fewer, evenly spaced frames (at least the first and the
    last), and leaves out the step-through's drawing when that alone would take half of
    ``max_bytes`` (a wide network's graph); the page says what it left out and why.

    When the inputs are images (``image_shape=(rows, columns)``, by default the History's own,
    e.g. digits' (8, 8)), the page also draws each first-layer neuron's weights as an image,
    the clicked points' images, the confusion matrix and the misclassified images at each
    epoch, and a drawing pad whose forward pass runs in the browser.
    """
    from ..recorder import Recorder

    if isinstance(history, Recorder):
        from .recorder_page import PAGE_BUDGET as RECORDER_BUDGET
        from .recorder_page import explore_recording

        return explore_recording(history, title=title, max_bytes=max_bytes or RECORDER_BUDGET)
    rec, names = _checked(history, features)
    image_shape = _image_shape(image_shape or getattr(history, "image_shape", None), len(names))
    objective = get_objective(history.loss_name)
    tapes, shapes, targets = _tapes(history, objective)
    stride = max(len(t.hinted) for t in tapes)
    views, step_view = _views(tapes)
    n, P = len(rec.X), len(history.snapshots[0].parameters)
    per_frame = (2 * P * 8 + n * stride) * 4 // 3 + 60
    budget = _Budget(PAGE_BUDGET if max_bytes is None else max_bytes, rec.X, views, per_frame)
    if budget.drop_views:
        views = [None] * len(views)
    snaps = _thin(history.snapshots, budget.frames)
    hints = bytearray()
    for snap in snaps:
        for x, label in zip(rec.X, rec.y):
            tape = tapes[shapes[label]]
            row = [_low_byte(v) for v in tape.hinted_values()(snap.parameters, x, targets[label])]
            hints.extend(row + [0] * (stride - len(row)))
    data = {
        "title": title or _title(rec.architecture, history.loss_name),
        "loss": objective.name,
        "binary": objective.binary,
        "classes": [str(c) for c in history.classes],
        "features": names,
        **_plane(rec.X, rec.y),
        "sizes": [rec.architecture["nin"], *rec.architecture["nouts"]],
        "activations": list(rec.architecture["activation"]),
        "P": P,
        "l2": rec.l2,
        "frames": [
            {"epoch": s.epoch, "loss": _json_float(s.loss), "accuracy": s.accuracy} for s in snaps
        ],
        "recordedFrames": len(history.snapshots),
        "params": _b64(array("d", [x for s in snaps for x in s.parameters])),
        "grads": _b64(array("d", [g for s in snaps for g in s.grads])),
        "tapes": [t.as_json(v) for t, v in zip(tapes, views)],
        "tapeOfClass": shapes,
        "targetOfClass": targets,
        "H": stride,
        "hints": base64.b64encode(bytes(hints)).decode("ascii"),
        "derivatives": _derivatives(),
    }
    if image_shape is not None:  # only then: other pages are written as before
        data["imageShape"] = image_shape
    thinned = budget.said(len(snaps), len(history.snapshots), tapes)
    if thinned:  # only then: a page that fits is written as before
        data["thinned"] = thinned
    return Explorer(data, step_view)


def _checked(history, features):
    """The run's Recording and the features' names, or a one-line error."""
    if not isinstance(history, History):
        raise TypeError(
            "explore expects the History that fit(record=True) returns or a backprop.Recorder, "
            f"got {type(history)}"
        )
    if not history.snapshots or history.recording is None:
        raise ValueError(
            "this History has no snapshots: train with fit(..., record=True) to explore it"
        )
    rec = history.recording
    if rec.architecture is None:
        raise ValueError("explore() draws MLPs; this run trained another kind of Module")
    nin = rec.architecture["nin"]
    names = list(features) if features is not None else [f"x{j + 1}" for j in range(nin)]
    if len(names) != nin or not all(isinstance(n, str) for n in names):
        raise ValueError(f"features must be {nin} names, one per input, got {features!r}")
    return rec, names


def _image_shape(shape, nin: int) -> list[int] | None:
    if shape is None:
        return None
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in shape)
        or shape[0] * shape[1] != nin
    ):
        raise ValueError(f"image_shape must be (rows, columns) with {nin} pixels, got {shape!r}")
    return [int(shape[0]), int(shape[1])]


def _tapes(history, objective) -> tuple[list[Tape], list[int], list[float]]:
    """One point loss tape per graph shape (binary losses share one; cross-entropy has one per
    class), which tape each class uses, and each class's target leaf value."""
    rec, n_classes = history.recording, len(history.classes)
    model = history.model_at(history.snapshots[0].epoch)
    if objective.binary:
        targets = [float(objective.target(c)) for c in range(n_classes)]
        shapes = [0, 0]
    else:
        targets = [float(c) for c in range(n_classes)]
        shapes = list(range(n_classes))
    tapes: list[Tape] = []
    for c in sorted(set(shapes)):
        root, ins, tgt = point_loss(model, rec.X[0], targets[c], objective)
        tapes.append(Tape.read(root, model.parameters(), ins, tgt))
    return tapes, shapes, targets


def _plane(X: list[list[float]], y: list[int]) -> dict:
    """The training rows and their classes, and per feature its mean and the plotted range
    (10% beyond the rows)."""
    columns = list(zip(*X))
    lo = [min(c) for c in columns]
    hi = [max(c) for c in columns]
    pad = [0.1 * (h - lo_) if h > lo_ else 1.0 for lo_, h in zip(lo, hi)]
    return {
        "X": X,
        "y": y,
        "mean": [math.fsum(c) / len(X) for c in columns],
        "lo": [a - p for a, p in zip(lo, pad)],
        "hi": [b + p for b, p in zip(hi, pad)],
    }


class _Budget:
    """How a run fits in ``max_bytes`` of page: the training points always go in; the
    step-through's drawings (one per loss-graph shape, about 2 KB per node) go in when they take
    at most half the budget; the frames (their parameters, gradients and hints, ``per_frame``
    bytes each) fill what is left, at least the first and the last."""

    SCRIPTS = 400_000  # the page's scripts, styles and markup, with room to spare

    def __init__(self, max_bytes: int, X: list, views: list[dict], per_frame: int) -> None:
        self.max_bytes = max_bytes
        self.points = len(json.dumps(X)) + 8 * len(X)  # X, y and the plotted ranges
        self.views = sum(len(json.dumps(v)) for v in views)
        self.drop_views = self.views > max_bytes // 2
        fixed = self.SCRIPTS + self.points + (0 if self.drop_views else self.views)
        self.frames = max(2, (max_bytes - fixed) // max(per_frame, 1))

    def said(self, kept: int, recorded: int, tapes: list[Tape]) -> dict:
        """What was left out and why, for the page to say; empty when nothing was."""
        out: dict = {}
        if kept < recorded:
            out["frames"] = [kept, recorded]
        if self.drop_views:
            out["stepThrough"] = {"bytes": self.views, "nodes": max(len(t.ops) for t in tapes)}
        if self.points + self.SCRIPTS > self.max_bytes:
            out["pointsBytes"] = self.points
        if out:
            out["maxBytes"] = self.max_bytes
        return out


def _title(arch: dict, loss_name: str) -> str:
    sizes = ", ".join(map(str, arch["nouts"]))
    return f"Training MLP({arch['nin']}, [{sizes}]) with {loss_name} loss"


def _derivatives() -> dict:
    from .stepthrough import LOCAL_DERIVATIVES

    return {
        name: {"computes": d.computes, "locals": list(d.locals), "why": d.why}
        for name, d in LOCAL_DERIVATIVES.items()
    }


def _views(tapes: list[Tape]) -> tuple[list[dict], str]:
    """The step-through's drawing of each tape, and the view's markup, from stepthrough.py."""
    from . import stepthrough

    views = []
    for tape in tapes:
        ex = stepthrough.explain(tape.order[tape.root], title="a point's backward pass")
        views.append(stepthrough.view_of(ex, number_chars=NUMBER_CHARS))
    return views, stepthrough.step_view_markup()


# characters that could end or comment out a <script> element, or end a JavaScript line, written
# as JSON escapes: they can only occur inside JSON strings, where JSON.parse reads them back
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(data) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: no ``<``,
    ``>`` or ``&`` (so no ``</script>``, ``<!--`` or ``<script`` whatever the user's names
    are) and no line separators; ``JSON.parse`` of the element's text gives ``data`` back."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m.group(0)], text)


# the page's scripts after common.js, in the order they run: the step-through view, the exact
# replay (with the activation rules), then the explorer's panels and the file that starts them
SCRIPTS = (
    "explain.js",
    "replay.js",
    "explore_model.js",
    "explore_draw.js",
    "explore_plane.js",
    "explore_network.js",
    "explore_curves.js",
    "explore_details.js",
    "explore_images.js",
    "explore.js",
)


def _page(data: dict, step_view: str) -> str:
    return fill(
        "explore.html",
        TITLE=html.escape(data["title"]),
        CSS=read_asset("explain.css") + "\n" + read_asset("explore.css"),
        STEP_VIEW=step_view,
        DATA=script_json(data),
        SCRIPT=scripts(*SCRIPTS),
    )
