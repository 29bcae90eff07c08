"""The `backprop` command (also `python -m backprop`)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from ..data import plural
from ..engine import Value
from ..nn import ACTIVATIONS, MLP
from .common import (
    CommandError,
    _distinct_outputs,
    _integer,
    _nonnegative_float,
    _nonnegative_int,
    _output_path,
    _Parser,
    _positive_float,
    _positive_int,
    _write_output,
)
from .export import add_export_command
from .graph import add_graph_command

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
        print(f"wrote the notebook's neuron graph, o = tanh(x1*w1 + x2*w2 + b), to {graph_path}")
    return 0


# ---- train and predict ------------------------------------------------------------------------


def _fraction(text: str) -> float:
    x = _nonnegative_float(text)
    if not x < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return x


def _layer_sizes(text: str) -> list[int]:
    """'16,16' -> [16, 16]; 'none' -> [] (no hidden layer), the only spelling of a linear model:
    every size, '0' alone included, must be a positive integer."""
    if text.strip().lower() == "none":
        return []
    sizes = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(
                "expected comma-separated positive layer sizes such as 16,16 "
                f"('none' for a linear model), got {text!r}"
            )
        sizes.append(n)
    return sizes


def _label_text(label: object) -> str:
    return str(label)


def cmd_train(args: argparse.Namespace) -> int:
    """Train an MLP classifier on a built-in 2-D dataset or your own CSV file.

    Built-in datasets: moons, circles, spiral, xor, blobs, toy (the notebook's 4 points). A
    CSV holds numeric feature columns and a label column (the last by default; see
    --label-column); its labels may be anything (0/1, -1/1, names). Example:

      backprop train --dataset moons --hidden 16,16 --activation relu --loss hinge
                     --optimizer sgd --lr 1.0 --epochs 100 --seed 1 --save model.json
                     --plot moons.png
    """
    from ..train import run_plan

    csv_file = _is_csv(args.dataset)
    outputs = _train_outputs(args, csv_file)
    dataset = _load_dataset(args, csv_file)
    standardize = csv_file if args.standardize is None else args.standardize
    X, scaling = _scaled(dataset.X) if standardize else (dataset.X, None)
    model, plan = _plan_training(args, dataset, X, record=outputs["--explore"] is not None)
    _print_setup(args, dataset, model, plan, standardized=scaling is not None)
    history = run_plan(model, plan, progress=not args.quiet)
    if scaling is not None:
        from ..train import fold_standardization

        fold_standardization(model, *scaling)  # the saved model takes raw rows
    _print_result(args, history)
    _write_train_outputs(args, outputs, dataset, model, history, standardized=standardize)
    return 130 if history.interrupted else 0


def _is_csv(name: str) -> bool:
    from ..data import DATASETS

    return name not in DATASETS and (name.lower().endswith(".csv") or Path(name).is_file())


def _train_outputs(args: argparse.Namespace, csv_file: bool) -> dict[str, Path | None]:
    """--save, --plot and --explore checked before any work: writable, not the CSV read, no
    symbolic link, no two of them one file."""
    inputs = [("--dataset", args.dataset)] if csv_file else []
    outputs = {
        "--save": _output_path("--save", args.save, (".json",), inputs),
        "--plot": _output_path("--plot", args.plot, (".png",), inputs),
        "--explore": _output_path("--explore", args.explore, (".html",), inputs),
    }
    _distinct_outputs(outputs.items())
    return outputs


def _load_dataset(args: argparse.Namespace, csv_file: bool):
    """The CSV file or the generated dataset the options name (a CommandError if they clash)."""
    from ..data import CSVError, get_dataset, load_csv

    try:
        if csv_file:
            for option, value in (("--samples", args.samples), ("--noise", args.noise)):
                if value is not None:
                    raise CommandError(f"{option} applies to generated datasets, not to a CSV")
            if args.classes is not None:
                raise CommandError("--classes applies to spiral and blobs, not to a CSV")
            label_column: int | str = args.label_column
            try:
                label_column = int(label_column)
            except ValueError:
                pass
            return load_csv(args.dataset, label_column=label_column)
        if args.label_column != "-1":
            raise CommandError("--label-column applies to CSV files only")
        return get_dataset(args.dataset, **_generator_options(args))
    except (CSVError, ValueError, TypeError) as e:
        raise CommandError(str(e)) from None


def _generator_options(args: argparse.Namespace) -> dict:
    options = {"n_samples": args.samples, "noise": args.noise}
    if args.dataset == "spiral":
        options["classes"] = args.classes
    elif args.dataset == "blobs":
        options["centers"] = args.classes
    elif args.classes is not None:
        raise CommandError(f"--classes applies to spiral and blobs, not to {args.dataset}")
    if args.dataset == "toy" and args.samples is None and args.noise is None:
        return {}
    return {**options, "seed": args.seed}


def _scaled(X):
    from ..data import standardize

    try:
        scaled, mean, std = standardize(X)
    except (ValueError, OverflowError) as e:
        raise CommandError(str(e)) from None
    return scaled, (mean, std)


def _plan_training(args: argparse.Namespace, dataset, X, record: bool):
    """The model and fit's plan (backprop.train.plan_fit: the checks fit makes), or a
    CommandError before anything is printed."""
    from .._optional import MissingDependency
    from ..train import make_optimizer, make_schedule, plan_fit, resolve_task

    if args.backend is not None and not args.compile:  # the flags' own grammar
        raise CommandError("--backend applies to --compile: add --compile")
    if args.device is not None and args.backend != "torch":
        raise CommandError("--device applies to --compile --backend torch")
    try:
        classes, objective = resolve_task(dataset.y, dataset.classes, args.loss)
        sizes = args.hidden + [objective.n_outputs(len(classes))]
        activations = [args.activation] * len(args.hidden) + [args.output_activation]
        model = MLP(dataset.n_features, sizes, activation=activations, seed=args.seed)
        optimizer = make_optimizer(
            args.optimizer, model.parameters(), args.lr, **_optimizer_options(args)
        )
        plan = plan_fit(
            model,
            X,
            dataset.y,
            loss=objective,
            optimizer=optimizer,
            epochs=args.epochs,
            batch_size=args.batch_size,
            l2=args.l2,
            schedule=make_schedule(args.schedule, optimizer, args.epochs) or "none",
            classes=classes,
            validation_split=args.val_split,
            patience=args.patience,
            seed=args.seed,
            compile=(args.backend or True) if args.compile else False,
            device=args.device,
            record=record,
        )
    except (ValueError, TypeError, MissingDependency) as e:
        raise CommandError(str(e)) from None
    return model, plan


def _optimizer_options(args: argparse.Namespace) -> dict:
    if args.optimizer == "sgd":
        return {"momentum": args.momentum, "weight_decay": args.weight_decay or 0.0}
    if args.momentum:
        raise CommandError("--momentum applies to --optimizer sgd only")
    return {} if args.weight_decay is None else {"weight_decay": args.weight_decay}


def _print_setup(args: argparse.Namespace, dataset, model, plan, standardized: bool) -> None:
    from ..train import labels_text

    print(
        f"dataset: {dataset.name} ({plural(len(dataset), 'row')}, "
        f"{plural(dataset.n_features, 'feature')}, classes {labels_text(plan.classes)})"
    )
    print(f"model: {model}")
    batch = f"batches of {args.batch_size}" if args.batch_size else "full batch"
    print(
        f"training: {plan.objective.name} loss + {args.l2:g} * L2, {args.optimizer} lr "
        f"{plan.optimizer.lr:g}{'' if args.schedule == 'none' else f' ({args.schedule} schedule)'}"
        f", {plural(args.epochs, 'epoch')}, {batch}{_compiled_text(args)}"
    )
    if standardized:
        print("inputs standardized to mean 0, std 1 (folded into the first layer afterwards)")


def _compiled_text(args: argparse.Namespace) -> str:
    if not args.compile:
        return ""
    if args.backend is None:
        return ", compiled"
    return f", compiled with {args.backend}" + (f" on {args.device}" if args.device else "")


def _print_result(args: argparse.Namespace, history) -> None:
    if history.interrupted:
        print(f"interrupted: keeping the weights of epoch {_epoch(history)}")
    elif history.stopped_early:
        print(f"stopped early: no improvement for {plural(args.patience, 'epoch')}")
    if not history.epochs:
        return
    at = history.best_epoch if (history.interrupted or args.patience) else -1
    at = -1 if at is None else at
    summary = f"training accuracy {history.accuracy[at]:.1%}, loss {history.loss[at]:.4f}"
    if history.val_accuracy:
        summary += (
            f"; validation accuracy {history.val_accuracy[at]:.1%}, loss {history.val_loss[at]:.4f}"
        )
    print(summary)


def _epoch(history) -> str:
    return (
        "none (the initial weights)" if history.best_epoch is None else str(history.best_epoch + 1)
    )


def _write_train_outputs(args, outputs, dataset, model, history, standardized: bool) -> None:
    if outputs["--save"] is not None:
        _save_model(args, outputs["--save"], dataset, model, history)
    if outputs["--plot"] is not None and history.epochs:
        from ..viz.plot import plot_training

        try:
            plot_training(
                history,
                model,
                dataset.X,
                dataset.y,
                path=outputs["--plot"],
                feature_names=dataset.feature_names,
            )
        except OSError as e:
            raise CommandError(f"--plot: cannot write {args.plot!r}: {e.strerror or e}") from None
        print(f"wrote the plot to {outputs['--plot']}")
    if outputs["--explore"] is not None and history.snapshots:
        from ..viz.explorer import explore

        names = dataset.feature_names
        if standardized:
            names = [f"{name} (standardized)" for name in names]
        explore(history, features=names).save(outputs["--explore"])
        print(f"wrote the training explorer to {outputs['--explore']} (open it in a browser)")


def _save_model(args, path: Path, dataset, model, history) -> None:
    from .. import serialize

    metadata = {
        "loss": history.loss_name,
        "classes": history.classes,
        "feature_names": dataset.feature_names,
        "label_name": dataset.label_name,
        "label_column": dataset.label_column,
        "dataset": args.dataset,
        "epochs_trained": history.epochs,
    }
    try:
        serialize.save(model, path, metadata=metadata)
    except ValueError as e:  # diverged weights (nan) are not saved
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError(f"--save: cannot write {args.save!r}: {e.strerror or e}") from None
    print(f"saved the model to {path}")


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict a class for every row of a CSV with a model saved by `backprop train --save`.

    The CSV holds the model's feature columns (a header row is optional; a label column like
    the training file's is ignored). Output: a CSV with the predicted label, in the training
    data's vocabulary, and the model's raw scores.
    """
    from ..data import CSVError, read_features_csv
    from ..serialize import ModelFileError, load, load_metadata, prediction_task
    from ..train import get_objective, predict_outputs

    inputs = [("--data", args.data), ("--model", args.model)]
    out_path = _output_path("--out", args.out, (".csv",), inputs) if args.out else None
    try:
        model = load(args.model)
        metadata = load_metadata(args.model)
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
    if out_path is None:
        sys.stdout.write(buffer.getvalue())
    else:
        _write_output("--out", out_path, buffer.getvalue())
        print(f"wrote {plural(len(rows), 'prediction')} to {out_path}")
    return 0


def _add_train_command(sub) -> None:
    from ..data import DATASETS

    train = sub.add_parser(
        "train",
        help="train an MLP on a built-in dataset or a CSV, then save it and plot the run",
        description=cmd_train.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="moons",
        metavar="NAME|PATH.csv",
        help=f"{', '.join(DATASETS)}, or a CSV file (moons)",
    )
    data.add_argument(
        "--samples",
        type=_positive_int,
        help="rows to generate (dataset's default: 100, spiral 150)",
    )
    data.add_argument(
        "--noise", type=_nonnegative_float, help="noise of a generated dataset (its default)"
    )
    data.add_argument("--classes", type=_positive_int, help="classes of spiral (3) or blobs (3)")
    data.add_argument(
        "--label-column",
        default="-1",
        metavar="COL",
        help="a CSV's label column: an index (0 = first, -1 = last) or a header name (-1)",
    )
    model = train.add_argument_group("model")
    model.add_argument(
        "--hidden",
        type=_layer_sizes,
        default=[16, 16],
        metavar="SIZES",
        help="hidden layer sizes, comma-separated; 'none' for a linear model (16,16)",
    )
    model.add_argument(
        "--activation", choices=list(ACTIVATIONS), default="relu", help="hidden layers (relu)"
    )
    model.add_argument(
        "--output-activation",
        choices=list(ACTIVATIONS),
        default="linear",
        help="output layer (linear: the losses expect raw scores)",
    )
    opt = train.add_argument_group("training")
    opt.add_argument(
        "--loss",
        choices=["mse", "hinge", "bce", "cross-entropy"],
        help="hinge, bce and mse take 2 classes, cross-entropy any number "
        "(default: hinge for 2 classes, else cross-entropy)",
    )
    opt.add_argument(
        "--optimizer", choices=["sgd", "adam", "adamw"], default="adam", help="update rule (adam)"
    )
    opt.add_argument(
        "--lr", type=_positive_float, help="learning rate (sgd 1.0, adam and adamw 0.05)"
    )
    opt.add_argument("--momentum", type=_nonnegative_float, default=0.0, help="sgd momentum (0)")
    opt.add_argument(
        "--weight-decay",
        type=_nonnegative_float,
        help="optimizer weight decay (sgd, adam: 0; adamw: 0.01)",
    )
    opt.add_argument(
        "--l2", type=_nonnegative_float, default=1e-4, help="L2 penalty alpha * sum(p^2) (1e-4)"
    )
    opt.add_argument(
        "--schedule",
        choices=["none", "linear", "step", "cosine"],
        default="none",
        help="learning-rate schedule over the epochs; linear decays to 0.1 lr (none)",
    )
    opt.add_argument("--epochs", type=_positive_int, default=100, help="passes over the data (100)")
    opt.add_argument(
        "--batch-size", type=_nonnegative_int, default=0, help="rows per step; 0 = full batch (0)"
    )
    opt.add_argument(
        "--val-split", type=_fraction, default=0.0, help="fraction held out for validation (0)"
    )
    opt.add_argument(
        "--patience", type=_positive_int, help="stop after this many epochs without improvement"
    )
    opt.add_argument(
        "--seed", type=_integer, default=0, help="seed for data, weights, shuffling (0)"
    )
    opt.add_argument(
        "--compile",
        action="store_true",
        help="trace the loss graph once per batch size and replay it with numpy: the same "
        "training to rounding, many times faster",
    )
    opt.add_argument(
        "--backend",
        choices=["numpy", "torch", "python"],
        help="with --compile: replay with numpy (the default), torch, or plain Python",
    )
    opt.add_argument(
        "--device",
        metavar="cpu|cuda",
        help="with --compile --backend torch: where torch runs (cpu)",
    )
    opt.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="scale inputs to mean 0, std 1 while training, then fold the scaling into the "
        "first layer so the saved model takes raw rows (default: on for CSV files)",
    )
    out = train.add_argument_group("output")
    out.add_argument("--save", metavar="PATH.json", help="save the trained model as JSON")
    out.add_argument(
        "--plot", metavar="PATH.png", help="plot loss, accuracy and the decision boundary"
    )
    out.add_argument(
        "--explore",
        metavar="PATH.html",
        help="write a page to watch the run learn: boundary, neurons, any point's backward pass",
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)


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
    demo.add_argument("--steps", type=_positive_int, default=100, help="gradient steps (100)")
    demo.add_argument("--lr", type=_positive_float, default=0.1, help="step size (0.1)")
    demo.add_argument("--seed", type=_integer, default=0, help="random seed for the weights (0)")
    demo.add_argument(
        "--graph",
        default="neuron.svg",
        metavar="PATH",
        help="where to draw the neuron's graph, .svg or .png (neuron.svg); '' to skip",
    )
    demo.set_defaults(run=cmd_demo)
    _add_train_command(sub)
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
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
