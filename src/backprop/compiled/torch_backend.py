"""The torch backend: the numpy backend's plan (fusion, levels, matrix products) replayed with
torch tensor operations, on the CPU or a GPU.

Planning is the numpy backend's own ``_plan``: the same steps, the same matrix products
recovered from the scalar graph, the same memory layout (one float64 vector of slots). Each
numpy step is translated once into its torch twin, which keeps its index arrays as tensors
on the device; replay then runs every step's op rule (ops.OPS's own rows, with ``m`` =
TorchMath) over whole tensors. The scalar-run steps (serial stretches of a few nodes) stay
Python floats: on a GPU that costs one copy to the host and back per run, which is what a
chain of tiny kernels would cost anyway.

It equals the numpy backend to rounding (1e-12 relative in float64): torch's exp, tanh and
matrix products round in their own way, by an ulp or so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import check_device, require
from ..ops import SCALAR, Op
from . import numpy_backend as nb
from .tape import Tape

__all__ = ["TorchBackend", "TorchMath", "check_device"]


def _import_torch():
    require("the torch backend of compile()", "torch")
    import torch

    return torch


class TorchMath:
    """The maths namespace ``m`` over float64 tensors on one device, for the op rules."""

    def __init__(self, torch, device) -> None:
        self.torch, self.device = torch, device
        self._constants: dict[float, Any] = {}  # 0.0, 1.0 ... as tensors, made once

    def _t(self, x):
        if isinstance(x, self.torch.Tensor):
            return x
        if isinstance(x, float) and x == x:
            if x not in self._constants:
                self._constants[x] = self.torch.tensor(
                    x, dtype=self.torch.float64, device=self.device
                )
            return self._constants[x]
        return self.torch.as_tensor(x, dtype=self.torch.float64, device=self.device)

    def exp(self, x):
        return self.torch.exp(self._t(x))

    def log(self, x):
        return self.torch.log(self._t(x))

    def sqrt(self, x):
        return self.torch.sqrt(self._t(x))

    def tanh(self, x):
        return self.torch.tanh(self._t(x))

    def pow(self, a, b):
        return self.torch.pow(self._t(a), b if isinstance(b, float) else self._t(b))

    def where(self, cond, x, y):
        if isinstance(cond, bool):  # a constant argument's test, such as k == 2.0
            return x if cond else y
        if isinstance(x, self.torch.Tensor) or isinstance(y, self.torch.Tensor):
            return self.torch.where(cond, x, y)  # a float beside a tensor needs no tensor
        return self.torch.where(cond, self._t(x), self._t(y))

    def maximum(self, a, b):
        return self.torch.maximum(self._t(a), self._t(b))  # nan propagates, as in numpy

    def sign(self, x):
        return self.torch.sign(self._t(x))

    def sigmoid(self, x):
        return 1.0 / (1.0 + self.torch.exp(-self._t(x)))  # as ScalarMath.sigmoid


class TorchBackend:
    """Vectorized replay with torch on ``device`` ('cpu', 'cuda', 'cuda:1', ...)."""

    name = "torch"

    def __init__(self, device: Any = "cpu") -> None:
        self.torch = _import_torch()
        self.device = check_device(device)

    def prepare(self, tape: Tape) -> TorchExecutor:
        return TorchExecutor(tape, self.torch, self.device)


# ---- index sets and steps: nb's, with their arrays as tensors on the device ----------------


class _Index:
    """nb._Index on the device: a slice when the slots are one run, else a gather."""

    def __init__(self, index: nb._Index, torch, device) -> None:
        self.shape, self.start, self.stop = tuple(index.shape), index.start, index.stop
        self.flat = None
        if self.start is None:
            self.flat = torch.as_tensor(index.idx.ravel(), dtype=torch.long, device=device)
        self.torch = torch

    def take(self, a):
        if self.start is not None:
            return a[self.start : self.stop].view(self.shape)
        return a.index_select(0, self.flat).view(self.shape)  # cheaper than a[self.flat]

    def add_to(self, a, x) -> None:
        if self.start is not None:
            a[self.start : self.stop].view(self.shape).add_(x)
            return
        if not isinstance(x, self.torch.Tensor):
            x = self.torch.as_tensor(x, dtype=a.dtype, device=a.device)
        if x.shape != self.shape:
            x = x.broadcast_to(self.shape)
        x = x.reshape(-1)
        if x.untyped_storage().data_ptr() == a.untyped_storage().data_ptr():
            x = x.clone()  # a view of a's own slots: index_add_ refuses to read what it writes
        a.index_add_(0, self.flat, x)  # sums repeated slots

    def __len__(self) -> int:
        return int(np.prod(self.shape))


def _const(x, torch, device):
    """A step's constant argument: a float stays a float, an array becomes a tensor."""
    if x is None or isinstance(x, float):
        return x
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)


