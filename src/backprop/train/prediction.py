"""Prediction without a graph: outputs, labels and accuracy, and the evaluation of an epoch."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Value, no_grad
from ..nn import MLP, Module
from .objectives import Objective, get_objective

__all__ = [
    "predict_outputs",
    "predict",
    "accuracy",
    "fold_standardization",
    "fold_input_scale",
    "evaluate",
]


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


def fold_input_scale(model: MLP, scale: float) -> None:
    """Make an MLP trained on rows / ``scale`` take the rows themselves: its first layer's
    weights are divided by ``scale`` and their grads (d loss / d weight) multiplied by it.

    fit() does this after training on image rows (``scale`` a power of two, so it is exact),
    and marks the model with ``model.folded_input_scale = scale``; a later fit of that model
    on images first multiplies its weights by that fit's scale, so that it trains on from the
    same function of the raw pixels.
    """
    for neuron in model.layers[0].neurons:
        for w in neuron.w:
            w.data = w.data / scale
            w.grad = w.grad * scale
    model.folded_input_scale = scale


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


def evaluate(
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
