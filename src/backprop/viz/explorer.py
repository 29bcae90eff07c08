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
from array import array

from ..engine import Value
from ..train import History, get_objective
from .assets import read_asset
from .page import Page, fill, scripts
from .stepthrough import _json_float
from .tape import (  # noqa: F401  (HINTED_OPS, NUMBER_CHARS, Tape: this module's public names)
    HINTED_OPS,
    NUMBER_CHARS,
    Tape,
    _b64,
    _derivatives,
    _low_byte,
    _thin,
    script_json,
)

__all__ = ["explore", "Explorer", "point_loss", "Tape", "HINTED_OPS", "PAGE_BUDGET"]

PAGE_BUDGET = 4_500_000  # bytes of page a run may fill before its frames are thinned


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


def _views(tapes: list[Tape]) -> tuple[list[dict], str]:
    """The step-through's drawing of each tape, and the view's markup, from stepthrough.py."""
    from . import stepthrough

    views = []
    for tape in tapes:
        ex = stepthrough.explain(tape.order[tape.root], title="a point's backward pass")
        views.append(stepthrough.view_of(ex, number_chars=NUMBER_CHARS))
    return views, stepthrough.step_view_markup()


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
