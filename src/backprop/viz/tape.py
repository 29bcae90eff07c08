"""A graph as the pages replay it: ``Tape``, a Value graph flattened in topological order
(ops, inputs, constants, leaves), with the helpers the explorer and the recorder's page share:
base64 of doubles, the one-byte hints of the ops a browser's maths library may round
differently (see explorer.py's docstring), even thinning of frames, explain()'s wording of each
op, and JSON that is safe inside a ``<script>`` element.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from array import array
from dataclasses import dataclass

from ..engine import Value
from ..ops import LIBM_OPS, OPS, SCALAR, libm_nodes

__all__ = ["Tape", "HINTED_OPS", "NUMBER_CHARS", "script_json"]

# ops whose result a browser's Math library may round differently from CPython's libm: the
# page corrects them with one byte each (see the module docstring); ops.libm_nodes also names
# the powers x ** k that need one, for their value or for the power in their derivative
HINTED_OPS = LIBM_OPS
NUMBER_CHARS = 13  # the widest number fmt() writes, e.g. '-1234567.1234'


@dataclass
class Tape:
    """A point's loss graph flattened in topological_order(), as the page gets it."""

    ops: list[str | None]
    inputs: list[list[int]]
    args: list[float | None]
    leaves: list[dict | None]
    hinted: list[int]
    root: int
    order: list[Value]  # the graph it was read from (at the first frame's weights)
    _hinted_fn: object = None
    bhinted: list[int] = ()  # nodes x ** k whose derivative's power needs a hint (ops.libm_nodes)

    @classmethod
    def read(cls, root: Value, params: list[Value], inputs: list[Value], target) -> Tape:
        order = root.topological_order()
        index = {id(v): i for i, v in enumerate(order)}
        param_of = {id(p): k for k, p in enumerate(params)}
        input_of = {id(v): j for j, v in enumerate(inputs)}
        leaves: list[dict | None] = []
        for v in order:
            if v._fn is not None:
                leaves.append(None)
            elif id(v) in param_of:
                leaves.append({"param": param_of[id(v)]})
            elif id(v) in input_of:
                leaves.append({"input": input_of[id(v)]})
            elif target is not None and v is target:
                leaves.append({"target": True})
            else:
                leaves.append({"const": v.data})
        ops = [None if v._fn is None else v._fn.name for v in order]
        args = [v._arg for v in order]
        hinted, bhinted = libm_nodes(ops, args)
        return cls(
            ops=ops,
            inputs=[[index[id(p)] for p in v._prev] for v in order],
            args=args,
            leaves=leaves,
            hinted=hinted,
            root=index[id(root)],
            order=order,
            bhinted=bhinted,
        )

    def evaluate(self, params: list[float], x: list[float], target: float | None) -> list[float]:
        """Every node's data, from the op table's forward rules: what building the graph with
        these numbers gives (the same rows, in the same order, as eager mode)."""
        values: list[float] = []
        for op, ins, arg, leaf in zip(self.ops, self.inputs, self.args, self.leaves):
            if op is None:
                if "param" in leaf:
                    values.append(params[leaf["param"]])
                elif "input" in leaf:
                    values.append(x[leaf["input"]])
                elif "target" in leaf:
                    values.append(target)
                else:
                    values.append(leaf["const"])
                continue
            operands = [values[i] for i in ins]
            if arg is not None:
                operands.append(arg)
            values.append(OPS[op].forward(SCALAR, *operands))
        return values

    def hinted_values(self):
        """A function (params, x, target) -> the hinted nodes' data, equal to evaluate()'s but
        about ten times faster: the tape written out as straight-line Python, where +, - and *
        are the operators themselves (as in the op table's rows) and other ops call their row."""
        if self._hinted_fn is None:
            inline = {"add": "+", "sub": "-", "mul": "*"}
            lines, space = ["def hinted(p, x, t):"], {"SCALAR": SCALAR}
            for i, (op, ins, arg, leaf) in enumerate(
                zip(self.ops, self.inputs, self.args, self.leaves)
            ):
                if op is None:
                    source = (
                        f"p[{leaf['param']}]" if "param" in leaf
                        else f"x[{leaf['input']}]" if "input" in leaf
                        else "t" if "target" in leaf
                        else repr(leaf["const"])
                    )  # fmt: skip
                elif op in inline:
                    source = f"v{ins[0]} {inline[op]} v{ins[1]}"
                else:
                    space[f"f_{op}"] = OPS[op].forward
                    operands = [f"v{k}" for k in ins] + ([repr(arg)] if arg is not None else [])
                    source = f"f_{op}(SCALAR, {', '.join(operands)})"
                lines.append(f"    v{i} = {source}")
            lines.append(f"    return [{', '.join(f'v{i}' for i in self.hinted)}]")
            exec(compile("\n".join(lines), "<explorer tape>", "exec"), space)  # noqa: S102
            self._hinted_fn = space["hinted"]
        return self._hinted_fn

    def as_json(self, view: dict) -> dict:
        out = {
            "ops": self.ops,
            "inputs": self.inputs,
            "args": self.args,
            "leaves": self.leaves,
            "hinted": self.hinted,
            "root": self.root,
            "view": view,
        }
        if self.bhinted:
            out["bhinted"] = list(self.bhinted)
        return out


def _b64(numbers: array) -> str:
    if struct.pack("=d", 1.0) != struct.pack("<d", 1.0):  # pragma: no cover - big-endian host
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _low_byte(x: float) -> int:
    return struct.pack("<d", x)[0]


def _thin(snapshots: list, keep: int) -> list:
    """At most ``keep`` (>= 2) snapshots, evenly spaced, always the first and the last."""
    if len(snapshots) <= keep:
        return snapshots
    picks = sorted({round(k * (len(snapshots) - 1) / (keep - 1)) for k in range(keep)})
    return [snapshots[k] for k in picks]


def _derivatives() -> dict:
    from .stepthrough import LOCAL_DERIVATIVES

    return {
        name: {"computes": d.computes, "locals": list(d.locals), "why": d.why}
        for name, d in LOCAL_DERIVATIVES.items()
    }


# characters that could end or comment out a <script> element, or end a JavaScript line, written
# as JSON escapes: they can only occur inside JSON strings, where JSON.parse reads them back
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(data) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: no ``<``,
    ``>`` or ``&`` (so no ``</script>``, ``<!--`` or ``<script`` whatever the user's names
    are) and no line separators; ``JSON.parse`` of the element's text gives ``data`` back."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m.group(0)], text)
