"""Optimizer steps over flat arrays: optim.py's formulas, a few numpy calls per step.

``FlatOptimizer(opt)`` steps one float64 array of parameters (such as a Program's
``parameter_data``, with ``parameter_grad``) in place, with the hyperparameters of ``opt``
(an SGD, Adam or AdamW over the same parameters, in the same order) read at every step, so that
schedules apply. Each update is the per-Value one of optim.py written over whole arrays, term
by term in the same order, so the two give the same numbers (IEEE arithmetic is the same
elementwise). ``state_dict()`` has the per-Value optimizers' format, and either can load the
other's::

    program = backprop.compile(loss, parameters=model.parameters())
    opt = Adam(model.parameters(), lr=0.05)
    flat = FlatOptimizer(opt)
    for step in range(100):
        program.forward()
        program.backward(accumulate=False)
        flat.step(program.parameter_data, program.parameter_grad)
    flat.write_state()  # opt.state now holds the arrays' state, as if opt had stepped
    program.sync()      # and the parameters their numbers
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..optim import SGD, Adam, Optimizer

__all__ = ["FlatOptimizer"]


class FlatOptimizer:
    """Steps flat arrays with the formulas and hyperparameters of a per-Value optimizer."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not self.supports(optimizer):
            raise TypeError(
                f"FlatOptimizer steps SGD, Adam and AdamW (not subclasses with their own "
                f"update), got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.n = len(optimizer.params)
        self._read_state()

    @staticmethod
    def supports(optimizer: object) -> bool:
        """Whether the optimizer's update is one of optim.py's, which this class mirrors."""
        kind = type(optimizer)
        if not isinstance(optimizer, (SGD, Adam)) or kind.step is not Optimizer.step:
            return False
        return kind._update is SGD._update or kind._update is Adam._update

    def _read_state(self) -> None:
        """The optimizer's per-parameter state as arrays (all parameters have an entry or
        none, and one step count, as after steps of the per-Value optimizer)."""
        state = self.optimizer.state
        arrays: dict[str, np.ndarray] = {}
        for name in self.optimizer._state_names:
            has = [name in s for s in state]
            if not any(has):
                continue
            if not all(has):
                raise ValueError(
                    f"optimizer state {name!r} is set for {sum(has)} of {self.n} parameters: "
                    f"a flat step needs it for all or none"
                )
            arrays[name] = np.array([s[name] for s in state], dtype=np.float64)
        self.step_count = 0.0
        if "step" in arrays:
            steps = arrays.pop("step")
            if not (steps == steps[0]).all():
                raise ValueError(
                    f"the parameters have taken different numbers of steps "
                    f"({steps.min():g} to {steps.max():g}): a flat step needs one count"
                )
            self.step_count = float(steps[0])
        self.arrays = arrays

    def write_state(self) -> None:
        """Write the arrays' state into the optimizer's per-parameter ``state``."""
        names = list(self.arrays)
        if names:
            columns = [self.arrays[name].tolist() for name in names]
            rows = [dict(zip(names, values)) for values in zip(*columns)]
        else:
            rows = [{} for _ in range(self.n)]
        if self.step_count:
            for row in rows:
                row["step"] = self.step_count
        self.optimizer.state = rows

    def state_dict(self) -> dict[str, Any]:
        """The per-Value optimizer's state_dict: either form loads it."""
        self.write_state()
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)
        self._read_state()

    def zero_grad(self, grad: np.ndarray) -> None:
        grad[...] = 0.0

    def step(self, data: np.ndarray, grad: np.ndarray) -> None:
        """Update ``data`` in place from ``grad`` (both float64 arrays in parameter order)."""
        if data.shape != (self.n,) or grad.shape != (self.n,):
            raise ValueError(
                f"the optimizer has {self.n} parameters; got arrays of shapes "
                f"{data.shape} and {grad.shape}"
            )
        if isinstance(self.optimizer, Adam):
            self._adam(data, grad)
        else:
            self._sgd(data, grad)

    def _sgd(self, data: np.ndarray, grad: np.ndarray) -> None:
        # SGD._update over arrays, in its order of operations
        h, lr = self.optimizer.hyperparameters, self.optimizer.lr
        if h["weight_decay"] != 0:
            grad = grad + h["weight_decay"] * data
        momentum = h["momentum"]
        if momentum != 0:
            buf = self.arrays.get("momentum_buffer")
            if buf is None:
                buf = self.arrays["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - h["dampening"]) * grad
            grad = grad + momentum * buf if h["nesterov"] else buf
        data -= lr * grad

    def _adam(self, data: np.ndarray, grad: np.ndarray) -> None:
        # Adam._update over arrays, in its order of operations
        opt = self.optimizer
        h, lr = opt.hyperparameters, opt.lr
        beta1, beta2 = h["betas"]
        wd = h["weight_decay"]
        if wd != 0:
            if opt._decoupled:
                data *= 1 - lr * wd
            else:
                grad = grad + wd * data
        arrays = self.arrays
        if "exp_avg" not in arrays:
            arrays["exp_avg"] = np.zeros(self.n)
            arrays["exp_avg_sq"] = np.zeros(self.n)
        self.step_count = step = self.step_count + 1
        exp_avg, exp_avg_sq = arrays["exp_avg"], arrays["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if h["amsgrad"]:
            top = arrays.get("max_exp_avg_sq")
            if top is None:
                top = arrays["max_exp_avg_sq"] = np.zeros(self.n)
            np.maximum(top, exp_avg_sq, out=top)
            denom = np.sqrt(top)
        else:
            denom = np.sqrt(exp_avg_sq)
        denom /= bias_correction2_sqrt
        denom += h["eps"]
        data -= (lr / bias_correction1) * (exp_avg / denom)
