"""jit(fn): compile a function that builds a new graph every call, once per shape of its arguments.

``step = jit(fn)``; ``step(*args)`` flattens the arguments into a *shape* (types, lengths, the
values of floats, bools and strings, static arguments) and *data* (integers, leaf Values).
The first call with a shape runs ``fn`` with tracers in place of the data, records the graph it
builds and compiles it (``compile()``, numpy backend); later calls of that shape replay the
program, with the integers and the leaves' current ``.data`` read in a few array operations.

``take(seq, i)`` is ``seq[i]``; under ``jit`` an integer argument is a tracer and ``take``
becomes a gather in the program (a sum of one-hot products, whose one-hot numbers the replay
computes from the integers). Any other use of a traced integer raises ``TracedIntError`` naming
the line. See docs/jit.md for what is traced, what is frozen and what retraces.
"""

from __future__ import annotations

import linecache
import numbers
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import engine
from .._gc import paused
from ..engine import Value

if TYPE_CHECKING:
    from .jit_entry import Entry

__all__ = ["jit", "take", "Jitted", "JitResult", "TracedInt", "TracedIntError"]


class TracedIntError(TypeError):
    """A traced integer (an argument of a jitted function) was used as a Python int."""


class _Tracing(threading.local):
    trace: _Trace | None = None


_current = _Tracing()


def _user_line(depth: int = 2) -> str:
    """'file:line: code' of the frame ``depth`` frames up (the user's, for an operator)."""
    frame = sys._getframe(depth)
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}: {code}"


def _misuse(line: str) -> str:
    return (
        f"{line}\n  uses a traced int (an int argument of a jit function: data, different at "
        f"every call) as a Python int. Index with backprop.take(seq, i), or make the argument "
        f"static: jit(fn, static_argnums=(...))"
    )


class TracedInt:
    """An integer argument of a jitted function, while it is traced: its number is data, read
    again at every call, so it may only index with ``backprop.take(seq, i)``."""

    __slots__ = ("value", "slot", "_trace")

    def __init__(self, value: int, slot: int, owner: _Trace) -> None:
        self.value, self.slot, self._trace = value, slot, owner

    def __repr__(self) -> str:
        return f"TracedInt(argument int #{self.slot}, {self.value} in this trace)"

    def _refuse(self, *args, **kwargs):
        raise TracedIntError(_misuse(_user_line()))

    def __format__(self, spec: str) -> str:
        if spec:  # a number's format needs the number
            raise TracedIntError(_misuse(_user_line()))
        return repr(self)  # print(f"{token}") while debugging a trace

    __index__ = __int__ = __float__ = __bool__ = __hash__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __neg__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __pow__ = __rpow__ = __abs__ = __round__ = __trunc__ = __floor__ = __ceil__ = _refuse
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __invert__ = _refuse
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __pos__ = _refuse


def take(seq, i):
    """``seq[i]``. With a plain int ``i``, exactly that. With a traced int (inside a jitted
    function), a gather: one program serves every ``i``. ``seq`` is a list or tuple of Values,
    numbers, or rows of them (an embedding matrix), all rows of the same length."""
    if type(i) is not TracedInt:
        return seq[i]
    owner = _current.trace
    if owner is None or i._trace is not owner:
        raise TracedIntError(
            f"{_user_line()}\n  take() got a traced int from a trace that has ended"
        )
    if not isinstance(seq, (list, tuple)) or not seq:
        raise TypeError(
            f"take(seq, i) with a traced i needs a non-empty list or tuple, got {seq!r:.60}"
        )
    return owner.gather(seq, i)


