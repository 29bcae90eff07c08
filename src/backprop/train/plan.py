"""The plan of a fit() run: every argument checked and resolved, before any training starts.

``plan_fit`` takes fit()'s arguments and returns a TrainingPlan (the classes and objective, the
training and validation rows as class indices, the optimizer and schedule, the compiled
backend ...) or raises a one-line ValueError. ``backprop train`` calls the same steps:
``resolve_task`` first (its model's output count depends on the objective), then ``plan_fit``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from ..data import Dataset, sorted_classes, train_test_split
from ..engine import Value
from ..nn import MLP, Module
from ..optim import SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, LRScheduler, Optimizer, StepLR
from .objectives import Objective, get_objective

__all__ = [
    "TrainingPlan",
    "plan_fit",
    "resolve_task",
    "make_optimizer",
    "default_lr",
    "pixel_scale",
    "make_schedule",
    "labels_text",
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULES",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
# Learning rates that train the built-in datasets in about 100 full-batch epochs; minibatches
# of adam and adamw get less (default_lr)
DEFAULT_LR = {"sgd": 1.0, "adam": 0.05, "adamw": 0.05}
ADAPTIVE = ("adam", "adamw")  # the optimizers whose default lr follows the batch size
SCHEDULES = ("none", "linear", "step", "cosine")


def default_lr(name: str, batch_size: int = 0, n_rows: int = 0) -> float:
    """The learning rate fit() uses for optimizer ``name`` when none is given.

    Full batch (``batch_size`` 0, or at least ``n_rows``): DEFAULT_LR[name]. Minibatches of
    adam and adamw: DEFAULT_LR[name] * sqrt(batch_size / n_rows), the square-root scaling
    rule for adaptive optimizers (Malladi et al., "On the SDEs and Scaling Rules for Adaptive
    Gradient Algorithms", 2022): a batch k times smaller has k times the gradient variance,
    and Adam's normalised steps take the same path with sqrt(k) times the steps of a
    sqrt(k) times smaller lr. Keeping 0.05 for batches of 32 out of 1,347 digits rows
    (0.0077 by the rule) leaves some one-hidden-layer MLPs under 95% on its test split
    (benchmarks/bench_digits_grid.py). sgd keeps DEFAULT_LR at every batch size.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name]
    if name in ADAPTIVE and 0 < batch_size < n_rows:
        lr *= math.sqrt(batch_size / n_rows)
    return lr


