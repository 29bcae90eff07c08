"""The `backprop` command (also `python -m backprop`)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from ..data import plural
from ..engine import Value
from ..nn import MLP
from .common import (
    CommandError,
    _integer,
    _output_path,
    _Parser,
    _positive_float,
    _positive_int,
    _write_output,
    path_error,
    shown,
)
from .export import add_export_command
from .graph import add_graph_command
from .train import MAX_EPOCHS, _bounded, add_train_command

__all__ = ["main", "build_parser"]

# The notebook's 4-point toy set: three inputs and a +-1 target each.
TOY_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
TOY_YS = [1.0, -1.0, -1.0, 1.0]


def neuron_graph() -> Value:
    """The notebook's single neuron, o = tanh(x1*w1 + x2*w2 + b), after o.backward()."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    s = x1w1 + x2w2
    s.label = "x1*w1 + x2*w2"
    n = s + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def _write_graph(root: Value, path: Path) -> None:
    from ..viz.draw import GraphvizMissing, draw_dot

    fmt = path.suffix.lstrip(".").lower()  # .svg or .png, checked by _output_path
    dot = draw_dot(root, format=fmt)
    try:
        data = dot.pipe(format=fmt)
    except GraphvizMissing as e:
        raise CommandError(str(e)) from None
    _write_output("--graph", path, data)


def cmd_demo(args: argparse.Namespace) -> int:
    """The notebook's training: MLP(3, [4, 4, 1]) on its 4 points by plain gradient descent."""
    graph_path = _output_path("--graph", args.graph or None, (".svg", ".png"))
    random.seed(args.seed)
    model = MLP(3, [4, 4, 1])
    print(f"model: {model}")
    print(
        f"training on the notebook's 4 points: {plural(args.steps, 'step')} of gradient descent, "
        f"lr {args.lr}"
    )
    every = max(1, args.steps // 10)
    for k in range(args.steps):
        ypred = [model(x) for x in TOY_XS]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(TOY_YS, ypred))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data += -args.lr * p.grad
        if k % every == 0 or k == args.steps - 1:
            print(f"step {k:4d}  loss {loss.data:.6f}")
    preds = [model(x).data for x in TOY_XS]
    print("predictions vs targets:")
    for x, y, p in zip(TOY_XS, TOY_YS, preds):
        print(f"  {x!s:20}  target {y:+.1f}  prediction {p:+.4f}")
    if graph_path is not None:
        _write_graph(neuron_graph(), graph_path)
        what = "the notebook's neuron graph, o = tanh(x1*w1 + x2*w2 + b)"
        print(f"wrote {what}, to {shown(graph_path)}")
    return 0


# ---- predict ----------------------------------------------------------------------------------


def _label_text(label: object) -> str:
    return str(label)