class _Trace:
    """What one trace of a jitted function records besides its graph: the one-hot leaves that
    its takes gather with, and the index checks their replay makes."""

    def __init__(self, ints: list[int]) -> None:
        self.ints = ints
        self.onehots: dict[tuple[int, int], list[Value]] = {}  # (slot, length) -> leaves
        self.lines: dict[tuple[int, int], str] = {}

    def gather(self, seq, i: TracedInt):
        n = len(seq)
        key = (i.slot, n)
        hot = self.onehots.get(key)
        if hot is None:
            value = i.value if i.value >= 0 else i.value + n
            if not 0 <= value < n:
                raise IndexError(
                    f"take: index {i.value} out of range for length {n}, at {_user_line(3)}"
                )
            hot = [Value(1.0 if j == value else 0.0) for j in range(n)]
            self.onehots[key] = hot
            self.lines[key] = _user_line(3)
        return _weighted(seq, hot)


def _weighted(seq, hot: list[Value]):
    """sum_j hot[j] * seq[j], element by element through rows (a one-hot gather)."""
    first = seq[0]
    if isinstance(first, (list, tuple)):
        width = len(first)
        if any(not isinstance(r, (list, tuple)) or len(r) != width for r in seq):
            raise TypeError("take(seq, i): the rows of seq must be lists of one length")
        return [_weighted([row[c] for row in seq], hot) for c in range(width)]
    for x in seq:
        if not isinstance(x, (Value, numbers.Real)) or isinstance(x, TracedInt):
            raise TypeError(
                f"take(seq, i) with a traced i gathers Values or numbers, got {x!r:.60}"
            )
    acc = hot[0] * seq[0]
    for h, x in zip(hot[1:], seq[1:]):
        acc = acc + h * x
    return acc


# ---- the result ---------------------------------------------------------------------------


class JitResult(Value):
    """What a jitted call returns: a Value holding the result (``.data``), whose
    ``backward()`` runs the program's backward pass into every leaf the function read. It
    cannot enter an eager graph (its ops raise): return the whole expression from the function.
    """

    __slots__ = ("_entry", "_call")

    def backward(self, grad: float = 1.0, create_graph: bool = False) -> None:
        if create_graph:
            raise ValueError("a jit result has no graph to differentiate again: create_graph")
        entry = self._entry
        if entry.calls != self._call:
            raise RuntimeError(
                "this result's program has replayed another call since (its values are "
                "gone): call backward() before calling the jitted function again with "
                "arguments of the same shape"
            )
        if not isinstance(grad, numbers.Real) or isinstance(grad, Value):
            raise TypeError(f"grad must be a real number, got {grad!r:.60}")
        self.grad += float(grad)
        entry.backward(float(grad))

    def _refuse(self, *args, **kwargs):
        raise TypeError(
            "a jit result cannot enter an eager graph (the program would not see the op): "
            "compute the whole expression inside the jitted function"
        )


def _refuse_value_ops() -> None:
    """Every method of Value that makes a node refuses on a JitResult: the operators, and a
    method named after any row of ops.OPS (so a new op's method is refused with no edit here)."""
    from ..ops import OPS

    names = {"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__"}
    names |= {"__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__", "__abs__"}
    names |= {name for name in dir(Value) if name.startswith("__r") and name.endswith("__")}
    names |= {name for name in list(OPS) + ["abs"] if callable(getattr(Value, name, None))}
    names -= {"__repr__", "__reduce__", "__reduce_ex__"}
    for name in names:
        if callable(getattr(Value, name, None)):
            setattr(JitResult, name, JitResult._refuse)


_refuse_value_ops()


def _check_not_jit_result(root: Value) -> None:
    if type(root) is JitResult:  # only reached through autodiff.grad and friends
        raise TypeError("a jit result has no graph for grad(): call result.backward()")


# ---- the jitted function ------------------------------------------------------------------


class CacheInfo(list):
    """``step.cache_info()``: a list of one dict per program (see ``Jitted.cache_info``), with
    ``traces`` (= ``misses``: calls that traced), ``hits`` (calls that replayed a program)
    and ``currsize`` (programs kept; ``maxsize`` is None: every shape is kept)."""

    maxsize = None
    hits = misses = traces = currsize = 0

    def __repr__(self) -> str:
        lines = [f"CacheInfo({self.currsize} programs, {self.traces} traces, {self.hits} replays)"]
        lines += [f"  {p['reason']}: {p['nodes']} nodes, {p['calls']} calls" for p in self]
        return "\n".join(lines)


