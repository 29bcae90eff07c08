"""The optional native kernels of compiled replay (compiled/_native.c), looked up once."""

from __future__ import annotations

import os
import sys

__all__ = ["native_kernels"]

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
