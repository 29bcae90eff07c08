"""What a fit() run leaves: the History of per-epoch metrics, and with ``record=True`` the
Snapshots of the model at each kept epoch and the Recording of what it trained on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data import plural
from ..nn import MLP, Module

__all__ = ["History", "Snapshot", "Recording", "SnapshotTaker", "MAX_FRAMES", "recorded_epochs"]


MAX_FRAMES = 201  # fit(record=True) keeps every epoch up to 200 epochs, then this many frames


@dataclass(frozen=True, repr=False)
class Snapshot:
    """The model after ``epoch`` epochs of fit(record=True) (epoch 0: before training).

    ``parameters`` and ``grads`` follow ``model.parameters()`` order. The grads are those of
    the update that ended the epoch (full batch: the gradient of the whole loss; minibatches:
    of the epoch's last batch); epoch 0 has had no update, so its grads are all 0. ``loss``
    (with the l2 penalty) and ``accuracy`` are measured on the training rows, as in History.

    A run on images that trained on pixels / s (``Recording.input_scale``) is kept as the model
    fit returns, on raw pixels: the first layer's weights / s and their grads * s (the gradient
    with respect to the raw-pixel weights), which is exact, s being a power of two.
    """

    epoch: int
    parameters: list[float]
    grads: list[float]
    loss: float
    accuracy: float

    def __repr__(self) -> str:  # the numbers stay in the attributes; a repr shows their shape
        return (
            f"Snapshot(epoch {self.epoch}, {plural(len(self.parameters), 'parameter')}, "
            f"loss {self.loss:.4g}, accuracy {self.accuracy:.1%})"
        )


@dataclass(repr=False)
class Recording:
    """What fit(record=True) trained on, so that a run can be replayed: the training rows (as
    given: raw pixels for images), their class indices, the l2 factor, and the model's
    architecture (MLPs only).

    ``input_scale`` is what the rows were divided by while training (images: a power of two,
    else 1). The snapshots are on raw rows, so a snapshot's model on ``X`` gives its loss and
    accuracy; only the l2 term was on the scaled model's weights (the first layer's * s)."""

    X: list[list[float]]
    y: list[int]
    l2: float
    architecture: dict | None  # MLP.architecture(), or None for another Module
    input_scale: float = 1.0

    def __repr__(self) -> str:
        width = len(self.X[0]) if self.X else 0
        model = "a Module" if self.architecture is None else _sizes(self.architecture)
        scaled = f", trained on rows / {self.input_scale:g}" if self.input_scale != 1 else ""
        return (
            f"Recording({plural(len(self.X), 'row')} of {plural(width, 'feature')}, "
            f"l2 {self.l2:g}, {model}{scaled})"
        )


def _sizes(architecture: dict) -> str:
    return f"MLP {[architecture['nin'], *architecture['nouts']]}"


def recorded_epochs(epochs: int, frames: int = MAX_FRAMES) -> set[int]:
    """Every epoch 0..epochs when that fits in ``frames``, else evenly spaced ones, always
    with the first (0) and the last."""
    if epochs < frames:
        return set(range(epochs + 1))
    return {round(k * epochs / (frames - 1)) for k in range(frames)}


@dataclass(repr=False)
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
    image_shape: tuple[int, int] | None = None  # (rows, columns) when each row is an image

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        """One short line, however long the run: the data stay in the attributes."""
        parts = [plural(self.epochs, "epoch")]
        for name, values, percent in (
            ("loss", self.loss, False),
            ("accuracy", self.accuracy, True),
            ("val loss", self.val_loss, False),
            ("val accuracy", self.val_accuracy, True),
        ):
            if values:
                parts.append(f"{name} {_span(values, percent)}")
        if self.stopped_early or self.interrupted:
            parts.append("stopped early" if self.stopped_early else "interrupted")
            if self.best_epoch is not None:
                parts.append(f"best epoch {self.best_epoch + 1}")
        if self.snapshots:
            parts.append(f"recorded {plural(len(self.snapshots), 'frame')}")
        return f"History({', '.join(parts)})"

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


def _span(values: Sequence[float], percent: bool) -> str:
    """first -> last of a metric, as a repr shows it."""
    show = (lambda x: f"{x:.1%}") if percent else (lambda x: f"{x:.4g}")
    if len(values) == 1:
        return show(values[0])
    return f"{show(values[0])} → {show(values[-1])}"


class SnapshotTaker:
    """fit(record=True)'s camera: a Snapshot of the model's parameters at each kept epoch into
    ``history``, and the Recording of the training rows.

    A model training on rows / ``input_scale`` (an MLP on images) is kept as it is on raw
    rows: its first layer's weights / input_scale, their grads * input_scale (exact: a power
    of two), and the rows * input_scale, which are the given rows again."""

    def __init__(self, history: History, model: Module, epochs: int, input_scale=1.0) -> None:
        self.history, self.model, self.params = history, model, model.parameters()
        self.kept = recorded_epochs(epochs)
        self.scale = input_scale
        self.first: list[int] = []  # the positions of the first layer's weights in params
        if input_scale != 1.0:
            weights = {id(w) for neuron in model.layers[0].neurons for w in neuron.w}
            self.first = [i for i, p in enumerate(self.params) if id(p) in weights]

    def start(self, X, y: Sequence[int], l2: float, measured) -> None:
        """The Recording, and the snapshot of epoch 0 (``measured``: its loss and accuracy)."""
        model, s = self.model, self.scale
        arch = model.architecture() if isinstance(model, MLP) else None
        rows = (
            [[float(x) * s for x in row] for row in X]
            if s != 1.0
            else [list(map(float, row)) for row in X]
        )
        self.history.recording = Recording(rows, list(y), l2, arch, s)
        self.take(0, *measured)

    def take(self, done: int, loss: float, accuracy: float) -> None:
        params = self.params
        data = [p.data for p in params]
        grads = [p.grad for p in params] if done else [0.0] * len(params)
        for i in self.first:  # on raw rows
            data[i] /= self.scale
            grads[i] *= self.scale
        self.history.snapshots.append(Snapshot(done, data, grads, loss, accuracy))

    def after_epoch(self, done: int, loss: float, accuracy: float, last: bool = False) -> None:
        """A snapshot if epoch ``done`` is kept, or is the ``last`` (an early stop)."""
        taken = self.history.snapshots[-1].epoch == done
        if not taken and (done in self.kept or last):
            self.take(done, loss, accuracy)
