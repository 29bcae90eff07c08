"""Compiled mode: trace a graph of Values once, replay forward and backward over arrays.

``compile(root)`` records the graph as a flat tape (tape.py); a backend prepares it for replay:
``numpy`` (numpy_backend.py, the default: fused, level-scheduled, matrix products recovered),
``torch`` (torch_backend.py: the numpy plan replayed with torch tensors, ``device='cpu'`` or
``'cuda'``) or ``python`` (reference.py: node by node, bit-for-bit eager). A new backend is an
object with a ``name`` and ``prepare(tape) -> executor``, registered in ``BACKENDS``.
"""

from .program import BACKENDS, Backend, LeafMismatchError, Program, compile
from .tape import Tape, TraceError, trace

__all__ = [
    "compile",
    "Program",
    "Backend",
    "BACKENDS",
    "LeafMismatchError",
    "TraceError",
    "Tape",
    "trace",
]
