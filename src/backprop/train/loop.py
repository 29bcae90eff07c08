"""fit(): plan the run (plan.py), then the training loop itself, epoch by epoch."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Hashable, Sequence

from .._gc import paused
from ..data import Dataset, minibatches
from ..nn import Module
from ..optim import LRScheduler, Optimizer
from .history import History, SnapshotTaker
from .objectives import Objective, make_batch_loss
from .plan import TrainingPlan, plan_fit
from .prediction import evaluate, fold_input_scale

__all__ = ["fit", "run_plan"]


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
    image_shape: tuple[int, int] | None = None,
    scale_pixels: bool = True,
) -> History:
    """Train ``model`` on rows ``X`` with labels ``y`` (or on a Dataset) and return the History.

    - ``loss``: 'hinge', 'bce', 'mse' (one output, 2 classes) or 'cross-entropy' (one output
      per class); None picks hinge for 2 classes and cross-entropy for more.
    - ``l2`` adds micrograd's ``l2 * sum(p^2)`` penalty to the loss (0 turns it off).
    - ``optimizer``: 'sgd', 'adam', 'adamw' (with ``lr``; by default ``default_lr``: DEFAULT_LR
      for full batches, times sqrt(batch_size / training rows) for minibatches of adam and
      adamw) or an Optimizer over ``model.parameters()``. ``schedule``: 'none', 'linear',
      'step', 'cosine' or an LRScheduler, stepped once per epoch.
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
    - ``image_shape`` (rows, columns) says each row is an image (by default a Dataset's own,
      or that of X as ``digits()`` returns it: (8, 8)); ``history.image_shape`` keeps it for
      the explorer. An MLP then trains on the pixels divided by ``pixel_scale(X)`` (the largest
      pixel rounded up to a power of two: 16 for digits), as image models are trained, and the
      factor is folded into its first layer's weights afterwards, exactly, so the model fit
      returns takes raw pixels; snapshots hold those raw-pixel weights and their gradients
      (docs/training.md). ``scale_pixels=False`` trains on the rows as they are.
    """
    plan = plan_fit(
        model,
        X,
        y,
        loss=loss,
        optimizer=optimizer,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        l2=l2,
        schedule=schedule,
        classes=classes,
        validation_split=validation_split,
        validation_data=validation_data,
        patience=patience,
        restore_best=restore_best,
        seed=seed,
        compile=compile,
        backend=backend,
        device=device,
        record=record,
        image_shape=image_shape,
        scale_pixels=scale_pixels,
    )
    return run_plan(model, plan, progress=progress)


def run_plan(model: Module, plan: TrainingPlan, progress: bool = True) -> History:
    """The training loop of a checked plan: an epoch of steps, then its measures, its snapshot
    and the early-stopping check; Ctrl-C keeps the best completed epoch's weights.

    With a plan's ``input_scale`` (image rows), the model trains on the scaled rows and the
    scale is folded into its first layer at the end, whatever ends the run."""
    scale = plan.input_scale
    if scale == 1.0:
        return _run(model, plan, progress)
    if getattr(model, "folded_input_scale", None) is not None:  # an earlier fit's model
        _unfold(model, scale)
    try:
        return _run(model, plan, progress)
    finally:
        fold_input_scale(model, scale)


def _unfold(model, scale: float) -> None:
    """A model that takes raw pixels made to take pixels / scale: the same function."""
    for neuron in model.layers[0].neurons:
        for w in neuron.w:
            w.data = w.data * scale
            w.grad = w.grad / scale


def _run(model: Module, plan: TrainingPlan, progress: bool) -> History:
    from tqdm import tqdm  # not tqdm.auto: its notebook widget needs ipywidgets

    history = History(
        classes=plan.classes, loss_name=plan.objective.name, image_shape=plan.image_shape
    )
    params = model.parameters()
    camera = SnapshotTaker(history, model, plan.epochs, plan.input_scale) if plan.record else None
    if camera is not None:
        camera.start(plan.X_train, plan.y_train, plan.l2, _measure_training(model, plan))
    best = BestWeights(params)
    trainer = _trainer(model, plan)
    bar = tqdm(range(plan.epochs), desc="training", unit="epoch", disable=not progress,
               file=sys.stderr)  # fmt: skip
    # Graphs of Values hold no reference cycles, so the cyclic garbage collector only costs
    # time here: it rescans every live node of the ~100k made per step (about 2x slower).
    with paused():
        try:
            for epoch in bar:
                history.lr.append(plan.optimizer.lr)
                trainer.epoch()
                if plan.scheduler is not None:
                    plan.scheduler.step()
                score = _measure_epoch(model, plan, trainer, history, bar)
                if camera is not None:
                    camera.after_epoch(epoch + 1, history.loss[-1], history.accuracy[-1])
                if best.update(score, epoch, history) and best.waited(plan.patience):
                    history.stopped_early = True
                    if camera is not None:  # always the last epoch
                        camera.after_epoch(epoch + 1, *_last(history), last=True)
                    break
        except KeyboardInterrupt:
            history.interrupted = True
            trainer.finish()  # before the best weights go back into the Values
            # a step may have been cut off halfway: only a completed epoch's weights are whole
            best.restore()
            return history
        finally:
            trainer.finish()
            bar.close()
    if plan.restore_best and history.best_epoch is not None:
        best.restore()
    return history


def _last(history: History) -> tuple[float, float]:
    return history.loss[-1], history.accuracy[-1]


class BestWeights:
    """The weights of the epoch with the lowest monitored loss so far, for early stopping,
    restore_best and a clean Ctrl-C (before any epoch: the initial weights)."""

    def __init__(self, params: Sequence) -> None:
        self.params = params
        self.weights = [p.data for p in params]
        self.score = math.inf
        self.since = 0  # epochs since the best

    def update(self, score: float, epoch: int, history: History) -> bool:
        """Keep this epoch's weights if its score is the best (nan never counts as better);
        True when it was not."""
        if score < self.score:
            self.score, self.since = score, 0
            self.weights = [p.data for p in self.params]
            history.best_epoch = epoch
            return False
        self.since += 1
        return True

    def waited(self, patience: int | None) -> bool:
        return patience is not None and self.since >= patience

    def restore(self) -> None:
        for p, x in zip(self.params, self.weights):
            p.data = x


class EagerTrainer:
    """An epoch of steps that build each batch's graph anew: loss, zero_grad, backward, step."""

    def __init__(self, model: Module, plan: TrainingPlan) -> None:
        self.model, self.plan = model, plan
        self.batch_loss = make_batch_loss(plan.objective, plan.l2)
        self.targets = [plan.objective.target(i) for i in plan.y_train]
        self.order = random.Random(plan.seed)

    def epoch(self) -> None:
        plan, opt = self.plan, self.plan.optimizer
        batches = minibatches(
            plan.X_train, self.targets, plan.batch_size, shuffle=True, seed=self.order
        )
        for xb, tb in batches:
            value = self.batch_loss(self.model, xb, tb)
            opt.zero_grad()
            value.backward()
            opt.step()

    def evaluate(self) -> None:  # the loop measures the epoch from the Values
        return None

    def finish(self) -> None:
        pass


def _trainer(model: Module, plan: TrainingPlan):
    if not plan.compile:
        return EagerTrainer(model, plan)
    from ..compiled.trainer import CompiledTrainer

    return CompiledTrainer(model, plan)


def _measure_training(model: Module, plan: TrainingPlan) -> tuple[float, float]:
    return evaluate(model, plan.X_train, plan.y_train, plan.objective, plan.l2)


def _measure_epoch(model: Module, plan: TrainingPlan, trainer, history: History, bar) -> float:
    """The epoch's loss and accuracy (and validation's) into the history and the progress
    bar; returns the monitored loss (validation's if there is validation data)."""
    train_loss, train_acc = trainer.evaluate() or _measure_training(model, plan)
    history.loss.append(train_loss)
    history.accuracy.append(train_acc)
    shown = {"loss": f"{train_loss:.4f}", "acc": f"{train_acc:.3f}"}
    score = train_loss
    if plan.X_val:
        val_loss, val_acc = evaluate(model, plan.X_val, plan.y_val, plan.objective, 0.0)
        history.val_loss.append(val_loss)
        history.val_accuracy.append(val_acc)
        shown.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
        score = val_loss
    bar.set_postfix(shown, refresh=False)
    return score
