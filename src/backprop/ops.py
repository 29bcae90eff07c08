"""The op table: every primitive's forward rule and local derivative, side by side.

Each rule is written once against a small maths namespace ``m`` so that the same row serves
eager mode (``m = SCALAR``, plain Python floats), the compiled replay (``m`` = numpy, whole
arrays at a time) and higher derivatives (``m = engine.GRAPH``, whose operations build Values:
a backward rule run with it returns its gradient as a graph, which can be differentiated
again). Forward mode reads the same rows: the tangent of a node is its backward rule applied to
its inputs' tangents. A rule never raises on undefined maths: like PyTorch it gives ``nan`` or
``inf``.

Signatures, for an op with inputs ``x...`` and constant argument ``k`` (only when ``has_arg``):
  forward(m, *x, [k]) -> out
  backward(m, g, out, *x, [k]) -> one gradient per input, each already multiplied by g

The backward formulas follow PyTorch's own (``tools/autograd/derivatives.yaml``) term by term,
so gradients agree with it to the last bit wherever the forward values do.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Op",
    "OPS",
    "SCALAR",
    "ScalarMath",
    "to_float",
    "LIBM_OPS",
    "EXACT_POWERS",
    "libm_nodes",
    "power_in_derivative",
]

INF = math.inf
NAN = math.nan


class ScalarMath:
    """Python-float maths with IEEE results instead of exceptions (as numpy and PyTorch do)."""

    @staticmethod
    def exp(x: float) -> float:
        try:
            return math.exp(x)
        except OverflowError:
            return INF

    @staticmethod
    def log(x: float) -> float:
        if x > 0.0:
            return math.log(x)
        if x == 0.0:
            return -INF
        return NAN  # log of a negative number, or of nan

    @staticmethod
    def sqrt(x: float) -> float:
        return math.sqrt(x) if x >= 0.0 else NAN

    @staticmethod
    def tanh(x: float) -> float:
        return math.tanh(x)

    @staticmethod
    def pow(a: float, b: float) -> float:
        try:
            return math.pow(a, b)
        except OverflowError:
            # |a|**b is too big: the sign is negative only for a negative base and odd integer b
            odd = float(b).is_integer() and b % 2 == 1
            return -INF if a < 0 and odd else INF
        except ValueError:
            if a == 0.0:  # 0 ** negative
                odd = float(b).is_integer() and b % 2 == 1
                return -INF if odd and math.copysign(1.0, a) < 0 else INF
            return NAN  # negative base, fractional exponent: no real result

    @staticmethod
    def sigmoid(x: float) -> float:
        # 1 / (1 + e^-x) as PyTorch computes it; e^-x may overflow to inf, giving exactly 0
        return 1.0 / (1.0 + ScalarMath.exp(-x))

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else x * 0.0)

    @staticmethod
    def where(cond: bool, x: float, y: float) -> float:
        return x if cond else y

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return a if (a > b or a != a) else b  # nan propagates, as in numpy and torch


SCALAR = ScalarMath()


def to_float(data: object) -> float:
    """A real number as the float a Value holds; a clear TypeError for anything else."""
    if type(data) is float:
        return data
    if isinstance(data, numbers.Real):  # int, bool, Fraction, numpy scalars
        return float(data)
    if getattr(data, "shape", None) == ():  # a 0-d numpy array
        return to_float(data.item())
    raise TypeError(
        f"Value needs a real number (int or float), got {type(data).__name__}: {data!r:.60}"
    )


@dataclass(frozen=True, eq=False)  # an op is its own identity: hashing is id-fast
class Op:
    """One primitive: its name, how it is drawn, and its two rules."""

    name: str
    symbol: str  # what Value._op shows, e.g. '+' or 'tanh'; '{k}' stands for the constant
    arity: int
    forward: Callable
    backward: Callable
    has_arg: bool = False  # takes a constant, e.g. the exponent of x**2

    def label(self, arg: float | None = None) -> str:
        """The op as drawn on a node: '**2' for x**2, '2**' for 2**x, else the symbol."""
        if self.has_arg:
            return self.symbol.format(k=_short(arg))
        return self.symbol


def _short(k: float) -> str:
    return str(int(k)) if float(k).is_integer() and abs(k) < 1e15 else repr(k)


OPS: dict[str, Op] = {}


def _op(name, symbol, arity, forward, backward, has_arg=False) -> Op:
    op = Op(name, symbol, arity, forward, backward, has_arg)
    OPS[name] = op
    return op


# fmt: off
# ---- binary ---------------------------------------------------------------------------------
ADD = _op("add", "+", 2,
          lambda m, a, b: a + b,
          lambda m, g, out, a, b: (g, g))
SUB = _op("sub", "-", 2,
          lambda m, a, b: a - b,
          lambda m, g, out, a, b: (g, -g))
MUL = _op("mul", "*", 2,
          lambda m, a, b: a * b,
          # d(ab)/da = b, d(ab)/db = a
          lambda m, g, out, a, b: (g * b, g * a))
DIV = _op("div", "/", 2,
          lambda m, a, b: _div(m, a, b),
          # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2, computed as torch does: -g * ((a / b) / b)
          lambda m, g, out, a, b: (_div(m, g, b), -g * _div(m, _div(m, a, b), b)))
POW = _op("pow", "**", 2,
          lambda m, a, b: m.pow(a, b),
          # d(a^b)/da = b a^(b-1) (0 when b == 0), d(a^b)/db = a^b log(a) (0 when a == 0, b >= 0).
          # x == 0 is written (x >= 0) & (x <= 0): in a gradient graph x is a Value, whose ==
          # is identity (Values key sets and dicts) while its <= and >= compare .data
          lambda m, g, out, a, b: (
              m.where((b >= 0.0) & (b <= 0.0), 0.0, g * (b * m.pow(a, b - 1.0))),
              g * m.where((a >= 0.0) & (a <= 0.0) & (b >= 0.0), 0.0, out * m.log(a))))

# ---- unary, with a constant argument --------------------------------------------------------
POWC = _op("powc", "**{k}", 1,
           lambda m, a, k: _pow_constant(m, a, k),
           # d(a^k)/da = k a^(k-1), and exactly 0 for k == 0
           lambda m, g, out, a, k: (
               m.where(k == 0.0, 0.0, g * (k * _pow_constant(m, a, k - 1.0))),
           ),
           has_arg=True)
RPOW = _op("rpow", "{k}**", 1,  # k ** a for a constant base k, e.g. 2 ** v
           lambda m, a, k: m.pow(k, a),
           # d(k^a)/da = k^a log(k), 0 when k == 0 and a >= 0
           lambda m, g, out, a, k: (g * m.where((k == 0.0) & (a >= 0.0), 0.0, out * m.log(k)),),
           has_arg=True)

# ---- unary ----------------------------------------------------------------------------------
NEG = _op("neg", "neg", 1,
          lambda m, a: -a,
          lambda m, g, out, a: (-g,))
EXP = _op("exp", "exp", 1,
          lambda m, a: m.exp(a),
          # d/dx e^x = e^x
          lambda m, g, out, a: (g * out,))
LOG = _op("log", "log", 1,
          lambda m, a: m.log(a),
          # d/dx log x = 1/x
          lambda m, g, out, a: (_div(m, g, a),))
TANH = _op("tanh", "tanh", 1,
           lambda m, a: m.tanh(a),
           # d/dx tanh(x) = 1 - tanh(x)^2
           lambda m, g, out, a: (g * _one_minus_square(out),))
SIGMOID = _op("sigmoid", "sigmoid", 1,
              lambda m, a: m.sigmoid(a),
              # d/dx s(x) = (1 - s(x)) s(x)
              lambda m, g, out, a: (g * (1.0 - out) * out,))
RELU = _op("relu", "ReLU", 1,
           lambda m, a: m.maximum(a, 0.0),
           # 1 where the output is positive: g passes where out > 0 (RELU_GRAD, below)
           lambda m, g, out, a: (_relu_grad(m, g, out),))
SQRT = _op("sqrt", "sqrt", 1,
           lambda m, a: m.sqrt(a),
           # d/dx sqrt(x) = 1 / (2 sqrt(x))
           lambda m, g, out, a: (_div(m, g, 2.0 * out),))
ABS = _op("abs", "abs", 1,
          lambda m, a: abs(a),
          # d/dx |x| = sign(x), 0 at 0
          lambda m, g, out, a: (g * m.sign(a),))
SIGN = _op("sign", "sign", 1,
           lambda m, a: m.sign(a),
           # d/dx sign(x) = 0 (undefined at 0, where PyTorch also gives 0)
           lambda m, g, out, a: (_zero(m, g),))

# ---- derivatives that are ops of their own --------------------------------------------------
# A gradient graph must record every choice its rules make on the data as a node, or compiled
# replay would freeze the choice made when it was traced: relu's derivative is such a choice.
RELU_GRAD = _op("relu_grad", "relu_grad", 2,  # g where c > 0, else 0 (torch's threshold_backward)
                lambda m, g, c: m.where(c <= 0.0, 0.0, g),
                # d/dg = 1 where c > 0, else 0; d/dc = 0 (a step)
                lambda m, gg, out, g, c: (_relu_grad(m, gg, c), _zero(m, gg)))
# fmt: on


def _relu_grad(m, g, c):
    """g where c > 0, else 0: RELU_GRAD's forward rule, or a node of it where m builds graphs."""
    if m is SCALAR:  # eager backward's path, once per relu node of every training step
        return 0.0 if c <= 0.0 else g
    node = getattr(m, "node", None)  # only a namespace that builds graphs has one
    return RELU_GRAD.forward(m, g, c) if node is None else node(RELU_GRAD, g, c)


