"""draw_dot (with and without Graphviz's dot program), the layouts, and the text exports."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import warnings
import xml.etree.ElementTree as ET

import pytest
from graphs import neuron as notebook_neuron_output

from backprop import MLP, Value
from backprop.viz import draw as viz
from backprop.viz.layout import layout

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")


def neuron() -> Value:
    """The notebook's neuron, o = tanh(x1*w1 + x2*w2 + b), after backward()."""
    o = notebook_neuron_output()
    o.backward()
    return o


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """Hide Graphviz's dot program (an empty PATH), and re-arm the one-time warning."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(viz, "_fallback_warned", False)
    assert shutil.which("dot") is None


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return struct.unpack(">II", data[16:24])


# ---- the DOT source ---------------------------------------------------------------------------


def test_records_show_label_data_grad_and_op_nodes():
    source = viz.draw_dot(neuron()).source
    assert re.search(r'label="\{ x1 \| data 2\.0000 \| grad -1\.5000 \}" shape=record', source)
    assert re.search(r'label="\{ o \| data 0\.7071 \| grad 1\.0000 \}"', source)
    assert source.count("shape=record") == 10
    assert "label=tanh" in source and source.count('label="*"') == 2
    assert source.count('label="+"') == 2
    # every op node feeds its result, every operand feeds the op node
    assert source.count("->") == 5 + 9


def test_reused_operand_keeps_both_edges():
    a = Value(3.0, label="a")
    source = viz.draw_dot(a * a).source
    assert source.count("n0 -> n1_op") == 2  # a*a: both operands drawn, unlike a set of edges


def test_special_characters_are_escaped():
    label = 'a"b{c}|<d>\\e & f\nnext'
    v = Value(1.0, label=label) * 2
    source = viz.draw_dot(v).source
    assert r"a\"b\{c\}\|\<d\>\\e & f next" in source
    if HAVE_DOT:  # and Graphviz accepts it, showing the text as written
        svg = viz.draw_dot(v).pipe(format="svg").decode()
        assert "a&quot;b{c}|&lt;d&gt;\\e &amp; f next" in svg


def test_bad_arguments():
    with pytest.raises(TypeError, match="expects a Value, got float"):
        viz.draw_dot(1.0)
    with pytest.raises(ValueError, match="rankdir must be one of"):
        viz.draw_dot(Value(1.0), rankdir="XY")
    with pytest.raises(ValueError, match="max_nodes"):
        viz.draw_dot(Value(1.0), max_nodes=0)


# ---- rendering with dot -------------------------------------------------------------------------


@needs_dot
def test_render_svg_and_png_files_with_dot(tmp_path):
    dot = viz.draw_dot(neuron())
    svg_path = dot.render(tmp_path / "neuron", format="svg")
    svg = open(svg_path, encoding="utf-8").read()
    ET.fromstring(svg)  # well-formed
    assert "data 0.7071" in svg and "grad &#45;1.5000" in svg.replace("-", "&#45;")
    png_path = dot.render(tmp_path / "neuron", format="png")
    width, height = png_size(open(png_path, "rb").read())
    assert width > 300 and height > 50


@needs_dot
def test_inline_display_with_dot():
    dot = viz.draw_dot(neuron())
    bundle = dot._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"] and "<svg" in bundle["image/svg+xml"]
    assert "<svg" in dot._repr_svg_()


# ---- the large-graph summary -------------------------------------------------------------------


def test_large_graph_is_summarised_not_hung():
    total = sum((Value(float(i)) * 2 for i in range(1500)), Value(0.0, label="start"))
    with pytest.warns(UserWarning, match=r"graph too large to read: showing the 50 nodes"):
        dot = viz.draw_dot(total, max_nodes=50)
    source = dot.source
    assert source.count("shape=record") == 50
    assert "nearest the output of 6001" in source and "+ \u00d71500" in source
    assert "\u2026 " in source and "more" in source  # the cut edges are marked
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        viz.draw_dot(total, max_nodes=None)  # asked for everything: no warning


# ---- without dot: our own renderer --------------------------------------------------------------


def test_svg_without_dot_is_our_own_drawing(no_dot):
    dot = viz.draw_dot(neuron())
    with pytest.warns(UserWarning, match="apt-get install graphviz"):
        svg = dot.pipe(format="svg").decode()
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for cell in ("x1", "data 2.0000", "grad -1.5000", "o", "data 0.7071", "grad 1.0000", "tanh"):
        assert cell in texts
    assert texts.count("*") == 2 and texts.count("+") == 2
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) >= 14  # edges + arrowhead


def test_warning_without_dot_is_given_once(no_dot):
    dot = viz.draw_dot(neuron())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dot.pipe(format="svg")
        dot.pipe(format="svg")
        dot._repr_mimebundle_()
    assert len(caught) == 1 and "full renderer" in str(caught[0].message)


def test_inline_display_without_dot(no_dot):
    dot = viz.draw_dot(neuron())
    with pytest.warns(UserWarning):
        bundle = dot._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert "grad -1.5000" in dot._repr_svg_()
    assert png_size(dot._repr_mimebundle_(include=["image/png"])["image/png"])[0] > 100


def test_render_files_without_dot(no_dot, tmp_path):
    dot = viz.draw_dot(neuron())
    with pytest.warns(UserWarning):
        svg_path = dot.render(tmp_path / "neuron", format="svg")
    assert svg_path.endswith("neuron.svg")
    ET.parse(svg_path)
    assert (tmp_path / "neuron").read_text().startswith("digraph")  # the source, as graphviz
    png_path = dot.render(outfile=tmp_path / "out" / "neuron.png")
    width, height = png_size(open(png_path, "rb").read())
    assert width > 300 and height > 50


def test_other_formats_without_dot_say_how_to_install(no_dot):
    dot = viz.draw_dot(neuron())
    with pytest.raises(viz.GraphvizMissing, match="brew install graphviz"):
        dot.pipe(format="pdf")


def test_escaping_in_our_svg(no_dot):
    v = Value(1.0, label="<script>&'\"") + 1
    with pytest.warns(UserWarning):
        svg = viz.draw_dot(v).pipe(format="svg").decode()
    ET.fromstring(svg)
    assert "<script>" not in svg and "&lt;script&gt;&amp;" in svg


def test_big_graph_without_dot_lays_out_fast(no_dot):
    import random

    random.seed(1)
    out = MLP(3, [16, 16, 1])([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning):
        svg = viz.draw_dot(out, max_nodes=None).pipe(format="svg").decode()
    assert svg.count('class="node"') == len(out.topological_order())


# ---- layouts -------------------------------------------------------------------------------------


def _check_layout(placed, sizes, edges):
    assert set(placed.positions) == set(sizes)
    for tail, head in edges:  # left to right: every edge points right
        assert placed.positions[tail][0] < placed.positions[head][0]
    boxes = [(x - sizes[n][0] / 2, y - sizes[n][1] / 2, x + sizes[n][0] / 2, y + sizes[n][1] / 2)
             for n, (x, y) in placed.positions.items()]  # fmt: skip
    for i, a in enumerate(boxes):  # no two boxes overlap
        for b in boxes[i + 1 :]:
            assert (
                a[2] <= b[0] + 0.5
                or b[2] <= a[0] + 0.5
                or a[3] <= b[1] + 0.5
                or (b[3] <= a[1] + 0.5)
            )
        assert a[0] >= -0.5 and a[1] >= -0.5
        assert a[2] <= placed.width + 0.5 and a[3] <= placed.height + 0.5


@pytest.mark.parametrize("engine", ["dot", "grandalf", "layered"])
def test_layout_engines(engine):
    if engine == "dot" and not HAVE_DOT:
        pytest.skip("Graphviz's dot program is not installed")
    sizes = {"a": (60, 20), "b": (40, 20), "c": (80, 30), "d": (50, 20), "e": (30, 30)}
    edges = [("a", "c"), ("b", "c"), ("c", "d"), ("a", "d"), ("d", "e"), ("a", "c")]
    placed = layout(sizes, edges, engine=engine)
    assert placed.engine == engine
    _check_layout(placed, sizes, edges)


def test_layout_auto_without_dot_uses_python(no_dot):
    sizes = {"a": (10, 10), "b": (10, 10)}
    assert layout(sizes, [("a", "b")]).engine == "grandalf"
    with pytest.raises(ValueError, match="engine must be"):
        layout(sizes, [], engine="neato")


# ---- text exports -------------------------------------------------------------------------------


def test_to_dot_is_the_draw_dot_source():
    o = neuron()
    assert viz.to_dot(o) == viz.draw_dot(o).source
    assert viz.to_dot(o).startswith("digraph {")


def test_to_json_round_trips_the_graph():
    o = neuron()
    doc = json.loads(viz.to_json(o))
    assert doc["format"] == "backprop-graph" and doc["root"] == doc["nodes"][-1]["id"]
    by_label = {n["label"]: n for n in doc["nodes"]}
    assert by_label["x1"]["grad"] == -1.4999999999999993 or math.isclose(
        by_label["x1"]["grad"], -1.5
    )
    assert by_label["o"]["op"] == "tanh" and by_label["o"]["op_name"] == "tanh"
    assert [doc["nodes"][int(i[1:])]["label"] for i in by_label["x1w1"]["inputs"]] == ["x1", "w1"]
    ids = [n["id"] for n in doc["nodes"]]
    for n in doc["nodes"]:  # inputs come first
        assert all(ids.index(i) < ids.index(n["id"]) for i in n["inputs"])


def test_to_json_escapes_and_handles_non_finite():
    a = Value(0.0, label='quote " back \\ newline \n')
    out = a.log()  # -inf
    doc = json.loads(viz.to_json(out))
    assert doc["nodes"][0]["label"] == 'quote " back \\ newline \n'
    assert doc["nodes"][1]["data"] == "-inf" and doc["nodes"][1]["name"] == "log1"
    b = Value(2.0) ** 3
    assert json.loads(viz.to_json(b))["nodes"][1]["arg"] == 3.0


def test_to_mermaid():
    a = Value(2.0, label='a"<b>|#;')
    text = viz.to_mermaid(a * a + a)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert lines[1] == '    n0["a#34;#60;b#62;#124;#35;#59; #124; data 2.0000 #124; grad 0.0000"]'
    assert '    n1_op(("*"))' in lines and "    n0 --> n1_op" in lines
    assert lines.count("    n0 --> n1_op") == 2
    for line in lines[1:]:  # nothing but entity codes inside the quotes
        inner = line.split('"')[1] if '"' in line else ""
        assert not set(inner) & set('"<>|#;') - {"#", ";"} or "#" in inner


def test_node_names_are_readable_and_unique():
    a, b = Value(1.0, label="a"), Value(2.0)
    c = a * b
    d = c + Value(3.0, label="a")
    names = viz.node_names(d.topological_order())
    assert sorted(names.values()) == sorted(["a", "v1", "mul1", "a#2", "add1"])
    taken = Value(1.0, label="v1") + Value(2.0)
    assert sorted(viz.node_names(taken.topological_order()).values()) == ["add1", "v1", "v2"]


# ---- bounded time for Graphviz (issue 17, item 8) ----------------------------------------------


def fan_out(terms: int) -> Value:
    """x+x+...+x: one value used by every '+' of a long chain, the case that keeps dot busy."""
    x = Value(1.0, label="x")
    total = x
    for _ in range(terms - 1):
        total = total + x
    total.backward()
    return total


def test_dot_bends_measure_fan_out():
    from backprop.viz.layout import DOT_BENDS_LIMIT, DOT_BOUNDED_FROM, dot_bends

    def bends(root):
        d = viz._drawing(root, "LR", None)
        return dot_bends([b.id for b in d.boxes], [e[:2] for e in d.edges])

    assert bends(neuron()) < DOT_BOUNDED_FROM
    assert bends(fan_out(150)) > DOT_BENDS_LIMIT
    assert bends(fan_out(20)) < bends(fan_out(40)) < bends(fan_out(150))
    # a chain has no long edges at all
    v = Value(1.0)
    for _ in range(50):
        v = v.tanh()
    assert bends(v) == 0


def test_a_fan_out_graph_is_drawn_without_dot(monkeypatch):
    def no_dot_run(*args, **kwargs):
        raise AssertionError(f"dot was run: {args}")

    monkeypatch.setattr(viz.subprocess, "run", no_dot_run)
    monkeypatch.setattr("backprop.viz.layout.subprocess.run", no_dot_run)
    dot = viz.draw_dot(fan_out(150), max_nodes=None)
    with pytest.warns(UserWarning, match=r"about [\d,]+ hidden bends .*DOT_BENDS_LIMIT"):
        svg = dot.pipe(format="svg", encoding="utf-8")
    root = ET.fromstring(svg)
    assert "Generated by graphviz" not in svg and root.get("font-family")  # our own renderer
    assert svg.count('class="op"') == 149
    with pytest.warns(UserWarning, match="hidden bends"):
        assert png_size(dot.pipe(format="png"))[0] > 0
    placed = layout(*_sizes_and_edges(fan_out(150)))
    assert placed.engine == "layered"  # not dot, nor grandalf (which is slow on long edges too)


def test_the_limits_are_read_from_layout_at_each_call(monkeypatch):
    """The warnings name backprop.viz.layout.DOT_BENDS_LIMIT and DOT_TIMEOUT as the knobs:
    setting them there changes what draw_dot does (draw.py once kept copies made at import)."""

    def no_dot_run(*args, **kwargs):
        raise AssertionError(f"dot was run: {args}")

    monkeypatch.setattr(viz.subprocess, "run", no_dot_run)
    monkeypatch.setattr(viz, "_dot_available", lambda: True)
    monkeypatch.setattr("backprop.viz.layout.DOT_BENDS_LIMIT", -1)  # every graph has too many
    with pytest.warns(UserWarning, match=r"DOT_BENDS_LIMIT \(-1\)"):
        svg = viz.draw_dot(neuron()).pipe(format="svg", encoding="utf-8")
    assert "Generated by graphviz" not in svg and "grad -1.5000" in svg


def _sizes_and_edges(root):
    d = viz._drawing(root, "LR", None)
    return {b.id: (40.0, 20.0) for b in d.boxes}, [e[:2] for e in d.edges]


@needs_dot
def test_dot_that_runs_too_long_falls_back_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setattr("backprop.viz.layout.DOT_TIMEOUT", 1e-9)  # every run of dot times out
    dot = viz.draw_dot(neuron())
    with pytest.warns(UserWarning, match=r"dot did not finish within 1e-09 s .*DOT_TIMEOUT"):
        svg = dot.pipe(format="svg", encoding="utf-8")
    assert "Generated by graphviz" not in svg and "grad -1.5000" in svg
    with pytest.warns(UserWarning, match="did not finish"):
        out = dot.render(outfile=tmp_path / "n.svg")
    assert out == str(tmp_path / "n.svg") and "grad -1.5000" in (tmp_path / "n.svg").read_text()
    assert (tmp_path / "n.gv").read_text() == dot.source


@needs_dot
def test_small_graphs_are_still_drawn_by_graphviz(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dot = viz.draw_dot(neuron())
        svg = dot.pipe(format="svg", encoding="utf-8")
        assert "Generated by graphviz" in svg
        out = dot.render(outfile=tmp_path / "n.svg")
    assert "Generated by graphviz" in (tmp_path / "n.svg").read_text() and out.endswith("n.svg")


def test_our_renderer_bows_long_edges_so_fan_out_is_visible():
    drawing = viz._drawing(fan_out(12), "LR", None)
    svg = viz.svg_drawing(drawing, "layered")
    root = ET.fromstring(svg)
    height = float(root.get("viewBox").split()[3])
    paths = [p.get("d") for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("d")]
    curves = [list(map(float, re.findall(r"-?\d+\.\d+", d))) for d in paths if " C" in d]
    bowed = [c for c in curves if min(c[3], c[5]) < min(c[1], c[7]) - 20]
    assert len(bowed) >= 9  # x's edges to the '+' nodes far along the chain arc over it
    # the arcs stay on the canvas: a cubic reaches 3/4 of the way to its control points
    assert all(0 <= 0.25 * (c[1] + c[7]) / 2 + 0.75 * min(c[3], c[5]) for c in curves)
    assert all(max(c[1], c[7]) < height for c in curves)


def test_a_huge_png_is_kept_within_what_viewers_open():
    from backprop.viz import render

    drawing = viz._drawing(fan_out(60), "LR", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = png_size(viz._png_drawing(drawing, engine="layered"))
        old = render.MAX_PNG_SIDE
        try:
            render.MAX_PNG_SIDE = full[0] // 2
            half = png_size(viz._png_drawing(drawing, engine="layered"))
        finally:
            render.MAX_PNG_SIDE = old
    assert max(half) <= full[0] // 2 + 1 and half[0] * 3 > full[0]
