"""The words of the step-through pages: how a number is written (``fmt``), every op's local
derivative in words a learner can check by hand (``LOCAL_DERIVATIVES``), and the small helpers
that fill those templates with a node's names or numbers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ...ops import OPS


def fmt(x: float) -> str:
    """A number as the page shows it: 4 decimals from 1 up, else 4 significant digits, trailing
    zeros cut (2.0, 0.7071, 6.8814, 0.004672, 1.5e-07)."""
    if x != x:
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0.0:
        return "0.0"  # also for -0.0, which would only puzzle a learner
    if 1.0 <= abs(x) < 1e7:  # 4 decimals, as draw_dot shows them
        text = f"{x:.4f}".rstrip("0")
    else:  # 4 significant digits, so that 0.004672 does not shrink to 0.0047
        text = f"{x:.4g}"
    if "e" not in text and "." not in text:
        text += ".0"  # 1.0, not 1: it is a float
    return text + "0" if text.endswith(".") else text


# ---- the local derivative of every op, in words a learner can check by hand ----------------
# Placeholders: {a} {b} {out} are node names, {a.data} {b.data} {out.data} their values,
# {k} the op's constant and {km1} that constant minus one.


@dataclass(frozen=True)
class LocalDerivative:
    computes: str  # what the node computes
    locals: tuple[str, ...]  # d out / d input, one per input
    why: str  # the rule in one sentence


LOCAL_DERIVATIVES: dict[str, LocalDerivative] = {
    "add": LocalDerivative(
        "{out} = {a} + {b}", ("1", "1"), "a sum passes its gradient to both inputs unchanged"
    ),
    "sub": LocalDerivative(
        "{out} = {a} \u2212 {b}",
        ("1", "\u22121"),
        "a difference passes its gradient to the first input and its negative to the second",
    ),
    "mul": LocalDerivative(
        "{out} = {a} \u00d7 {b}",
        ("{b.data}", "{a.data}"),
        "in a product, each input's local derivative is the other input",
    ),
    "div": LocalDerivative(
        "{out} = {a} / {b}",
        ("1 / {b.data}", "\u2212{a.data} / {b.data}\u00b2"),
        "d(a/b)/da = 1/b and d(a/b)/db = \u2212a/b\u00b2",
    ),
    "pow": LocalDerivative(
        "{out} = {a} ** {b}",
        ("{b.data} \u00d7 {a.data} ** ({b.data} \u2212 1)", "{out.data} \u00d7 ln({a.data})"),
        "d(a^b)/da = b\u00b7a^(b\u22121) and d(a^b)/db = a^b\u00b7ln(a)",
    ),
    "powc": LocalDerivative(
        "{out} = {a} ** {k}",
        ("{k} \u00d7 {a.data} ** {km1}",),
        "the power rule: d(x^k)/dx = k\u00b7x^(k\u22121)",
    ),
    "rpow": LocalDerivative(
        "{out} = {k} ** {a}",
        ("{out.data} \u00d7 ln({k})",),
        "d(k^x)/dx = k^x\u00b7ln(k)",
    ),
    "neg": LocalDerivative("{out} = \u2212{a}", ("\u22121",), "negation flips the gradient's sign"),
    "exp": LocalDerivative(
        "{out} = exp({a})", ("{out.data}",), "e^x is its own derivative: d(e^x)/dx = e^x"
    ),
    "log": LocalDerivative("{out} = ln({a})", ("1 / {a.data}",), "d(ln x)/dx = 1/x"),
    "tanh": LocalDerivative(
        "{out} = tanh({a})",
        ("1 \u2212 {out.data}\u00b2",),
        "d(tanh x)/dx = 1 \u2212 tanh(x)\u00b2, and tanh(x) is this node's own data",
    ),
    "sigmoid": LocalDerivative(
        "{out} = sigmoid({a})",
        ("{out.data} \u00d7 (1 \u2212 {out.data})",),
        "d\u03c3(x)/dx = \u03c3(x)\u00b7(1 \u2212 \u03c3(x)), and \u03c3(x) is this node's data",
    ),
    "relu": LocalDerivative(
        "{out} = ReLU({a}) = max({a}, 0)",
        ("1 if {out.data} > 0 else 0",),
        "ReLU passes the gradient through where its output is positive and blocks it elsewhere",
    ),
    "sqrt": LocalDerivative(
        "{out} = sqrt({a})",
        ("1 / (2 \u00d7 {out.data})",),
        "d(\u221ax)/dx = 1/(2\u221ax), and \u221ax is this node's data",
    ),
    "abs": LocalDerivative(
        "{out} = |{a}|", ("sign({a.data})",), "d|x|/dx = sign(x): +1, \u22121, or 0 at 0"
    ),
    "sign": LocalDerivative(
        "{out} = sign({a})", ("0",), "sign is flat on each side of 0, so its derivative is 0"
    ),
    "relu_grad": LocalDerivative(
        "{out} = {a} if {b} > 0 else 0",
        ("1 if {b.data} > 0 else 0", "0"),
        "ReLU's derivative as a node of a gradient graph: the first input passes where the "
        "second is positive",
    ),
}
assert set(LOCAL_DERIVATIVES) == set(OPS), "every op in ops.OPS needs an explanation"

_PLACEHOLDER = re.compile(r"\{(a|b|out)(\.data)?\}|\{(k|km1)\}")


def _constant(k: float) -> str:
    """An op's constant as written in code: 3 for x**3.0, 0.5 for x**0.5."""
    return str(int(k)) if float(k).is_integer() and abs(k) < 1e15 else fmt(k)


