"""fit(): train a model on labelled rows with a progress bar, history, validation, early stopping.

    from backprop import MLP
    from backprop.data import moons
    from backprop.train import fit

    X, y = moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], activation="relu", output_activation="linear", seed=1)
    history = fit(model, X, y, loss="hinge", optimizer="sgd", lr=1.0, epochs=100)
    history.accuracy[-1]   # 1.0

Labels can be anything (0/1, -1/1, names). ``classes`` (their order) maps them to what the loss
needs: the first class is -1 for hinge and mse, 0 for bce, index 0 for cross-entropy.
Every batch's loss is built by one function, ``batch_loss(model, inputs, targets)``.
"""

from __future__ import annotations

import gc
import math
import numbers
import random
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from . import losses
from .data import Dataset, minibatches, sorted_classes, train_test_split
from .engine import Value, no_grad
from .nn import MLP, Module
from .optim import SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, LRScheduler, Optimizer, StepLR

__all__ = [
    "Objective",
    "OBJECTIVES",
    "get_objective",
    "make_batch_loss",
    "fit",
    "History",
    "Snapshot",
    "Recording",
    "MAX_FRAMES",
    "predict_outputs",
    "predict",
    "accuracy",
    "fold_standardization",
    "make_optimizer",
    "make_schedule",
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULES",
]


# ---- objectives: a loss plus how class labels become its targets ------------------------------


@dataclass(frozen=True)
class Objective:
    """A loss for classification: how many outputs it reads, the target for class index i of
    k, the loss of a batch of outputs, and the class an output predicts."""

    name: str
    binary: bool  # one output for 2 classes (hinge, bce, mse) rather than one per class

    def n_outputs(self, n_classes: int) -> int:
        return 1 if self.binary else n_classes

    def target(self, index: int) -> float | int:
        if self.name in ("hinge", "mse"):
            return 1.0 if index == 1 else -1.0
        if self.name == "bce":
            return float(index)
        return index

    def target_row(self, index: int, n_classes: int) -> list[float]:
        """The target of class ``index`` as numbers to assign to target Values: [target] for
        a binary loss, a one-hot row for cross-entropy (whose graph is then the same for
        every class, as a compiled graph must be)."""
        if self.binary:
            return [self.target(index)]
        return [1.0 if k == index else 0.0 for k in range(n_classes)]

    def loss(self, outputs: Sequence, targets: Sequence) -> Value:
        if self.name == "hinge":
            return losses.hinge(outputs, targets)
        if self.name == "mse":
            return losses.mse(outputs, targets)
        if self.name == "bce":
            return losses.binary_cross_entropy(outputs, targets)
        return losses.cross_entropy(outputs, targets)

    def predict(self, output) -> int:
        """The class index an output stands for."""
        if self.binary:
            return 1 if float(output) > 0 else 0
        scores = [float(v) for v in output]
        return max(range(len(scores)), key=scores.__getitem__)


OBJECTIVES: dict[str, Objective] = {
    "hinge": Objective("hinge", binary=True),
    "bce": Objective("bce", binary=True),
    "mse": Objective("mse", binary=True),
    "cross-entropy": Objective("cross-entropy", binary=False),
}


def get_objective(loss: str | Objective) -> Objective:
    if isinstance(loss, Objective):
        return loss
    if loss not in OBJECTIVES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[loss]


def _outputs(model: Module, inputs: Sequence[Sequence[float]]) -> list:
    return [model(x) for x in inputs]


def make_batch_loss(
    loss: str | Objective, l2: float = 0.0
) -> Callable[[Module, Sequence, Sequence], Value]:
    """The function fit() calls for every batch: (model, inputs, targets) -> loss Value.

    ``targets`` are already in the loss's terms (see ``Objective.target``). The loss is the
    mean data loss plus ``l2 * sum(p^2)`` over the model's parameters.
    """
    objective = get_objective(loss)

    def batch_loss(model: Module, inputs: Sequence, targets: Sequence) -> Value:
        return _loss_of_outputs(objective, l2, model, _outputs(model, inputs), targets)

    return batch_loss


def _loss_of_outputs(objective: Objective, l2: float, model: Module, outputs, targets) -> Value:
    data_loss = objective.loss(outputs, targets)
    if l2:
        return data_loss + losses.l2_penalty(model.parameters(), l2)
    return data_loss


