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

The op rules are ops.OPS's own forward/backward rows, called with ``NUMPY`` as ``m``.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..ops import ADD, MUL, RELU, SCALAR, SIGMOID, SUB, TANH, Op
from .tape import OP_LIST, Tape

__all__ = ["NumpyBackend", "NumpyMath", "NUMPY"]

MIN_BLOCK = 8  # fewer sum nodes than this are cheaper summed as segments than as a matmul
TINY = 4  # a group this small costs more in numpy calls than in Python float arithmetic
SUM = len(OP_LIST)  # the kind of a fused sum node, after the op codes


class NumpyMath:
    """The maths namespace ``m`` over float64 arrays. Call under np.errstate(all='ignore'):
    like eager mode, undefined maths gives nan or inf silently."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    pow = staticmethod(np.power)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    sign = staticmethod(np.sign)

    @staticmethod
    def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """1 / (1 + exp(-x)), as ScalarMath.sigmoid, so the two agree bit for bit (1 + e and
        e + 1 are one IEEE sum). Its four ufuncs run in one array, ``out`` when given: no
        temporaries, which for a layer over a batch are fresh pages at every call."""
        t = np.negative(x, out=out)
        np.exp(t, out=t)
        np.add(t, 1.0, out=t)
        return np.divide(1.0, t, out=t)


NUMPY = NumpyMath()


class _Into:
    """NUMPY for one step's forward rule, whose first ufunc call writes into the step's output
    slots instead of a new array: a rule such as relu's ``m.maximum(a, 0.0)`` then costs one
    pass over memory, not an allocation and a copy. Later calls allocate as usual, so a rule
    of several calls still gets every intermediate right (``out`` holds only the first).
    sigmoid, which takes ``out`` as a ufunc does, writes there the same way.
    Set ``fresh = True`` before each call of the rule."""

    def __init__(self, out: np.ndarray) -> None:
        self.fresh = True
        for name in _MATH_NAMES:
            found = getattr(NUMPY, name)
            if isinstance(found, np.ufunc) or name == "sigmoid":
                found = self._writer(found, out)
            setattr(self, name, found)  # where allocates: its own code

    def _writer(self, fn, out: np.ndarray):
        def into(*args):
            if self.fresh:
                self.fresh = False
                return fn(*args, out=out)
            return fn(*args)

        return into


_MATH_NAMES = [name for name in vars(NumpyMath) if not name.startswith("_")]


class NumpyBackend:
    """Vectorized replay with numpy (the default backend)."""

    name = "numpy"

    def prepare(self, tape: Tape, dtype: str = "float64") -> NumpyExecutor:
        return NumpyExecutor(tape, dtype)


# ---- the optional native kernels (_native.c) ----------------------------------------------

_native_state: list = []  # [the module or None], once looked up


def native_kernels():
    """The native kernels module, or None: when it was not built (no C compiler at install
    time), with a one-line notice the first time; or when BACKPROP_NATIVE=0 asks for numpy
    alone (no notice). Both paths compute the same numbers."""
    if not _native_state:
        module = None
        if os.environ.get("BACKPROP_NATIVE", "1") != "0":
            try:
                from . import _native as module
            except ImportError as e:
                print(
                    f"backprop: native kernels unavailable ({e}); compiled replay uses numpy "
                    "alone (reinstall with a C compiler for the fused activation steps)",
                    file=sys.stderr,
                )
        _native_state.append(module)
    return _native_state[0]


# ---- where a step reads and writes --------------------------------------------------------


class _Index:
    """A set of slots read by a step: a view when they are one contiguous run, else a gather.

    ``add_to`` scatter-adds gradients back; repeated slots (x*x, a weight shared by two
    nodes) go through one bincount over the distinct slots, never np.add.at.
    """

    __slots__ = ("idx", "shape", "start", "stop", "uniq", "inv")

    def __init__(self, idx: np.ndarray) -> None:
        idx = np.ascontiguousarray(idx, dtype=np.intp)
        self.idx, self.shape = idx, idx.shape
        self.start = self.stop = None
        self.uniq = self.inv = None
        flat = idx.ravel()
        n = flat.size
        if n and flat[-1] - flat[0] == n - 1 and (n == 1 or (np.diff(flat) == 1).all()):
            self.start, self.stop = int(flat[0]), int(flat[0]) + n
            return
        order = np.argsort(flat, kind="stable")
        ordered = flat[order]
        new = np.r_[True, ordered[1:] != ordered[:-1]] if n else np.zeros(0, dtype=bool)
        if not new.all():  # repeated slots: their grads are summed by one bincount
            inv = np.empty(n, dtype=np.intp)
            inv[order] = np.cumsum(new) - 1
            self.uniq, self.inv = ordered[new], inv

    def view(self, a: np.ndarray) -> np.ndarray | None:
        """The slots of ``a`` as a view (shared memory, made once) when they form an evenly
        strided grid, else None: such a step reads and writes them with no gather."""
        if self.start is not None:
            return a[self.start : self.stop].reshape(self.shape)
        idx = self.idx
        if idx.size < 2 or idx.ndim > 2 or self.uniq is not None:
            return None
        grid = idx.reshape(idx.shape[0], -1) if idx.ndim == 2 else idx.reshape(1, -1)
        base = int(grid[0, 0])
        steps = [int(grid[1, 0]) - base if grid.shape[0] > 1 else 1]
        steps.append(int(grid[0, 1]) - base if grid.shape[1] > 1 else 1)
        if min(steps) < 1:
            return None
        expected = base + np.arange(grid.shape[0])[:, None] * steps[0]
        if not (expected + np.arange(grid.shape[1]) * steps[1] == grid).all():
            return None
        size = a.itemsize
        strided = np.lib.stride_tricks.as_strided(
            a[base:], grid.shape, (steps[0] * size, steps[1] * size)
        )
        return strided.reshape(self.shape)

    def reader(self, a: np.ndarray):
        """() -> the slots' values of ``a``, bound once: a view, or a gather."""
        view = self.view(a)
        if view is not None:
            return lambda: view
        idx, take = self.idx, a.take
        return lambda: take(idx)

    def adder(self, a: np.ndarray, written: np.ndarray):
        """(x) -> None adding x into the slots of ``a``, bound once.

        ``written`` says which slots the adders bound so far (in backward order) write: 0
        none, 1 added into, 2 stored. Where no earlier adder writes any of a view's slots,
        the first gradient is stored instead of added: no zeroing of those slots before
        backward, no extra pass. Such an adder has the view as ``out``, for a step that can
        compute straight into it."""
        slots = self.idx.ravel()
        if slots.size and (written[slots] == 3).all():  # constants only: no gradient wanted
            return _skip
        view = self.view(a)
        first = view is not None and not written[slots].any()
        written[slots] = 2 if first else np.maximum(written[slots], 1)
        if first:

            def store(x) -> None:
                view[...] = x  # not np.copyto: its dispatch wrapper is Python

            store.out = view
            return store
        if view is not None:
            add = np.add

            def add_view(x) -> None:
                add(view, x, out=view)

            add_view.into = view
            return add_view
        if self.uniq is None:
            idx = self.idx

            def add_distinct(x) -> None:
                a[idx] += x  # distinct slots: a buffered fancy add is exact

            return add_distinct
        uniq, inv, shape, bincount = self.uniq, self.inv, self.shape, np.bincount

        def add_repeated(x) -> None:
            x = np.broadcast_to(x, shape).ravel()  # a plain sum's grad arrives as a column
            a[uniq] += bincount(inv, weights=x, minlength=uniq.size)

        return add_repeated

    def __len__(self) -> int:
        return self.idx.size


