"""backprop's own renderer of a drawing (``drawing.py``'s boxes and edges): SVG text, and PNG
through matplotlib, for when Graphviz's ``dot`` is missing or would take too long. Scopes drawn
as boxes (``draw_dot(depth=k)``) are shaded records, and their frames rounded dashed rectangles.
"""

from __future__ import annotations

import html
import io

from .drawing import Box as _Box
from .drawing import Drawing as _Drawing
from .layout import FRAME_LABEL, FRAME_PAD, layout

FONT = "Helvetica, Arial, sans-serif"
FONT_SIZE = 12.0
CHAR_WIDTH = 7.0  # a generous average width of a 12px sans-serif character
CELL_PAD = 8.0
BOX_HEIGHT = 28.0
BLOCK_FILL = "#e8eef8"  # a scope drawn as one box
MAX_PNG_SIDE = 32_000  # pixels; a longer drawing is rendered at a lower resolution


def text_width(text: str, char_width: float = CHAR_WIDTH) -> float:
    """Estimated width of text in pixels (no font metrics without a browser)."""
    return len(text) * char_width


def _cell_widths(box: _Box) -> list[float]:
    if box.kind in ("value", "block"):
        return [max(text_width(c), 14.0) + 2 * CELL_PAD for c in box.cells]
    if box.kind == "op":
        return [max(text_width(box.cells[0]) + 22.0, BOX_HEIGHT + 10.0)]
    return [text_width(box.cells[0]) + 8.0]


def _placed(drawing: _Drawing, engine: str = "auto"):
    """Lay the drawing out: the size of every box, their centres and the drawing's size."""
    sizes = {b.id: (sum(_cell_widths(b)), BOX_HEIGHT) for b in drawing.boxes}
    flow = "TB" if drawing.rankdir in ("TB", "BT") else "LR"
    groups = None
    if drawing.clusters:  # keep each frame's boxes together, in a band of its own
        path: dict[str, str] = {}
        for c in drawing.clusters:  # outermost first, so a parent's path is known
            path[c.id] = f"{path[c.parent]}/{c.label}" if c.parent else c.label
        groups = {uid: path[c.id] for c in drawing.clusters for uid in c.boxes}
    edges = [(t, h) for t, h, _ in drawing.edges]
    placed = layout(sizes, edges, rankdir=flow, engine=engine, groups=groups)
    positions, width, height = placed.positions, placed.width, placed.height
    if drawing.clusters:  # make room for the frames, which reach past the boxes
        rects = [r for _, r in frame_rects(drawing, lambda n: (*positions[n], *sizes[n]))]
        left, top = min(0.0, *(r[0] for r in rects)), min(0.0, *(r[1] for r in rects))
        positions = {k: (x - left, y - top) for k, (x, y) in positions.items()}
        width = max(width, *(r[2] for r in rects)) - left
        height = max(height, *(r[3] for r in rects)) - top
    if drawing.rankdir == "RL":
        positions = {k: (width - x, y) for k, (x, y) in positions.items()}
    elif drawing.rankdir == "BT":
        positions = {k: (x, height - y) for k, (x, y) in positions.items()}
    left, top = _overhang(drawing, sizes, positions)
    if left or top:  # room for bowed edges
        positions = {k: (x + left, y + top) for k, (x, y) in positions.items()}
        width, height = width + left, height + top
    return sizes, positions, width, height


def _edge_ends(rankdir, tail, head):
    (tx, ty, tw, th), (hx, hy, hw, hh) = tail, head
    if rankdir in ("LR", "RL"):
        sign = 1 if rankdir == "LR" else -1
        return (tx + sign * tw / 2, ty), (hx - sign * hw / 2, hy), True
    sign = 1 if rankdir == "TB" else -1
    return (tx, ty + sign * th / 2), (hx, hy - sign * hh / 2), False


BOW_FROM = 160.0  # pixels: a longer, nearly straight edge is bowed so it does not run over boxes


