"""Objectives: a loss for classification plus how class labels become its targets.

Labels can be anything (0/1, -1/1, names). ``classes`` (their order) maps them to what the loss
needs: the first class is -1 for hinge and mse, 0 for bce, index 0 for cross-entropy. Every
batch's loss is built by one function, ``batch_loss(model, inputs, targets)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import losses
from ..engine import Value
from ..nn import Module

__all__ = [
    "Objective",
    "OBJECTIVES",
    "get_objective",
    "make_batch_loss",
    "model_outputs",
    "loss_of_outputs",
]


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


def model_outputs(model: Module, inputs: Sequence[Sequence[float]]) -> list:
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
        return loss_of_outputs(objective, l2, model, model_outputs(model, inputs), targets)

    return batch_loss


def loss_of_outputs(objective: Objective, l2: float, model: Module, outputs, targets) -> Value:
    data_loss = objective.loss(outputs, targets)
    if l2:
        return data_loss + losses.l2_penalty(model.parameters(), l2)
    return data_loss