class Jitted:
    """``jit(fn)``: call it as fn; see the module docstring and docs/jit.md."""

    def __init__(self, fn: Callable, static_argnums=(), check_leaves: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"jit needs a function, got {fn!r:.60}")
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        self.fn = fn
        self.static_argnums = frozenset(int(k) for k in static_argnums)
        self.check_leaves = check_leaves
        self._cache: dict[tuple, Entry] = {}
        self.traces = 0
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = getattr(fn, "__name__", "jitted")

    def __repr__(self) -> str:
        return f"jit({self.__name__}, {len(self._cache)} programs)"

    def clear(self) -> None:
        """Forget every program: the next call of each shape traces again."""
        self._cache.clear()

    def cache_info(self) -> CacheInfo:
        """One dict per program: the shape it was traced for (``reason``), its node count,
        how many calls it served, and the seconds its trace and compile took; with the
        counts ``functools.lru_cache`` reports (``hits``, ``misses``, ``currsize``)."""
        info = CacheInfo(
            {
                "shape": key,
                "reason": e.reason,
                "nodes": e.program.n_nodes,
                "calls": e.hits,
                "trace_seconds": e.trace_seconds,
            }
            for key, e in self._cache.items()
        )
        info.misses = info.traces = self.traces
        info.hits = sum(e.hits for e in self._cache.values()) - len(self._cache)
        info.currsize = len(self._cache)
        return info

    def __call__(self, *args, **kwargs) -> JitResult:
        key: list = []
        ints: list[int] = []
        values: list[Value] = []
        if kwargs:  # keyword arguments are data or shape as positional ones (never static)
            key.append(("keywords", tuple(kwargs)))
            _flatten(list(kwargs.values()), key, ints, values)
        for k, a in enumerate(args):
            if k in self.static_argnums:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(
                        f"static argument {k} must be hashable (it keys the cache), got "
                        f"{type(a).__name__}"
                    ) from None
                key.append(("static", type(a), a))
            else:
                _flatten(a, key, ints, values)
        shape = tuple(key)
        entry = self._cache.get(shape)
        if entry is None:
            entry = self._trace(args, kwargs, shape, ints, values)
            self._cache[shape] = entry
            value = entry.run(ints, values)
        else:
            if self.check_leaves:
                entry.check_replaced()
            value = entry.run(ints, values)
        entry.hits += 1
        out = JitResult.__new__(JitResult)
        out.data, out.grad, out.label = value, 0.0, ""
        out._fn = out._a = out._b = out._arg = None
        out._entry, out._call = entry, entry.calls
        return out

    def _trace(self, args, kwargs, shape, ints, values) -> Entry:
        import time

        from .jit_entry import compile_trace

        start = time.perf_counter()
        if _current.trace is not None:
            raise RuntimeError("a jitted function cannot be called while another is traced")
        if not engine.is_grad_enabled():
            raise RuntimeError(
                "a jitted function's first call with a shape traces its graph, which no_grad() "
                "stops from being recorded: make that call outside no_grad() (later calls of "
                "the shape may run inside it)"
            )
        record = _Trace(ints)
        counter = iter(range(len(ints)))
        holders: list[Value] = []
        traced_kwargs = dict(zip(kwargs, _rebuild(list(kwargs.values()), record, counter, holders)))
        traced_args = [
            a if k in self.static_argnums else _rebuild(a, record, counter, holders)
            for k, a in enumerate(args)
        ]
        _current.trace = record
        with paused():  # the trace is a graph (no cycles) of many new objects: see _gc.py
            try:
                root = self.fn(*traced_args, **traced_kwargs)
            finally:
                _current.trace = None
            del traced_args, traced_kwargs
            if not isinstance(root, Value) or type(root) is JitResult:
                raise TypeError(
                    f"a jitted function must return a Value (the graph to compile), got "
                    f"{type(root).__name__}: {root!r:.60}"
                )
            box = [root]
            del root  # compile_trace() frees the graph, and counts who else holds each leaf
            entry = compile_trace(box, record, holders, len(values), _describe(shape))
        self.traces += 1
        entry.trace_seconds = time.perf_counter() - start
        return entry