def edge_points(rankdir: str, tail, head) -> list[tuple[float, float]]:
    """The cubic curve from tail to head, boxes given as (x, y, w, h): a smooth S-curve, or,
    for a long edge that would run straight over the boxes between (a value used by a '+'
    far along a chain), an arc bowed up (left to right) or left (top to bottom)."""
    (x1, y1), (x2, y2), horizontal = _edge_ends(rankdir, tail, head)
    if horizontal:
        mid = (x1 + x2) / 2
        points = [(x1, y1), (mid, y1), (mid, y2), (x2, y2)]
        run, rise = abs(x2 - x1), abs(y2 - y1)
    else:
        mid = (y1 + y2) / 2
        points = [(x1, y1), (x1, mid), (x2, mid), (x2, y2)]
        run, rise = abs(y2 - y1), abs(x2 - x1)
    if run > BOW_FROM and rise < run / 8:
        bow = min(0.3 * run, 240.0)
        a, b = points[0], points[3]
        if horizontal:
            step = (b[0] - a[0]) / 4
            points = [a, (a[0] + step, a[1] - bow), (b[0] - step, b[1] - bow), b]
        else:
            step = (b[1] - a[1]) / 4
            points = [a, (a[0] - bow, a[1] + step), (b[0] - bow, b[1] - step), b]
    return points


def edge_path(rankdir: str, tail, head) -> str:
    """An SVG path from tail to head, boxes given as (x, y, w, h) (see ``edge_points``)."""
    (x1, y1), (c1x, c1y), (c2x, c2y), (x2, y2) = edge_points(rankdir, tail, head)
    return f"M{x1:.1f},{y1:.1f} C{c1x:.1f},{c1y:.1f} {c2x:.1f},{c2y:.1f} {x2:.1f},{y2:.1f}"


def _overhang(drawing: _Drawing, sizes, positions) -> tuple[float, float]:
    """How far bowed edges reach left of and above the boxes (0 when they do not)."""
    left = top = 0.0
    for tail, head, _ in drawing.edges:
        ends = [(*positions[n], *sizes[n]) for n in (tail, head)]
        for x, y in edge_points(drawing.rankdir, *ends)[1:3]:
            left, top = min(left, x * 0.75), min(top, y * 0.75)  # a cubic reaches 3/4 of the way
    return -left, -top