def _skip(x) -> None:
    """The adder of slots whose gradients nobody reads (constant leaves)."""


_skip.skip = True


# ---- steps: each computes one run of slots from lower ones --------------------------------
# A step is planned from the tape alone; ``bind(val, grad)`` then returns its forward and
# backward as two closures over views of the executor's arrays, made once, so that replay
# calls little but numpy.


class _Elementwise:
    """Nodes of one op at one level: the op's own rule applied to whole arrays."""

    native = False  # bound to a native kernel, forward or backward

    def __init__(self, op: Op, ins: list[_Index], start: int, stop: int, arg) -> None:
        self.op, self.ins, self.start, self.stop, self.arg = op, ins, start, stop, arg

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        forward, backward = self.op.forward, self.op.backward
        extra = (_as(self.arg, val.dtype),) if self.op.has_arg else ()
        out, gout = val[self.start : self.stop], grad[self.start : self.stop]
        readers = [ix.reader(val) for ix in self.ins]
        adders = [ix.adder(grad, written) for ix in self.ins]
        xs: list = []

        def fwd() -> None:
            xs[:] = [read() for read in readers]
            out[...] = forward(NUMPY, *xs, *extra)

        def bwd() -> None:
            for add, g in zip(adders, backward(NUMPY, gout, out, *xs, *extra)):
                add(g)

        if len(readers) == 1:  # the common case spelled out: relu, tanh, exp ...
            (read,), (add,) = readers, adders
            fixed = self.ins[0].view(val)  # most inputs are a view: no call to read them
            into = _Into(out)

            def fwd() -> None:  # noqa: F811
                xs[:] = (x := read() if fixed is None else fixed,)
                into.fresh = True
                y = forward(into, x, *extra)
                if y is not out:
                    out[...] = y

            def bwd() -> None:  # noqa: F811
                (g,) = backward(NUMPY, gout, out, xs[0], *extra)
                add(g)

            native_fwd, native_bwd = self._bind_native(val, out, gout, add)
            self.native = native_fwd is not None or native_bwd is not None
            return native_fwd or fwd, native_bwd or bwd
        return fwd, bwd

    def _bind_native(self, val, out, gout, add):
        """(forward, backward) as native kernels, each one pass over memory, or None for
        either where numpy's stays: no kernels built, an op without one (only relu has a
        forward kernel), an input or a gradient that is not one contiguous run of slots."""
        op, (ix,) = self.op, self.ins
        native = native_kernels() if op in _NATIVE_OPS else None  # (its notice only then)
        if native is None:
            return None, None
        forward = None
        if op is RELU and ix.start is not None:
            forward = native.relu_forward(val[ix.start : ix.stop], out)
        if hasattr(add, "skip"):  # a constant's op: no gradient to send back
            return forward, _nothing
        store, into = getattr(add, "out", None), getattr(add, "into", None)
        target = store if store is not None else into
        if target is None or not target.flags.c_contiguous:
            return forward, None  # gradients gathered into scattered slots: numpy's adder
        return forward, native.backward(op.name, out, gout, target, store is None)

    def describe(self) -> str:
        return f"{self.op.name} x{self.stop - self.start}"


