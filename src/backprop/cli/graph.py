"""`backprop graph`: build a graph from an expression, backpropagate, and draw or export it.

    backprop graph "tanh(x1*w1 + x2*w2 + b)" --set x1=2 w1=-3 x2=0 w2=1 b=6.8813735870195432 \\
        --html neuron.html --svg neuron.svg

The expression is parsed safely (backprop.expr: an allow-list, never eval).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from pathlib import Path

from .common import CommandError, _output_path, _same_file, _write_output, shown

__all__ = ["add_graph_command", "run_graph"]

EPILOG = (
    "Allowed: numbers, variable names, + - * / **, unary -, and tanh exp log sigmoid relu "
    "sqrt abs sign. Parts separated by ';' name sub-expressions for the drawings and the page: "
    '"n = x1*w1 + x2*w2 + b; o = tanh(n)". Numbers print rounded to 4 decimals as the page '
    "shows them, with the exact float in brackets where it differs (-1.5 "
    "(-1.4999999999999993): floating-point rounding). Use '-' as PATH to write a text format "
    "(--dot, --mermaid, --json) to stdout."
)


def add_graph_command(sub) -> argparse.ArgumentParser:
    """Register the 'graph' command on the subparsers of the backprop command."""
    graph = sub.add_parser(
        "graph",
        help="draw an expression's graph and its gradients; a step-through page of backprop",
        description=(
            "Build the graph of an expression, run backward() from it, print the gradients "
            "and write drawings: a step-through HTML page, SVG or PNG, DOT, Mermaid or JSON."
        ),
        epilog=EPILOG,
    )
    graph.add_argument(
        "expression",
        help='e.g. "tanh(x1*w1 + x2*w2 + b)" or "n = x1*w1 + x2*w2 + b; o = tanh(n)" (quote it)',
    )
    graph.add_argument(
        "--set",
        dest="assignments",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="the value of each variable, e.g. --set x1=2 w1=-3",
    )
    graph.add_argument("--html", metavar="PATH", help="the step-through page of backward()")
    graph.add_argument("--svg", metavar="PATH", help="the graph as SVG, drawn as draw_dot does")
    graph.add_argument("--png", metavar="PATH", help="the graph as PNG")
    graph.add_argument("--dot", metavar="PATH", help="Graphviz DOT source")
    graph.add_argument("--mermaid", metavar="PATH", help="a Mermaid flowchart")
    graph.add_argument("--json", metavar="PATH", help="nodes, values, gradients and edges")
    graph.add_argument(
        "--layout",
        choices=("auto", "dot", "grandalf", "layered"),
        default="auto",
        help="how the HTML page places nodes (auto: Graphviz when installed, else Python)",
    )
    graph.add_argument(
        "--rankdir",
        choices=("auto", "LR", "TB", "RL", "BT"),
        default="auto",
        help="direction of --svg, --png, --dot and --mermaid drawings (auto: left to right "
        "when that fits a 1280x800 screen, else whichever draws the text larger)",
    )
    graph.set_defaults(run=run_graph)
    _accept_leading_minus(graph)
    return graph


def _accept_leading_minus(parser: argparse.ArgumentParser) -> None:
    """Let the expression start with '-' ("-x*y"), which argparse would take for an option.

    The graph command has no short options but -h, so any other word starting with a single
    '-' is the expression. This wraps argparse's (private) classifier of arguments; should it
    ever be missing, "-x*y" just needs a leading space, " -x*y", as with any argparse program.
    """
    classify = getattr(parser, "_parse_optional", None)
    if classify is None:  # pragma: no cover - every argparse so far has it
        return

    def parse_optional(arg_string):
        if arg_string.startswith("-") and not arg_string.startswith("--") and arg_string not in (
            "-", "-h"):  # fmt: skip
            return None  # a positional argument: the expression
        return classify(arg_string)

    parser._parse_optional = parse_optional


def _command_error(message: str) -> Exception:
    return CommandError(message)  # the command's one-line error, exit code 2


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parse_assignments(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise _command_error(f"--set expects NAME=VALUE, got {item!r}")
        try:
            value = float(text)
        except ValueError:
            raise _command_error(f"--set {name}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise _command_error(f"--set {name}: expected a finite number, got {text!r}")
        if name in values:
            raise _command_error(f"--set {name} is given twice")
        values[name] = value
    return values


# What each output's file name must end in; a text export may have any name but another
# output's (--dot x.png writes text under a picture's name).
_SUFFIXES = {
    "html": (".html", ".htm"),
    "svg": (".svg",),
    "png": (".png",),
    "dot": (".dot", ".gv"),
    "mermaid": (".mmd", ".mermaid"),
    "json": (".json",),
}
_TEXT_FORMATS = ("dot", "mermaid", "json")


def _output_paths(args: argparse.Namespace) -> dict[str, Path | str]:
    """Every requested output, checked before anything is computed or written."""
    paths: dict[str, Path | str] = {}
    for fmt, suffixes in _SUFFIXES.items():
        text = getattr(args, fmt)
        if not text:
            continue
        option = f"--{fmt}"
        if text == "-":
            if fmt not in _TEXT_FORMATS:
                raise _command_error(f"{option}: the {fmt.upper()} output is binary or a page: "
                                     "give a file name, not '-'")  # fmt: skip
            if "-" in paths.values():
                raise _command_error("only one output can go to standard output ('-')")
            paths[fmt] = "-"
            continue
        if Path(text).is_dir():
            raise _command_error(f"{option} {text!r} is a directory")
        suffix = Path(text).suffix.lower()
        if fmt in _TEXT_FORMATS:
            others = {s for f, ss in _SUFFIXES.items() if f != fmt for s in ss}
            allowed = suffix not in others
        else:
            allowed = suffix in suffixes
        if not allowed:
            raise _command_error(
                f"{option} {text!r}: the file name must end in {' or '.join(suffixes)}"
            )
        path = _output_path(option, text, (suffix,))
        for other, taken in paths.items():
            if taken != "-" and _same_file(path, taken):
                raise _command_error(f"--{other} and {option} name the same file {text!r}")
        paths[fmt] = path
    return paths


def _write(path: Path | str, content: str | bytes, what: str, option: str, out) -> None:
    if path == "-":
        sys.stdout.write(content)
        return
    _write_output(option, path, content)
    print(f"wrote {what}: {shown(path)}", file=out)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rounded(x: float) -> tuple[str, str]:
    """x as the step-through page shows it, and the exact float if that differs ('' if not)."""
    from ..viz.stepthrough.wording import fmt

    shown = fmt(x)
    return shown, "" if x == 0.0 or not math.isfinite(x) or float(shown) == x else repr(x)


def _print_numbers(expression: str, root, leaves: dict, out) -> None:
    """The result and every variable's gradient as the page shows them (4 decimals, or 4
    significant digits below 1), each with the exact float in brackets where it differs."""
    rows = [(name, *_rounded(leaf.grad)) for name, leaf in leaves.items()]
    shown, exact = _rounded(root.data)
    named = root.label if ";" in expression else _shorten(expression.strip())
    print(f"{named} = {shown}" + (f"  ({exact})" if exact else ""), file=out)
    if rows:
        print(f"gradients, d({_shorten(root.label, 40)})/d(variable):", file=out)
        width = max(len(name) for name, _, _ in rows)
        column = max(len(text) for _, text, _ in rows)
        for name, text, precise in rows:
            value = f"{text:<{column}}  ({precise})" if precise else text
            print(f"  {name:<{width}}  {value}", file=out)
    near = [
        (text, precise)
        for text, precise in [(shown, exact)] + [row[1:] for row in rows]
        if precise and abs(float(precise) - float(text)) <= 1e-12 * max(1.0, abs(float(text)))
    ]
    if exact or any(precise for _, _, precise in rows):
        why = f": {near[0][1]} is {near[0][0]} up to floating-point rounding" if near else ""
        print(f"(rounded as on the page; in brackets the float Python computed{why})", file=out)


def _build(args: argparse.Namespace, values: dict[str, float]):
    """(root, leaves) of the expression, or None after printing its error with a caret."""
    from ..viz.expr import ExpressionError, build, parse

    try:
        expression = parse(args.expression)
        unused = [name for name in values if name not in expression.variables]
        if unused:
            raise _command_error(
                f"--set {', '.join(unused)}: not a variable of the expression "
                f"(its variables: {', '.join(expression.variables) or 'none'})"
            )
        return build(expression, values)
    except ExpressionError as e:
        message = e.message
        if e.missing:
            message += f": give {'it' if len(e.missing) == 1 else 'them'} with --set " + " ".join(
                f"{name}=..." for name in e.missing
            )
        # the error line, then the expression with a caret under the spot (printed here:
        # the command's usual error is folded onto one line, which would misplace the caret)
        print(f"backprop graph: error: {message} (column {e.column + 1})", file=sys.stderr)
        for line in e.pointer().splitlines():
            print(f"  {line}", file=sys.stderr)
        return None


def _drawings(args, root, paths: dict, rankdir: str) -> list[tuple[str, str | bytes, str]]:
    """Every requested output as (format, content, what), made before anything is written."""
    from ..viz import GraphvizMissing, draw_dot, explain, to_dot, to_json, to_mermaid

    made = []
    notes: list[str] = []  # each said once: the same note comes for --svg and --png
    if "html" in paths:
        title = f"The backward pass of {_shorten(root.label, 60)}"
        page = explain(root, layout_engine=args.layout, title=title)
        made.append(("html", page.html, "the step-through page"))
    for fmt in ("svg", "png"):
        if fmt not in paths:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                dot = draw_dot(root, format=fmt, rankdir=rankdir, max_nodes=None)
                data = dot.pipe(format=fmt)
            except GraphvizMissing as e:
                raise _command_error(str(e)) from None
        for w in caught:  # e.g. the note that our own renderer stands in for Graphviz
            if str(w.message) not in notes:
                notes.append(str(w.message))
                print(f"note: {w.message}", file=sys.stderr)
        made.append((fmt, data, f"the {fmt.upper()} drawing"))
    exports = (
        ("dot", to_dot, "DOT"),
        ("mermaid", to_mermaid, "Mermaid"),
        ("json", to_json, "JSON"),
    )
    for fmt, export, name in exports:
        if fmt in paths:
            text = export(root) if fmt == "json" else export(root, rankdir=rankdir)
            made.append((fmt, text, f"the {name} graph"))
    return made


def run_graph(args: argparse.Namespace) -> int:
    """Build, backpropagate, print the gradients and write the requested outputs."""
    from ..viz.draw import legible_rankdir

    values = _parse_assignments(args.assignments)
    paths = _output_paths(args)
    built = _build(args, values)
    if built is None:
        return 2
    root, leaves = built
    root.backward()
    out = sys.stderr if "-" in paths.values() else sys.stdout  # keep stdout clean for the export
    _print_numbers(args.expression, root, leaves, out)
    rankdir = args.rankdir
    if rankdir == "auto":
        drawn = {"svg", "png", "dot", "mermaid"} & set(paths)
        rankdir = legible_rankdir(root) if drawn else "LR"
    made = _drawings(args, root, paths, rankdir)  # everything is made first, then written
    for fmt, content, what in made:
        _write(paths[fmt], content, what, f"--{fmt}", out)
    return 0
