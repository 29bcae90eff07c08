"""The `backprop` command (also `python -m backprop`)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from .engine import Value
from .graph_cli import add_graph_command
from .nn import MLP

__all__ = ["main", "build_parser"]

# The notebook's 4-point toy set: three inputs and a +-1 target each.
TOY_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
TOY_YS = [1.0, -1.0, -1.0, 1.0]


class CommandError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, as argparse does but shorter
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return x


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
    from .viz import GraphvizMissing, draw_dot

    fmt = path.suffix.lstrip(".").lower() or "svg"
    dot = draw_dot(root, format=fmt)
    try:
        data = dot.pipe(format=fmt)
    except GraphvizMissing as e:
        raise CommandError(str(e)) from None
    path.write_bytes(data)


def cmd_demo(args: argparse.Namespace) -> int:
    """The notebook's training: MLP(3, [4, 4, 1]) on its 4 points by plain gradient descent."""
    random.seed(args.seed)
    model = MLP(3, [4, 4, 1])
    print(f"model: {model}")
    print(
        f"training on the notebook's 4 points: {args.steps} steps of gradient descent, lr {args.lr}"
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
    if args.graph:
        path = Path(args.graph)
        _write_graph(neuron_graph(), path)
        print(f"wrote the notebook's neuron graph, o = tanh(x1*w1 + x2*w2 + b), to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="A scalar autograd engine and backprop teaching toolkit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train the notebook's MLP on its 4 points and draw a neuron's graph",
        description=cmd_demo.__doc__,
    )
    demo.add_argument("--steps", type=_positive_int, default=100, help="gradient steps (100)")
    demo.add_argument("--lr", type=_positive_float, default=0.1, help="step size (0.1)")
    demo.add_argument("--seed", type=int, default=0, help="random seed for the weights (0)")
    demo.add_argument(
        "--graph",
        default="neuron.svg",
        metavar="PATH",
        help="where to draw the neuron's graph, .svg or .png (neuron.svg); '' to skip",
    )
    demo.set_defaults(run=cmd_demo)
    add_graph_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CommandError as e:
        print(f"backprop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