def jit(fn: Callable | None = None, *, static_argnums=(), check_leaves: bool = True):
    """Compile ``fn`` once per shape of its arguments; usable as ``@jit`` or
    ``@jit(static_argnums=(1,))``. ``check_leaves`` detects a parameter Value that was
    replaced since the trace (its references, read at every call). See docs/jit.md."""
    if fn is None:
        return lambda f: Jitted(f, static_argnums, check_leaves)
    return Jitted(fn, static_argnums, check_leaves)


# ---- arguments: shape and data ------------------------------------------------------------


def _flatten(a, key: list, ints: list, values: list) -> None:
    """Append a's shape to key, its ints to ints and its Values to values."""
    t = type(a)
    if t is int:
        key.append(int)
        ints.append(a)
    elif t is float or t is bool or t is str or a is None:
        key.append((t, a))
    elif t is list or t is tuple:
        if a and all(type(x) is int for x in a):  # a list of token ids: the common case
            key.append((t, int, len(a)))
            ints.extend(a)
            return
        key.append((t, len(a)))
        for x in a:
            _flatten(x, key, ints, values)
    elif isinstance(a, Value):
        if a._fn is not None:
            raise TypeError(
                "a Value argument of a jitted function must be a leaf (no graph under it): "
                "the program cannot backpropagate into a graph built outside it"
            )
        key.append(Value)
        values.append(a)
    elif t is dict:
        key.append((dict, tuple(a)))
        for x in a.values():
            _flatten(x, key, ints, values)
    elif isinstance(a, numbers.Integral):  # numpy ints
        key.append(int)
        ints.append(int(a))
    elif isinstance(a, numbers.Real):
        key.append((float, float(a)))
    else:  # anything else is part of the shape by identity
        key.append(("object", id(a)))


def _rebuild(a, record: _Trace, counter, holders: list):
    """a with its ints replaced by TracedInts and its Values by fresh leaves (the inputs)."""
    t = type(a)
    if t is int or (isinstance(a, numbers.Integral) and t is not bool):
        return TracedInt(int(a), next(counter), record)
    if t is list or t is tuple:
        return t(_rebuild(x, record, counter, holders) for x in a)
    if t is dict:
        return {k: _rebuild(x, record, counter, holders) for k, x in a.items()}
    if isinstance(a, Value):  # a leaf (_flatten checked)
        holder = Value(a.data, a.label)
        holders.append(holder)
        return holder
    return a


def _describe(shape: tuple) -> str:
    """The shape as a person reads it: 'new shape: list of 7 ints, static 2, float 0.5'."""
    parts = []
    for k in shape:
        if k is int or k is Value:
            parts.append(k.__name__)
        elif k[0] == "static":
            parts.append(f"static {k[2]!r:.40}")
        elif k[0] == "object":
            parts.append("an object (by identity)")
        elif len(k) == 3 and k[1] is int:
            parts.append(f"{k[0].__name__} of {k[2]} ints")
        elif k[0] in (list, tuple):
            parts.append(f"{k[0].__name__} of {k[1]}")
        elif k[0] is dict:
            parts.append(f"dict of {len(k[1])}")
        else:
            parts.append(f"{getattr(k[0], '__name__', k[0])} {k[1]!r:.40}")
    return "new shape: " + ", ".join(parts)[:300]


engine.backward_checks.append(_check_not_jit_result)