def _nothing() -> None:
    """A step's backward that has nothing to do."""


_NATIVE_OPS = {RELU, TANH, SIGMOID}  # the ops whose backward has a kernel


class _SegmentSum:
    """Sum nodes summed term by term: out[n] = sum over its terms of left * right.

    ``left`` and ``right`` are (nodes, K) when every node has K terms, else flat with
    ``starts`` marking each node's first term. ``right`` is None when every right operand is
    the constant 1 (a plain sum); ``right_var`` drops constant right operands from the scatter.
    """

    def __init__(self, left, right, right_var, counts, start, stop) -> None:
        self.left, self.right, self.right_var = left, right, right_var
        self.counts, self.start, self.stop = counts, start, stop
        self.uniform = left.idx.ndim == 2
        self.starts = None if self.uniform else np.r_[0, np.cumsum(counts)[:-1]]

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        out, gout = val[self.start : self.stop], grad[self.start : self.stop]
        read_left, add_left = self.left.reader(val), self.left.adder(grad, written)
        read_right = None if self.right is None else self.right.reader(val)
        add_right = mask = None
        if self.right_var is not None:
            mask, index = self.right_var
            add_right = index.adder(grad, written)
        single, uniform, counts, starts = len(out) == 1, self.uniform, self.counts, self.starts
        reduce, reduceat = np.add.reduce, np.add.reduceat  # not np.sum: its wrapper costs more
        last: list = [None, None]

        def fwd() -> None:
            lv = read_left()
            rv = None if read_right is None else read_right()
            last[:] = lv, rv
            if single:
                out[0] = lv.sum() if rv is None else np.dot(lv.ravel(), rv.ravel())
                return
            terms = lv if rv is None else lv * rv
            if uniform:
                reduce(terms, axis=1, out=out)
            else:
                reduceat(terms, starts, out=out)

        def bwd() -> None:
            lv, rv = last
            g = gout[:, None] if uniform else np.repeat(gout, counts)
            if rv is None:
                add_left(g)  # broadcast by the add
                return
            if add_left is not _skip:
                add_left(g * rv)
            if add_right is not None and add_right is not _skip:
                add_right((g * lv)[mask])

        return fwd, bwd

    def describe(self) -> str:
        n, terms = self.stop - self.start, int(np.sum(self.counts))
        kind = "sum" if self.right is None else "sum of products"
        return f"{kind} x{n} ({terms} terms)"