def _zero(m, g):
    """A zero gradient shaped like g (an array in compiled replay); never 0 * g, which is nan
    where g is inf. (g != g is False for a float or a Value, elementwise for arrays.)"""
    return 0.0 if m is SCALAR else m.where(g != g, 0.0, 0.0)


def _one_minus_square(y):
    """1 - y*y rounded once, as a fused multiply-add gives it (and as PyTorch computes tanh's
    derivative). Near |y| = 1 the plain formula loses digits to cancellation. Dekker's exact
    product gives y*y = p + e, Fast2Sum gives 1 - p = s + t exactly; one rounding remains."""
    c = 134217729.0 * y  # 2**27 + 1: Veltkamp's split of y into hi + lo, 26 bits each
    hi = c - (c - y)
    lo = y - hi
    p = y * y
    e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo
    s = 1.0 - p
    t = (1.0 - s) - p
    return s + (t - e)


def _pow_constant(m, a, k):
    """a ** k for a constant k, as torch computes it: a*a for 2 (exact, where pow may not be),
    sqrt for 0.5 and 1/sqrt for -0.5 (C's pow(-inf, 0.5) is inf where torch and numpy give nan,
    and pow(-0.0, -0.5) is inf where torch's rsqrt gives -inf)."""
    if not isinstance(k, numbers.Real):  # an array of constants (compiled replay)
        root = m.sqrt(a)
        return m.where(
            k == 2.0, a * a, m.where(k == 0.5, root, m.where(k == -0.5, 1.0 / root, m.pow(a, k)))
        )
    if k == 2.0:
        return a * a
    if k == 0.5:
        return m.sqrt(a)
    if k == -0.5:
        return _div(m, 1.0, m.sqrt(a))
    return m.pow(a, k)


