"""explore(recorder): the page of a training loop recorded with ``backprop.Recorder``.

The page's data (JSON in ``<script id="bpr-data" type="application/json">``):

- ``title``; ``steps`` (how many steps were recorded) and ``frameSteps`` (the step of each
  kept frame, F of them); ``thinned`` ({kept, recorded, maxBytes}) when frames were left out
  to keep the page under ``max_bytes``;
- ``scalars``: ``[{name, values}]``, values base64 of little-endian float64, one per step
  (nan where a step did not give it);
- ``params``: ``[{name, rows}]``, each named parameter as rows of these lengths; ``P`` the
  parameter count; ``data`` and ``grads``: base64 float64, F*P, frame after frame, in the
  parameters' order (row by row);
- ``watched``: ``[{name, frames, rows, columns}]``, per frame the rows of numbers watched at
  that step (null where none), rounded to 4 significant digits for display, and the rows' and
  columns' labels (null when not given);
- ``notes``: ``[{name, entries}]``, entries ``[step, text]`` as ``rec.note()`` recorded them;
- ``probe``: null, or ``{nodes, outputs, probed, note, tape}``: the probe graph's size, its
  output at each frame (null where it did not run), ``probed`` (per frame, whether it ran),
  ``note`` (why the step-through is left out, or null) and, when it is not left out, ``tape``
  (the explorer's ``Tape.as_json`` with explain()'s view), ``leaves`` (per frame its leaf
  values, base64 float64, one per leaf in tape order), ``hints`` and ``H`` (per frame the low
  bytes of its hinted nodes); else ``tape`` is null. The page replays the tape with
  replay.js, so its step-through at a frame equals ``backward()`` on that step's graph, bit
  for bit;
- ``derivatives``: explain()'s wording of each op.
"""

from __future__ import annotations

import base64
import html
import json
import math
from array import array

from ..engine import Value
from ..recorder import PROBE_NODES, Recorder
from .assets import read_asset
from .page import Page, fill, scripts
from .tape import NUMBER_CHARS, Tape, _b64, _derivatives, _thin, script_json

__all__ = ["RecorderPage", "ProbeGraph", "explore_recording", "REPLAYABLE"]

PAGE_BUDGET = 9_500_000  # bytes: the held-out page must stay under 10 MB
# the ops replay.js replays exactly (powc only for ** 0, 1, 2)
REPLAYABLE = frozenset(
    {"add", "sub", "mul", "div", "neg", "abs", "relu", "sqrt", "sign", "relu_grad", "exp",
     "log", "tanh", "sigmoid", "powc"}
)  # fmt: skip