def _input_gradient(add_x, rows: int):
    """(W, G) -> None putting dL/dX = W^T G into X's slots through X's adder: computed
    straight into them when the adder stores, added otherwise, skipped for constants.

    With one row of W, W^T G is an outer product, which a broadcast multiply computes in a
    third less time than matmul (each entry is one product either way, so the two are bit
    for bit the same)."""
    times = np.multiply if rows == 1 else np.matmul
    if hasattr(add_x, "skip"):  # inputs that are constants (compiled with parameters=)
        return lambda w, g: None
    x_out = getattr(add_x, "out", None)
    if x_out is None:
        return lambda w, g: add_x(times(w.T, g))
    return lambda w, g: times(w.T, g, out=x_out)


class _MatMul:
    """A block of sum nodes that is a matrix product: out[i, j] = (W @ XT)[i, j] + bias[i]."""

    def __init__(self, w: _Index, xt: _Index, bias: _Index | None, coefs, start, stop) -> None:
        self.w, self.xt, self.bias, self.coefs = w, xt, bias, coefs
        self.start, self.stop = start, stop
        self.shape = (w.shape[0], xt.shape[1])

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        fused = self._bind_augmented(val, grad, written)
        if fused is not None:
            return fused
        out = val[self.start : self.stop].reshape(self.shape)
        gout = grad[self.start : self.stop].reshape(self.shape)
        read_w, add_w = self.w.reader(val), self.w.adder(grad, written)
        read_x, add_x = self.xt.reader(val), self.xt.adder(grad, written)
        w_out, skip_w = getattr(add_w, "out", None), hasattr(add_w, "skip")
        input_gradient = _input_gradient(add_x, self.w.shape[0])
        matmul, add, reduce = np.matmul, np.add, np.add.reduce
        fixed_w, fixed_x = self.w.view(val), self.xt.view(val)  # views: no call to read them
        last: list = [None, None]
        read_bias = add_bias = None
        if self.bias is not None:
            read_bias, add_bias = self.bias.reader(val), self.bias.adder(grad, written)
            coefs = _as(self.coefs, val.dtype)
            plain = len(coefs) == 1 and coefs[0] == 1.0  # one bias term, times 1: add it

        def fwd() -> None:
            a, b = last[:] = (
                read_w() if fixed_w is None else fixed_w,
                read_x() if fixed_x is None else fixed_x,
            )
            matmul(a, b, out=out)
            if read_bias is not None:
                bias = read_bias()
                add(out, bias if plain else (bias @ coefs)[:, None], out=out)

        def bwd() -> None:
            a, b = last
            if skip_w:
                pass
            elif w_out is None:  # dL/dW = G X^T
                add_w(matmul(gout, b.T))
            else:
                matmul(gout, b.T, out=w_out)
            input_gradient(a, gout)
            if add_bias is not None:
                g = reduce(gout, axis=1)[:, None]
                add_bias(g if plain else g * coefs)

        return fwd, bwd

    def _bind_augmented(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        """The bias as one more column of W, times a row of ones under X: [W b] @ [X; 1].

        A neuron's weights and bias are neighbours among the parameters, so [W b] is a view
        (every row a neuron's own w..., b) and X is copied under a row of ones kept in a
        buffer. Forward is one matmul instead of a matmul and a bias add; backward gets the
        weights' and the bias's gradients from one matmul, stored straight into their
        slots, instead of a matmul, a row sum and a scatter. Used where copying X costs no
        more than the add it replaces (K <= rows), or the block is small enough that numpy's
        calls, not memory, are the cost. None when the slots do not line up so."""
        (h, k), n = self.w.shape, self.shape[1]
        if self.bias is None or len(self.coefs) != 1 or self.coefs[0] != 1.0:
            return None
        if k > h and k * n > 8192:
            return None
        augmented = _Index(np.concatenate([self.w.idx, self.bias.idx], axis=1))
        wb = augmented.view(val)
        if wb is None:
            return None
        out = val[self.start : self.stop].reshape(self.shape)
        gout = grad[self.start : self.stop].reshape(self.shape)
        add_wb, add_x = augmented.adder(grad, written), self.xt.adder(grad, written)
        wb_out, skip_wb = getattr(add_wb, "out", None), hasattr(add_wb, "skip")
        input_gradient = _input_gradient(add_x, h)
        read_x, fixed_x = self.xt.reader(val), self.xt.view(val)
        x1 = np.ones((k + 1, n), dtype=val.dtype)  # [X; 1]: X copied in at every forward
        x_part, w = x1[:k], wb[:, :k]
        matmul = np.matmul

        def fwd() -> None:
            x_part[...] = read_x() if fixed_x is None else fixed_x
            matmul(wb, x1, out=out)

        def bwd() -> None:
            if skip_wb:
                pass
            elif wb_out is None:  # d/d[W b] = G [X; 1]^T: the bias column is G's row sums
                add_wb(matmul(gout, x1.T))
            else:
                matmul(gout, x1.T, out=wb_out)
            input_gradient(w, gout)

        return fwd, bwd

    def describe(self) -> str:
        (r, k), c = self.w.shape, self.shape[1]
        bias = f" + bias ({len(self.coefs)} terms)" if self.bias is not None else ""
        return f"matmul {r}x{k} @ {k}x{c}{bias}"


class _ScalarRun:
    """Nodes of consecutive tiny groups, replayed one by one with the scalar rules (Python
    floats, eager's own arithmetic): one numpy read and one write per run instead of a few
    numpy calls per node. Locals: external inputs first, then the run's nodes."""

    def __init__(self, equations, external: _Index, outputs, start, stop, n_nodes) -> None:
        self.equations, self.external, self.outputs = equations, external, outputs
        self.start, self.stop, self.n_nodes = start, stop, n_nodes
        self.blank = [0.0] * n_nodes
        self.env: list[float] = []

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        out, gout = val[self.start : self.stop], grad[self.start : self.stop]
        read, add = self.external.reader(val), self.external.adder(grad, written)
        equations, outputs, blank = self.equations, self.outputs, self.blank
        reverse = equations[::-1]
        n_external = len(self.external)

        def fwd() -> None:
            env = self.env = read().ravel().tolist() + blank
            for o, rule, _, ins, arg in equations:
                if arg is not None:
                    env[o] = rule(SCALAR, *[env[j] for j in ins], arg)
                elif len(ins) == 2:  # the common cases spelled out: no list per node
                    env[o] = rule(SCALAR, env[ins[0]], env[ins[1]])
                else:
                    env[o] = rule(SCALAR, env[ins[0]])
            out[...] = [env[j] for j in outputs]

        def bwd() -> None:
            env = self.env
            adjoint = [0.0] * len(env)
            for j, g in zip(outputs, gout.tolist()):
                adjoint[j] = g  # what consumers outside the run sent; those inside add below
            for o, _, rule, ins, arg in reverse:
                if arg is not None:
                    grads = rule(SCALAR, adjoint[o], env[o], *[env[j] for j in ins], arg)
                elif len(ins) == 2:
                    grads = rule(SCALAR, adjoint[o], env[o], env[ins[0]], env[ins[1]])
                else:
                    grads = rule(SCALAR, adjoint[o], env[o], env[ins[0]])
                for j, g in zip(ins, grads):
                    adjoint[j] += g
            add(np.array(adjoint[:n_external], dtype=grad.dtype))

        return fwd, bwd

    def describe(self) -> str:
        return f"python floats x{self.n_nodes} nodes"


def _runs(slots: np.ndarray) -> list:
    """Sorted slots as slices of consecutive runs, or one index array when they are many."""
    if slots.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(slots) != 1) + 1
    if cuts.size >= 8:
        return [slots]
    bounds = np.r_[0, cuts, slots.size]
    return [slice(int(slots[i]), int(slots[j - 1]) + 1) for i, j in zip(bounds[:-1], bounds[1:])]


