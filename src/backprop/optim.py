"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules, following torch.optim's formulas.

Each update is PyTorch's single-tensor update written for one scalar parameter at a time, so
a run gives the same numbers as ``torch.optim`` in float64. ``state_dict()`` is keyed by
parameter order, as PyTorch's is::

    opt = Adam(model.parameters(), lr=0.05)
    for epoch in range(100):
        loss = ...
        opt.zero_grad()
        loss.backward()
        opt.step()
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable
from typing import Any

from .engine import Value

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
    "LinearLR",
]


def _number(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}: {x!r:.60}")
    return float(x)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class Optimizer:
    """Base class: holds the parameters, their per-parameter state and the hyperparameters.

    A subclass lists its hyperparameters in ``defaults`` and implements ``_update``.
    """

    def __init__(self, params: Iterable[Value], lr: float, **hyperparameters: Any) -> None:
        if isinstance(params, Value):
            raise TypeError("params must be an iterable of Values, got a single Value")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Value):
                raise TypeError(f"parameter {i} is a {type(p).__name__}, not a Value")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear more than once in the parameter list")
        lr = _number("lr", lr)
        _check(0.0 <= lr < math.inf, f"Invalid learning rate: {lr}")
        self.params: list[Value] = params
        self.lr = lr
        self.hyperparameters: dict[str, Any] = hyperparameters
        self.state: list[dict[str, float]] = [{} for _ in params]

    def __getattr__(self, name: str) -> Any:
        # opt.momentum, opt.betas ...: read-only views of the hyperparameters
        hyper = self.__dict__.get("hyperparameters", {})
        if name in hyper:
            return hyper[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def zero_grad(self) -> None:
        """Set every parameter's .grad to 0."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter once from its .grad."""
        for p, state in zip(self.params, self.state):
            p.data = self._update(p.data, p.grad, state)

    def _update(self, param: float, grad: float, state: dict[str, float]) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Like PyTorch's: per-parameter state keyed by parameter index, and one param group."""
        group = {"lr": self.lr, **copy.deepcopy(self.hyperparameters)}
        group["params"] = list(range(len(self.params)))
        state = {i: dict(s) for i, s in enumerate(self.state) if s}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what state_dict() returned; checks everything before changing anything."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("optimizer state_dict must have exactly 'state' and 'param_groups'")
        groups = state_dict["param_groups"]
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError("optimizer state_dict must hold exactly one param group")
        group = dict(groups[0])
        n = len(self.params)
        if group.pop("params", None) != list(range(n)):
            raise ValueError(f"optimizer state_dict is for a different parameter list (need {n})")
        expected = {"lr", *self.hyperparameters}
        if set(group) != expected:
            raise ValueError(
                f"optimizer state_dict has hyperparameters {sorted(group)}, "
                f"{type(self).__name__} needs {sorted(expected)}"
            )
        # validate the hyperparameters by building a fresh optimizer with them
        fresh = type(self)(self.params, **group)
        state = state_dict["state"]
        if not isinstance(state, dict):
            raise ValueError("optimizer state_dict 'state' must be a dict")
        new_state: list[dict[str, float]] = [{} for _ in range(n)]
        for key, entry in state.items():
            index = int(key) if isinstance(key, str) and key.isdigit() else key
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise ValueError(
                    f"optimizer state has an entry for parameter {key!r}, not 0..{n - 1}"
                )
            if not isinstance(entry, dict):
                raise ValueError(f"optimizer state for parameter {index} must be a dict")
            for name, x in entry.items():
                if name not in self._state_names:
                    raise ValueError(f"unknown optimizer state {name!r} for parameter {index}")
                if isinstance(x, bool) or not isinstance(x, numbers.Real):
                    raise ValueError(f"optimizer state {name!r} of parameter {index} is {x!r}")
            new_state[index] = {name: float(x) for name, x in entry.items()}
        self.lr = fresh.lr
        self.hyperparameters = fresh.hyperparameters
        self.state = new_state

    _state_names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr!r}, {hyper})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    As torch.optim.SGD: g += weight_decay * p; buf = momentum * buf + (1 - dampening) * g
    (buf = g on the first step); g = g + momentum * buf if nesterov else buf; p -= lr * g.
    """

    _state_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        momentum = _number("momentum", momentum)
        dampening = _number("dampening", dampening)
        weight_decay = _number("weight_decay", weight_decay)
        _check(0.0 <= momentum < math.inf, f"Invalid momentum value: {momentum}")
        _check(0.0 <= weight_decay < math.inf, f"Invalid weight_decay value: {weight_decay}")
        _check(math.isfinite(dampening), f"Invalid dampening value: {dampening}")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        super().__init__(
            params,
            lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )

    def _update(self, param: float, grad: float, state: dict[str, float]) -> float:
        h = self.hyperparameters
        if h["weight_decay"] != 0:
            grad = grad + h["weight_decay"] * param
        momentum = h["momentum"]
        if momentum != 0:
            if "momentum_buffer" in state:
                buf = momentum * state["momentum_buffer"] + (1 - h["dampening"]) * grad
            else:
                buf = grad
            state["momentum_buffer"] = buf
            grad = grad + momentum * buf if h["nesterov"] else buf
        return param - self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam, with optional L2 weight decay and AMSGrad.

    m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _state_names = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False  # AdamW decays the weights directly instead of adding wd * p to g

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        beta1, beta2 = _number("betas[0]", betas[0]), _number("betas[1]", betas[1])
        eps = _number("eps", eps)
        weight_decay = _number("weight_decay", weight_decay)
        _check(0.0 <= eps < math.inf, f"Invalid epsilon value: {eps}")
        _check(0.0 <= beta1 < 1.0, f"Invalid beta parameter at index 0: {beta1}")
        _check(0.0 <= beta2 < 1.0, f"Invalid beta parameter at index 1: {beta2}")
        _check(0.0 <= weight_decay < math.inf, f"Invalid weight_decay value: {weight_decay}")
        if not isinstance(amsgrad, bool):
            raise TypeError(f"amsgrad must be True or False, got {amsgrad!r}")
        super().__init__(
            params,
            lr,
            betas=(beta1, beta2),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
        )

    def _update(self, param: float, grad: float, state: dict[str, float]) -> float:
        h = self.hyperparameters
        beta1, beta2 = h["betas"]
        lr, wd = self.lr, h["weight_decay"]
        if wd != 0:
            if self._decoupled:
                param = param * (1 - lr * wd)
            else:
                grad = grad + wd * param
        step = state.get("step", 0.0) + 1
        # torch's exp_avg.lerp_(grad, 1 - beta1)
        exp_avg = state.get("exp_avg", 0.0)
        exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)
        exp_avg_sq = state.get("exp_avg_sq", 0.0) * beta2 + (1 - beta2) * grad * grad
        state.update(step=step, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if h["amsgrad"]:
            top = max(state.get("max_exp_avg_sq", 0.0), exp_avg_sq)
            state["max_exp_avg_sq"] = top
            denom = math.sqrt(top) / bias_correction2_sqrt + h["eps"]
        else:
            denom = math.sqrt(exp_avg_sq) / bias_correction2_sqrt + h["eps"]
        return param - (lr / bias_correction1) * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
    p *= 1 - lr * weight_decay before the Adam step."""

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ---- learning-rate schedules ------------------------------------------------------------------


