"""The maths namespace ``m`` over numpy arrays, with which the op rules of ``ops.OPS`` run in
the numpy backend, and its variant that writes a step's first result into the step's slots."""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyMath", "NUMPY"]


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