def make_optimizer(
    name: str,
    parameters: Sequence[Value],
    lr: float | None = None,
    *,
    batch_size: int = 0,
    n_rows: int = 0,
    **options,
) -> Optimizer:
    """An optimizer by name (sgd, adam, adamw); lr None means default_lr(name, batch_size,
    n_rows): DEFAULT_LR[name] for full-batch training, less for minibatches of adam."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    if lr is None:
        lr = default_lr(name, batch_size, n_rows)
    return OPTIMIZERS[name](parameters, lr=lr, **options)


def make_schedule(name: str, optimizer: Optimizer, epochs: int) -> LRScheduler | None:
    """none, linear (micrograd's: down to 0.1 lr), step (x0.1 every third of the run), cosine."""
    if name == "none":
        return None
    if name == "linear":
        return LinearLR(optimizer, 1.0, 0.1, total_iters=epochs)
    if name == "step":
        return StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")


def labels_text(classes: Sequence, limit: int = 10) -> str:
    """The class labels for a message: the first ``limit`` and a count (a CSV may hold many)."""
    shown = ", ".join(str(c)[:40] for c in classes[:limit])
    return shown if len(classes) <= limit else f"{shown}, ... ({len(classes):,} in all)"


@dataclass
class TrainingPlan:
    """fit()'s arguments, checked and resolved: what the training loop runs."""

    objective: Objective
    classes: list
    X_train: list
    y_train: list[int]  # class indices
    X_val: list
    y_val: list[int]
    optimizer: Optimizer
    scheduler: LRScheduler | None
    epochs: int
    batch_size: int  # 0: full batch
    l2: float
    patience: int | None
    restore_best: bool
    seed: int | None
    compile: str | bool  # False, or the compiled backend's name
    device: str | None
    record: bool
    image_shape: tuple[int, int] | None = None  # (rows, columns) when each row is an image
    # X_train and X_val are the given rows / input_scale (images: pixel_scale); the loop folds
    # the factor into the first layer, so the model fit returns takes the given rows
    input_scale: float = 1.0


def check_rows(X: Sequence, y: Sequence, name: str = "X") -> None:
    """Rows of one width of finite real numbers, one label each."""
    if len(X) != len(y):
        raise ValueError(f"{name} has {len(X)} rows but y has {len(y)} labels")
    if not X:
        raise ValueError("no training rows")
    width = len(X[0])
    for i, row in enumerate(X):
        if len(row) != width:
            raise ValueError(f"row {i} of {name} has {len(row)} features, row 0 has {width}")
        for x in row:
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
                raise ValueError(f"row {i} of {name} holds {x!r:.60}, not a finite number")


def resolve_task(
    y: Sequence[Hashable], classes: Sequence[Hashable] | None, loss: str | Objective | None
) -> tuple[list, Objective]:
    """The classes (their order: ``classes``, else sorted labels) and the objective (``loss``,
    else hinge for 2 classes and cross-entropy for more), checked against the labels."""
    classes = list(classes) if classes is not None else sorted_classes(list(y))
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {classes!r}")
    if loss is None:
        loss = "hinge" if len(classes) == 2 else "cross-entropy"
    objective = get_objective(loss)
    index_of = {c: i for i, c in enumerate(classes)}
    unknown = next((label for label in y if label not in index_of), _NONE)
    if unknown is not _NONE:
        raise ValueError(
            f"label {unknown!r:.60} is not one of the classes ({labels_text(classes)})"
        )
    if objective.binary and len(classes) != 2:
        raise ValueError(
            f"loss {objective.name!r} handles 2 classes, the data has {len(classes):,} "
            f"({labels_text(classes, 6)}): use the cross-entropy loss"
        )
    return classes, objective


_NONE = object()


def _check_model(model: Module, width: int, n_out: int, objective: Objective) -> None:
    if isinstance(model, MLP) and (model.sizes[0] != width or model.sizes[-1] != n_out):
        raise ValueError(
            f"the model maps {model.sizes[0]} inputs to {model.sizes[-1]} outputs; this data "
            f"needs {width} inputs and {n_out} output(s) for loss {objective.name!r}"
        )
    if (
        isinstance(model, MLP)
        and model.layers[-1].neurons[0].activation == "relu"
        and objective.name in ("cross-entropy", "bce", "hinge")
    ):  # MLP(64, [32, 10], activation="relu") applies relu to its output too (micrograd's not)
        warnings.warn(
            f"the model's output layer applies relu, so its scores for the {objective.name} "
            "loss cannot go below 0 and a score at 0 gets no gradient: it may not learn. Build "
            "it with output_activation='linear', e.g. MLP(..., activation='relu', "
            "output_activation='linear')",
            UserWarning,
            stacklevel=4,
        )


def _check_numbers(epochs, batch_size, patience, l2, record) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size must be an int >= 0 (0 = full batch), got {batch_size!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive int or None, got {patience!r}")
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not 0 <= l2 < math.inf:
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if record is not True and record is not False:
        raise ValueError(f"record must be True or False, got {record!r}")


def check_image_shape(shape, n_features: int) -> tuple[int, int] | None:
    """None, or (rows, columns) of positive ints whose product is the number of features."""
    if shape is None:
        return None
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in shape)
    ):
        raise ValueError(f"image_shape must be (rows, columns), got {shape!r:.60}")
    rows, columns = shape
    if rows * columns != n_features:
        raise ValueError(
            f"image_shape {rows}x{columns} holds {rows * columns:,} pixels, but a row has "
            f"{n_features:,} features"
        )
    return rows, columns


def pixel_scale(X: Sequence[Sequence[float]]) -> float:
    """What fit divides image rows by while training: the largest |pixel| rounded up to a
    power of two (16 for digits' 0..16, 256 for 0..255; 1.0 when every pixel is 0).

    A power of two, so that dividing the pixels by it and folding it into the first layer's
    weights afterwards are both exact: the returned model on raw pixels computes bit for bit
    what the trained model computed on scaled ones.
    """
    top = max((abs(x) for row in X for x in row), default=0.0)
    if not top:
        return 1.0
    mantissa, exponent = math.frexp(top)  # top = mantissa * 2**exponent, 0.5 <= mantissa < 1
    if mantissa == 0.5:
        exponent -= 1  # top is a power of two itself
    return math.ldexp(1.0, min(exponent, 1023))


def _divided(rows: Sequence[Sequence[float]], scale: float) -> list[list[float]]:
    return [[x / scale for x in row] for row in rows]


def resolve_backend(compile: bool | str, backend: str | None, device: str | None) -> str | bool:
    """False, or the compiled backend's name; for torch, checks torch and the device now."""
    if compile is False and (backend is not None or device is not None):
        raise ValueError(
            f"backend={backend!r} and device={device!r} apply to compiled training: "
            "pass compile=True as well"
        )
    if compile is True:
        compile = "numpy" if backend is None else backend
    elif backend is not None and compile != backend:
        raise ValueError(f"compile={compile!r} and backend={backend!r} name different backends")
    if compile is False:
        return False
    from ..compiled import BACKENDS

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not isinstance(compile, str) or compile not in BACKENDS:
        raise ValueError(
            f"compile must be True, False or a backend name ({', '.join(BACKENDS)}), "
            f"got {compile!r}"
        )
    if device is not None and compile != "torch":
        raise ValueError(
            f"device={device!r} is for backend='torch'; the {compile} backend runs on the CPU"
        )
    if compile == "torch":  # torch installed, the device usable: before training starts
        from ..compiled.torch_backend import check_device

        check_device("cpu" if device is None else device)
    return compile