def _div(m, a, b):
    """a / b with IEEE results (inf, nan) for b == 0, for floats and arrays alike."""
    if m is SCALAR:
        try:
            return a / b
        except ZeroDivisionError:
            if a != a or a == 0.0:
                return NAN
            return math.copysign(INF, a) * math.copysign(1.0, b)
    return a / b


# ---- what the C maths library computes --------------------------------------------------------
# Another maths library (a browser's, replaying a graph in a page) may round these differently
# in the last bit: the ops whose rules call exp, log, tanh or pow, and x ** k unless k is one
# that _pow_constant computes without pow. Everything else is IEEE arithmetic, the same anywhere.
LIBM_OPS = frozenset({"tanh", "sigmoid", "exp", "log", "pow", "rpow"})
EXACT_POWERS = frozenset({0.0, 1.0, 2.0, 0.5, -0.5})


def libm_nodes(ops, args) -> tuple[list[int], list[int]]:
    """Of a graph's nodes (their op names, None for a leaf, and constants): those whose value
    comes from the maths library (a LIBM_OPS op, or x ** k for k outside EXACT_POWERS), and the
    x ** k nodes whose derivative k * x ** (k - 1) takes a power from it (k - 1 outside
    EXACT_POWERS, k != 0; see power_in_derivative)."""
    value, derivative = [], []
    for i, (op, arg) in enumerate(zip(ops, args)):
        if op in LIBM_OPS or (op == "powc" and float(arg) not in EXACT_POWERS):
            value.append(i)
        if op == "powc" and float(arg) != 0.0 and float(arg) - 1.0 not in EXACT_POWERS:
            derivative.append(i)
    return value, derivative


def power_in_derivative(a: float, k: float) -> float:
    """x ** (k - 1) at x = a, as powc's backward rule computes it."""
    return _pow_constant(SCALAR, a, float(k) - 1.0)
