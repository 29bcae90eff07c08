"""The base class of Value: the optional native part, or ``object``.

The native part (``_cvalue.c``, the type and the module, with ``_cvalue_ops.c``, the op methods,
and ``_cvalue_graph.c``, the graph walks, sharing ``_cvalue.h``; built by setup.py where a C
compiler is found) is a base type that holds Value's fields in C: ``data`` as a double, the rest
as references. It does not ask the cyclic garbage collector to watch a node (an acyclic graph
cannot leak) until the node's ``.grad`` becomes an object that could close a cycle (a Value,
with ``create_graph=True``), and it frees a deep chain with a loop instead of recursion.
``.grad``, ``.label`` and the op's fields are member slots, which the interpreter reads inline
as it reads a ``__slots__`` class's; ``.data`` has a getter (a float made from the double);
every write goes through one setattr that keeps the hooks. engine.py stays the reference: the
same class, the same numbers to the last bit, with or without it.

``BACKPROP_NATIVE=0`` in the environment turns it off; where it was not built, a one-line notice
says so once and ``object`` is used.
"""

from __future__ import annotations

import os
import sys

__all__ = ["Base", "NATIVE", "native"]

Base: type = object
NATIVE = False
native = None  # the module, whose C twins of engine.py's hot paths engine.py then uses
if os.environ.get("BACKPROP_NATIVE", "1") != "0":
    try:
        from . import _cvalue as native
        from ._cvalue import Base
    except ImportError:
        print(
            "backprop: the native part of Value is not built (no C compiler at install?); "
            "using pure Python, the same numbers, slower in loops with the collector on",
            file=sys.stderr,
        )
    else:
        NATIVE = True