def _split(X, labels, classes, validation_split, validation_data, seed) -> tuple:
    """(X_train, y_train, X_val, y_val), the labels as class indices."""
    if validation_data is None:
        if not validation_split:
            return list(X), labels, [], []
        X_train, X_val, y_train, y_val = train_test_split(X, labels, validation_split, seed)
        return X_train, y_train, X_val, y_val
    if validation_split:
        raise ValueError("give validation_split or validation_data, not both")
    X_val, raw = validation_data
    check_rows(X_val, raw, "validation X")
    index_of = {c: i for i, c in enumerate(classes)}
    missing = next((label for label in raw if label not in index_of), _NONE)
    if missing is not _NONE:
        raise ValueError(f"validation label {missing!r:.60} is not one of {labels_text(classes)}")
    return list(X), labels, X_val, [index_of[label] for label in raw]


def _optimizer(
    model: Module, optimizer: str | Optimizer, lr: float | None, batch_size: int, n_rows: int
) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ValueError("pass lr to the optimizer you built, not to fit()")
        return optimizer
    return make_optimizer(optimizer, model.parameters(), lr, batch_size=batch_size, n_rows=n_rows)


def plan_fit(
    model: Module,
    X: Sequence[Sequence[float]] | Dataset,
    y: Sequence[Hashable] | None = None,
    *,
    loss: str | Objective | None = None,
    optimizer: str | Optimizer = "adam",
    lr: float | None = None,
    epochs: int = 100,
    batch_size: int | None = 0,
    l2: float | None = 1e-4,
    schedule: str | LRScheduler = "none",
    classes: Sequence[Hashable] | None = None,
    validation_split: float = 0.0,
    validation_data: tuple[Sequence, Sequence] | None = None,
    patience: int | None = None,
    restore_best: bool | None = None,
    seed: int | None = 0,
    compile: bool | str = False,
    backend: str | None = None,
    device: str | None = None,
    record: bool = False,
    image_shape: tuple[int, int] | None = None,
    scale_pixels: bool = True,
) -> TrainingPlan:
    """fit()'s arguments (see fit) checked and resolved, or a one-line ValueError."""
    if isinstance(X, Dataset):
        if y is not None:
            raise ValueError("pass a Dataset alone, or rows X and labels y")
        if classes is None:
            classes = X.classes
        if image_shape is None:
            image_shape = X.image_shape
        X, y = X.X, X.y
    if image_shape is None:  # rows that say they are images, as digits()'s X
        image_shape = getattr(X, "image_shape", None)
    if y is None:
        raise ValueError("fit() needs labels y (or a Dataset in place of X)")
    if scale_pixels is not True and scale_pixels is not False:
        raise ValueError(f"scale_pixels must be True or False, got {scale_pixels!r}")
    batch_size, l2 = batch_size or 0, l2 or 0.0
    check_rows(X, y)
    classes, objective = resolve_task(y, classes, loss)
    _check_model(model, len(X[0]), objective.n_outputs(len(classes)), objective)
    _check_numbers(epochs, batch_size, patience, l2, record)
    image_shape = check_image_shape(image_shape, len(X[0]))
    compile = resolve_backend(compile, backend, device)
    index_of = {c: i for i, c in enumerate(classes)}
    labels = [index_of[label] for label in y]
    X_train, y_train, X_val, y_val = _split(
        X, labels, classes, validation_split, validation_data, seed
    )
    # images train on pixels scaled to about 0..1, folded back afterwards (an MLP's first layer)
    scale = pixel_scale(X) if image_shape and scale_pixels and isinstance(model, MLP) else 1.0
    if scale != 1.0:
        X_train, X_val = _divided(X_train, scale), _divided(X_val, scale)
    opt = _optimizer(model, optimizer, lr, batch_size, len(X_train))
    scheduler = (
        schedule if isinstance(schedule, LRScheduler) else make_schedule(schedule, opt, epochs)
    )
    return TrainingPlan(
        objective=objective,
        classes=classes,
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        optimizer=opt,
        scheduler=scheduler,
        epochs=epochs,
        batch_size=batch_size,
        l2=l2,
        patience=patience,
        restore_best=patience is not None if restore_best is None else restore_best,
        seed=seed,
        compile=compile,
        device=device,
        record=record,
        image_shape=image_shape,
        input_scale=scale,
    )
