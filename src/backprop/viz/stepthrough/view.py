"""The step-through's view: the drawing of a graph as SVG (``view_of``), the view's markup of
controls, graph and side panel (``step_view_markup``), and the whole page of either mode
(``write_page``), from the HTML template asset files explain.html and explain_view.html."""

from __future__ import annotations

import html
import math

from ..assets import read_asset
from ..draw import text_width
from ..layout import layout
from ..page import fill, json_payload, scripts
from .wording import LOCAL_DERIVATIVES, _constant, _ref, fmt

CHAR = 6.5  # px per character of the page's 12px sans-serif (generous, so text fits)
PAD = 7.0
CULL_LIMIT = 300  # nodes; above this the page draws only the nodes in view
HEIGHT = 30.0
COMPACT_FROM = 1000  # nodes; from here explain()'s page draws the graph in the browser
# the page's scripts after common.js: the view, its levels of blocks, and (reverse mode) the
# nudge, which recomputes the graph with replay.js's op rules
PAGE_SCRIPTS = {
    False: ("explain.js", "replay.js", "blocks.js", "nudge.js"),
    True: ("explain.js", "blocks.js"),
}


def _json_float(x: float) -> float | str:
    """JSON has no nan or infinity: send those as the strings JavaScript's Number() reads."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def write_page(ex, extra: dict, steps: list[dict], page_class: str, intro: str, **view) -> str:
    """A step-through page of either mode: the drawing of ex's graph, its page data (the
    drawing's structural fields, then ``extra``, the numbers and the steps) and the script
    that mounts the view; ``view`` goes to step_view_markup (root or legend)."""
    drawn = view_of(ex, compact=len(ex.names) > COMPACT_FROM)
    svg, engine = drawn.pop("svg"), drawn.pop("engine")
    data = {
        **drawn,
        **extra,
        "data": [_json_float(v) for v in ex.values],
        "dataText": [fmt(v) for v in ex.values],
        "steps": steps,
        **page_fields(ex),
    }
    return fill(
        "explain.html",
        PAGE_CLASS=page_class,
        TITLE=html.escape(ex.title),
        INTRO=intro,
        CSS=read_asset("explain.css"),
        SCRIPT=scripts(*PAGE_SCRIPTS[ex.forward]),
        PAYLOAD=json_payload(data),
        VIEW=step_view_markup(svg, steps=len(ex.steps) - 1, engine=engine, **view),
    )


def view_of(ex, number_chars: int | None = None, compact: bool = False) -> dict:
    """The step-through's drawing of ex's graph and the page data that follows from its shape
    alone: ``svg`` (the SVG elements, the content of the view's ``#bp-world`` group),
    ``engine`` (the layout engine used), and ``names``, ``inputs``, ``ops``, ``root``,
    ``stepOf``, ``lastTouch``, ``boxes``, ``cull``, ``width``, ``height``.

    The numbers drawn are ex's; with ``number_chars`` the data and grad cells are sized for
    numbers of that many characters too, so that a page can show other numbers on the same
    drawing (the step-through script writes each node's data from the page data's dataText).

    With ``compact`` the SVG is left out (``svg`` is empty) and the page data gets what the
    step-through script draws it from instead: ``cells`` (each box's name and data cell
    widths), ``ovals`` (each op's symbol) and ``auto`` (the nodes named automatically). A big
    graph's page is a third of the size that way.
    """
    n = len(ex.names)
    # every text a node's grad (or tangent) cell will show, to size the cell once; the step
    # where the node is worked on, and the step after which its cell no longer changes
    shown, step_of, last_touch = ex._progress()
    cells, sizes, edges = _sizes(ex, shown, number_chars)
    placed = layout(sizes, edges, rankdir="LR", engine=ex.layout_engine)
    pos = placed.positions
    # a big graph starts hidden ("off"): the script shows only what is in view, so the browser
    # never lays out thousands of nodes at once
    off = " off" if n > CULL_LIMIT else ""
    # edges first, so boxes sit on top of them
    svg = (
        [] if compact else _svg_edges(ex, pos, sizes, off) + _svg_nodes(ex, pos, sizes, cells, off)
    )
    drawn = {
        "svg": "\n".join(svg),
        "engine": placed.engine,
        "names": ex.names,
        "inputs": [list(p) for p in ex.inputs],
        "ops": ex.ops,
        "root": ex.root,
        "stepOf": step_of,
        "lastTouch": last_touch,
        "boxes": [_boxes(i, pos, sizes, ex.ops[i] is not None) for i in range(n)],
        "cull": n > CULL_LIMIT,
        "width": placed.width,
        "height": placed.height,
    }
    if compact:
        drawn["cells"] = [[round(w, 1) for w in c[:2]] for c in cells]
        drawn["ovals"] = [None if ex.ops[i] is None else _oval_text(ex, i) for i in range(n)]
        drawn["auto"] = [i for i in range(n) if not ex.labels[i]]
    return drawn


def _sizes(ex, shown: list[set[str]], number_chars: int | None):
    """Each node's three cell widths, every box's and oval's size and the layout's edges."""
    word = ex.cell
    wide = None if number_chars is None else "0" * int(number_chars)
    cells = []
    sizes: dict[str, tuple[float, float]] = {}
    edges: list[tuple[str, str]] = []
    for i in range(len(ex.names)):
        texts = [_short_name(ex.names[i]), f"data {fmt(ex.values[i])}", max(shown[i], key=len)]
        widths = [max(text_width(t, CHAR), 16.0) + 2 * PAD for t in texts]
        if wide is not None:
            widths[1] = max(widths[1], text_width(f"data {wide}", CHAR) + 2 * PAD)
            widths[2] = max(widths[2], text_width(f"{word} {wide}", CHAR) + 2 * PAD)
        cells.append(widths)
        sizes[f"v{i}"] = (sum(widths), HEIGHT)
        if ex.ops[i] is not None:
            symbol = _oval_text(ex, i)
            sizes[f"o{i}"] = (max(text_width(symbol, CHAR) + 24.0, 40.0), HEIGHT)
            edges.extend((f"v{p}", f"o{i}") for p in ex.inputs[i])
            edges.append((f"o{i}", f"v{i}"))
    return cells, sizes, edges


def _svg_edges(ex, pos, sizes, off: str) -> list[str]:
    """The edges: from each input's box to the op's oval, and from the oval to its result."""
    svg: list[str] = []
    for i in range(len(ex.names)):
        if ex.ops[i] is None:
            continue
        ox, oy = pos[f"o{i}"]
        ow = sizes[f"o{i}"][0]
        count: dict[int, int] = {}
        for p in ex.inputs[i]:
            count[p] = count.get(p, 0) + 1
        seen: dict[int, int] = {}
        for p in ex.inputs[i]:
            k = seen[p] = seen.get(p, -1) + 1
            shift = (k - (count[p] - 1) / 2) * 8.0  # fan out the two edges of a*a
            px, py = pos[f"v{p}"]
            pw = sizes[f"v{p}"][0]
            svg.append(
                _edge(px + pw / 2, py + shift, ox - ow / 2, oy + shift, f"e{p}-{i}", i, p, off)
            )
        vx, vy = pos[f"v{i}"]
        vw = sizes[f"v{i}"][0]
        svg.append(_edge(ox + ow / 2, oy, vx - vw / 2, vy, f"r{i}", i, i, off))
    return svg


def _svg_nodes(ex, pos, sizes, cells, off: str) -> list[str]:
    """Each node's box (name, data and grad cells), then its op's oval."""
    esc = html.escape
    svg: list[str] = []
    for i in range(len(ex.names)):
        svg.append(_svg_box(ex, i, pos[f"v{i}"], sizes[f"v{i}"], cells[i], off))
        if ex.ops[i] is not None:
            ox, oy = pos[f"o{i}"]
            ow, oh = sizes[f"o{i}"]
            svg.append(
                f'<g class="opnode{off}" id="o{i}" data-i="{i}">'
                f'<ellipse cx="{ox:.1f}" cy="{oy:.1f}" rx="{ow / 2:.1f}" ry="{oh / 2:.1f}"/>'
                f'<text x="{ox:.1f}" y="{oy + 4:.1f}">'
                f"{esc(_oval_text(ex, i))}</text><title>{esc(ex.ops[i])}</title></g>"
            )
    return svg


def _svg_box(ex, i: int, xy, wh, cell_widths, off: str) -> str:
    esc = html.escape
    (x, y), (w, h) = xy, wh
    left, top = x - w / 2, y - h / 2
    auto = " auto" if not ex.labels[i] else ""
    leaf = " leaf" if ex.ops[i] is None else ""
    parts = [
        f'<g class="vnode{leaf}{off}" id="v{i}" data-i="{i}" data-name="{esc(ex.names[i])}" '
        f'data-grad="0.0" data-data="{esc(repr(ex.values[i]))}" '
        f'transform="translate({left:.1f},{top:.1f})">',
        f'<rect class="box" width="{w:.1f}" height="{h:.1f}" rx="4"/>',
    ]
    text = {
        "name": _short_name(ex.names[i]),
        "data": f"data {fmt(ex.values[i])}",
        "grad": f"{ex.cell} {ex.cell_start}",
    }
    cx = 0.0
    for k, (cls, cw) in enumerate(zip(("name", "data", "grad"), cell_widths)):
        if k:
            parts.append(f'<line class="sep" x1="{cx:.1f}" y1="0" x2="{cx:.1f}" y2="{h}"/>')
        if cls == "grad":
            parts.append(f'<rect class="gradcell" x="{cx:.1f}" width="{cw:.1f}" '
                         f'height="{h:.1f}" rx="4"/>')  # fmt: skip
        extra = auto if cls == "name" else ""
        parts.append(
            f'<text class="{cls}{extra}" x="{cx + cw / 2:.1f}" y="{h / 2 + 4:.1f}">'
            f"{esc(text[cls])}</text>"
        )
        cx += cw
    parts.append(f"<title>{esc(ex.names[i])}: data {esc(repr(ex.values[i]))}</title></g>")
    return "".join(parts)


def _boxes(i: int, pos, sizes, has_op: bool) -> list[float]:
    """Node i's box, and its op oval's, as [left, top, right, bottom] (rounded)."""
    out: list[float] = []
    for key in (f"v{i}", f"o{i}") if has_op else (f"v{i}",):
        (x, y), (w, h) = pos[key], sizes[key]
        out.extend(round(c, 1) for c in (x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return out


def _short_name(name: str, limit: int = 28) -> str:
    """A name as it fits in a box (the panel and the tooltip show it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _oval_text(ex, i: int) -> str:
    """What node i's operation oval says: the op's symbol, with its constant where it has one
    ('**3' for x**3, '2**x' for 2**x, where the graph drawing's '^2' would read as a square)."""
    if ex.ops[i] == "rpow":
        return f"{_constant(ex.args[i])}**x"
    if ex.ops[i] == "powc":
        return f"**{_constant(ex.args[i])}"
    return _pretty(ex.op_symbols[i])


def _pretty(symbol: str) -> str:
    """An op's symbol as typeset maths: '*' as a times sign, '-' as a minus sign."""
    return {"*": "\u00d7", "-": "\u2212", "neg": "\u2212x"}.get(symbol, symbol)


def _edge(x1, y1, x2, y2, eid, node, source, off) -> str:
    mid = (x1 + x2) / 2
    return (
        f'<path class="edge{off}" id="{eid}" data-node="{node}" data-src="{source}" '
        f'd="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
        'marker-end="url(#arrow)"/>'
    )


def step_view_markup(
    svg: str = "", *, steps: int = 0, root: str = "", engine: str = "", legend: str | None = None
) -> str:
    """The step-through view's markup (controls, graph, side panel), for a page to include
    once and ``bpStepThrough.mount(D)`` (explain.js) to run. ``svg`` is the drawing from
    view_of(), or empty when the script gets it from ``D.svg`` instead; ``steps``, ``root``
    and ``engine`` (step count, output name, layout engine) are then filled in from ``D``.
    ``legend`` replaces the backward pass's "How to read this page" (forward mode's)."""
    esc = html.escape
    root = esc(_ref(root)) if root else ""
    if legend is None:
        legend = fill("explain_legend.html", ROOT=root)
    return fill(
        "explain_view.html", SVG=svg, STEPS=str(int(steps)), ENGINE=esc(engine), LEGEND=legend
    )


def page_fields(ex) -> dict:
    """What explain()'s page adds to the view's data: in reverse mode ``args`` (each op's
    constant) and ``derivatives`` (LOCAL_DERIVATIVES' templates), so that a nudge can recompute
    and word the backward pass in the browser; and for a graph with scopes, ``scopes``,
    ``order`` (the step indices in the order the page takes them) and ``blocks`` (blocks.py)."""
    fields = {}
    if not ex.forward:
        fields["args"] = [None if a is None else _json_float(a) for a in ex.args]
        fields["derivatives"] = {
            name: {"computes": d.computes, "locals": list(d.locals), "why": d.why}
            for name, d in LOCAL_DERIVATIVES.items()
        }
    if any(ex.scopes):
        order, blocks = ex.block_steps()
        fields.update(scopes=ex.scopes, order=order, blocks=blocks)
    return fields


def blocks_intro(ex) -> str:
    """The intro's sentence about the levels, for a graph built in scopes (else empty)."""
    if not any(ex.scopes):
        return ""
    order, blocks = ex.block_steps()
    top = blocks[0]["items"]
    n = sum(1 for item in top if item[2] >= 0)
    word = "tangent" if ex.forward else "_backward() call"
    return (
        f'  <p class="sub bp-blocks-intro">Grouped by the scopes the graph was built in: the top '
        f"level has {len(top) + 1} steps, {n} of them blocks. A block opens in place (Enter) to "
        f"step through its insides, one {word} at a time, and closes again (Esc); the numbers "
        "are the same at every level, bit for bit.</p>\n"
    )
