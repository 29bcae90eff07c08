"""Grouped drawings (issue 20): draw_dot(root, depth=k) and the text exports draw scopes as boxes
and frames; depth=None is today's drawing, byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
import xml.etree.ElementTree as ET

import pytest
from graphs import build_neuron

import backprop
from backprop import Value
from backprop.viz import draw as viz
from backprop.viz import groups
from backprop.viz.render import frame_rects

HAVE_DOT = shutil.which("dot") is not None


def neuron(backward: bool = True) -> Value:
    """The pages' neuron (as /work/notes/make_pages.py builds it, which exports it before any
    backward()), by default after backward(): the products and their sum unlabelled."""
    o = build_neuron(named_terms=False).o
    if backward:
        o.backward()
    return o


@pytest.fixture
def scoped(monkeypatch):
    """A neuron and its loss, with scopes given by a table (a stand-in for Value.scope):
    neuron/sum holds the weighted sum, neuron/act the tanh, loss the squared error."""
    table: dict[int, str] = {}

    def tag(path, *values):
        for v in values:
            table[id(v)] = path

    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    a, c = x1 * w1, x2 * w2
    s = a + c
    n = s + b
    n.label = "n"
    tag("neuron/sum", a, c, s, n)
    o = n.tanh()
    o.label = "o"
    tag("neuron/act", o)
    d = o - 1.0
    tag("loss", d, *[p for p in d._prev if p is not o])
    loss = d**2
    loss.label = "loss"
    tag("loss", loss)
    loss.backward()
    monkeypatch.setattr(groups, "scope_of", lambda v: table.get(id(v), ""))
    return loss, {"x1": x1, "w1": w1, "x2": x2, "w2": w2, "b": b, "n": n, "o": o}


def baseline(name: str) -> str:
    """The first column of /work/notes/baseline_hashes.txt for a file written by make_pages."""
    hashes = {
        "neuron.dot": "bc53dc807d322d18",
        "neuron.json": "1200d63658565ae7",
        "neuron.mmd": "62ea06d721662e1a",
    }
    return hashes[name]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_depth_none_is_todays_drawing_byte_for_byte():
    o = neuron(backward=False)
    assert digest(backprop.to_dot(o)) == baseline("neuron.dot")
    assert digest(backprop.to_json(o)) == baseline("neuron.json")
    assert digest(backprop.to_mermaid(o)) == baseline("neuron.mmd")
    assert backprop.to_dot(o, depth=None) == backprop.to_dot(o)
    assert backprop.to_json(o, depth=None) == backprop.to_json(o)
    assert backprop.to_mermaid(o, depth=None) == backprop.to_mermaid(o)
    assert viz.draw_dot(o, depth=None).source == viz.draw_dot(o).source


def test_a_graph_without_scopes_draws_the_same_at_any_depth():
    o = neuron()
    for depth in (1, 3):
        assert viz.draw_dot(o, depth=depth).source == viz.draw_dot(o).source
        assert backprop.to_mermaid(o, depth=depth) == backprop.to_mermaid(o)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1"])
def test_bad_depth(bad):
    o = neuron()
    for call in (viz.draw_dot, backprop.to_dot, backprop.to_mermaid, backprop.to_json):
        with pytest.raises(ValueError, match=r"depth must be an int >= 1 or None, got"):
            call(o, depth=bad)


def test_depth_1_draws_each_top_level_scope_as_one_box(scoped):
    loss, v = scoped
    drawing = viz.draw_dot(loss, depth=1)._backprop_drawing
    blocks = {b.cells[0]: b for b in drawing.boxes if b.kind == "block"}
    assert set(blocks) == {"neuron", "loss"} and not drawing.clusters
    # the neuron box: 5 nodes inside, its one output o's data and grad
    assert blocks["neuron"].cells == ("neuron", "5 nodes", "data 0.7071", "grad %.4f" % v["o"].grad)
    assert blocks["loss"].cells[1:] == ("3 nodes", "data 0.0858", "grad 1.0000")
    values = {b.cells[0]: b.id for b in drawing.boxes if b.kind == "value"}
    assert set(values) == {"x1", "w1", "x2", "w2", "b"}  # the leaves made outside any scope
    edges = {(t, h) for t, h, _ in drawing.edges}
    neuron_id, loss_id = blocks["neuron"].id, blocks["loss"].id
    assert edges == {(values[k], neuron_id) for k in values} | {(neuron_id, loss_id)}


def test_depth_2_frames_the_top_level_and_boxes_the_next(scoped):
    loss, v = scoped
    source = backprop.to_dot(loss, depth=2)
    assert source.count("subgraph cluster_") == 2  # frames: loss, neuron
    assert re.search(r"label=neuron style=\"rounded,dashed\"", source)
    assert "{ sum | 4 nodes | data 0.8814 | grad " in source
    assert "{ act | 1 node | data 0.7071 | grad " in source
    # loss has no deeper scope: its nodes are drawn themselves, inside its frame
    start = source.index("label=loss")
    frame = source[start : source.index("\n\t}", start)]
    assert "{ loss | data 0.0858 | grad 1.0000 }" in frame and "**2" in frame
    assert "subgraph" not in backprop.to_dot(loss)  # depth=None: no frames


def test_mermaid_and_json_group_the_same_way(scoped):
    loss, v = scoped
    text = backprop.to_mermaid(loss, depth=2)
    assert text.count("subgraph ") == text.count("    end") == 2
    assert re.search(r'b\d+\[\["sum #124; 4 nodes #124; data 0.8814', text)
    doc = json.loads(backprop.to_json(loss, depth=1))
    assert doc["depth"] == 1
    nodes = {n["id"]: n for n in doc["nodes"]}
    by_scope = {b["scope"]: b for b in doc["blocks"]}
    assert set(by_scope) == {"neuron", "loss"}
    neuron_block = by_scope["neuron"]
    assert neuron_block["size"] == 5
    assert sorted(nodes[i]["label"] for i in neuron_block["inputs"]) == [
        "b",
        "w1",
        "w2",
        "x1",
        "x2",
    ]
    assert [nodes[i]["label"] for i in neuron_block["outputs"]] == ["o"]
    assert [nodes[i]["label"] for i in by_scope["loss"]["outputs"]] == ["loss"]
    assert {n["scope"] for n in doc["nodes"] if n["block"] == neuron_block["id"]} == {
        "neuron/sum",
        "neuron/act",
    }
    assert all(n["block"] is None for n in doc["nodes"] if n["scope"] == "")
    assert "scope" not in json.loads(backprop.to_json(loss))["nodes"][0]  # depth=None as before


def _rect(element):
    x, y = float(element.get("x")), float(element.get("y"))
    return x, y, x + float(element.get("width")), y + float(element.get("height"))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_our_own_renderer_draws_frames_around_their_boxes(scoped, depth):
    loss, _ = scoped
    drawing = viz.draw_dot(loss, depth=depth)._backprop_drawing
    svg = viz.svg_drawing(drawing, "python")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    frames = [_rect(g.find("s:rect", ns)) for g in root.iter("{http://www.w3.org/2000/svg}g")
              if g.get("class") == "frame"]  # fmt: skip
    assert len(frames) == len(drawing.clusters)
    blocks = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "block"]
    assert len(blocks) == sum(b.kind == "block" for b in drawing.boxes)
    # every box lies inside its frame, and frames that are not nested do not overlap
    from backprop.viz.render import _placed

    sizes, positions, _, _ = _placed(drawing, "python")

    def box_of(name):
        return (*positions[name], *sizes[name])

    rects = dict(
        zip([c.id for c in drawing.clusters], [r for _, r in frame_rects(drawing, box_of)])
    )
    for cluster in drawing.clusters:
        x0, y0, x1, y1 = rects[cluster.id]
        for uid in cluster.boxes:
            x, y, w, h = box_of(uid)
            assert x0 < x - w / 2 and x + w / 2 < x1 and y0 < y - h / 2 and y + h / 2 < y1
    tops = [c for c in drawing.clusters if c.parent is None]
    for i, a in enumerate(tops):
        for b in tops[i + 1 :]:
            (a0, a1, a2, a3), (b0, b1, b2, b3) = rects[a.id], rects[b.id]
            assert a2 <= b0 or b2 <= a0 or a3 <= b1 or b3 <= a1, (a.label, b.label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert viz._png_drawing(drawing, engine="python")[:4] == b"\x89PNG"


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
def test_graphviz_draws_the_frames(scoped):
    loss, _ = scoped
    svg = viz.draw_dot(loss, depth=2).pipe(format="svg", encoding="utf-8")
    assert svg.count('class="cluster"') == 2 and ">neuron</text>" in svg and ">sum</text>" in svg


@pytest.mark.skipif(not hasattr(backprop, "scope"), reason="backprop.scope is not in yet")
def test_with_backprop_scope_itself():
    x, w = Value(2.0, label="x"), Value(-3.0, label="w")
    with backprop.scope("layer"):
        with backprop.scope("neuron0"):
            h = (x * w).tanh()
        with backprop.scope("neuron1"):
            k = (x + w).relu()
    out = h + k
    out.backward()
    doc = json.loads(backprop.to_json(out, depth=2))
    assert {b["scope"] for b in doc["blocks"]} == {"layer/neuron0", "layer/neuron1"}
    assert backprop.to_dot(out, depth=1).count("subgraph") == 0
    assert "{ layer | 4 nodes | 2 outputs }" in backprop.to_dot(out, depth=1)


def test_an_unlabelled_leaf_used_in_one_scope_is_drawn_inside_it(monkeypatch):
    table: dict[int, str] = {}
    x = Value(1.0, label="x")  # labelled: an input, stays outside
    w0, w1 = Value(0.5), Value(-0.5)  # unlabelled, each used in one scope: its weights
    shared = Value(2.0)  # unlabelled but used in two scopes: stays outside
    a = x * w0 * shared
    b = x * w1 * shared
    for v in (a, *a._prev):
        table[id(v)] = "n0"
    for v in (b, *b._prev):
        table[id(v)] = "n1"
    for v in (w0, w1, x, shared):
        table.pop(id(v), None)
    out = a + b
    out.backward()
    monkeypatch.setattr(groups, "scope_of", lambda v: table.get(id(v), ""))
    g = groups.group(out, 1)
    assert g.block.get(id(w0)) == "n0" and g.block.get(id(w1)) == "n1"
    assert id(x) not in g.block and id(shared) not in g.block
    assert g.inputs["n0"] == [x, shared] and g.outputs["n0"] == [a]
    doc = json.loads(backprop.to_json(out, depth=1))
    w0_node = next(n for n in doc["nodes"] if n["data"] == 0.5)
    assert w0_node["scope"] == "" and w0_node["block"] is not None  # its own scope stays ''


@pytest.mark.skipif(not hasattr(backprop, "scope"), reason="backprop.scope is not in yet")
def test_an_mlp_at_each_depth():
    from backprop import MLP

    model = MLP(3, [4, 4, 1], seed=0)
    xs = [Value(1.0, label="x1"), Value(-2.0, label="x2"), Value(0.5, label="x3")]
    out = model(xs)
    out.backward()
    if not any(groups.scope_of(v) for v in out.topological_order()):
        pytest.skip("MLP opens no scopes yet")
    full = json.loads(backprop.to_json(out))["nodes"]
    for depth in (1, 2, 3):
        doc = json.loads(backprop.to_json(out, depth=depth))
        sizes = sum(b["size"] for b in doc["blocks"])
        drawn = [n for n in doc["nodes"] if n["block"] is None]
        assert sizes + len(drawn) == len(full)  # every node is in one box or drawn itself
        assert {n["label"] for n in drawn} >= {"x1", "x2", "x3"}
        assert not [n for n in drawn if not n["label"] and not n["inputs"]]  # weights inside
