"""`backprop graph`: outputs, printed gradients, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from backprop.cli import main
from backprop.viz import draw as viz

NEURON = ["tanh(x1*w1 + x2*w2 + b)", "--set", "x1=2", "w1=-3", "x2=0", "w2=1",
          "b=6.8813735870195432"]  # fmt: skip


def run(capsys, *argv):
    code = main(["graph", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_neuron_prints_result_and_gradients(capsys):
    code, out, err = run(capsys, *NEURON)
    assert code == 0 and err == ""
    lines = out.splitlines()
    # rounded as the page shows numbers, the exact float in brackets where it differs
    assert lines[0] == "tanh(x1*w1 + x2*w2 + b) = 0.7071  (0.7071067811865477)"
    grads = {line.split()[0]: line.split()[1:] for line in lines[2:7]}
    assert set(grads) == {"x1", "w1", "x2", "w2", "b"}
    assert grads["x1"][0] == "-1.5" and float(grads["x1"][1].strip("()")) == pytest.approx(-1.5)
    assert grads["w2"] == ["0.0"]  # exact: nothing in brackets
    assert lines[7] == (
        "(rounded as on the page; in brackets the float Python computed: "
        "-1.4999999999999993 is -1.5 up to floating-point rounding)"
    )


def test_numbers_rounded_like_the_page_and_exact_where_it_differs(capsys):
    from backprop.viz.stepthrough.wording import fmt

    code, out, _ = run(capsys, "x*y", "--set", "x=3", "y=0.001234567")
    lines = out.splitlines()
    assert lines[0] == f"x*y = {fmt(3 * 0.001234567)}  ({3 * 0.001234567!r})"
    assert lines[2].split() == ["x", fmt(0.001234567), "(0.001234567)"]
    assert lines[3].split() == ["y", "3.0"]
    assert lines[4] == "(rounded as on the page; in brackets the float Python computed)"
    code, out, _ = run(capsys, "x*x + x", "--set", "x=3")
    assert out.splitlines() == ["x*x + x = 12.0", "gradients, d(x*x + x)/d(variable):", "  x  7.0"]


def test_writes_every_format(capsys, tmp_path):
    paths = {ext: tmp_path / f"neuron.{ext}" for ext in ("html", "svg", "png", "dot", "json")}
    mermaid = tmp_path / "neuron.mmd"
    code, out, _ = run(capsys, *NEURON, "--html", str(paths["html"]), "--svg", str(paths["svg"]),
                       "--png", str(paths["png"]), "--dot", str(paths["dot"]), "--json",
                       str(paths["json"]), "--mermaid", str(mermaid))  # fmt: skip
    assert code == 0
    page = paths["html"].read_text()
    assert "<!DOCTYPE html>" in page and "The backward pass of tanh(x1*w1 + x2*w2 + b)" in page
    ET.parse(paths["svg"])
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert paths["dot"].read_text().startswith("digraph {")
    doc = json.loads(paths["json"].read_text())
    assert [n["label"] for n in doc["nodes"]][-1] == "tanh(x1*w1 + x2*w2 + b)"
    assert mermaid.read_text().startswith("flowchart TB")  # --rankdir auto: too wide for LR
    for path in (*paths.values(), mermaid):
        assert "wrote the " in out and str(path) in out


def test_text_export_to_stdout_keeps_stdout_clean(capsys):
    code, out, err = run(capsys, "x*x + x", "--set", "x=3", "--json", "-")
    assert code == 0
    doc = json.loads(out)  # nothing but the JSON on stdout
    assert doc["nodes"][0]["grad"] == 7.0
    assert "x*x + x = 12.0" in err


def test_without_dot_svg_and_png_still_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(viz, "_fallback_warned", False)
    assert shutil.which("dot") is None
    svg, png, html = tmp_path / "n.svg", tmp_path / "n.png", tmp_path / "n.html"
    code, _, err = run(capsys, *NEURON, "--svg", str(svg), "--png", str(png), "--html",
                       str(html))  # fmt: skip
    assert code == 0
    assert "note: Graphviz's 'dot' program is not installed" in err
    assert "grad -1.5000" in svg.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "layout: grandalf" in html.read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["open(x)", "--set", "x=1"], "unknown function 'open'"),
        (["x.__class__"], "attribute access"),
        (["x*y", "--set", "x=1"], "no value for y: give it with --set y=..."),
        (["x*y"], "no value for x, y: give them with --set x=... y=..."),
        (["x", "--set", "x=1", "z=2"], "--set z: not a variable of the expression"),
        (["x", "--set", "x"], "--set expects NAME=VALUE, got 'x'"),
        (["x", "--set", "x=abc"], "--set x: expected a number, got 'abc'"),
        (["x", "--set", "x=nan"], "expected a finite number"),
        (["x", "--set", "x=1", "x=2"], "--set x is given twice"),
        (["x +", "--set", "x=1"], "syntax error"),
        (["x ** 99999", "--set", "x=1"], "exponent 99999 is too large"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    first, *rest = err.splitlines()
    assert first.startswith("backprop graph: error: ") and message in first
    if rest:  # the expression, and a caret under the spot
        assert len(rest) == 2 and rest[0] == "  " + argv[0] and rest[1].strip() == "^"


def test_caret_points_at_the_spot(capsys):
    _, _, err = run(capsys, "tanh(x) + open(x)", "--set", "x=1")
    lines = err.splitlines()
    assert lines[1] == "  tanh(x) + open(x)"
    assert lines[2] == "  " + " " * 10 + "^"
    assert "(column 11)" in lines[0]


def test_unwritable_output_is_a_clean_error(capsys, tmp_path):
    code, _, err = run(capsys, "x", "--set", "x=1", "--json", str(tmp_path / "no" / "x.json"))
    assert code == 2 and err.startswith("backprop graph: error: --json ")
    assert "does not exist" in err and len(err.splitlines()) == 1


def test_png_to_stdout_is_refused(capsys):
    code, _, err = run(capsys, "x", "--set", "x=1", "--png", "-")
    assert code == 2 and "binary" in err


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["graph"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "expression" in err


def test_the_installed_command(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "backprop",
            "graph",
            "tanh(a*b)",
            "--set",
            "a=1",
            "b=0.5",
            "--html",
            str(tmp_path / "p.html"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tanh(a*b) = 0.4621  (0.46211715726000974)")
    assert (tmp_path / "p.html").exists()


def test_expression_may_start_with_minus(capsys):
    code, out, _ = run(capsys, "-x*y", "--set", "x=1", "y=2")
    assert code == 0 and out.startswith("-x*y = -2.0")
    code, out, _ = run(capsys, "--set", "x=3", "--", "-x")
    assert code == 0 and out.startswith("-x = -3.0")


# ---- a careless user's first hour (issue 8) -----------------------------------------------------


def test_a_long_flat_sum_is_drawn_not_refused(capsys, tmp_path):
    text = "+".join(["x"] * 101)
    code, out, err = run(capsys, text, "--set", "x=2", "--json", str(tmp_path / "g.json"))
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.endswith("= 202.0") and len(first) < 100  # the echo is shortened
    assert "  x  101.0" in out.splitlines()
    longest = "+".join(["x"] * 1000)  # 1,999 characters, under the documented 2,000
    code, out, err = run(capsys, longest, "--set", "x=1")
    assert code == 0 and "  x  1000.0" in out.splitlines()


def test_a_long_expression_is_cut_in_the_message(capsys):
    text = "+".join(["x"] * 300) + "+ open(x)"
    code, _, err = run(capsys, text, "--set", "x=1")
    assert code == 2
    first, shown, caret = err.splitlines()
    assert "unknown function 'open'" in first and len(shown) < 90
    assert shown.strip().startswith("...") and shown[caret.index("^") :].startswith("open")


def test_the_caret_of_a_syntax_error_at_the_end(capsys):
    code, _, err = run(capsys, "x +", "--set", "x=1")
    assert code == 2
    lines = err.splitlines()
    assert "ends too early" in lines[0] and "(column 4)" in lines[0]
    assert lines[1:] == ["  x +", "     ^"]


@pytest.mark.parametrize(
    "option, name, message",
    [
        ("--png", "out.svg", "--png 'out.svg': the file name must end in .png"),
        ("--svg", "out.png", "--svg 'out.png': the file name must end in .svg"),
        ("--html", "page.svg", "--html 'page.svg': the file name must end in .html or .htm"),
        ("--json", "g.png", "--json 'g.png': the file name must end in .json"),
        ("--svg", "sub", "--svg 'sub' is a directory"),
        ("--html", "-", "give a file name, not '-'"),
    ],
)
def test_an_output_name_of_the_wrong_kind_is_refused(
    capsys, tmp_path, monkeypatch, option, name, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    code, out, err = run(capsys, "x*y", "--set", "x=1", "y=2", option, name)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_outputs_are_checked_before_anything_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "x", "--set", "x=1", "--dot", "g.txt", "--mermaid", "g.txt")
    assert code == 2 and "--dot and --mermaid name the same file 'g.txt'" in err
    code, _, err = run(capsys, "x", "--set", "x=1", "--html", "p.html", "--json", "no/g.json")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "x", "--set", "x=1", "--dot", "-", "--json", "-")
    assert code == 2 and "only one output can go to standard output" in err
    assert list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "x", "--set", "x=1", "--dot", "g.txt")  # any name for text
    assert code == 0 and (tmp_path / "g.txt").read_text().startswith("digraph")


def test_drawings_get_the_usual_mode(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        code, _, err = run(capsys, *NEURON, "--html", str(tmp_path / "n.html"),
                           "--svg", str(tmp_path / "n.svg"))  # fmt: skip
    finally:
        os.umask(old)
    assert code == 0, err
    assert {(p.name, p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {
        ("n.html", 0o644),
        ("n.svg", 0o644),
    }


def test_a_failing_output_writes_none_of_them(capsys, tmp_path, monkeypatch):
    import backprop.viz

    def no_graphviz(*args, **kwargs):
        raise viz.GraphvizMissing("the dot program is not installed")

    monkeypatch.setattr(backprop.viz, "draw_dot", no_graphviz)
    page, png = tmp_path / "n.html", tmp_path / "n.png"
    page.write_text("old page")
    code, _, err = run(capsys, *NEURON, "--html", str(page), "--png", str(png))
    assert code == 2 and "dot program is not installed" in err
    assert page.read_text() == "old page" and not png.exists()


def test_a_150_term_fan_out_is_drawn_at_once_and_says_how(capsys, tmp_path, monkeypatch):
    import backprop.viz.layout as layout_module

    def no_dot(*args, **kwargs):
        raise AssertionError("dot was run on a graph it would take minutes over")

    monkeypatch.setattr(viz.subprocess, "run", no_dot)
    monkeypatch.setattr(layout_module.subprocess, "run", no_dot)
    svg, html = tmp_path / "fan.svg", tmp_path / "fan.html"
    code, out, err = run(capsys, "+".join(["x"] * 150), "--set", "x=1", "--svg", str(svg),
                         "--html", str(html))  # fmt: skip
    assert code == 0 and "x  150.0" in out
    assert "note: this graph has about" in err and "drawn with backprop's own layout" in err
    assert svg.read_text().count('class="op"') == 149


def test_sign_is_accepted_as_the_readme_lists_it(capsys):
    code, out, _ = run(capsys, "sign(x) * y", "--set", "x=-2", "y=3")
    assert code == 0
    assert out.splitlines()[0] == "sign(x) * y = -3.0"


NAMED = ["n = x1*w1 + x2*w2 + b; o = tanh(n)", *NEURON[1:]]


def test_named_parts_label_the_drawings_and_the_page(capsys, tmp_path):
    dot, js = tmp_path / "n.dot", tmp_path / "n.json"
    code, out, err = run(capsys, *NAMED, "--dot", str(dot), "--json", str(js))
    assert code == 0, err
    assert out.splitlines()[0] == "o = 0.7071  (0.7071067811865477)"
    assert out.splitlines()[1] == "gradients, d(o)/d(variable):"
    labels = [node["label"] for node in json.loads(js.read_text())["nodes"]]
    assert labels[-2:] == ["n", "o"] and "x1*w1 + x2*w2" in labels
    assert "{ n | data 0.8814 | grad 0.5000 }" in dot.read_text()


def test_a_graph_too_wide_for_a_screen_is_drawn_top_to_bottom(capsys, tmp_path):
    dot, svg = tmp_path / "n.dot", tmp_path / "n.svg"
    code, _, _ = run(capsys, *NEURON, "--dot", str(dot), "--svg", str(svg))
    assert code == 0 and "rankdir=TB" in dot.read_text()
    root = ET.parse(svg).getroot()
    width = float(root.get("width").rstrip("pt"))
    height = float(root.get("height").rstrip("pt"))
    assert width < 1000 and height < 1300  # left to right it was 1846 x 210 pt
    # fitted to a 1280 x 800 screen, the 14 pt text stays above 8 px (it was 7 left to right)
    assert 14 * 4 / 3 * min(1280 / (width * 4 / 3), 800 / (height * 4 / 3)) > 8
    code, _, _ = run(capsys, *NEURON, "--dot", str(dot), "--rankdir", "LR")
    assert "rankdir=LR" in dot.read_text()
    code, _, _ = run(capsys, "x*y", "--set", "x=1", "y=2", "--dot", str(dot))
    assert "rankdir=LR" in dot.read_text()  # a small graph keeps the notebook's direction


def test_the_slow_layout_note_is_said_once_for_svg_and_png(capsys, tmp_path, monkeypatch):
    """The note came once per drawing: twice for --svg --png."""
    import backprop.viz.layout as layout_module

    def no_dot(*args, **kwargs):
        raise AssertionError("dot was run on a graph it would take minutes over")

    monkeypatch.setattr(viz.subprocess, "run", no_dot)
    monkeypatch.setattr(layout_module.subprocess, "run", no_dot)
    svg, png = tmp_path / "fan.svg", tmp_path / "fan.png"
    code, out, err = run(capsys, "+".join(["x"] * 150), "--set", "x=1", "--svg", str(svg),
                         "--png", str(png))  # fmt: skip
    assert code == 0 and svg.exists() and png.read_bytes()[:4] == b"\x89PNG"
    assert err.count("note: this graph has about") == 1, err


def test_an_output_name_with_a_newline_is_printed_escaped(capsys, tmp_path):
    svg = tmp_path / "a\nb\x1b[2K.svg"
    code, out, _ = run(capsys, "x*2", "--set", "x=1", "--svg", str(svg))
    assert code == 0 and svg.exists()
    assert "\x1b" not in out and f"{tmp_path}/a\\nb\\x1b[2K.svg\n" in out
