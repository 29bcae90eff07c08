"""backprop: a scalar reverse-mode autograd engine and a toolkit for learning backprop."""

from . import data, losses, optim
from .autodiff import (
    AnomalyError,
    GradcheckError,
    detect_anomaly,
    grad,
    gradcheck,
    gradgradcheck,
    hessian,
    jvp,
)
from .compiled import Program, compile
from .compiled.jit import jit, take
from .engine import Value, is_grad_enabled, no_grad
from .nn import MLP, Layer, Module, Neuron
from .pytorch import check_torch, from_torch, to_torch
from .recorder import Recorder
from .scopes import scope
from .serialize import load, save
from .train import fit
from .viz import draw_dot, explain, explore, to_dot, to_json, to_mermaid, trace

__version__ = "0.1.0"

__all__ = [
    "compile",
    "jit",
    "take",
    "to_torch",
    "from_torch",
    "check_torch",
    "Program",
    "Value",
    "grad",
    "hessian",
    "jvp",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "detect_anomaly",
    "AnomalyError",
    "no_grad",
    "is_grad_enabled",
    "scope",
    "Module",
    "Neuron",
    "Layer",
    "MLP",
    "fit",
    "Recorder",
    "save",
    "load",
    "data",
    "losses",
    "optim",
    "draw_dot",
    "trace",
    "explain",
    "explore",
    "to_dot",
    "to_json",
    "to_mermaid",
]
