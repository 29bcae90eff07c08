"""The numpy backend's steps: each computes one run of slots from lower ones, bound once to
views of the executor's two arrays (values and gradients), so that replay calls numpy and
little else. ``_Index`` is where a step reads and writes."""

from __future__ import annotations

import numpy as np

from ..ops import RELU, SCALAR, SIGMOID, TANH, Op
from .kernels import native_kernels
from .numpy_math import NUMPY, _Into

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
        # plain terms added per output (terms, rows, cols), each times its sign: set by the
        # planner for a layer whose sums also add a residual
        self.addend: _Index | None = None
        self.addend_coefs = None

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        fused = None if self.addend is not None else self._bind_augmented(val, grad, written)
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
        read_addend = add_addend = None
        if self.addend is not None:
            read_addend = self.addend.reader(val)
            add_addend = self.addend.adder(grad, written)
            signs = _as(self.addend_coefs, val.dtype)[:, None, None]

        def fwd() -> None:
            a, b = last[:] = (
                read_w() if fixed_w is None else fixed_w,
                read_x() if fixed_x is None else fixed_x,
            )
            matmul(a, b, out=out)
            if read_bias is not None:
                bias = read_bias()
                add(out, bias if plain else (bias @ coefs)[:, None], out=out)
            if read_addend is not None:
                for term in read_addend() * signs:
                    add(out, term, out=out)

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
            if add_addend is not None and add_addend is not _skip:
                add_addend(gout[None] * signs)

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
        if self.addend is not None:
            bias += f" + {len(self.addend_coefs)} per output"
        return f"matmul {r}x{k} @ {k}x{c}{bias}"


class _ScalarRun:
    """Nodes of consecutive tiny groups, replayed one by one with the scalar rules (Python
    floats, eager's own arithmetic): one numpy read and one write per run instead of a few
    numpy calls per node. Locals: external inputs first, then the run's nodes.

    The nodes are kept as columns, zipped at replay (no tuple per node is kept): each node's
    forward and backward rule, its operands' locals (the second -1 for a unary op) and its
    constant (None for an op without one)."""

    def __init__(self, columns, external: _Index, outputs, start, stop, n_nodes) -> None:
        self.columns, self.external, self.outputs = columns, external, outputs
        self.start, self.stop, self.n_nodes = start, stop, n_nodes
        self.blank = [0.0] * n_nodes
        self.env: list[float] = []

    @property
    def equations(self) -> list:
        """(out, forward, backward, operand locals, constant) per node, as other backends
        (torch's) replay them."""
        forward, backward, in0, in1, args = self.columns
        n_ext = len(self.external)
        ins = [(a,) if b < 0 else (a, b) for a, b in zip(in0, in1)]
        return list(zip(range(n_ext, n_ext + self.n_nodes), forward, backward, ins, args))

    def bind(self, val: np.ndarray, grad: np.ndarray, written: np.ndarray):
        out, gout = val[self.start : self.stop], grad[self.start : self.stop]
        read, add = self.external.reader(val), self.external.adder(grad, written)
        forward, backward, in0, in1, args = self.columns
        outputs, blank = self.outputs, self.blank
        n_external = len(self.external)
        outs = range(n_external, n_external + self.n_nodes)

        def fwd() -> None:
            env = self.env = read().ravel().tolist() + blank
            for o, rule, a, b, arg in zip(outs, forward, in0, in1, args):
                if arg is not None:  # an op with a constant is unary
                    env[o] = rule(SCALAR, env[a], arg)
                elif b >= 0:
                    env[o] = rule(SCALAR, env[a], env[b])
                else:
                    env[o] = rule(SCALAR, env[a])
            out[...] = [env[j] for j in outputs]

        def bwd() -> None:
            env = self.env
            adjoint = [0.0] * len(env)
            for j, g in zip(outputs, gout.tolist()):
                adjoint[j] = g  # what consumers outside the run sent; those inside add below
            nodes = zip(reversed(outs), reversed(backward), reversed(in0), reversed(in1))
            for (o, rule, a, b), arg in zip(nodes, reversed(args)):
                if arg is not None:
                    (ga,) = rule(SCALAR, adjoint[o], env[o], env[a], arg)
                elif b >= 0:
                    ga, gb = rule(SCALAR, adjoint[o], env[o], env[a], env[b])
                    adjoint[a] += ga
                    adjoint[b] += gb
                    continue
                else:
                    (ga,) = rule(SCALAR, adjoint[o], env[o], env[a])
                adjoint[a] += ga
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