def frame_rects(drawing: _Drawing, box_of) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(label, (x0, y0, x1, y1)) of every frame, outermost first: around its boxes and inner
    frames, with FRAME_PAD of margin and room for its label at the top."""
    rects: dict[str, tuple[float, float, float, float]] = {}
    for cluster in reversed(drawing.clusters):  # innermost first
        extents = []
        for uid in cluster.boxes:
            x, y, w, h = box_of(uid)
            extents.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
        extents += [rects[c.id] for c in drawing.clusters if c.parent == cluster.id]
        if not extents:
            continue
        rects[cluster.id] = (
            min(e[0] for e in extents) - FRAME_PAD,
            min(e[1] for e in extents) - FRAME_PAD - FRAME_LABEL,
            max(e[2] for e in extents) + FRAME_PAD,
            max(e[3] for e in extents) + FRAME_PAD,
        )
    return [(c.label, rects[c.id]) for c in drawing.clusters if c.id in rects]


def svg_drawing(drawing: _Drawing, engine: str = "auto") -> str:
    """The drawing as a standalone SVG document, in the style of Graphviz's record nodes."""
    sizes, positions, width, height = _placed(drawing, engine)
    margin = 8.0
    top = margin + (22.0 if drawing.title else 0.0)
    esc = html.escape
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 2 * margin:.0f}pt" '
        f'height="{height + top + margin:.0f}pt" viewBox="0 0 {width + 2 * margin:.1f} '
        f'{height + top + margin:.1f}" font-family="{FONT}" font-size="{FONT_SIZE:g}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    if drawing.title:
        out.append(f'<text x="{margin}" y="{margin + 12}" fill="#444">{esc(drawing.title)}</text>')
    out.append(f'<g transform="translate({margin},{top})">')

    def box_of(name):
        x, y = positions[name]
        return (x, y, *sizes[name])

    for label, (x0, y0, x1, y1) in frame_rects(drawing, box_of):
        out.append(f'<g class="frame"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
                   f'height="{y1 - y0:.1f}" rx="6" fill="none" stroke="#8c8c8c" '
                   f'stroke-dasharray="5,3"/><text x="{x0 + 6:.1f}" y="{y0 + 12:.1f}" '
                   f'font-size="11" fill="#595959">{esc(label)}</text></g>')  # fmt: skip
    for tail, head, dashed in drawing.edges:
        style = ' stroke-dasharray="4,3" stroke="#999"' if dashed else ' stroke="#333"'
        path = edge_path(drawing.rankdir, box_of(tail), box_of(head))
        out.append(f'<path d="{path}" fill="none"{style} marker-end="url(#arrow)"/>')
    for box in drawing.boxes:
        x, y, w, h = box_of(box.id)
        left, topy = x - w / 2, y - h / 2
        if box.kind in ("value", "block"):
            fill = "white" if box.kind == "value" else BLOCK_FILL
            out.append(f'<g class="{"node" if box.kind == "value" else "block"}"><rect '
                       f'x="{left:.1f}" y="{topy:.1f}" width="{w:.1f}" height="{h:.1f}" '
                       f'fill="{fill}" stroke="#333"/>')  # fmt: skip
            cx = left
            for i, (cell, cw) in enumerate(zip(box.cells, _cell_widths(box))):
                if i:
                    out.append(f'<line x1="{cx:.1f}" y1="{topy:.1f}" x2="{cx:.1f}" '
                               f'y2="{topy + h:.1f}" stroke="#333"/>')  # fmt: skip
                out.append(f'<text x="{cx + cw / 2:.1f}" y="{y + 4:.1f}" '
                           f'text-anchor="middle">{esc(cell)}</text>')  # fmt: skip
                cx += cw
            out.append("</g>")
        elif box.kind == "op":
            out.append(f'<g class="op"><ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{w / 2:.1f}" '
                       f'ry="{h / 2:.1f}" fill="white" stroke="#333"/>'
                       f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">'
                       f"{esc(box.cells[0])}</text></g>")  # fmt: skip
        else:
            out.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" '
                       f'fill="#666">{esc(box.cells[0])}</text>')  # fmt: skip
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _png_drawing(drawing: _Drawing, dpi: int = 96, engine: str = "auto") -> bytes:
    """The drawing rasterised with matplotlib (no Graphviz needed)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse, FancyArrowPatch, Rectangle
    from matplotlib.path import Path as MplPath

    sizes, positions, width, height = _placed(drawing, engine)
    margin = 8.0
    top = margin + (22.0 if drawing.title else 0.0)
    full_w, full_h = width + 2 * margin, height + top + margin
    dpi = min(dpi, MAX_PNG_SIDE * 72 / max(full_w, full_h))  # keep within what viewers open
    fig = Figure(figsize=(full_w / 72, full_h / 72), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, full_w)
    ax.set_ylim(full_h, 0)  # y grows downwards, as in SVG
    ax.axis("off")
    font = {"fontsize": FONT_SIZE * 0.75, "family": "sans-serif"}  # pt at 72 units per inch

    def box_of(name):
        x, y = positions[name]
        return (x + margin, y + top, *sizes[name])

    if drawing.title:
        ax.text(margin, margin + 8, drawing.title, color="#444", va="center", **font)
    _png_frames(ax, drawing, box_of, font)
    for tail, head, dashed in drawing.edges:
        verts = edge_points(drawing.rankdir, box_of(tail), box_of(head))
        codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4]
        ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>",
                                     mutation_scale=8, lw=0.8,
                                     color="#999" if dashed else "#333",
                                     linestyle="--" if dashed else "-"))  # fmt: skip
    for box in drawing.boxes:
        x, y, w, h = box_of(box.id)
        if box.kind in ("value", "block"):
            fill = "white" if box.kind == "value" else BLOCK_FILL
            ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, fc=fill, ec="#333", lw=0.8))
            cx = x - w / 2
            for i, (cell, cw) in enumerate(zip(box.cells, _cell_widths(box))):
                if i:
                    ax.plot([cx, cx], [y - h / 2, y + h / 2], color="#333", lw=0.8)
                ax.text(cx + cw / 2, y, cell, ha="center", va="center", **font)
                cx += cw
        elif box.kind == "op":
            ax.add_patch(Ellipse((x, y), w, h, fc="white", ec="#333", lw=0.8))
            ax.text(x, y, box.cells[0], ha="center", va="center", **font)
        else:
            ax.text(x, y, box.cells[0], ha="center", va="center", color="#666", **font)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _png_frames(ax, drawing: _Drawing, box_of, font: dict) -> None:
    """Each scope's frame: a rounded dashed rectangle with the scope's name at its top left."""
    from matplotlib.patches import FancyBboxPatch

    for label, (x0, y0, x1, y1) in frame_rects(drawing, box_of):
        style = "round,pad=0,rounding_size=6"
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle=style, fc="none",
                                    ec="#8c8c8c", lw=0.8, linestyle="--"))  # fmt: skip
        ax.text(x0 + 6, y0 + 8, label, color="#595959", va="center", **font)