class LRScheduler:
    """Sets ``optimizer.lr`` from the epoch count; call ``step()`` once per epoch, after
    ``optimizer.step()``, as in PyTorch. Subclasses give the closed form ``lr_at(epoch)``."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [self.optimizer.lr]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or set(state_dict) != set(self.state_dict()):
            raise ValueError(f"scheduler state_dict must have keys {sorted(self.state_dict())}")
        vars(self).update(state_dict)
        self.optimizer.lr = self.lr_at(self.last_epoch)


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _number("gamma", gamma)
        _check(0.0 < self.gamma < math.inf, f"Invalid gamma value: {gamma}")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = _number("eta_min", eta_min)
        _check(0.0 <= self.eta_min < math.inf, f"Invalid eta_min value: {eta_min}")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2


class LinearLR(LRScheduler):
    """lr = base_lr * factor, the factor going linearly from start_factor to end_factor over
    total_iters epochs, then staying there. micrograd's demo decay, lr = 1 - 0.9 k / 100, is
    ``LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=100)`` with lr 1.0."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0,
        end_factor: float = 0.1,
        total_iters: int = 100,
    ) -> None:
        self.start_factor = _number("start_factor", start_factor)
        self.end_factor = _number("end_factor", end_factor)
        _check(0.0 < self.start_factor <= 1.0, f"Invalid start_factor value: {start_factor}")
        _check(0.0 <= self.end_factor <= 1.0, f"Invalid end_factor value: {end_factor}")
        self.total_iters = _positive_int("total_iters", total_iters)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        done = min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)