def _for_terminal(text: str) -> str:
    """CSV text for a terminal: each line's unprintable characters escaped."""
    return "".join(shown(line) + "\n" for line in text.splitlines())


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict a class for every row of a CSV with a model saved by `backprop train --save`.

    The CSV holds the model's feature columns (a header row is optional; a label column like
    the training file's is ignored). Output: a CSV with the predicted label, in the training
    data's vocabulary, and the model's raw scores.
    """
    from ..data import CSVError, read_features_csv
    from ..serialize import ModelFileError, load_with_metadata, prediction_task
    from ..train import get_objective, predict_outputs

    inputs = [("--data", args.data), ("--model", args.model)]
    out_path = _output_path("--out", args.out, (".csv",), inputs) if args.out else None
    try:
        model, metadata = load_with_metadata(args.model)
        loss, classes = prediction_task(args.model, model.sizes[-1], metadata)
    except ModelFileError as e:
        raise CommandError(str(e)) from None
    objective = get_objective(loss)
    # train --save keeps the training columns: their names, and where the label was in a CSV
    # (null for a built-in dataset). A model saved from Python may have neither.
    label_column = metadata.get("label_column", -1)
    if isinstance(label_column, bool) or not isinstance(label_column, int):
        label_column = None
    names = metadata.get("feature_names")
    if not (
        isinstance(names, list)
        and len(names) == model.sizes[0]
        and all(isinstance(n, str) for n in names)
    ):
        names = None
    label_name = metadata.get("label_name")
    try:
        X = read_features_csv(
            args.data,
            model.sizes[0],
            label_column=label_column,
            feature_names=names,
            label_name=label_name if isinstance(label_name, str) else "label",
        )
    except CSVError as e:
        raise CommandError(str(e)) from None
    outputs = predict_outputs(model, X)
    if objective.binary:
        header = ["prediction", "score"]
        rows = [[_label_text(classes[objective.predict(o)]), repr(o)] for o in outputs]
    else:
        header = ["prediction"] + [f"score_{_label_text(c)}" for c in classes]
        rows = [
            [_label_text(classes[objective.predict(o)])] + [repr(v) for v in o] for o in outputs
        ]
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if out_path is None:  # the CSV as it is, unless a terminal shows it (escape codes in labels)
        text = buffer.getvalue()
        sys.stdout.write(_for_terminal(text) if sys.stdout.isatty() else text)
    else:
        _write_output("--out", out_path, buffer.getvalue())
        print(f"wrote {plural(len(rows), 'prediction')} to {shown(out_path)}")
    return 0


def _add_predict_command(sub) -> None:
    predict = sub.add_parser(
        "predict",
        help="predict a class for every row of a CSV with a saved model",
        description=cmd_predict.__doc__,
    )
    predict.add_argument(
        "--model", required=True, metavar="PATH.json", help="a model saved by train --save"
    )
    predict.add_argument("--data", required=True, metavar="PATH.csv", help="rows to predict")
    predict.add_argument(
        "--out", metavar="PATH.csv", help="write the predictions here (default: standard output)"
    )
    predict.set_defaults(run=cmd_predict)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("backprop-toolkit")  # the distribution name (pyproject.toml)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="A scalar autograd engine and backprop teaching toolkit.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train the notebook's MLP on its 4 points and draw a neuron's graph",
        description=cmd_demo.__doc__,
    )
    demo.add_argument(
        "--steps",
        type=_bounded(_positive_int, MAX_EPOCHS, "backprop.cli.train.MAX_EPOCHS"),
        default=100,
        help=f"gradient steps, at most {MAX_EPOCHS:,} (100)",
    )
    demo.add_argument("--lr", type=_positive_float, default=0.1, help="step size (0.1)")
    demo.add_argument("--seed", type=_integer, default=0, help="random seed for the weights (0)")
    demo.add_argument(
        "--graph",
        default="neuron.svg",
        metavar="PATH",
        help="where to draw the neuron's graph, .svg or .png (neuron.svg); '' to skip",
    )
    demo.set_defaults(run=cmd_demo)
    add_train_command(sub)
    _add_predict_command(sub)
    add_graph_command(sub)
    add_export_command(sub)
    return parser


MAX_MESSAGE = 1000  # characters of an error: a message may quote the user's input


def _one_line(message: str) -> str:
    """An error message as one line of bounded length (the middle cut, if need be)."""
    message = " ".join(message.splitlines())
    if len(message) <= MAX_MESSAGE:
        return message
    half = MAX_MESSAGE // 2
    return f"{message[:half]} ... ({len(message):,} characters in all) ... {message[-half // 2 :]}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CommandError as e:
        print(f"backprop {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as e:
        # a path the checks did not reach: a name too long, a loop of links (pathlib's
        # resolve() raises RuntimeError for one), a folder it may not read. Any other
        # RuntimeError is a bug: its traceback is kept.
        if isinstance(e, RuntimeError) and not str(e).startswith("Symlink loop"):
            raise
        message = str(path_error(e))
        print(f"backprop {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