def _as(x, dtype):
    """A step's constant in the replay's dtype: floats stay Python floats (numpy keeps the
    arrays' dtype for them), arrays are cast once."""
    return x if x is None or isinstance(x, float) else np.asarray(x, dtype=dtype)


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


def _plan(tape: Tape):
    """Fuse, level and order the tape; return (steps, number of levels, slot of each node,
    number of slots). Python loops here run over nodes once (levels) and over steps."""
    n = len(tape)
    one, minus_one = n, n + 1  # node ids of the two constants terms are multiplied by
    code = np.asarray(tape.codes).astype(np.intp)
    args = np.asarray(tape.args)
    cols = [np.asarray(c).astype(np.intp) for c in tape.columns]
    ids = np.arange(n)

    # consumers: how many edges read each node; for single-use nodes, which node and operand
    used = np.zeros(n, dtype=np.intp)
    consumer = np.full(n, -1, dtype=np.intp)
    operand = np.zeros(n, dtype=np.intp)
    for k, col in enumerate(cols):
        has = col >= 0
        used += np.bincount(col[has], minlength=n)
        consumer[col[has]] = ids[has]
        operand[col[has]] = k
    used[np.asarray(tape.output_ids, dtype=np.intp)] += 1  # an output keeps its own slot

    # fusion: a single-use add/sub/mul read by an add (or as a sub's left) joins that sum
    summing = (code == OP_LIST.index(ADD)) | (code == OP_LIST.index(SUB))
    is_mul = code == OP_LIST.index(MUL)
    is_sub = code == OP_LIST.index(SUB)
    fused = (used == 1) & (summing | is_mul)
    c = np.where(fused, consumer, 0)
    fused &= summing[c] & ((operand == 0) | ~is_sub[c])
    # each fused node's sum root, by pointer jumping (log depth rounds)
    up = np.where(fused, consumer, ids)
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt

    # levels, in one pass over the topological order
    rise = (~fused & (code >= 0)).tolist()
    level = [0] * (n + 1)  # level[-1] is a 0 for the -1 of a missing operand
    if len(cols) == 2:
        for i, x, y, r in zip(range(n), tape.columns[0], tape.columns[1], rise):
            p, q = level[x], level[y]
            level[i] = (p if p > q else q) + r
    else:
        for i, r in enumerate(rise):
            level[i] = max(level[col[i]] for col in tape.columns) + r
    levels = np.array(level[:n], dtype=np.intp)

    # the terms of every sum node: (root, left, right), in the sum's own order
    left, right, owner, key = [], [], [], []
    s = np.flatnonzero(summing)
    for k in (0, 1):
        x = cols[k][s]
        keep = ~(fused[x] & summing[x])  # a fused inner sum contributes its own terms
        xs, ss = x[keep], s[keep]
        product = fused[xs] & is_mul[xs]
        plain = np.where(is_sub[ss] & (k == 1), minus_one, one)
        left.append(np.where(product, cols[0][xs], xs))
        right.append(np.where(product, cols[1][xs], plain))
        owner.append(up[ss])
        key.append(ss * 2 + k)
    left, right, owner, key = (np.concatenate(a) for a in (left, right, owner, key))
    order = np.lexsort((key, owner))
    left, right, owner = left[order], right[order], owner[order]
    term_start = np.zeros(n + 1, dtype=np.intp)
    term_count = np.bincount(owner, minlength=n)
    term_start[1:] = np.cumsum(term_count)

    # slots: leaves first (in tape order), then the constants 1 and -1, then steps' outputs
    slot = np.full(n + 2, -1, dtype=np.intp)
    n_leaves = len(tape.leaf_ids)
    slot[np.array(tape.leaf_ids, dtype=np.intp)] = np.arange(n_leaves)
    slot[one], slot[minus_one] = n_leaves, n_leaves + 1
    next_slot = n_leaves + 2

    def claim(outs: np.ndarray) -> tuple[int, int]:
        nonlocal next_slot
        start = next_slot
        slot[outs] = np.arange(start, start + outs.size)
        next_slot += outs.size
        return start, next_slot

    nodes = np.flatnonzero((code >= 0) & ~fused)
    kind = np.where(summing[nodes], SUM, code[nodes])
    nodes = nodes[np.lexsort((kind, levels[nodes]))]
    kind = np.where(summing[nodes], SUM, code[nodes])
    group_level = levels[nodes]
    cuts = np.flatnonzero((np.diff(group_level) != 0) | (np.diff(kind) != 0)) + 1
    # fused nodes listed under their sum root, in tape order, for the scalar runs below
    members = np.flatnonzero(fused)
    members = members[np.argsort(up[members], kind="stable")]
    member_start = np.zeros(n + 1, dtype=np.intp)
    member_start[1:] = np.cumsum(np.bincount(up[members], minlength=n))

    steps, step_levels = [], []
    if nodes.size == 0:
        return steps, int(levels.max(initial=0)), slot, next_slot, step_levels
    bounds = np.r_[0, cuts, nodes.size]
    sizes = np.diff(bounds)
    is_sum = summing[nodes[bounds[:-1]]]
    terms = np.add.reduceat(term_count[nodes], bounds[:-1])
    # consecutive tiny groups (a serial chain: one node per level) run as Python floats,
    # where a numpy call per node would cost ten times more than the arithmetic
    tiny = (sizes <= TINY) & (~is_sum | (terms <= 4 * TINY))
    segments = np.flatnonzero(np.r_[True, tiny[1:] != tiny[:-1]]).tolist() + [tiny.size]
    for first, stop in zip(segments[:-1], segments[1:]):
        if tiny[first]:
            run = nodes[bounds[first] : bounds[stop]]
            counts = member_start[run + 1] - member_start[run]
            offsets = np.repeat(member_start[run] - (np.cumsum(counts) - counts), counts)
            absorbed = members[offsets + np.arange(offsets.size)]
            inner = np.sort(np.concatenate([run, absorbed]))
            steps.append(_scalar_run(run, inner, code, cols, args, slot, claim))
            low, high = int(levels[run[0]]), int(levels[run[-1]])
            step_levels.append((f"{low}-{high}" if high > low else low, steps[-1]))
            continue
        for k in range(first, stop):
            group = nodes[bounds[k] : bounds[k + 1]]
            if is_sum[k]:
                new = _plan_sums(group, left, right, term_start, term_count, slot, claim, one)
            else:
                new = [_plan_elementwise(group, code, cols, args, slot, claim)]
            steps += new
            step_levels += [(int(levels[group[0]]), step) for step in new]
    return steps, int(levels.max(initial=0)), slot, next_slot, step_levels