# ---- fast prediction --------------------------------------------------------------------------


def predict_outputs(model: Module, X: Sequence[Sequence[float]]) -> list:
    """The model's outputs (floats, or lists of floats) for every row, without building a graph.

    An MLP runs as numpy matrix products, which is what makes drawing a decision boundary over
    a fine grid quick; any other Module runs its own __call__ under no_grad().
    """
    if not X:
        return []
    if isinstance(model, MLP):
        import numpy as np

        h = np.asarray(X, dtype=np.float64)
        for layer in model.layers:
            w = np.array([[p.data for p in n.w] for n in layer.neurons])
            b = np.array([n.b.data for n in layer.neurons])
            h = _NUMPY_ACTIVATIONS[layer.neurons[0].activation](np, h @ w.T + b)
        return h[:, 0].tolist() if h.shape[1] == 1 else h.tolist()
    with no_grad():
        outs = [model(x) for x in X]
    return [o.data if isinstance(o, Value) else [v.data for v in o] for o in outs]


def _sigmoid(np, z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


_NUMPY_ACTIVATIONS = {
    "tanh": lambda np, z: np.tanh(z),
    "relu": lambda np, z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "linear": lambda np, z: z,
}


def fold_standardization(model: MLP, mean: Sequence[float], std: Sequence[float]) -> None:
    """Make a model trained on standardized inputs (x - mean) / std take raw inputs instead.

    The scaling is affine, so it folds into the first layer: w_i' = w_i / std_i and
    b' = b - sum(w_i * mean_i / std_i). The model then needs no preprocessing when saved.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"fold_standardization needs an MLP, got {type(model).__name__}")
    if not len(mean) == len(std) == model.sizes[0]:
        raise ValueError(f"need {model.sizes[0]} means and stds, got {len(mean)} and {len(std)}")
    for neuron in model.layers[0].neurons:
        shift = sum(w.data * m / s for w, m, s in zip(neuron.w, mean, std))
        for w, s in zip(neuron.w, std):
            w.data = w.data / s
        neuron.b.data = neuron.b.data - shift


def predict(
    model: Module, X: Sequence[Sequence[float]], loss: str | Objective, classes: Sequence
) -> list:
    """The predicted label (from ``classes``) for every row."""
    objective = get_objective(loss)
    return [classes[objective.predict(o)] for o in predict_outputs(model, X)]


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    """The fraction of predictions equal to their labels."""
    if len(predictions) != len(labels):
        raise ValueError(f"got {len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("accuracy of zero samples is undefined")
    return sum(p == t for p, t in zip(predictions, labels)) / len(labels)


# ---- optimizers and schedules by name ---------------------------------------------------------

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
# Learning rates that train the built-in datasets in about 100 full-batch epochs
DEFAULT_LR = {"sgd": 1.0, "adam": 0.05, "adamw": 0.05}
SCHEDULES = ("none", "linear", "step", "cosine")


def make_optimizer(
    name: str, parameters: Sequence[Value], lr: float | None = None, **options
) -> Optimizer:
    """An optimizer by name (sgd, adam, adamw); lr None means DEFAULT_LR[name]."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](parameters, lr=DEFAULT_LR[name] if lr is None else lr, **options)


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


# ---- fit --------------------------------------------------------------------------------------


MAX_FRAMES = 201  # fit(record=True) keeps every epoch up to 200 epochs, then this many frames


@dataclass(frozen=True)
class Snapshot:
    """The model after ``epoch`` epochs of fit(record=True) (epoch 0: before training).

    ``parameters`` and ``grads`` follow ``model.parameters()`` order. The grads are those of
    the update that ended the epoch (full batch: the gradient of the whole loss; minibatches:
    of the epoch's last batch); epoch 0 has had no update, so its grads are all 0. ``loss``
    (with the l2 penalty) and ``accuracy`` are measured on the training rows, as in History.
    """

    epoch: int
    parameters: list[float]
    grads: list[float]
    loss: float
    accuracy: float


@dataclass
class Recording:
    """What fit(record=True) trained on, so that a run can be replayed: the training rows,
    their class indices, the l2 factor, and the model's architecture (MLPs only)."""

    X: list[list[float]]
    y: list[int]
    l2: float
    architecture: dict | None  # MLP.architecture(), or None for another Module


def _recorded_epochs(epochs: int, frames: int = MAX_FRAMES) -> set[int]:
    """Every epoch 0..epochs when that fits in ``frames``, else evenly spaced ones, always
    with the first (0) and the last."""
    if epochs < frames:
        return set(range(epochs + 1))
    return {round(k * epochs / (frames - 1)) for k in range(frames)}


@dataclass
class History:
    """Per-epoch metrics of a fit() run; loss and accuracy are measured after each epoch.

    With ``fit(record=True)``, ``snapshots`` holds the model at every epoch (see Snapshot) and
    ``recording`` what it trained on; ``model_at(epoch)`` rebuilds the model of a snapshot.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 0-based index of the epoch whose weights the model keeps
    stopped_early: bool = False
    interrupted: bool = False
    classes: list = field(default_factory=list)
    loss_name: str = ""
    snapshots: list[Snapshot] = field(default_factory=list)
    recording: Recording | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items()}

    def snapshot(self, epoch: int) -> Snapshot:
        """The snapshot taken after ``epoch`` epochs (0: before training)."""
        for snap in self.snapshots:
            if snap.epoch == epoch:
                return snap
        if not self.snapshots:
            raise ValueError("this History has no snapshots: train with fit(..., record=True)")
        kept = [s.epoch for s in self.snapshots]
        raise ValueError(
            f"no snapshot at epoch {epoch!r}: the recorded epochs run from {kept[0]} to "
            f"{kept[-1]} ({len(kept)} frames)"
        )

    def model_at(self, epoch: int) -> MLP:
        """A fresh MLP with the parameters of the snapshot at ``epoch``."""
        snap = self.snapshot(epoch)
        arch = self.recording.architecture if self.recording else None
        if arch is None:
            raise ValueError("model_at() rebuilds MLPs; this run trained another kind of Module")
        model = MLP(arch["nin"], arch["nouts"], activation=arch["activation"])
        for p, x in zip(model.parameters(), snap.parameters):
            p.data = x
        return model


class _CompiledLoss:
    """fit(compile=...): the batch loss traced once per batch size, then replayed every step.

    A batch size's graph is built by ``batch_loss`` over input Values and target Values (one
    row per sample: ``Objective.target_row``), then compiled with the optimizer's parameters
    and those Values named. A step hands the batch's numbers to the program as one array,
    replays forward and ``backward(accumulate=False)``, and steps the program's flat
    ``parameter_data`` with a FlatOptimizer (the optimizer's formulas over arrays). The
    parameters' numbers live in the program between ``sync()`` calls, which fit makes after
    every epoch (so that evaluation, snapshots and early stopping read current Values) and
    when it stops. A graph that some parameter or input does not reach is compiled as it
    is and replayed over the Values, with the per-Value ``opt.step()``.
    Tracing freezes what the model's Python decides from ``.data`` (see docs/compiled.md).
    """

    def __init__(
        self,
        model: Module,
        batch_loss: Callable[[Module, Sequence, Sequence], Value],
        objective: Objective,
        backend: str,
        optimizer: Optimizer,
        X: Sequence[Sequence[float]],
        target_rows: Sequence[Sequence[float]],
        device: str | None = None,
    ) -> None:
        import numpy as np

        from .compiled.flat_optim import FlatOptimizer

        self.model, self.batch_loss, self.objective = model, batch_loss, objective
        self.backend, self.optimizer, self.device = backend, optimizer, device
        self.parameters = optimizer.params
        self.X = np.asarray(X, dtype=np.float64)
        self.T = np.asarray(target_rows, dtype=np.float64)
        # batch size -> (program, the Values a batch's numbers go to, parameters off its graph)
        self.programs: dict[int, tuple] = {}
        self.flat: FlatOptimizer | None = None
        if FlatOptimizer.supports(optimizer):
            self.flat = FlatOptimizer(optimizer)
        self.current = None  # the program holding the parameters' numbers, if any
        self.l2: float | None = None  # set by fit: the full batch's program then reports the
        self.labels = None  # outputs, and evaluates the epoch (see evaluate)

    def step(self, rows: Sequence[int]) -> None:
        """One optimizer step on the loss of these rows."""
        import numpy as np

        xb, tb = self.X[rows], self.T[rows]
        if len(rows) not in self.programs:
            self.sync()  # building a graph reads the parameters' Values
            self.programs[len(rows)] = self._build(xb, tb)
        program, slots, unused = self.programs[len(rows)]
        batch = np.concatenate([xb.ravel(), tb.ravel()])
        if slots is None:  # the flat path
            if self.current is not program:
                self.sync()  # the other batch size's program hands the numbers back
                self.current = program
            program.forward(inputs=batch)
            program.backward(accumulate=False)
            self.flat.step(program.parameter_data, program.parameter_grad)
            return
        self.finish()  # a per-Value step reads the Values and the optimizer's own state
        for v, x in zip(slots, batch.tolist()):
            v.data = x
        program.forward()
        program.backward(accumulate=False)  # sets the grads of every leaf of the graph
        for p in unused:  # parameters the loss does not reach: 0, as after zero_grad()
            p.grad = 0.0
        self.optimizer.step()

    def sync(self) -> None:
        """Write the parameters' numbers (data and the last grads) back to the Values."""
        if self.current is not None:
            self.current.sync()
            self.current = None

    def finish(self) -> None:
        """sync(), and the flat optimizer's state written into the optimizer's."""
        self.sync()
        if self.flat is not None:
            self.flat.write_state()

    def evaluate(self) -> tuple[float, float] | None:
        """(loss, accuracy) on all training rows, as _evaluate gives them, from one replay
        of the full batch's program (it reports the model's outputs); None without one."""
        import numpy as np

        entry = self.programs.get(len(self.X))
        if entry is None or entry[1] is not None or self.labels is None:
            return None
        program = entry[0]
        if not program.n_outputs:
            return None
        self.sync()
        loss = program.forward(inputs=np.concatenate([self.X.ravel(), self.T.ravel()]))
        outs = program.output_data
        if self.objective.binary:
            predicted = (outs > 0).astype(np.intp)
        else:  # the first of equal scores, as max() in Objective.predict
            predicted = outs.reshape(len(self.X), -1).argmax(axis=1)
        return loss, float(np.mean(predicted == np.asarray(self.labels)))

    def _build(self, xb, tb) -> tuple:
        from .compiled import LeafMismatchError
        from .compiled import compile as compile_graph

        xs = [[Value(x) for x in row] for row in xb.tolist()]
        ts = [[Value(t) for t in row] for row in tb.tolist()]
        targets = [row[0] for row in ts] if self.objective.binary else ts
        reported = []  # the full batch's program reports the outputs, for evaluate()
        if self.l2 is not None and len(xs) == len(self.X) and self.backend != "torch":
            outputs = _outputs(self.model, xs)
            reported = [v for out in outputs for v in (out if isinstance(out, list) else [out])]
            loss = _loss_of_outputs(self.objective, self.l2, self.model, outputs, targets)
        else:
            loss = self.batch_loss(self.model, xs, targets)
        slots = [v for row in xs for v in row] + [v for row in ts for v in row]
        options = {"backend": self.backend, "device": self.device}
        if self.flat is not None:
            try:
                program = compile_graph(
                    loss, inputs=slots, parameters=self.parameters, outputs=reported, **options
                )
                return program, None, []
            except LeafMismatchError:  # a parameter or input the loss does not reach
                self.finish()
                self.flat = None
        program = compile_graph(loss, **options)
        on_graph = {id(v) for v in program.leaves}
        unused = [p for p in self.parameters if id(p) not in on_graph]
        return program, slots, unused


def _check_xy(X: Sequence, y: Sequence, name: str = "X") -> None:
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
                raise ValueError(f"row {i} of {name} holds {x!r}, not a finite number")


def _evaluate(
    model: Module, X: Sequence, indices: Sequence[int], objective: Objective, l2: float
) -> tuple[float, float]:
    """(loss, accuracy) on rows X with class indices, computed from plain floats."""
    outs = predict_outputs(model, X)
    targets = [objective.target(i) for i in indices]
    with no_grad():
        loss = objective.loss(outs, targets).data
        if l2:
            loss += l2 * sum(p.data * p.data for p in model.parameters())
    correct = sum(objective.predict(o) == i for o, i in zip(outs, indices))
    return loss, correct / len(indices)


def fit(
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
    progress: bool = True,
    compile: bool | str = False,
    backend: str | None = None,
    device: str | None = None,
    record: bool = False,
) -> History:
    """Train ``model`` on rows ``X`` with labels ``y`` (or on a Dataset) and return the History.

    - ``loss``: 'hinge', 'bce', 'mse' (one output, 2 classes) or 'cross-entropy' (one output
      per class); None picks hinge for 2 classes and cross-entropy for more.
    - ``l2`` adds micrograd's ``l2 * sum(p^2)`` penalty to the loss (0 turns it off).
    - ``optimizer``: 'sgd', 'adam', 'adamw' (with ``lr``, default DEFAULT_LR) or an Optimizer
      over ``model.parameters()``. ``schedule``: 'none', 'linear', 'step', 'cosine' or an
      LRScheduler, stepped once per epoch.
    - ``batch_size`` 0 (or None) is full batch; minibatches are reshuffled each epoch (``seed``).
    - ``validation_split`` holds out that fraction of the rows (or pass ``validation_data``);
      ``patience`` stops after that many epochs without a better monitored loss (validation
      loss if there is validation data, else training loss). With ``restore_best`` (default:
      when ``patience`` is set) the model ends with the weights of the best epoch.
    - Ctrl-C stops cleanly after restoring the best weights so far; ``history.interrupted``
      says it happened.
    - ``compile=True`` traces each batch size's loss graph once (``backprop.compile``) and
      replays it with numpy every step, instead of rebuilding it: the same training, to
      rounding, many times faster. A backend name (``'numpy'``, ``'python'``) picks the
      backend. The model's Python runs once per batch size, so branches it takes on ``.data``
      are frozen (docs/compiled.md); an MLP and the built-in losses have none.
    - ``backend`` names the compiled backend too (``compile=True, backend='torch'``), and
      ``device`` ('cpu', 'cuda') is where the torch backend runs (docs/pytorch.md).
    - ``record=True`` keeps a Snapshot of the parameters and gradients in
      ``history.snapshots``: every epoch up to 200 epochs, then 201 evenly spaced ones (always
      the first and the last); ``backprop.explore(history)`` shows them.
    """
    if isinstance(X, Dataset):
        if y is not None:
            raise ValueError("pass a Dataset alone, or rows X and labels y")
        if classes is None:
            classes = X.classes
        X, y = X.X, X.y
    if y is None:
        raise ValueError("fit() needs labels y (or a Dataset in place of X)")
    batch_size = batch_size or 0
    l2 = l2 or 0.0
    _check_xy(X, y)
    classes = list(classes) if classes is not None else sorted_classes(list(y))
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {classes!r}")
    if loss is None:
        loss = "hinge" if len(classes) == 2 else "cross-entropy"
    objective = get_objective(loss)
    if restore_best is None:
        restore_best = patience is not None
    index_of = {c: i for i, c in enumerate(classes)}
    unknown = [label for label in y if label not in index_of]
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the classes {classes!r}")
    if objective.binary and len(classes) != 2:
        raise ValueError(
            f"loss {objective.name!r} handles 2 classes, the data has {len(classes)}: "
            "use loss='cross-entropy'"
        )
    n_out = objective.n_outputs(len(classes))
    if isinstance(model, MLP) and (model.sizes[0] != len(X[0]) or model.sizes[-1] != n_out):
        raise ValueError(
            f"the model maps {model.sizes[0]} inputs to {model.sizes[-1]} outputs; this data "
            f"needs {len(X[0])} inputs and {n_out} output(s) for loss {objective.name!r}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive int or None, got {patience!r}")
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not 0 <= l2 < math.inf:
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if compile is False and (backend is not None or device is not None):
        raise ValueError(
            f"backend={backend!r} and device={device!r} apply to compiled training: "
            "pass compile=True as well"
        )
    if compile is True:
        compile = "numpy" if backend is None else backend
    elif backend is not None and compile != backend:
        raise ValueError(f"compile={compile!r} and backend={backend!r} name different backends")
    if compile is not False:
        from .compiled import BACKENDS

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
            from .compiled.torch_backend import check_device

            check_device("cpu" if device is None else device)
    labels = [index_of[label] for label in y]

    X_train, y_train = list(X), labels
    X_val: list = []
    y_val: list[int] = []
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_split or validation_data, not both")
        X_val, raw = validation_data
        _check_xy(X_val, raw, "validation X")
        missing = [label for label in raw if label not in index_of]
        if missing:
            raise ValueError(f"validation label {missing[0]!r} is not one of {classes!r}")
        y_val = [index_of[label] for label in raw]
    elif validation_split:
        X_train, X_val, y_train, y_val = train_test_split(X, labels, validation_split, seed)

    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ValueError("pass lr to the optimizer you built, not to fit()")
        opt = optimizer
    else:
        opt = make_optimizer(optimizer, model.parameters(), lr)
    scheduler = (
        schedule if isinstance(schedule, LRScheduler) else make_schedule(schedule, opt, epochs)
    )
    batch_loss = make_batch_loss(objective, l2)
    targets = [objective.target(i) for i in y_train]
    order = random.Random(seed)
    rows = list(range(len(X_train)))  # compiled steps draw batches of row numbers
    compiled = None
    if compile:
        compiled = _CompiledLoss(
            model,
            batch_loss,
            objective,
            compile,
            opt,
            X_train,
            [objective.target_row(i, len(classes)) for i in y_train],
            device,
        )
        compiled.l2, compiled.labels = l2, y_train  # batch_loss is make_batch_loss's

    history = History(classes=classes, loss_name=objective.name)
    params = model.parameters()
    if record is not True and record is not False:
        raise ValueError(f"record must be True or False, got {record!r}")
    recorded = _recorded_epochs(epochs) if record else set()

    def take_snapshot(done: int, loss_now: float, accuracy_now: float) -> None:
        grads = [p.grad for p in params] if done else [0.0] * len(params)
        snap = Snapshot(done, [p.data for p in params], grads, loss_now, accuracy_now)
        history.snapshots.append(snap)

    if record:
        arch = model.architecture() if isinstance(model, MLP) else None
        history.recording = Recording([list(map(float, r)) for r in X_train], y_train, l2, arch)
        take_snapshot(0, *_evaluate(model, X_train, y_train, objective, l2))
    best = [p.data for p in params]
    best_score = math.inf
    since_best = 0
    from tqdm import tqdm  # not tqdm.auto: its notebook widget needs ipywidgets

    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, file=sys.stderr)
    # Graphs of Values hold no reference cycles, so the cyclic garbage collector only costs
    # time here: it rescans every live node of the ~100k made per step (about 2x slower).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for epoch in bar:
            history.lr.append(opt.lr)
            if compiled is not None:
                # the same shuffle as below: minibatches() draws an order of len(X) rows
                for batch, _ in minibatches(rows, rows, batch_size, shuffle=True, seed=order):
                    compiled.step(batch)
                compiled.sync()  # the Values hold the numbers for evaluation and snapshots
            else:
                for xb, tb in minibatches(X_train, targets, batch_size, shuffle=True, seed=order):
                    value = batch_loss(model, xb, tb)
                    opt.zero_grad()
                    value.backward()
                    opt.step()
            if scheduler is not None:
                scheduler.step()
            measured = None if compiled is None else compiled.evaluate()
            train_loss, train_acc = measured or _evaluate(model, X_train, y_train, objective, l2)
            history.loss.append(train_loss)
            history.accuracy.append(train_acc)
            shown = {"loss": f"{train_loss:.4f}", "acc": f"{train_acc:.3f}"}
            score = train_loss
            if X_val:
                val_loss, val_acc = _evaluate(model, X_val, y_val, objective, 0.0)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_acc)
                shown.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
                score = val_loss
            bar.set_postfix(shown, refresh=False)
            if epoch + 1 in recorded:
                take_snapshot(epoch + 1, train_loss, train_acc)
            if score < best_score:  # nan never counts as better
                best_score, since_best = score, 0
                best = [p.data for p in params]
                history.best_epoch = epoch
            else:
                since_best += 1
                if patience is not None and since_best >= patience:
                    history.stopped_early = True
                    if record and history.snapshots[-1].epoch != epoch + 1:
                        take_snapshot(epoch + 1, train_loss, train_acc)  # always the last
                    break
    except KeyboardInterrupt:
        history.interrupted = True
        if compiled is not None:
            compiled.finish()  # before the best weights go back into the Values
        # a step may have been cut off halfway: only a completed epoch's weights are whole
        for p, x in zip(params, best):
            p.data = x
        return history
    finally:
        if compiled is not None:
            compiled.finish()
        bar.close()
        if gc_was_enabled:
            gc.enable()
    if restore_best and history.best_epoch is not None:
        for p, x in zip(params, best):
            p.data = x
    return history