class ProbeGraph:
    """The probe's graph as a tape (read from the Recorder's first probe graph): which of its
    nodes are leaves, where its hinted nodes' low bytes sit among the recorded ones (one per op
    node), and why the browser cannot replay it (None when it can)."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.leaf_nodes = [i for i, op in enumerate(tape.ops) if op is None]
        position = {i: k for k, i in enumerate(i for i, op in enumerate(tape.ops) if op)}
        self.hinted_positions = [position[i] for i in tape.hinted]
        self.refused = _refusal(tape)

    @classmethod
    def read(cls, root: Value, params: list[Value]) -> ProbeGraph:
        return cls(Tape.read(root, params, [], None))


def _refusal(tape: Tape) -> str | None:
    for i, (op, arg) in enumerate(zip(tape.ops, tape.args)):
        if op is None:
            continue
        if op not in REPLAYABLE or (op == "powc" and float(arg) not in (0.0, 1.0, 2.0)):
            what = f"x ** {arg}" if op == "powc" else op
            return (
                f"its node {i} is {what}, which the browser cannot replay bit for bit "
                "(it would need a libm pow); explain() the probe's graph in Python instead"
            )
    return None


_SCRIPTS = ("explain.js", "replay.js", "explore_draw.js", "recorder.js")


def _SKELETON() -> int:  # noqa: N802 - a constant, computed once
    """Bytes of the page without its data: the template, styles and scripts."""
    global _skeleton
    if _skeleton is None:
        css = read_asset("explain.css") + read_asset("explore.css")
        _skeleton = len((read_asset("recorder.html") + css + scripts(*_SCRIPTS)).encode())
    return _skeleton


_skeleton: int | None = None


class RecorderPage(Page):
    """A recorded training loop as a page (see ``explore``)."""

    frame_height = 900

    def __init__(self, data: dict, step_view: str) -> None:
        self.data = data
        self.title = data["title"]
        self._step_view = step_view

    def _render(self) -> str:
        return fill(
            "recorder.html",
            TITLE=html.escape(self.title),
            CSS=read_asset("explain.css") + "\n" + read_asset("explore.css"),
            STEP_VIEW=self._step_view,
            DATA=script_json(self.data),
            SCRIPT=scripts(*_SCRIPTS),
        )

    def __repr__(self) -> str:
        d = self.data
        return (
            f"<explore page of {d['title']!r}: {d['steps']} steps, {len(d['frameSteps'])} "
            f"frames, {len(d['params'])} parameters, {len(d['watched'])} watched>"
        )


def _round(x: float) -> float | None:
    return float(f"{x:.4g}") if math.isfinite(x) else None


def explore_recording(
    rec: Recorder, *, title: str | None = None, max_bytes: int = PAGE_BUDGET
) -> RecorderPage:
    """The page of a ``Recorder``: scalar curves with a step cursor, every named parameter as
    a heatmap (weights or gradients) with its gradient norm over time, the watched values as
    heatmaps and the probe's step-through at the cursor's step."""
    frames = rec.kept()
    if not frames:
        raise ValueError("this Recorder has no steps yet: call rec.step(loss) in the loop")
    P = len(rec.params)
    names = sorted({name for f in frames for name in f.watched})
    watched_bytes = max(
        (len(json.dumps([_rows(f.watched.get(n)) for n in names])) for f in frames), default=0
    )
    from . import stepthrough

    step_view = stepthrough.step_view_markup()
    probe = ProbeGraph.read(rec.probe_root, rec.params) if rec.probe_root is not None else None
    view, note = _probe_view(probe, max_bytes) if probe is not None else (None, None)
    replayed = probe is not None and view is not None  # else only its output is shipped
    leaves = len(probe.leaf_nodes) if replayed else 0
    hinted = len(probe.tape.hinted) if replayed else 0
    per_frame = (2 * P * 8 + leaves * 8) * 4 // 3 + hinted * 4 // 3 + watched_bytes + 40
    fixed = (
        len(json.dumps(rec.notes))
        + _SKELETON()
        + len(step_view)
        + 12 * rec.steps * len(rec.scalars)
        + (len(json.dumps(view)) * 12 // 10 if view else 0)  # escapes of its markup's < and >
        + 20_000  # the derivatives' wording, names and the rest of the data
    )
    keep = max(2, (max_bytes - fixed) // max(per_frame, 1))
    shown = _thin(frames, keep)
    data = {
        "title": title or rec.title or f"A training loop: {rec.steps} steps",
        "steps": rec.steps,
        "frameSteps": [f.step for f in shown],
        "scalars": [{"name": n, "values": _b64(array("d", v))} for n, v in rec.scalars.items()],
        "params": [
            {"name": name, "rows": shape} for (name, _), shape in zip(rec.matrices, rec.shapes)
        ],
        "P": P,
        "data": _b64(array("d", [x for f in shown for x in f.data])),
        "grads": _b64(array("d", [x for f in shown for x in f.grads])),
        "watched": [
            {
                "name": n,
                "frames": [_rows(f.watched.get(n)) for f in shown],
                "rows": rec.labels.get(n, (None, None))[0],
                "columns": rec.labels.get(n, (None, None))[1],
            }
            for n in names
        ],
        "notes": [{"name": n, "entries": [list(e) for e in v]} for n, v in rec.notes.items()],
        "probe": None,
        "imageShape": list(rec.image_shape) if rec.image_shape else None,
        "derivatives": _derivatives(),
    }
    if len(shown) < len(frames):
        data["thinned"] = {"kept": len(shown), "recorded": len(frames), "maxBytes": max_bytes}
    if probe is not None:
        data["probe"] = _probe_data(probe, shown, view, note)
    return RecorderPage(data, step_view)


def _probe_view(probe: ProbeGraph, max_bytes: int) -> tuple[dict | None, str | None]:
    """explain()'s drawing of the probe's graph, or None and why it is left out."""
    from . import stepthrough

    n = len(probe.tape.ops)
    if n > PROBE_NODES:
        return None, (
            f"its graph has {n:,} nodes, more than the page draws ({PROBE_NODES:,}); "
            "a smaller probe (a shorter example, a smaller model) can be stepped through"
        )
    if probe.refused:
        return None, probe.refused
    try:
        ex = stepthrough.explain(probe.tape.order[probe.tape.root], title="the probe")
    except ValueError as e:  # too big for explain()
        return None, f"explain() refuses its graph: {e}"
    view = stepthrough.view_of(ex, number_chars=NUMBER_CHARS)
    if len(json.dumps(view)) > max_bytes // 2:
        return None, (
            f"its drawing ({n:,} nodes) would take more than half of the page's "
            f"{max_bytes / 1e6:.1f} MB budget"
        )
    return view, None


def _probe_data(probe: ProbeGraph, shown: list, view: dict | None, note: str | None) -> dict:
    """The probe's part of the page data: its output at each frame, and when it can be stepped
    through, its tape with the leaf values and hints of every frame."""
    out = {
        "nodes": len(probe.tape.ops),
        "outputs": [_json_number(f.probe[2]) if f.probe else None for f in shown],
        "probed": [f.probe is not None for f in shown],
        "note": note,
        "tape": None,
    }
    if view is not None:
        leaves, hinted = len(probe.leaf_nodes), len(probe.tape.hinted)
        got = [f.probe if f.probe else ([0.0] * leaves, None, None) for f in shown]
        hints = b"".join(
            bytes(hinted) if low is None else bytes(low[k] for k in probe.hinted_positions)
            for _, low, _ in got
        )
        out.update(
            tape=probe.tape.as_json(view),
            leaves=_b64(array("d", [x for values, _, _ in got for x in values])),
            hints=_b64_bytes(hints),
            H=hinted,
        )
    return out


def _json_number(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)  # 'nan', 'inf', '-inf': JSON has no such number


def _rows(rows):
    return None if rows is None else [[_round(x) for x in row] for row in rows]


def _b64_bytes(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")