class _Elementwise:
    def __init__(self, step: nb._Elementwise, torch, device, m: TorchMath) -> None:
        self.op: Op = step.op
        self.ins = [_Index(ix, torch, device) for ix in step.ins]
        self.start, self.stop, self.m = step.start, step.stop, m
        self.extra = (_const(step.arg, torch, device),) if step.op.has_arg else ()
        self.xs: list = []
        self.describe = step.describe

    def forward(self, val) -> None:
        self.xs = [ix.take(val) for ix in self.ins]
        val[self.start : self.stop] = self.op.forward(self.m, *self.xs, *self.extra)

    def backward(self, val, grad) -> None:
        s, e = self.start, self.stop
        grads = self.op.backward(self.m, grad[s:e], val[s:e], *self.xs, *self.extra)
        for ix, g in zip(self.ins, grads):
            ix.add_to(grad, g)


class _SegmentSum:
    def __init__(self, step: nb._SegmentSum, torch, device) -> None:
        self.torch = torch
        self.left = _Index(step.left, torch, device)
        self.right = None if step.right is None else _Index(step.right, torch, device)
        self.right_var = None
        if step.right_var is not None:
            mask, index = step.right_var
            mask = torch.as_tensor(np.asarray(mask), device=device)
            self.right_var = (mask, _Index(index, torch, device))
        self.start, self.stop, self.uniform = step.start, step.stop, step.uniform
        counts = np.asarray(step.counts, dtype=np.int64)
        # the segment of every term, for sums whose nodes have different numbers of terms
        self.segment = torch.as_tensor(
            np.repeat(np.arange(counts.size), counts), dtype=torch.long, device=device
        )
        self.lv = self.rv = None
        self.describe = step.describe

    def forward(self, val) -> None:
        lv = self.lv = self.left.take(val)
        rv = self.rv = None if self.right is None else self.right.take(val)
        out = val[self.start : self.stop]
        terms = lv if rv is None else lv * rv
        if self.uniform:
            out.copy_(terms.sum(dim=1))
        else:
            out.zero_()
            out.index_add_(0, self.segment, terms)

    def backward(self, val, grad) -> None:
        g = grad[self.start : self.stop]
        g = g[:, None] if self.uniform else g[self.segment]
        if self.right is None:
            self.left.add_to(grad, g.broadcast_to(self.left.shape))
            return
        self.left.add_to(grad, g * self.rv)
        if self.right_var is not None:
            mask, index = self.right_var
            index.add_to(grad, (g * self.lv)[mask])


class _MatMul:
    def __init__(self, step: nb._MatMul, torch, device) -> None:
        self.torch = torch
        self.w, self.xt = _Index(step.w, torch, device), _Index(step.xt, torch, device)
        self.bias = None if step.bias is None else _Index(step.bias, torch, device)
        self.coefs = None if step.coefs is None else _const(step.coefs, torch, device)
        self.start, self.stop, self.shape = step.start, step.stop, tuple(step.shape)
        self.addend = None if step.addend is None else _Index(step.addend, torch, device)
        self.signs = None
        if step.addend is not None:
            self.signs = _const(step.addend_coefs, torch, device)[:, None, None]
        self.a = self.b = None
        self.describe = step.describe

    def forward(self, val) -> None:
        a = self.a = self.w.take(val)
        b = self.b = self.xt.take(val)
        out = val[self.start : self.stop].view(self.shape)
        self.torch.matmul(a, b, out=out)
        if self.bias is not None:
            out += (self.bias.take(val) @ self.coefs).unsqueeze(1)
        if self.addend is not None:
            for term in self.addend.take(val) * self.signs:
                out += term

    def backward(self, val, grad) -> None:
        g = grad[self.start : self.stop].view(self.shape)
        self.w.add_to(grad, g @ self.b.T)  # dL/dW = G X^T
        self.xt.add_to(grad, self.a.T @ g)  # dL/dX = W^T G
        if self.bias is not None:
            self.bias.add_to(grad, g.sum(dim=1)[:, None] * self.coefs)
        if self.addend is not None:
            self.addend.add_to(grad, g.unsqueeze(0) * self.signs)


