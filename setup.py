"""The build's extras: two optional C extensions.

- ``backprop._cvalue``: the native base of Value (its fields in C, out of the cyclic garbage
  collector's way, and engine.py's hot paths in C; see src/backprop/_base.py);
- ``backprop.compiled._native``: the native kernels of compiled replay.

Everything else is in pyproject.toml. Both are optional: where no C compiler (or no Python
headers) is found, the install goes on without them; Value is then the pure-Python class and
compiled replay uses numpy alone, each saying so once. ``BACKPROP_NATIVE=0`` turns both off.
"""

from setuptools import Extension, setup

NO_FMA = ["-O3", "-ffp-contract=off"]  # no fused multiply-adds: Python and numpy have none

setup(
    ext_modules=[
        Extension(
            "backprop._cvalue",
            [f"src/backprop/{name}.c" for name in ("_cvalue", "_cvalue_ops", "_cvalue_graph")],
            depends=["src/backprop/_cvalue.h"],  # rebuilt when it changes, and in the sdist
            extra_compile_args=NO_FMA,
            optional=True,
        ),
        Extension(
            "backprop.compiled._native",
            ["src/backprop/compiled/_native.c"],
            extra_compile_args=NO_FMA,
            optional=True,
        ),
    ]
)
