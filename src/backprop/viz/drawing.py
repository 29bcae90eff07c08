"""A graph drawing as data: boxes, edges and scope frames, before any layout or output format.

``draw.py`` builds one from a graph (``groups.py`` the grouped one of ``draw_dot(depth=k)``);
``draw.py`` hands it to Graphviz or turns it into text, ``render.py`` into our own SVG or PNG.
This module imports nothing of backprop, so all of them can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Box:
    id: str
    kind: str  # 'value' (a record: label | data | grad), 'op' (an ellipse) or 'more'
    cells: tuple[str, ...]


@dataclass
class Cluster:
    """A frame around the boxes made in one scope (a Graphviz cluster)."""

    id: str
    label: str
    parent: str | None  # the enclosing cluster's id
    boxes: list[str]  # ids of the boxes directly inside


@dataclass
class Drawing:
    boxes: list[Box]
    edges: list[tuple[str, str, bool]]  # tail, head, dashed
    rankdir: str = "LR"
    title: str = ""
    sizes: dict[str, tuple[float, float]] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)  # outermost first