_ARITY = np.array([op.arity for op in OP_LIST], dtype=np.intp)
_HAS_ARG = np.array([op.has_arg for op in OP_LIST], dtype=bool)
_FORWARD = [op.forward for op in OP_LIST]
_BACKWARD = [op.backward for op in OP_LIST]


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    x = np.sort(x)  # sorting beats np.unique's hash table on large index arrays
    return x[np.r_[True, x[1:] != x[:-1]]] if x.size else x


def _scalar_run(run, inner, code, cols, args, slot, claim) -> _ScalarRun:
    """The nodes of consecutive tiny groups (``run``: materialized, ``inner``: with their
    fused terms, in tape order) as one step that replays them with the scalar rules.

    Locals are numbered external inputs first (sorted by node), then the run's own nodes in
    tape order; the numbering is done with arrays and the equations are zipped, so planning
    a chain of a million nodes costs about a microsecond per node."""
    start, stop = claim(run)
    m = inner.size
    codes = code[inner]
    arity = _ARITY[codes]
    operand = np.stack([col[inner] for col in cols])  # (operands, nodes), -1 where none
    used = np.arange(len(cols))[:, None] < arity[None, :]
    pos = np.minimum(np.searchsorted(inner, operand), m - 1)
    local = used & (inner[pos] == operand)
    external = _sorted_unique(operand[used & ~local])
    n_ext = external.size
    number = np.where(local, n_ext + pos, np.searchsorted(external, operand)).tolist()
    ins = list(zip(*number))  # one tuple of operands per node (MAX_ARITY is 2) ...
    unary = list(zip(number[0]))
    for k in np.flatnonzero(arity == 1).tolist():  # ... or one operand
        ins[k] = unary[k]
    arg = [None] * m
    with_arg = np.flatnonzero(_HAS_ARG[codes])
    for k, x in zip(with_arg.tolist(), args[inner[with_arg]].tolist()):
        arg[k] = x
    code_list = codes.tolist()
    forward = list(map(_FORWARD.__getitem__, code_list))
    backward = list(map(_BACKWARD.__getitem__, code_list))
    equations = list(zip(range(n_ext, n_ext + m), forward, backward, ins, arg))
    outputs = (n_ext + np.searchsorted(inner, run)).tolist()
    return _ScalarRun(equations, _Index(slot[external]), outputs, start, stop, m)