def _sum_text(terms: list[float], limit: int = 12) -> str:
    """Terms added up as a learner would write them: 1.0 + 2.0 \u2212 0.5 (long sums cut)."""
    shown = terms if len(terms) <= limit else terms[: limit - 2]
    text = fmt(shown[0])
    for t in shown[1:]:
        text += f" \u2212 {fmt(-t)}" if t < 0 else f" + {fmt(t)}"
    if len(terms) > limit:
        last = terms[-1]
        middle = len(terms) - len(shown) - 1
        text += f" + \u2026 ({middle} more terms) \u2026"
        text += f" \u2212 {fmt(-last)}" if last < 0 else f" + {fmt(last)}"
    return text


def _same_number(text: str, x: float) -> bool:
    """True when text already is the number x as fmt() writes it (so need not be repeated)."""
    plain = text.replace("\u2212", "-").strip("()")
    try:
        return fmt(float(plain)) == fmt(x)
    except ValueError:
        return False


def _same_float(x: float, y: float) -> bool:
    return x == y or (x != x and y != y)


def _ref(name: str) -> str:
    """A node name as written in a formula: bracketed unless it is a plain identifier."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_#]*", name) else f"({name})"


def _fill(template: str, names: dict[str, str], values: dict[str, float], numeric: bool) -> str:
    """The template with names (x1.data) or, when numeric, the numbers themselves."""

    def sub(m: re.Match) -> str:
        if m.group(3):
            return _constant(values[m.group(3)])
        key = m.group(1)
        if m.group(2) is None:
            return _ref(names[key])
        if not numeric:
            return f"{_ref(names[key])}.data"
        text = fmt(values[key])
        enclosed = template[m.start() - 1 : m.start()] == "(" and template[m.end() :][:1] == ")"
        return f"({text})" if text.startswith("-") and not enclosed else text

    return _PLACEHOLDER.sub(sub, template)


def _placeholders(node, name: str, names: list[str], position: dict) -> tuple[dict, dict]:
    """What a LOCAL_DERIVATIVES template's {out} {a} {b} and {k} {km1} stand for at this node:
    (names of out, a, b; their data and the op's constant)."""
    labels, values = {"out": name}, {"out": node.data}
    for key, v in zip("ab", node._prev):
        labels[key] = names[position[id(v)]]
        values[key] = v.data
    if node._fn.has_arg:
        values["k"], values["km1"] = node._arg, node._arg - 1.0
    return labels, values


# the local-derivative sentences that speak of gradients flowing back, said the forward way
_FORWARD_WHY = {
    "add": "d(a + b)/da = d(a + b)/db = 1: a sum adds its inputs' tangents",
    "sub": "d(a \u2212 b)/da = 1 and d(a \u2212 b)/db = \u22121: a difference subtracts the "
    "second input's tangent from the first's",
    "neg": "d(\u2212x)/dx = \u22121: negation flips the tangent's sign",
    "relu": "ReLU's slope is 1 where its output is positive and 0 elsewhere, so it passes "
    "the tangent through or blocks it",
}


def _factor(x: float) -> str:
    """A number as a factor of a product: bracketed when negative, so '2.0 × (−3.0)'."""
    text = fmt(x)
    return f"({text})" if text.startswith("-") else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
