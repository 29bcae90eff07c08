"""The build's one extra: the optional native kernels of compiled replay.

Everything else is in pyproject.toml. The extension is optional: where no C compiler (or no
Python headers) is found, the install goes on without it and compiled replay uses numpy
alone, saying so once (backprop.compiled.numpy_backend).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "backprop.compiled._native",
            ["src/backprop/compiled/_native.c"],
            extra_compile_args=["-O3", "-ffp-contract=off"],  # no fused multiply-adds: numpy has none
            optional=True,
        )
    ]
)
