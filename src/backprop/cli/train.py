"""`backprop train`: an MLP trained on a built-in dataset or a CSV, through fit()'s own plan.

The command's steps: its outputs checked (before any work), the dataset loaded, the model and
fit's plan made (``backprop.train.plan_fit``, the checks fit makes), the set-up printed, the
loop run (``run_plan``), the result printed and the files written.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from ..data import MAX_CLASSES, MAX_SAMPLES, plural
from ..nn import ACTIVATIONS, MLP
from .common import (
    CommandError,
    _distinct_outputs,
    _integer,
    _nonnegative_float,
    _nonnegative_int,
    _output_path,
    _positive_float,
    _positive_int,
    quoted,
    shown,
)

__all__ = ["cmd_train", "add_train_command"]


def _fraction(text: str) -> float:
    x = _nonnegative_float(text)
    if not x < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return x


# The most epochs `backprop train` runs (the progress bar cannot count to 1e20, and a million
# epochs of the smallest data set already takes hours).
MAX_EPOCHS = 1_000_000


def _bounded(parse, maximum: int, limit: str):
    """An argparse type: parse(text), then at most ``maximum`` (the documented ``limit``)."""

    def check(text: str) -> int:
        n = parse(text)
        if n > maximum:
            raise argparse.ArgumentTypeError(
                f"expected at most {maximum:,} ({limit}), got {quoted(text)}"
            )
        return n

    return check


def _max_parameters() -> int:
    from ..serialize import MAX_PARAMETERS

    return MAX_PARAMETERS


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
    limit = _max_parameters()
    for a, b in zip([1] + sizes, sizes):  # each layer's weights (from at least one input)
        if a * b + b > limit:
            what = (
                f"layers of {a:,} and {b:,} hold" if a > 1 else f"a layer of {b:,} holds at least"
            )
            raise argparse.ArgumentTypeError(
                f"{what} {a * b + b:,} parameters, over the limit of "
                f"{limit:,} (backprop.serialize.MAX_PARAMETERS), got {quoted(text)}"
            )
    return sizes


def _image_shape(text: str) -> tuple[int, int]:
    """'8x8' -> (8, 8): rows x columns of positive integers."""
    rows, x, columns = text.lower().partition("x")
    try:
        shape = (int(rows), int(columns)) if x else None
    except ValueError:
        shape = None
    if shape is None or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLUMNS such as 8x8, got {text!r}")
    return shape


def cmd_train(args: argparse.Namespace) -> int:
    """Train an MLP classifier on a built-in 2-D dataset or your own CSV file.

    Built-in datasets: moons, circles, spiral, xor, blobs, toy (the notebook's 4 points), and
    digits (8x8 handwritten digits, shipped: trained on its training split, then tested on its
    test split). A CSV holds numeric feature columns and a label column (the last by default;
    see --label-column); its labels may be anything (0/1, -1/1, names). Example:

      backprop train --dataset moons --hidden 16,16 --activation relu --loss hinge
                     --optimizer sgd --lr 1.0 --epochs 100 --seed 1 --save model.json
                     --plot moons.png
    """
    from ..train import run_plan

    csv_file = _is_csv(args.dataset)
    outputs = _train_outputs(args, csv_file)
    dataset = _load_dataset(args, csv_file)
    scaling = _input_scaling(args, dataset, csv_file)
    X = dataset.X if scaling is None else scaling.X
    record = outputs["--explore"] is not None
    pixels = scaling is None and args.standardize is not False  # fit's scaling of images
    model, plan = _plan_training(args, dataset, X, record, scale_pixels=pixels)
    _print_setup(args, dataset, model, plan, scaling)
    history = run_plan(model, plan, progress=not args.quiet)  # folds image scaling itself
    if scaling is not None:
        from ..train import fold_standardization

        fold_standardization(model, scaling.mean, scaling.std)  # the saved model takes raw rows
    _print_result(args, history)
    _print_test(args, model, history)
    _write_train_outputs(args, outputs, dataset, model, history, scaling)
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
        data = get_dataset(args.dataset, **_generator_options(args))
        if args.noise and not all(math.isfinite(v) for row in data.X for v in row):
            raise CommandError(
                f"--noise {args.noise:g} is too big: the {args.dataset} points it makes overflow "
                "to infinity"
            )
        return data
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


@dataclass
class Scaling:
    """Inputs scaled while training, then folded into the first layer: (x - mean) / std."""

    X: list
    mean: list[float]
    std: list[float]
    said: str  # the set-up line that says so
    suffix: str  # after a feature's name in the explorer


def _input_scaling(args: argparse.Namespace, dataset, csv_file: bool) -> Scaling | None:
    """--standardize (the default for a CSV, unless its rows are images); --no-standardize:
    raw inputs. Images (digits, --image-shape) are left to fit, which by default trains on the
    pixels scaled to about 0..1 by the largest value (backprop.train.pixel_scale) and folds
    that into the first layer, as image models are trained (per-pixel standardizing would blow
    up the nearly constant border pixels); --standardize still chooses that instead, and
    --no-standardize neither."""
    images = (args.image_shape or dataset.image_shape) is not None
    if args.standardize is False or (args.standardize is None and (images or not csv_file)):
        return None
    from ..data import standardize

    try:
        scaled, mean, std = standardize(dataset.X)
    except (ValueError, OverflowError) as e:
        raise CommandError(str(e)) from None
    said = "inputs standardized to mean 0, std 1 (folded into the first layer afterwards)"
    return Scaling(scaled, mean, std, said, " (standardized)")


def _pixels_said(plan, X) -> str | None:
    """The set-up line for fit's own scaling of image rows, or None without one."""
    scale = plan.input_scale
    if scale == 1.0:
        return None
    top = max(abs(x) for row in X for x in row)
    by = f"the largest value, {top:g}"
    if scale != top:
        by = f"{scale:g} ({by}, rounded up to a power of two: exact to fold)"
    return f"pixels scaled to 0..1 by {by} (folded into the first layer afterwards)"


def _plan_training(args: argparse.Namespace, dataset, X, record: bool, scale_pixels: bool):
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
        _check_parameters(dataset.n_features, sizes)
        activations = [args.activation] * len(args.hidden) + [args.output_activation]
        model = MLP(dataset.n_features, sizes, activation=activations, seed=args.seed)
        n = len(X)  # the training rows, for the default lr of minibatches (default_lr)
        held = min(n - 1, max(1, round(args.val_split * n))) if args.val_split and n > 1 else 0
        optimizer = make_optimizer(
            args.optimizer,
            model.parameters(),
            args.lr,
            batch_size=args.batch_size or 0,
            n_rows=n - held,
            **_optimizer_options(args),
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
            image_shape=args.image_shape or dataset.image_shape,
            scale_pixels=scale_pixels,
        )
    except (ValueError, TypeError, MissingDependency) as e:
        raise CommandError(str(e)) from None
    return model, plan


def _check_parameters(n_inputs: int, sizes: list[int]) -> None:
    """Refuse, before building it, a model over backprop.serialize.MAX_PARAMETERS (a model
    that could not be saved, and whose Values would fill the memory)."""
    count = sum(a * b + b for a, b in zip([n_inputs] + sizes, sizes))
    limit = _max_parameters()
    if count > limit:
        shape = ", ".join(str(n) for n in [n_inputs] + sizes)
        raise CommandError(
            f"the model ({shape}) would have {count:,} parameters, over the limit of "
            f"{limit:,} (backprop.serialize.MAX_PARAMETERS): use smaller --hidden layers"
        )


def _optimizer_options(args: argparse.Namespace) -> dict:
    if args.optimizer == "sgd":
        return {"momentum": args.momentum, "weight_decay": args.weight_decay or 0.0}
    if args.momentum:
        raise CommandError("--momentum applies to --optimizer sgd only")
    return {} if args.weight_decay is None else {"weight_decay": args.weight_decay}


def _print_setup(args: argparse.Namespace, dataset, model, plan, scaling) -> None:
    from ..train import labels_text

    print(
        f"dataset: {shown(dataset.name)} ({plural(len(dataset), 'row')}, "
        f"{plural(dataset.n_features, 'feature')}, classes {shown(labels_text(plan.classes))})"
    )
    print(f"model: {model}")
    batch = f"batches of {args.batch_size}" if args.batch_size else "full batch"
    print(
        f"training: {plan.objective.name} loss + {args.l2:g} * L2, {args.optimizer} lr "
        f"{plan.optimizer.lr:g}{'' if args.schedule == 'none' else f' ({args.schedule} schedule)'}"
        f", {plural(args.epochs, 'epoch')}, {batch}{_compiled_text(args)}"
    )
    said = scaling.said if scaling is not None else _pixels_said(plan, dataset.X)
    if said is not None:
        print(said)


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
    summary = f"training accuracy {history.accuracy[at]:.1%}, loss {_loss(history.loss[at])}"
    if history.val_accuracy:
        summary += (
            f"; validation accuracy {history.val_accuracy[at]:.1%}, "
            f"loss {_loss(history.val_loss[at])}"
        )
    print(summary)


def _loss(x: float) -> str:
    """A loss as the summary prints it: 4 decimals, or 4 significant digits when huge."""
    return f"{x:.4f}" if abs(x) < 1e6 else f"{x:.4g}"


def _test_split(name: str):
    """The test split of a shipped dataset that has one (digits), else None."""
    import inspect

    from ..data import DATASETS

    make = DATASETS.get(name)
    if make is None or "split" not in inspect.signature(make).parameters:
        return None
    return make(split="test")


def _print_test(args: argparse.Namespace, model, history) -> None:
    """Accuracy on the held-out test split of a dataset that has one: rows never trained on."""
    test = None if _is_csv(args.dataset) or not history.epochs else _test_split(args.dataset)
    if test is None:
        return
    from ..train import accuracy, predict

    predicted = predict(model, test.X, history.loss_name, history.classes)
    print(
        f"test accuracy {accuracy(predicted, test.y):.1%} on {shown(test.name)} ({len(test)} rows)"
    )


def _epoch(history) -> str:
    return (
        "none (the initial weights)" if history.best_epoch is None else str(history.best_epoch + 1)
    )


def _write_train_outputs(args, outputs, dataset, model, history, scaling) -> None:
    if outputs["--save"] is not None:
        _save_model(args, outputs["--save"], dataset, model, history)
    if outputs["--plot"] is not None and history.epochs:
        from ..viz.plot import no_boundary_reason, plot_training

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
        reason = no_boundary_reason(dataset.X)
        print(f"wrote the plot to {shown(outputs['--plot'])}" + (f" ({reason})" if reason else ""))
    if outputs["--explore"] is not None and history.snapshots:
        from ..viz.explorer import explore

        names = dataset.feature_names
        if scaling is not None:
            names = [name + scaling.suffix for name in names]
        explore(history, features=names).save(outputs["--explore"])
        print(
            f"wrote the training explorer to {shown(outputs['--explore'])} (open it in a browser)"
        )


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
    print(f"saved the model to {shown(path)}")


def add_train_command(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train an MLP on a built-in dataset or a CSV, then save it and plot the run",
        description=cmd_train.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_options(train.add_argument_group("data"))
    _model_options(train.add_argument_group("model"))
    training = train.add_argument_group("training")
    _training_options(training)
    _speed_options(training)
    _output_options(train.add_argument_group("output"))
    train.set_defaults(run=cmd_train)


def _data_options(data) -> None:
    from ..data import DATASETS

    data.add_argument(
        "--dataset",
        default="moons",
        metavar="NAME|PATH.csv",
        help=f"{', '.join(DATASETS)}, or a CSV file (moons)",
    )
    data.add_argument(
        "--samples",
        type=_bounded(_positive_int, MAX_SAMPLES, "backprop.data.MAX_SAMPLES"),
        help=f"rows to generate, at most {MAX_SAMPLES:,} (dataset's default: 100, spiral 150)",
    )
    data.add_argument(
        "--noise", type=_nonnegative_float, help="noise of a generated dataset (its default)"
    )
    data.add_argument(
        "--classes",
        type=_bounded(_positive_int, MAX_CLASSES, "backprop.data.MAX_CLASSES"),
        help="classes of spiral (3) or blobs (3)",
    )
    data.add_argument(
        "--image-shape",
        type=_image_shape,
        metavar="ROWSxCOLS",
        help="each row is an image of this shape, for the explorer (digits: 8x8)",
    )
    data.add_argument(
        "--label-column",
        default="-1",
        metavar="COL",
        help="a CSV's label column: an index (0 = first, -1 = last) or a header name (-1)",
    )


def _model_options(model) -> None:
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


def _training_options(opt) -> None:
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
        "--lr",
        type=_positive_float,
        help="learning rate (sgd 1.0, adam and adamw 0.05; with --batch-size B of N training "
        "rows, adam and adamw 0.05 * sqrt(B / N))",
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
    opt.add_argument(
        "--epochs",
        type=_bounded(_positive_int, MAX_EPOCHS, "backprop.cli.train.MAX_EPOCHS"),
        default=100,
        help=f"passes over the data, at most {MAX_EPOCHS:,} (100)",
    )
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


def _speed_options(opt) -> None:
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
        "first layer so the saved model takes raw rows (default: on for CSV files; images, "
        "such as digits, get their pixels scaled to 0..1 instead)",
    )


def _output_options(out) -> None:
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
