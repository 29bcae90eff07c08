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

The parts, each its own module: ``objectives`` (a loss and its targets), ``plan`` (fit's
arguments checked and resolved, shared with ``backprop train``), ``loop`` (fit and its loop),
``history`` (History, Snapshot, Recording), ``prediction`` (outputs without a graph,
evaluation); the compiled trainer is ``backprop.compiled.trainer``.
"""

from .history import MAX_FRAMES, History, Recording, Snapshot, recorded_epochs
from .loop import fit, run_plan
from .objectives import OBJECTIVES, Objective, get_objective, make_batch_loss
from .plan import (
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULES,
    TrainingPlan,
    default_lr,
    labels_text,
    make_optimizer,
    make_schedule,
    pixel_scale,
    plan_fit,
    resolve_task,
)
from .prediction import (
    accuracy,
    evaluate,
    fold_input_scale,
    fold_standardization,
    predict,
    predict_outputs,
)

# the names the tests and earlier code used for two helpers
_recorded_epochs = recorded_epochs
_evaluate = evaluate

__all__ = [
    "Objective",
    "OBJECTIVES",
    "get_objective",
    "make_batch_loss",
    "fit",
    "plan_fit",
    "run_plan",
    "resolve_task",
    "TrainingPlan",
    "labels_text",
    "History",
    "Snapshot",
    "Recording",
    "MAX_FRAMES",
    "predict_outputs",
    "predict",
    "accuracy",
    "fold_standardization",
    "fold_input_scale",
    "pixel_scale",
    "make_optimizer",
    "make_schedule",
    "DEFAULT_LR",
    "default_lr",
    "OPTIMIZERS",
    "SCHEDULES",
]