def _plan_elementwise(group, code, cols, args, slot, claim) -> _Elementwise:
    op = OP_LIST[int(code[group[0]])]
    # order outputs like their first input, so that a step reading a whole step is a view
    group = group[np.argsort(slot[cols[0][group]], kind="stable")]
    ins = [_Index(slot[cols[k][group]]) for k in range(op.arity)]
    arg = None
    if op.has_arg:
        values = args[group]
        arg = float(values[0]) if (values == values[0]).all() else values
    start, stop = claim(group)
    return _Elementwise(op, ins, start, stop, arg)


def _plan_sums(group, left, right, term_start, term_count, slot, claim, one) -> list:
    """Sum nodes of one level: matrix-product blocks where the terms factor, segments else."""
    steps, rest = [], []
    counts = term_count[group]
    for k in np.unique(counts):
        roots = group[counts == k]
        terms = term_start[roots][:, None] + np.arange(k)
        lm, rm = left[terms], right[terms]
        blocks, leftover = _factor(lm, rm)
        for rows, rid, cid in blocks:
            if (rm[rows] >= one).all():  # every right operand a constant: nothing to multiply
                leftover = np.concatenate([leftover, rows])
                continue
            steps.append(_matmul_step(roots[rows], lm[rows], rm[rows], rid, cid, slot, claim, one))
        rest.append(roots[leftover])
    rest = np.concatenate(rest)
    if rest.size:
        steps.append(_segment_step(rest, left, right, term_start, term_count, slot, claim, one))
    return steps


