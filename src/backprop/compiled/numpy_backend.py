"""The numpy backend: the tape fused into sums of products, scheduled by level, run as arrays.

Planning turns the scalar tape into a short list of steps, each one vectorized numpy call or a
few, so replay loops over steps (about a dozen for an MLP), never over nodes:

1. Fusion. A chain of adds whose inner nodes have one consumer each (what ``sum()`` over a list
   builds) becomes one n-ary sum node, and a product with a single consumer inside such a chain
   becomes one of its terms. Every sum node is then ``sum_k left_k * right_k``, where a plain
   term x is written ``x * 1`` (and the right operand of a subtraction ``x * -1``).
2. Levels. A node's level is one more than its inputs' highest (fused nodes add none), so all
   nodes of one level depend only on lower ones. Nodes of one op at one level form one step.
3. Matrix products. The sum nodes of one level that share their term pattern are factored:
   when their left operands take nR distinct rows, their right operands nC distinct rows, and
   every (row, column) pair occurs exactly once, the block is ``W @ X`` (plus a bias for terms
   multiplied by the constant 1). An MLP layer over a batch of points is exactly such a block.
   What does not factor is summed segment by segment.
4. Memory layout. Every materialized node gets a slot in one float array, leaves first; each
   step's outputs are a contiguous run, ordered like its inputs, so most reads are views.
5. Serial stretches. Groups of at most TINY nodes (a chain has one node per level) cost more
   in numpy calls than in arithmetic: consecutive ones replay as Python floats in one step.

The op rules are ops.OPS's own forward/backward rows, called with ``NUMPY`` as ``m``. The
maths is in numpy_math.py, the steps in numpy_steps.py, the planning in numpy_plan.py; this
module holds the backend and the executor (kernels.py finds the optional native kernels).
"""

from __future__ import annotations

import numpy as np

from . import numpy_plan
from .kernels import native_kernels  # noqa: F401  (where the steps find the kernels)
from .numpy_math import NUMPY, NumpyMath, _Into  # noqa: F401  (the backend's maths)
from .numpy_plan import SUM, _factor, _scalar_run  # noqa: F401  (for the torch backend, tests)
from .numpy_steps import (  # noqa: F401  (the steps, for the torch backend and tests)
    _as,
    _Elementwise,
    _Index,
    _MatMul,
    _runs,
    _ScalarRun,
    _SegmentSum,
    _skip,
)
from .tape import Tape

__all__ = ["NumpyBackend", "NumpyMath", "NUMPY"]

MIN_BLOCK = 8  # fewer sum nodes than this are cheaper summed as segments than as a matmul
TINY = 4  # a group this small costs more in numpy calls than in Python float arithmetic


def _plan(tape: Tape):
    """numpy_plan.plan() with this module's MIN_BLOCK and TINY, read at each call (tests set
    TINY = 0 to send small graphs through the array code)."""
    return numpy_plan.plan(tape, MIN_BLOCK, TINY)


class NumpyBackend:
    """Vectorized replay with numpy (the default backend)."""

    name = "numpy"

    def prepare(self, tape: Tape, dtype: str = "float64") -> NumpyExecutor:
        return NumpyExecutor(tape, dtype)


# ---- the executor -------------------------------------------------------------------------


class NumpyExecutor:
    def __init__(self, tape: Tape, dtype: str = "float64") -> None:
        self.n_leaves = len(tape.leaf_ids)
        self.steps, self.levels, self.slot, n_slots, self.step_levels = _plan(tape)
        self.root_slot = int(self.slot[tape.root])
        self.output_slots = self.slot[np.asarray(tape.output_ids, dtype=np.intp)]
        self.slot = None  # a plan's node-sized arrays are not needed to replay it
        self.val = np.zeros(n_slots, dtype=dtype)
        self.val[self.n_leaves] = 1.0  # the constants that plain terms are multiplied by
        self.val[self.n_leaves + 1] = -1.0
        self.grad = np.zeros(n_slots, dtype=dtype)
        # bound in backward order, so that the first gradient into a slot can be stored
        written = np.zeros(n_slots, dtype=np.int8)
        written[: self.n_leaves + 2] = 2  # leaves start from leaf_grads; 1 and -1 are unread
        written[self.n_leaves - tape.n_constants : self.n_leaves] = 3  # constants: unread too
        bound = [step.bind(self.val, self.grad, written) for step in reversed(self.steps)]
        self._forward = [fwd for fwd, _ in reversed(bound)]
        self._backward = [bwd for _, bwd in bound]
        self._zero = _runs(np.flatnonzero(written < 2))  # the root, slots first added into
        # the leaves' stretch of the two arrays: a caller that keeps its leaves' numbers in
        # these very views (Program, in float64) saves a copy each way per step
        self.leaf_val, self.leaf_adj = self.val[: self.n_leaves], self.grad[: self.n_leaves]

    def forward(self, leaf_data: np.ndarray) -> float:
        if leaf_data is not self.leaf_val:
            self.val[: self.n_leaves] = leaf_data
        with np.errstate(all="ignore"):
            for step in self._forward:
                step()
        return float(self.val[self.root_slot])

    def backward(self, grad: float, leaf_grads: np.ndarray) -> np.ndarray:
        adjoint = self.grad
        if leaf_grads is not self.leaf_adj:
            adjoint[: self.n_leaves] = leaf_grads
        for zero in self._zero:
            adjoint[zero] = 0.0
        adjoint[self.root_slot] += grad
        with np.errstate(all="ignore"):
            for step in self._backward:
                step()
        return self.leaf_adj

    def outputs(self) -> np.ndarray:
        """The values of the tape's output nodes at the last forward(), as float64."""
        return self.val.take(self.output_slots).astype(np.float64, copy=False)

    def native_steps(self) -> int:
        """How many steps run a native kernel, forward or backward."""
        return sum(getattr(step, "native", False) for step in self.steps)

    def describe(self) -> str:
        lines = [f"numpy: {len(self.steps)} steps over {self.levels} levels"]
        if self.val.dtype != np.float64:
            lines[0] += f", {self.val.dtype}"
        native = self.native_steps()
        if native:
            lines[0] += f"; {native} with native kernels"
        lines += [f"  level {level}: {step.describe()}" for level, step in self.step_levels]
        return "\n".join(lines)