class _ScalarRun:
    """nb._ScalarRun's Python-float replay, reading and writing the device's slots."""

    def __init__(self, step: nb._ScalarRun, torch, device) -> None:
        self.step, self.torch, self.device = step, torch, device
        self.external = _Index(step.external, torch, device)
        self.start, self.stop = step.start, step.stop
        self.describe = step.describe

    def forward(self, val) -> None:
        step = self.step
        env = step.env = self.external.take(val).tolist() + step.blank
        for out, fwd, _, ins, arg in step.equations:
            if arg is not None:
                env[out] = fwd(SCALAR, *[env[j] for j in ins], arg)
            elif len(ins) == 2:
                env[out] = fwd(SCALAR, env[ins[0]], env[ins[1]])
            else:
                env[out] = fwd(SCALAR, env[ins[0]])
        outs = [env[j] for j in step.outputs]
        val[self.start : self.stop] = self.torch.tensor(outs, dtype=val.dtype, device=val.device)

    def backward(self, val, grad) -> None:
        step = self.step
        env, adjoint = step.env, [0.0] * len(step.env)
        for j, g in zip(step.outputs, grad[self.start : self.stop].tolist()):
            adjoint[j] = g
        for out, _, bwd, ins, arg in reversed(step.equations):
            if arg is not None:
                grads = bwd(SCALAR, adjoint[out], env[out], *[env[j] for j in ins], arg)
            elif len(ins) == 2:
                grads = bwd(SCALAR, adjoint[out], env[out], env[ins[0]], env[ins[1]])
            else:
                grads = bwd(SCALAR, adjoint[out], env[out], env[ins[0]])
            for j, g in zip(ins, grads):
                adjoint[j] += g
        sent = adjoint[: len(self.external)]
        self.external.add_to(grad, self.torch.tensor(sent, dtype=grad.dtype, device=grad.device))


def _translate(step, torch, device, m: TorchMath):
    if isinstance(step, nb._Elementwise):
        return _Elementwise(step, torch, device, m)
    if isinstance(step, nb._SegmentSum):
        return _SegmentSum(step, torch, device)
    if isinstance(step, nb._MatMul):
        return _MatMul(step, torch, device)
    if isinstance(step, nb._ScalarRun):
        return _ScalarRun(step, torch, device)
    raise TypeError(f"the torch backend has no twin for the numpy step {type(step).__name__}")


class TorchExecutor:
    def __init__(self, tape: Tape, torch, device) -> None:
        self.torch, self.device = torch, device
        self.n_leaves = len(tape.leaf_ids)
        steps, self.levels, slot, n_slots, step_levels = nb._plan(tape)
        m = TorchMath(torch, device)
        twins = {id(step): _translate(step, torch, device, m) for step in steps}
        self.steps = [twins[id(step)] for step in steps]
        self.step_levels = [(level, twins[id(step)]) for level, step in step_levels]
        self.root_slot = int(slot[tape.root])
        # the nodes compile(outputs=...) named: their slots, read after a forward()
        output_ids = np.asarray(getattr(tape, "output_ids", []), dtype=np.intp)
        self.output_slots = torch.as_tensor(slot[output_ids], dtype=torch.long, device=device)
        self.val = torch.zeros(n_slots, dtype=torch.float64, device=device)
        self.val[self.n_leaves] = 1.0  # the constants that plain terms are multiplied by
        self.val[self.n_leaves + 1] = -1.0
        self.grad = torch.zeros(n_slots, dtype=torch.float64, device=device)

    def forward(self, leaf_data: np.ndarray) -> float:
        val = self.val
        leaves = np.ascontiguousarray(leaf_data, dtype=np.float64)
        val[: self.n_leaves] = self.torch.from_numpy(leaves).to(self.device)
        with self.torch.no_grad():
            for step in self.steps:
                step.forward(val)
        return float(val[self.root_slot])

    def backward(self, grad: float, leaf_grads: np.ndarray) -> np.ndarray:
        adjoint = self.grad
        old = np.ascontiguousarray(leaf_grads, dtype=np.float64)
        adjoint[: self.n_leaves] = self.torch.from_numpy(old).to(self.device)
        adjoint[self.n_leaves :] = 0.0
        adjoint[self.root_slot] += grad
        with self.torch.no_grad():
            for step in reversed(self.steps):
                step.backward(self.val, adjoint)
        return adjoint[: self.n_leaves].cpu().numpy()

    def outputs(self) -> np.ndarray:
        """The values of the tape's output nodes at the last forward(), as float64."""
        return self.val.index_select(0, self.output_slots).cpu().numpy()

    def describe(self) -> str:
        lines = [f"torch ({self.device}): {len(self.steps)} steps over {self.levels} levels"]
        lines += [f"  level {level}: {step.describe()}" for level, step in self.step_levels]
        return "\n".join(lines)
