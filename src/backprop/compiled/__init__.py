"""Compiled mode: trace a graph of Values once, replay forward and backward over arrays.

``compile(root)`` records the graph as a flat tape (tape.py); a backend prepares it for replay:
``numpy`` (numpy_backend.py, the default: fused, level-scheduled, matrix products recovered),
``torch`` (torch_backend.py: the numpy plan replayed with torch tensors, ``device='cpu'`` or
``'cuda'``) or ``python`` (reference.py: node by node, bit-for-bit eager). A new backend is an
object with a ``name`` and ``prepare(tape) -> executor``, registered in ``BACKENDS``.

``jit(fn)`` (jit.py, jit_entry.py) compiles a function whose graph changes, once per shape of
its arguments, with ``take(seq, i)`` as a gather (docs/jit.md). replayed.py holds the roots
whose eager backward() is refused while a program replays them (the engine's hook).
"""

from .jit import jit, take
from .program import BACKENDS, Backend, LeafMismatchError, Program, compile
from .tape import Tape, TraceError, trace

__all__ = [
    "compile",
    "jit",
    "take",
    "Program",
    "Backend",
    "BACKENDS",
    "LeafMismatchError",
    "TraceError",
    "Tape",
    "trace",
]
