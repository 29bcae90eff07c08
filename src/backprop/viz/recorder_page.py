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
  (the explorer's ``Tape.as_json`` with explain()'s view: its drawing, compact above
  ``COMPACT_FROM`` nodes, and its ``scopes``, ``order`` and ``blocks`` when the probe was built
  under scopes) or, when that is over ``PACK_FROM`` bytes, ``packed`` (its JSON gzipped, in
  base64; ``tape`` is then null until the page inflates it); ``free`` (the leaves whose values
  each frame ships: not parameters, whose values come from ``data``), ``leaves`` (per frame
  the free leaves' values, base64 float64), ``hints`` and ``H`` (per frame the low bytes of
  the tape's ``hinted`` nodes' data, then of its ``bhinted`` nodes' powers: ops.libm_nodes).
  The page replays the tape with replay.js, so its step-through at a frame equals
  ``backward()`` on that step's graph, bit for bit. Parameters without a label are named for
  where they sit (``wte[3][5]``);
- ``derivatives``: explain()'s wording of each op.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import html
import json
import math
import struct
from array import array

from ..engine import Value
from ..recorder import PROBE_NODES, Recorder
from .assets import read_asset
from .page import Page, fill, scripts
from .stepthrough.view import COMPACT_FROM
from .tape import NUMBER_CHARS, Tape, _b64, _derivatives, _thin, script_json

__all__ = ["RecorderPage", "ProbeGraph", "explore_recording", "REPLAYABLE"]

PAGE_BUDGET = 9_500_000  # bytes: the held-out page must stay under 10 MB
# the ops replay.js replays exactly (with one-byte hints for exp, log, tanh, sigmoid and the
# powers x ** k other than 0, 1, 2, 0.5 and -0.5, and for their derivatives)
REPLAYABLE = frozenset(
    {"add", "sub", "mul", "div", "neg", "abs", "relu", "sqrt", "sign", "relu_grad", "exp",
     "log", "tanh", "sigmoid", "powc"}
)  # fmt: skip


class ProbeGraph:
    """The probe's graph as a tape (read from the Recorder's first probe graph): which of its
    nodes are leaves and which of those are parameters (whose values the page takes from the
    frame's), and why the browser cannot replay it (None when it can)."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.leaf_nodes = [i for i, op in enumerate(tape.ops) if op is None]
        self.refused = _refusal(tape)

    @classmethod
    def read(cls, root: Value, params: list[Value]) -> ProbeGraph:
        return cls(Tape.read(root, params, [], None))

    def free_leaves(self, frames: list) -> list[int]:
        """Positions (among the leaves) of the leaves whose values each frame ships: those that
        are not parameters, and any parameter whose recorded value is not the frame's (a
        probe that changed it)."""
        leaves = self.tape.leaves
        free = []
        for q, i in enumerate(self.leaf_nodes):
            k = leaves[i].get("param")
            if k is None or any(
                f.probe and f.probe[0] and _bits(f.probe[0][q]) != _bits(f.data[k]) for f in frames
            ):
                free.append(q)
        return free


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _refusal(tape: Tape) -> str | None:
    for i, op in enumerate(tape.ops):
        if op is not None and op not in REPLAYABLE:
            return (
                f"its node {i} is {op}, which the browser cannot replay bit for bit "
                "(its derivative would need a libm pow and log); explain() the probe's graph "
                "in Python instead"
            )
    return None


_SCRIPTS = ("explain.js", "replay.js", "blocks.js", "explore_draw.js", "recorder.js")


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
    strides = {n: _stride(frames, n) for n in names}
    watched_bytes = max(
        (len(json.dumps([_rows(f.watched.get(n), strides[n]) for n in names])) for f in frames),
        default=0,
    )
    from . import stepthrough

    step_view = stepthrough.step_view_markup()
    probe = ProbeGraph.read(rec.probe_root, rec.params) if rec.probe_root is not None else None
    shipped, shipped_bytes, note = (
        (None, 0, None) if probe is None else _probe_view(probe, rec.matrices, max_bytes)
    )
    free = probe.free_leaves(frames) if shipped else []
    hints = len(probe.tape.hinted) + len(probe.tape.bhinted) if shipped else 0
    per_frame = (2 * P + len(free)) * 8 * 4 // 3 + hints * 4 // 3 + watched_bytes + 40
    fixed = (
        len(json.dumps(rec.notes))
        + _SKELETON()
        + len(step_view)
        + 12 * rec.steps * len(rec.scalars)
        + shipped_bytes
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
        "watched": [_watched(rec, n, shown, strides[n]) for n in names],
        "notes": [{"name": n, "entries": [list(e) for e in v]} for n, v in rec.notes.items()],
        "probe": None,
        "imageShape": list(rec.image_shape) if rec.image_shape else None,
        "derivatives": _derivatives(),
    }
    if len(shown) < len(frames):
        data["thinned"] = {"kept": len(shown), "recorded": len(frames), "maxBytes": max_bytes}
    if probe is not None:
        data["probe"] = _probe_data(probe, shown, shipped, note, free)
    return RecorderPage(data, step_view)


PACK_FROM = 500_000  # bytes of JSON: a bigger probe drawing is shipped gzipped


def _probe_view(probe: ProbeGraph, matrices, max_bytes: int) -> tuple[dict | None, int, str | None]:
    """The probe's tape with explain()'s drawing of its graph (and its blocks, when it was
    built under scopes), as the page ships it: ``{"tape": ...}``, or for a big graph
    ``{"packed": ...}`` (the tape's JSON gzipped, in base64: the page inflates it with the
    browser's DecompressionStream), and its size in the page; or None, 0 and why it is left
    out."""
    from . import stepthrough

    n = len(probe.tape.ops)
    if n > PROBE_NODES:
        return (
            None,
            0,
            (
                f"its graph has {n:,} nodes, more than the page draws ({PROBE_NODES:,}); "
                "a smaller probe (a shorter example, a smaller model) can be stepped through"
            ),
        )
    if probe.refused:
        return None, 0, probe.refused
    root = probe.tape.order[probe.tape.root]
    try:
        with _named(matrices, root):
            ex = stepthrough.explain(root, title="the probe", max_nodes=PROBE_NODES)
    except ValueError as e:  # too big for explain()
        return None, 0, f"explain() refuses its graph: {e}"
    compact = n > COMPACT_FROM
    view = stepthrough.view_of(ex, number_chars=NUMBER_CHARS, compact=compact)
    if compact:
        del view["svg"]  # the page draws it from the boxes
    if any(ex.scopes):
        order, blocks = ex.block_steps()
        view.update(scopes=ex.scopes, order=order, blocks=blocks)
    tape = probe.tape.as_json(view)
    text = script_json(tape)  # as the page holds it
    shipped, size = {"tape": tape}, len(text.encode())
    if size > PACK_FROM:
        packed = base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0))
        shipped, size = {"packed": packed.decode("ascii")}, len(packed)
    if size > max_bytes // 2:
        return (
            None,
            0,
            (
                f"its drawing ({n:,} nodes) would take more than half of the page's "
                f"{max_bytes / 1e6:.1f} MB budget"
            ),
        )
    return shipped, size, None


@contextlib.contextmanager
def _named(matrices, root: Value):
    """While explain() reads the probe's graph: each parameter without a label of its own named
    for where it sits ("wte[3][5]", "layer 1 biases[2]"), as the step-through then calls it,
    and its output "probe"; the labels are given back after."""
    saved = [(root, root.label)] if not root.label else []
    if saved:
        root.label = "probe"
    for name, rows in matrices:
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if not v.label:
                    saved.append((v, v.label))
                    v.label = (
                        name if len(rows) == len(row) == 1
                        else f"{name}[{c}]" if len(rows) == 1
                        else f"{name}[{r}][{c}]"
                    )  # fmt: skip
    try:
        yield
    finally:
        for v, label in saved:
            v.label = label


def _probe_data(probe, shown: list, shipped: dict | None, note: str | None, free) -> dict:
    """The probe's part of the page data: its output at each frame, and when it can be stepped
    through, its tape with the values of its free leaves (free_leaves: the parameters' come
    from the frame's data) and the hints of every frame."""
    out = {
        "nodes": len(probe.tape.ops),
        "outputs": [_json_number(f.probe[2]) if f.probe else None for f in shown],
        "probed": [f.probe is not None for f in shown],
        "note": note,
        "tape": None,
    }
    if shipped is not None:
        H = len(probe.tape.hinted) + len(probe.tape.bhinted)
        got = [f.probe if f.probe and f.probe[0] else None for f in shown]
        values = array("d")
        hints = bytearray()
        for g in got:
            values.extend([0.0] * len(free) if g is None else (g[0][q] for q in free))
            hints += bytes(H) if g is None else g[1]
        out.update(shipped)
        out.update(
            free=[probe.leaf_nodes[q] for q in free],
            leaves=_b64(values),
            hints=_b64_bytes(bytes(hints)),
            H=H,
        )
    return out


def _json_number(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)  # 'nan', 'inf', '-inf': JSON has no such number


WATCHED_CELLS = 40_000  # a bigger watched map is shown every k-th row and column


def _stride(frames, name: str) -> int:
    """1, or the k for which every k-th row and column of the watched map keeps it within
    WATCHED_CELLS (a 3,000 x 3,000 map would be 45 MB a frame)."""
    cells = max((sum(map(len, f.watched[name])) for f in frames if name in f.watched), default=0)
    return max(1, math.ceil(math.sqrt(cells / WATCHED_CELLS)))


def _watched(rec: Recorder, name: str, shown: list, stride: int) -> dict:
    rows, columns = rec.labels.get(name, (None, None))
    out = {
        "name": name,
        "frames": [_rows(f.watched.get(name), stride) for f in shown],
        "rows": rows if rows is None else rows[::stride],
        "columns": columns if columns is None else columns[::stride],
    }
    if stride > 1:
        got = [f.watched[name] for f in shown if name in f.watched]
        out["stride"] = stride
        out["size"] = [max(map(len, got)), max(len(r) for t in got for r in t)]
    return out


def _rows(rows, stride: int = 1):
    if rows is None:
        return None
    return [[_round(x) for x in row[::stride]] for row in rows[::stride]]


def _b64_bytes(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")