def _row_ids(m: np.ndarray) -> tuple[np.ndarray, int]:
    """An id per row of m, equal ids for equal rows: a random hash, checked exactly."""
    weights = np.random.default_rng(0).integers(1, 2**62, size=m.shape[1])
    with np.errstate(over="ignore"):
        h = (m.astype(np.int64) * weights).sum(axis=1)  # wraps modulo 2**64, as intended
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if not (m[first][inv] == m).all():  # a hash collision: fall back to sorting rows
        uniq, inv = np.unique(m, axis=0, return_inverse=True)
        inv = inv.ravel()
    return inv, len(uniq)


def _factor(lm: np.ndarray, rm: np.ndarray):
    """Split sum nodes (rows of term operands lm, rm) into matrix-product blocks and the rest.

    Nodes sharing a left row or a right row are connected; a connected set is a block when it
    holds every (left row, right row) pair exactly once. Returns a list of blocks as (row
    indices, their left-row ids, their right-row ids), and the leftover row indices.
    """
    n = len(lm)
    everything = np.arange(n)
    if n < MIN_BLOCK:
        return [], everything
    rid, n_rows = _row_ids(lm)
    cid, n_cols = _row_ids(rm)
    # connected components by label propagation between row ids and column ids
    big = np.iinfo(np.intp).max
    label_row = np.arange(n_rows)
    for _ in range(64):
        label_col = np.full(n_cols, big)
        np.minimum.at(label_col, cid, label_row[rid])
        new = np.full(n_rows, big)
        np.minimum.at(new, rid, label_col[cid])
        if np.array_equal(new, label_row):
            break
        label_row = new
    else:
        return [], everything  # too tangled to be worth it
    component = label_row[rid]
    order = np.argsort(component, kind="stable")
    cuts = np.flatnonzero(np.diff(component[order])) + 1
    blocks, leftover = [], []
    for rows in np.split(order, cuts):
        r, c = rid[rows], cid[rows]
        n_r, n_c = np.unique(r).size, np.unique(c).size
        grid = rows.size >= MIN_BLOCK and rows.size == n_r * n_c
        if grid and np.unique(r * n_cols + c).size == rows.size:
            blocks.append((rows, r, c))
        else:
            leftover.append(rows)
    return blocks, np.concatenate(leftover) if leftover else np.zeros(0, dtype=np.intp)


def _matmul_step(roots, lm, rm, rid, cid, slot, claim, one):
    """Lay out one factored block as W (rows x K) @ XT (K x cols), outputs row-major."""
    _, first_r, ri = np.unique(rid, return_index=True, return_inverse=True)
    _, first_c, ci = np.unique(cid, return_index=True, return_inverse=True)
    ur, uc, ri, ci = lm[first_r], rm[first_c], ri.ravel(), ci.ravel()
    grid = np.empty((len(ur), len(uc)), dtype=np.intp)
    grid[ri, ci] = roots
    # right operands that are the same constant in every column become a bias
    const = (uc == uc[0]).all(axis=0) & (uc[0] >= one)
    var = ~const
    w, xt = slot[ur], slot[uc].T
    # rows in the order of their weights, columns in the order of their inputs
    first = np.argmax(var) if var.any() else 0
    prow = np.argsort(w[:, first], kind="stable")
    pcol = np.argsort(xt[first], kind="stable")
    w, xt, grid = w[prow], xt[:, pcol], grid[prow][:, pcol]
    bias = None
    coefs = None
    if const.any():
        bias = _Index(w[:, const])
        coefs = np.where(uc[0][const] == one, 1.0, -1.0)
    start, stop = claim(grid.ravel())
    return _MatMul(_Index(w[:, var]), _Index(xt[var]), bias, coefs, start, stop)


def _segment_step(roots, left, right, term_start, term_count, slot, claim, one):
    counts = term_count[roots]
    start, stop = claim(roots)
    if (counts == counts[0]).all():
        terms = term_start[roots][:, None] + np.arange(counts[0])
    else:
        terms = np.repeat(term_start[roots] - np.r_[0, np.cumsum(counts)[:-1]], counts)
        terms += np.arange(terms.size)
    lm, rm = left[terms], right[terms]
    right_index = right_var = None
    if not (rm == one).all():
        right_index = _Index(slot[rm])
        mask = rm < one  # constants 1 and -1 take no gradient
        if mask.any():
            right_var = (mask, _Index(slot[rm[mask]]))
    return _SegmentSum(_Index(slot[lm]), right_index, right_var, counts, start, stop)
