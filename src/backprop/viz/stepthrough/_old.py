"""explain(root): a self-contained HTML page that steps through the backward pass from root
(or, with mode="forward", through the tangents of one forward-mode sweep).

The numbers come from Python, not from the page: explain() copies the graph, seeds the copy's
root with ``grad`` and replays ``_backward()`` node by node in the order ``backward()`` uses
(reverse of ``topological_order()``), recording every term it adds to an input's ``.grad``. So
the page's gradients are exactly those of a fresh ``backward()`` (all ``.grad`` starting at 0,
as after ``zero_grad()``), and the user's graph, its ``.data`` and ``.grad``, is left untouched.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import autodiff
from ..engine import Value, _to_float
from ..ops import OPS, SCALAR
from .draw import node_names, text_width
from .layout import layout

__all__ = [
    "explain",
    "Explanation",
    "Step",
    "Contribution",
    "ForwardExplanation",
    "ForwardStep",
    "TangentTerm",
    "LOCAL_DERIVATIVES",
    "fmt",
    "view_of",
    "step_view_markup",
]

MAX_NODES = 20000  # beyond this the page gets too heavy for a browser (tens of MB)


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


# ---- the replay -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One chain-rule term added to an input's grad during a step."""

    node: int  # index of the input receiving the term (into Explanation.names)
    local: float  # d out / d input
    term: float  # local x out.grad, exactly as _backward() computes it
    before: float
    after: float
    text: str  # the chain-rule line, e.g. 'w1.grad += x1.data x x1w1.grad = 2.0 x 0.5 = 1.0'


@dataclass
class Step:
    """One step of the page: the seed, one _backward() call, or the summary at the end."""

    kind: str  # 'seed', 'backward' or 'done'
    node: int | None  # the node whose _backward() runs (the root for 'seed')
    title: str
    lines: list[str] = field(default_factory=list)  # prose, one sentence each
    sums: list[str] = field(default_factory=list)  # formulas: accumulations, final grads
    contributions: list[Contribution] = field(default_factory=list)


class Explanation:
    """The backward pass of one graph, step by step: ``.save(path)`` writes the page, Jupyter
    displays it inline, and ``.steps``, ``.names`` and ``.grads`` hold the numbers."""

    cell = "grad"  # the word in each node's third cell, and what it shows before any step
    cell_start = "0.0"

    def __init__(self, order, names, root_index, seed, steps, grads, engine, title) -> None:
        index = {id(v): i for i, v in enumerate(order)}
        self.values = [v.data for v in order]
        self.labels = [v.label for v in order]
        self.ops = [None if v._fn is None else v._fn.name for v in order]
        self.op_symbols = [v._op for v in order]
        self.inputs = [tuple(index[id(p)] for p in v._prev) for v in order]
        self.args = [v._arg for v in order]
        self.names: list[str] = names
        self.root = root_index
        self.seed = seed
        self.steps: list[Step] = steps
        self.grads: list[float] = grads  # final, equal to a fresh backward() from the root
        self.layout_engine = engine
        self.title = title
        self._html: str | None = None

    @property
    def grad_by_name(self) -> dict[str, float]:
        """Final gradients keyed by node name."""
        return dict(zip(self.names, self.grads))

    @property
    def html(self) -> str:
        """The self-contained page (no network needed)."""
        if self._html is None:
            self._html = _page(self)
        return self._html

    def save(self, path: str | Path) -> Path:
        """Write the page to path (e.g. 'page.html') and return the path."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    frame_height = 640  # pixels of the inline view in Jupyter; set it on an Explanation

    def _repr_html_(self) -> str:
        # an iframe keeps the page's script and styles apart from the notebook's, and runs it
        page = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-scripts" '
            f'style="width:100%;height:{int(self.frame_height)}px;border:1px solid #ddd;'
            'border-radius:6px" '
            f'title="{html.escape(self.title)}"></iframe>'
        )

    def __repr__(self) -> str:
        return (
            f"<Explanation of the backward pass from {self.names[self.root]!r}: "
            f"{len(self.names)} nodes, {len(self.steps)} steps>"
        )

    def _progress(self) -> tuple[list[set[str]], list[int], list[int]]:
        """For view_of(): every text each node's grad cell will show, the step where its
        _backward() runs (-1: none) and the step of the last term added to its grad."""
        n = len(self.names)
        shown: list[set[str]] = [{"grad 0.0"} for _ in range(n)]
        shown[self.root].add(f"grad {fmt(self.seed)}")
        step_of = [-1] * n
        last_touch = [-1] * n
        last_touch[self.root] = 0
        for k, step in enumerate(self.steps):
            if step.kind == "backward":
                step_of[step.node] = k
            for c in step.contributions:
                shown[c.node].add(f"grad {fmt(c.after)}")
                last_touch[c.node] = k
        return shown, step_of, last_touch


def explain(
    root: Value,
    grad: float = 1.0,
    *,
    mode: str = "reverse",
    wrt: Value | None = None,
    title: str | None = None,
    layout_engine: str = "auto",
    max_nodes: int = MAX_NODES,
) -> Explanation:
    """Step through ``root.backward(grad)``: returns an Explanation that displays inline in
    Jupyter and writes a self-contained page with ``.save("page.html")``.

    The gradients shown are those of a fresh ``backward()`` (every ``.grad`` starting at 0, as
    after ``zero_grad()``), computed by replaying ``_backward()`` on a copy of the graph: the
    graph you pass in, its ``.data`` and its ``.grad``, is not changed.

    With ``mode="forward"`` and ``wrt=`` a leaf of the graph, it steps through one forward-mode
    sweep instead: every node's tangent d(node)/d(wrt), from the inputs to root, computed as
    ``jvp(root, [wrt], [1.0])`` computes it (a ForwardExplanation).

    >>> from backprop import Value
    >>> a = Value(2.0, label="a")
    >>> page = explain(a * a + a)
    >>> page.grad_by_name["a"]
    5.0
    """
    if not isinstance(root, Value):
        raise TypeError(f"explain expects a Value, got {type(root).__name__}")
    if not isinstance(mode, str) or mode not in ("reverse", "forward"):
        raise ValueError(f"mode must be 'reverse' or 'forward', got {mode!r:.60}")
    if mode == "forward":
        return _explain_forward(root, wrt, grad, title, layout_engine, max_nodes)
    if wrt is not None:
        raise ValueError(
            f"wrt= is for mode='forward' (one sweep per leaf); reverse mode gets every "
            f"gradient in one sweep and takes no wrt, got wrt={wrt!r:.60}"
        )
    seed = _to_float(grad)
    order = _order_within(root, max_nodes)
    by_id = node_names(order)
    names = [by_id[id(v)] for v in order]
    copies = _copy_graph(order)
    root_index = len(order) - 1
    steps = _replay(copies, names, root_index, seed)
    grads = [c.grad for c in copies]
    text = title or f"The backward pass of {names[root_index]}"
    return Explanation(order, names, root_index, seed, steps, grads, layout_engine, text)


def _order_within(root: Value, max_nodes: int) -> list[Value]:
    order = root.topological_order()
    if len(order) > max_nodes:
        raise ValueError(
            f"the graph has {len(order)} nodes, more than max_nodes={max_nodes} that a browser "
            "page handles well; explain a smaller part of it (a sub-expression) or pass a "
            "larger max_nodes"
        )
    return order


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return names


def _copy_graph(order: list[Value]) -> list[Value]:
    """A copy of the graph (same data, ops and operand order) with every grad 0.

    Each node is copied slot by slot and its references to operands (whichever slots hold
    them) are pointed at the operands' copies, so this follows Value's layout without
    depending on it; _backward() then runs on the copy exactly as it does on the original.
    """
    copies: dict[int, Value] = {}
    slots: dict[type, list[str]] = {}
    for v in order:
        cls = type(v)  # Value, or a subclass of it
        if cls not in slots:
            slots[cls] = [n for n in _slot_names(cls) if n not in ("__weakref__", "__dict__")]
        c = cls.__new__(cls)
        fields = {name: getattr(v, name) for name in slots[cls] if hasattr(v, name)}
        fields.update(getattr(v, "__dict__", {}))
        for name, x in fields.items():
            if isinstance(x, Value):
                x = copies[id(x)]
            elif isinstance(x, tuple) and x and all(isinstance(p, Value) for p in x):
                x = tuple(copies[id(p)] for p in x)
            setattr(c, name, x)
        c.grad = 0.0
        copies[id(v)] = c
    copied = [copies[id(v)] for v in order]
    for v, c in zip(order, copied):
        expected, got = [copies[id(p)] for p in v._prev], list(c._prev)
        if len(expected) != len(got) or any(a is not b for a, b in zip(expected, got)):
            raise RuntimeError("explain could not copy the graph: Value's layout changed")
    return copied


def _placeholders(node: Value, name: str, names: list[str], position: dict) -> tuple[dict, dict]:
    """What a LOCAL_DERIVATIVES template's {out} {a} {b} and {k} {km1} stand for at this node:
    (names of out, a, b; their data and the op's constant)."""
    labels, values = {"out": name}, {"out": node.data}
    for key, v in zip("ab", node._prev):
        labels[key] = names[position[id(v)]]
        values[key] = v.data
    if node._fn.has_arg:
        values["k"], values["km1"] = node._arg, node._arg - 1.0
    return labels, values


def _replay(copies: list[Value], names: list[str], root: int, seed: float) -> list[Step]:
    """Run backward() on the copy as backward() itself does, recording each step's terms."""
    position = {id(c): i for i, c in enumerate(copies)}
    out_name = _ref(names[root])
    received: list[list[tuple[int, float]]] = [[] for _ in copies]  # (from step node, term)
    copies[root].grad += seed
    steps = [
        Step(
            "seed",
            root,
            f"Start at the output: {out_name}.grad = {fmt(seed)}",
            [
                f"The derivative of {out_name} with respect to itself is "
                f"{'1' if seed == 1.0 else fmt(seed)}, so backward() starts with "
                f"{out_name}.grad = {fmt(seed)}. Every other grad starts at 0.",
                "Each following step takes one node, newest first, and passes its gradient to "
                "its inputs with the chain rule: input.grad += (local derivative) \u00d7 "
                "node.grad.",
            ],
        )
    ]
    for i in range(len(copies) - 1, -1, -1):  # reversed(topological_order())
        node = copies[i]
        fn = node._fn
        if fn is None:  # a leaf: its _backward() does nothing
            continue
        inputs = node._prev
        xs = [v.data for v in inputs]
        if fn.has_arg:
            xs.append(node._arg)
        befores = [v.grad for v in inputs]
        g = node.grad
        terms = fn.backward(SCALAR, g, node.data, *xs)  # what _backward() adds, term by term
        locals_ = fn.backward(SCALAR, 1.0, node.data, *xs)
        node._backward()  # the real thing, on the copy: its results are the ones shown
        explained = LOCAL_DERIVATIVES[fn.name]
        labels, values = _placeholders(node, names[i], names, position)
        me = _ref(names[i])
        step = Step(
            "backward",
            i,
            f"{me}._backward(): " + _fill(explained.computes, labels, values, False),
            [
                f"{me}.grad = {fmt(g)} is final: every node that uses {me} has already passed "
                "its gradient back to it.",
                f"Local derivative: {explained.why}.",
            ],
        )
        running = {}
        for k, (v, term, local) in enumerate(zip(inputs, terms, locals_)):
            j = position[id(v)]
            who = _ref(names[j])
            before = running.get(j, befores[k])
            after = before + term  # the same sum, in the same order, as _backward()
            running[j] = after
            symbolic = _fill(explained.locals[k], labels, values, False)
            numeric = _fill(explained.locals[k], labels, values, True)
            if fn.name == "relu":
                symbolic = numeric = "1" if local else "0"
                sign = ">" if local else "\u2264"
                step.lines.append(
                    f"Here {me}.data = {fmt(node.data)} {sign} 0, so the local derivative is "
                    f"{symbolic}."
                )
            wrap = (lambda s: f"({s})") if (" " in symbolic) else (lambda s: s)
            line = (
                f"{who}.grad += {wrap(symbolic)} \u00d7 {me}.grad = {wrap(numeric)} \u00d7 {fmt(g)}"
            )
            if not _same_number(numeric, local):
                line += f" = {fmt(local)} \u00d7 {fmt(g)}"
            line += f" = {fmt(term)}"
            received[j].append((i, term))
            step.contributions.append(Contribution(j, local, term, before, after, line))
        for k, c in enumerate(step.contributions):  # trust _backward()'s sums over ours
            if k == max(m for m, d in enumerate(step.contributions) if d.node == c.node):
                actual = copies[c.node].grad
                if not _same_float(actual, c.after):  # pragma: no cover - they agree today
                    step.contributions[k] = Contribution(
                        c.node, c.local, actual - c.before, c.before, actual, c.text
                    )
        for j in dict.fromkeys(c.node for c in step.contributions):
            got = received[j]
            if len(got) > 1:
                parts = _sum_text([t for _, t in got])
                by = Counter(_ref(names[s]) for s, _ in got)
                if len(by) <= 4:
                    uses = ", ".join(f"{k} by {u}" for u, k in by.items())
                else:
                    uses = f"by {len(by)} different nodes"
                step.sums.append(
                    f"{_ref(names[j])} is used {len(got)} times ({uses}), so its "
                    f"gradient is the sum of one term per use: {_ref(names[j])}.grad = {parts} "
                    f"= {fmt(copies[j].grad)}"
                )
        steps.append(step)
    leaves = [i for i, c in enumerate(copies) if c._fn is None and i != root]
    summary = [
        f"Every gradient is now final. Each one says how {out_name} responds to a small nudge h "
        f"of that node: {out_name} changes by about grad \u00d7 h.",
    ]
    sums = [f"{_ref(names[i])}.grad = {fmt(copies[i].grad)}" for i in leaves[:12]]
    if len(leaves) > 12:
        summary.append(f"The first 12 of {len(leaves)} inputs (click a node to see its grad):")
    done = Step("done", None, "Done: the backward pass is complete", summary, sums)
    steps.append(done)
    return steps


# ---- the page -------------------------------------------------------------------------------

CHAR = 6.5  # px per character of the page's 12px sans-serif (generous, so text fits)
PAD = 7.0
CULL_LIMIT = 300  # nodes; above this the page draws only the nodes in view
HEIGHT = 30.0


def _json_float(x: float) -> float | str:
    """JSON has no nan or infinity: send those as the strings JavaScript's Number() reads."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _page(ex: Explanation) -> str:
    """The whole page: CSS, an SVG of the graph, the steps as JSON, and the script."""
    root = html.escape(_ref(ex.names[ex.root]))
    intro = REVERSE_INTRO.format(root=root, nodes=len(ex.names), steps=len(ex.steps) - 1)
    return _write_page(ex, {}, _steps_data(ex), "bp-explain", intro, root=ex.names[ex.root])


def _write_page(ex, extra: dict, steps: list[dict], page_class: str, intro: str, **view) -> str:
    """A step-through page of either mode: the drawing of ex's graph, its page data (the
    drawing's structural fields, then ``extra``, the numbers and the steps) and the script
    that mounts the view; ``view`` goes to step_view_markup (root or legend)."""
    from .assets import read_asset

    drawn = view_of(ex)
    svg, engine = drawn.pop("svg"), drawn.pop("engine")
    data = {
        **drawn,
        **extra,
        "data": [_json_float(v) for v in ex.values],
        "dataText": [fmt(v) for v in ex.values],
        "steps": steps,
    }
    # '</' would end the script element early; JSON allows '<\/' for it
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    return PAGE.format(
        page_class=page_class,
        title=html.escape(ex.title),
        intro=intro,
        css=read_asset("explain.css"),
        script=read_asset("explain.js"),
        payload=payload,
        view=step_view_markup(svg, steps=len(ex.steps) - 1, engine=engine, **view),
    )


def _steps_data(ex: Explanation) -> list[dict]:
    """The steps as the page's script reads them: per step its words and its grad changes,
    [node, before, after, before as shown, after as shown, chain-rule line, term as shown]."""
    return [
        {
            "kind": s.kind,
            "node": s.node,
            "title": s.title,
            "lines": s.lines,
            "sums": s.sums,
            "changes": (
                [[ex.root, 0.0, _json_float(ex.seed), "0.0", fmt(ex.seed)]]
                if s.kind == "seed"
                else [
                    [
                        c.node,
                        _json_float(c.before),
                        _json_float(c.after),
                        fmt(c.before),
                        fmt(c.after),
                        c.text,
                        fmt(c.term),
                    ]  # fmt: skip
                    for c in s.contributions
                ]
            ),
        }
        for s in ex.steps
    ]


def view_of(ex: Explanation, number_chars: int | None = None) -> dict:
    """The step-through's drawing of ex's graph and the page data that follows from its shape
    alone: ``svg`` (the SVG elements, the content of the view's ``#bp-world`` group),
    ``engine`` (the layout engine used), and ``names``, ``inputs``, ``ops``, ``root``,
    ``stepOf``, ``lastTouch``, ``boxes``, ``cull``, ``width``, ``height``.

    The numbers drawn are ex's; with ``number_chars`` the data and grad cells are sized for
    numbers of that many characters too, so that a page can show other numbers on the same
    drawing (the step-through script writes each node's data from the page data's dataText).
    """
    n = len(ex.names)
    # every text a node's grad (or tangent) cell will show, to size the cell once; the step
    # where the node is worked on, and the step after which its cell no longer changes
    shown, step_of, last_touch = ex._progress()
    word = ex.cell
    wide = None if number_chars is None else "0" * int(number_chars)

    cells = []
    sizes: dict[str, tuple[float, float]] = {}
    edges: list[tuple[str, str]] = []
    for i in range(n):
        texts = [_short_name(ex.names[i]), f"data {fmt(ex.values[i])}", max(shown[i], key=len)]
        widths = [max(text_width(t, CHAR), 16.0) + 2 * PAD for t in texts]
        if wide is not None:
            widths[1] = max(widths[1], text_width(f"data {wide}", CHAR) + 2 * PAD)
            widths[2] = max(widths[2], text_width(f"{word} {wide}", CHAR) + 2 * PAD)
        cells.append(widths)
        sizes[f"v{i}"] = (sum(widths), HEIGHT)
        if ex.ops[i] is not None:
            symbol = _oval_text(ex, i)
            sizes[f"o{i}"] = (max(text_width(symbol, CHAR) + 24.0, 40.0), HEIGHT)
            edges.extend((f"v{p}", f"o{i}") for p in ex.inputs[i])
            edges.append((f"o{i}", f"v{i}"))
    placed = layout(sizes, edges, rankdir="LR", engine=ex.layout_engine)
    pos = placed.positions

    esc = html.escape
    svg: list[str] = []
    # a big graph starts hidden ("off"): the script shows only what is in view, so the browser
    # never lays out thousands of nodes at once
    off = " off" if n > CULL_LIMIT else ""
    # edges first, so boxes sit on top of them
    for i in range(n):
        if ex.ops[i] is None:
            continue
        ox, oy = pos[f"o{i}"]
        ow = sizes[f"o{i}"][0]
        count: dict[int, int] = {}
        for p in ex.inputs[i]:
            count[p] = count.get(p, 0) + 1
        seen: dict[int, int] = {}
        for p in ex.inputs[i]:
            k = seen[p] = seen.get(p, -1) + 1
            shift = (k - (count[p] - 1) / 2) * 8.0  # fan out the two edges of a*a
            px, py = pos[f"v{p}"]
            pw = sizes[f"v{p}"][0]
            svg.append(
                _edge(px + pw / 2, py + shift, ox - ow / 2, oy + shift, f"e{p}-{i}", i, p, off)
            )
        vx, vy = pos[f"v{i}"]
        vw = sizes[f"v{i}"][0]
        svg.append(_edge(ox + ow / 2, oy, vx - vw / 2, vy, f"r{i}", i, i, off))
    for i in range(n):
        x, y = pos[f"v{i}"]
        w, h = sizes[f"v{i}"]
        left, top = x - w / 2, y - h / 2
        auto = " auto" if not ex.labels[i] else ""
        leaf = " leaf" if ex.ops[i] is None else ""
        parts = [
            f'<g class="vnode{leaf}{off}" id="v{i}" data-i="{i}" data-name="{esc(ex.names[i])}" '
            f'data-grad="0.0" data-data="{esc(repr(ex.values[i]))}" '
            f'transform="translate({left:.1f},{top:.1f})">',
            f'<rect class="box" width="{w:.1f}" height="{h:.1f}" rx="4"/>',
        ]
        cx = 0.0
        for k, (cls, cw) in enumerate(zip(("name", "data", "grad"), cells[i])):
            if k:
                parts.append(f'<line class="sep" x1="{cx:.1f}" y1="0" x2="{cx:.1f}" y2="{h}"/>')
            if cls == "grad":
                parts.append(f'<rect class="gradcell" x="{cx:.1f}" width="{cw:.1f}" '
                             f'height="{h:.1f}" rx="4"/>')  # fmt: skip
            text = {
                "name": _short_name(ex.names[i]),
                "data": f"data {fmt(ex.values[i])}",
                "grad": f"{word} {ex.cell_start}",
            }
            extra = auto if cls == "name" else ""
            parts.append(
                f'<text class="{cls}{extra}" x="{cx + cw / 2:.1f}" y="{h / 2 + 4:.1f}">'
                f"{esc(text[cls])}</text>"
            )
            cx += cw
        parts.append(f"<title>{esc(ex.names[i])}: data {esc(repr(ex.values[i]))}</title></g>")
        svg.append("".join(parts))
        if ex.ops[i] is not None:
            ox, oy = pos[f"o{i}"]
            ow, oh = sizes[f"o{i}"]
            svg.append(
                f'<g class="opnode{off}" id="o{i}" data-i="{i}">'
                f'<ellipse cx="{ox:.1f}" cy="{oy:.1f}" rx="{ow / 2:.1f}" ry="{oh / 2:.1f}"/>'
                f'<text x="{ox:.1f}" y="{oy + 4:.1f}">'
                f"{esc(_oval_text(ex, i))}</text><title>{esc(ex.ops[i])}</title></g>"
            )

    return {
        "svg": "\n".join(svg),
        "engine": placed.engine,
        "names": ex.names,
        "inputs": [list(p) for p in ex.inputs],
        "ops": ex.ops,
        "root": ex.root,
        "stepOf": step_of,
        "lastTouch": last_touch,
        "boxes": [_boxes(i, pos, sizes, ex.ops[i] is not None) for i in range(n)],
        "cull": n > CULL_LIMIT,
        "width": placed.width,
        "height": placed.height,
    }


def _boxes(i: int, pos, sizes, has_op: bool) -> list[float]:
    """Node i's box, and its op oval's, as [left, top, right, bottom] (rounded)."""
    out: list[float] = []
    for key in (f"v{i}", f"o{i}") if has_op else (f"v{i}",):
        (x, y), (w, h) = pos[key], sizes[key]
        out.extend(round(c, 1) for c in (x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return out


def _short_name(name: str, limit: int = 28) -> str:
    """A name as it fits in a box (the panel and the tooltip show it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _oval_text(ex: Explanation, i: int) -> str:
    """What node i's operation oval says: the op's symbol, with its constant where it has one
    ('**3' for x**3, '2**x' for 2**x, where the graph drawing's '^2' would read as a square)."""
    if ex.ops[i] == "rpow":
        return f"{_constant(ex.args[i])}**x"
    if ex.ops[i] == "powc":
        return f"**{_constant(ex.args[i])}"
    return _pretty(ex.op_symbols[i])


def _pretty(symbol: str) -> str:
    """An op's symbol as typeset maths: '*' as a times sign, '-' as a minus sign."""
    return {"*": "\u00d7", "-": "\u2212", "neg": "\u2212x"}.get(symbol, symbol)


def _edge(x1, y1, x2, y2, eid, node, source, off) -> str:
    mid = (x1 + x2) / 2
    return (
        f'<path class="edge{off}" id="{eid}" data-node="{node}" data-src="{source}" '
        f'd="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
        'marker-end="url(#arrow)"/>'
    )


def step_view_markup(
    svg: str = "", *, steps: int = 0, root: str = "", engine: str = "", legend: str | None = None
) -> str:
    """The step-through view's markup (controls, graph, side panel), for a page to include
    once and ``bpStepThrough.mount(D)`` (explain.js) to run. ``svg`` is the drawing from
    view_of(), or empty when the script gets it from ``D.svg`` instead; ``steps``, ``root``
    and ``engine`` (step count, output name, layout engine) are then filled in from ``D``.
    ``legend`` replaces the backward pass's "How to read this page" (forward mode's)."""
    esc = html.escape
    root = esc(_ref(root)) if root else ""
    if legend is None:
        legend = REVERSE_LEGEND.format(root=root)
    return STEP_VIEW.format(svg=svg, steps=int(steps), engine=esc(engine), legend=legend)


STEP_VIEW = """<div class="bp-stepview" id="bp-view">
<nav id="controls" aria-label="step controls">
  <button id="bp-first" title="first step (Home)" aria-label="first step">&#x00AB; First</button>
  <button id="bp-prev" title="previous step (left arrow)" aria-label="previous step">&#x25C0;
  Prev</button>
  <button id="bp-play" title="play or pause (space)" aria-label="play">&#x25B6; Play</button>
  <button id="bp-next" title="next step (right arrow)" aria-label="next step">Next
  &#x25B6;</button>
  <button id="bp-last" title="last step (End)" aria-label="last step">Last &#x00BB;</button>
  <input id="bp-slider" type="range" min="0" max="{steps}" value="0" step="1"
   aria-label="step">
  <span id="bp-counter" aria-live="polite">step 0 / {steps}</span>
  <select id="bp-speed" aria-label="playback speed" title="playback speed">
    <option value="2000">slow</option><option value="1000" selected>normal</option>
    <option value="400">fast</option><option value="60">very fast</option>
  </select>
  <span class="spacer"></span>
  <input id="bp-search" type="search" placeholder="find a node by name" aria-label="find a node">
  <span id="bp-found"></span>
  <label title="hide everything but the current step and its neighbours">
  <input id="bp-near" type="checkbox"> neighbourhood only</label>
  <label title="keep the current step in view"><input id="bp-follow" type="checkbox" checked>
  follow</label>
</nav>
<main>
  <section id="graph" aria-label="computation graph">
    <div class="zoombar">
      <button id="bp-fit" title="show the whole graph">fit</button>
      <button id="bp-zoomin" title="zoom in" aria-label="zoom in">+</button>
      <button id="bp-zoomout" title="zoom out" aria-label="zoom out">&#x2212;</button>
    </div>
    <svg id="bp-svg" xmlns="http://www.w3.org/2000/svg"
     font-family="Helvetica, Arial, sans-serif" font-size="12">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"
       markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
       <path d="M0,0 L10,5 L0,10 z"/></marker>
      </defs>
      <g id="bp-world">
{svg}
      </g>
    </svg>
    <div class="hint">drag to pan &middot; scroll to zoom &middot; click a node for details
    &middot; <span id="bp-engine">layout: {engine}</span></div>
  </section>
  <aside id="panel">
    <section id="bp-step" aria-live="polite">
      <h2 id="bp-title"></h2>
      <div id="bp-lines"></div>
      <div id="bp-terms"></div>
    </section>
    <section id="bp-node" hidden></section>
{legend}  </aside>
</main>
</div>
"""

REVERSE_LEGEND = """    <details id="legend" open>
      <summary>How to read this page</summary>
      <ul>
        <li><span class="sw cur"></span> the node whose <code>_backward()</code> runs in this
        step</li>
        <li><span class="sw rec"></span> its inputs: the chain rule just added to their
        <code>grad</code></li>
        <li><span class="sw fin"></span> <code>grad</code> is final (nothing more will be
        added)</li>
        <li><span class="sw pen"></span> no gradient has reached it yet: <code>grad</code> is
        still 0</li>
      </ul>
      <p><b>data</b> is the value the forward pass computed. <b>grad</b> is the derivative of
      the output <span class="bp-rootname">{root}</span> with respect to that node: if the
      node's data grew by a small h, <span class="bp-rootname">{root}</span> would change by
      about grad &times; h.</p>
      <p>Arrows point forward, from inputs through an operation (oval) to its result.
      Gradients flow the other way: from the output back to the inputs, one node at a time,
      each node's grad complete before it is passed on (reverse topological order). Inputs
      (leaves) have no step of their own: their <code>_backward()</code> does nothing.</p>
      <p>Keys: &larr; &rarr; step, space plays, Home / End jump to the start / end.</p>
    </details>
"""

REVERSE_INTRO = """\
  <p class="sub">Watch backpropagation compute every gradient of {root}, one
  <code>_backward()</code> call at a time, in the order <code>{root}.backward()</code> uses.
  {nodes} nodes, {steps} steps.</p>
"""

PAGE = """<!DOCTYPE html>
<html lang="en" class="{page_class}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="backprop.explain">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
  <h1>{title}</h1>
{intro}</header>
{view}
<script type="application/json" id="bp-data">{payload}</script>
<script>{script}
bpStepThrough.mount(JSON.parse(document.getElementById("bp-data").textContent));
document.body.dataset.ready = "1";
</script>
</body>
</html>
"""


# ---- forward mode: explain(root, mode="forward", wrt=leaf) ----------------------------------
# One forward-mode sweep, node by node: every node's tangent d(node)/d(wrt), seeded with 1 at
# wrt and 0 at the other leaves, from its inputs' tangents in topological order. The numbers
# are autodiff._node_tangent's, the very terms jvp() adds, so the root's tangent is
# jvp(root, [wrt], [1.0]) bit for bit. The local derivatives shown are the same op rows'.

# the local-derivative sentences that speak of gradients flowing back, said the forward way
_FORWARD_WHY = {
    "add": "d(a + b)/da = d(a + b)/db = 1: a sum adds its inputs' tangents",
    "sub": "d(a \u2212 b)/da = 1 and d(a \u2212 b)/db = \u22121: a difference subtracts the "
    "second input's tangent from the first's",
    "neg": "d(\u2212x)/dx = \u22121: negation flips the tangent's sign",
    "relu": "ReLU's slope is 1 where its output is positive and 0 elsewhere, so it passes "
    "the tangent through or blocks it",
}


@dataclass(frozen=True)
class TangentTerm:
    """One input's term in a node's tangent: local derivative x that input's tangent."""

    node: int  # the input (index into ForwardExplanation.names)
    local: float  # d out / d input
    tangent: float | None  # the input's tangent; None: it does not depend on wrt (so 0)
    term: float | None  # as jvp computes it (None with tangent None: the term is 0)


@dataclass
class ForwardStep:
    """One step of the forward page: the seed, one node's tangent, or the summary."""

    kind: str  # 'seed', 'forward' or 'done'
    node: int | None  # the node whose tangent is computed (wrt for 'seed')
    title: str
    lines: list[str] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)  # the tangent, worked out
    sums: list[str] = field(default_factory=list)  # the summary's numbers
    terms: list[TangentTerm] = field(default_factory=list)
    tangent: float | None = None  # the node's tangent after this step


class ForwardExplanation(Explanation):
    """One forward-mode sweep of a graph, step by step, as explain(root, mode="forward",
    wrt=leaf) returns it: ``.tangents`` holds every node's d(node)/d(wrt) (``.tangent`` the
    root's, equal to ``jvp(root, [wrt], [1.0])``), ``.grads`` every node's gradient from one
    reverse sweep, for comparison, and ``.sweeps`` the forward sweeps that every gradient
    takes: one per leaf."""

    cell = "tangent"
    cell_start = "?"  # not computed yet

    def __init__(self, order, names, root_index, wrt_index, steps, tangents, grads, engine, title):
        super().__init__(order, names, root_index, 1.0, steps, grads, engine, title)
        self.wrt = wrt_index
        self.tangents: list[float] = tangents
        self.leaves = [i for i, v in enumerate(order) if v._fn is None]

    @property
    def tangent(self) -> float:
        """d root / d wrt: the tangent that reaches the root."""
        return self.tangents[self.root]

    @property
    def tangent_by_name(self) -> dict[str, float]:
        """Every node's tangent keyed by node name."""
        return dict(zip(self.names, self.tangents))

    @property
    def sweeps(self) -> int:
        """Forward sweeps for every gradient: one per leaf (reverse mode needs one in all)."""
        return len(self.leaves)

    @property
    def html(self) -> str:
        if self._html is None:
            self._html = _forward_page(self)
        return self._html

    def _progress(self) -> tuple[list[set[str]], list[int], list[int]]:
        n = len(self.names)
        shown: list[set[str]] = [{f"tangent {self.cell_start}"} for _ in range(n)]
        step_of = [-1] * n
        last_touch = [-1] * n  # a tangent is final once computed: the leaves' at the seed
        for i in self.leaves:
            last_touch[i] = 0
        for k, step in enumerate(self.steps):
            if step.kind == "forward":
                step_of[step.node] = last_touch[step.node] = k
        for i, t in enumerate(self.tangents):
            shown[i].add(f"tangent {fmt(t)}")
        return shown, step_of, last_touch

    def __repr__(self) -> str:
        return (
            f"<ForwardExplanation of the forward sweep for {self.names[self.wrt]!r} up to "
            f"{self.names[self.root]!r}: "
            f"{len(self.names)} nodes, {len(self.steps)} steps, 1 of {self.sweeps} sweeps>"
        )


def _explain_forward(root, wrt, grad, title, layout_engine, max_nodes) -> ForwardExplanation:
    if wrt is None:
        raise ValueError(
            "mode='forward' needs wrt=, the leaf whose tangent is seeded with 1 "
            "(for example explain(loss, mode='forward', wrt=w))"
        )
    if not isinstance(wrt, Value):
        raise TypeError(f"wrt must be a Value, a leaf of the graph, got {type(wrt).__name__}: "
                        f"{wrt!r:.60}")  # fmt: skip
    if _to_float(grad) != 1.0:
        raise ValueError(
            f"grad= seeds the reverse sweep; forward mode seeds wrt's tangent with 1, got "
            f"grad={grad!r}"
        )
    order = _order_within(root, max_nodes)
    position = {id(v): i for i, v in enumerate(order)}
    if id(wrt) not in position:
        raise ValueError(f"wrt={wrt!r:.60} is not in the graph of {root!r:.60}: root does not "
                         "depend on it, so its tangent there is 0")  # fmt: skip
    by_id = node_names(order)
    names = [by_id[id(v)] for v in order]
    w = position[id(wrt)]
    if wrt._fn is not None:
        raise ValueError(
            f"wrt must be a leaf (an input) of the graph, but {names[w]!r} is the result of "
            f"{wrt._fn.name}: pass one of the leaves it is computed from"
        )
    root_index = len(order) - 1
    steps, tangents = _forward_replay(order, names, root_index, w)
    leaves = [v for v in order if v._fn is None]
    reverse = autodiff.grad(root, order, allow_unused=True)  # one reverse sweep, to compare
    grads = [0.0 if g is None else g.data for g in reverse]
    steps.append(_forward_summary(names, root_index, w, tangents, grads, leaves, position))
    out, wname = _ref(names[root_index]), _ref(names[w])
    text = title or f"Forward mode: \u2202{out}/\u2202{wname}, one tangent at a time"
    return ForwardExplanation(
        order, names, root_index, w, steps, tangents, grads, layout_engine, text
    )


def _forward_replay(order, names, root, w) -> tuple[list[ForwardStep], list[float]]:
    """The sweep of jvp(root, [order[w]], [1.0]), one ForwardStep per node that has an op."""
    position = {id(v): i for i, v in enumerate(order)}
    wname = _ref(names[w])
    tangent: dict[int, float] = {id(order[w]): 1.0}  # as jvp seeds it; absent means 0
    others = sum(1 for v in order if v._fn is None) - 1
    seed_lines = [
        f"Forward mode follows one input: how does every node change when {wname} alone is "
        f"nudged? {wname} changes one for one with itself, so {wname}.tangent = "
        f"\u2202{wname}/\u2202{wname} = 1."
        + (
            f" The {others} other leaves do not move when {wname} does: their tangents are 0."
            if others > 1
            else " The other leaf does not move when it does: its tangent is 0."
            if others == 1
            else ""
        ),
        "Each following step takes one node, in the order the forward pass computed them "
        "(topological order), and computes its tangent from its inputs' tangents, which are "
        "already known: node.tangent = (local derivative) \u00d7 input.tangent + \u2026, one "
        "term per input.",
    ]
    steps = [
        ForwardStep(
            "seed",
            w,
            f"Seed the tangents: {wname}.tangent = 1"
            + (", every other leaf's 0" if others else ""),
            seed_lines,
            tangent=1.0,
        )
    ]
    for i, node in enumerate(order):
        fn = node._fn
        if fn is None:
            continue
        inputs = node._prev
        t, shares = autodiff._node_tangent(node, tangent, SCALAR, False)  # jvp's own terms
        if t is not None:
            tangent[id(node)] = t
        share_of = dict(shares)
        xs = [v.data for v in inputs]
        if fn.has_arg:
            xs.append(node._arg)
        locals_ = fn.backward(SCALAR, 1.0, node.data, *xs)
        explained = LOCAL_DERIVATIVES[fn.name]
        labels, values = _placeholders(node, names[i], names, position)
        me = _ref(names[i])
        why = _FORWARD_WHY.get(fn.name, explained.why)
        step = ForwardStep(
            "forward",
            i,
            f"{me}.tangent, from " + _fill(explained.computes, labels, values, False),
            [f"Local derivative: {why}."],
            tangent=0.0 if t is None else t,
        )
        symbolic, numeric, evaluated = [], [], []
        for k, (v, local) in enumerate(zip(inputs, locals_)):
            j = position[id(v)]
            tj = tangent.get(id(v))
            step.terms.append(TangentTerm(j, local, tj, share_of.get(k)))
            sym = _fill(explained.locals[k], labels, values, False)
            num = _fill(explained.locals[k], labels, values, True)
            if fn.name == "relu":
                sym = num = "1" if local else "0"
                sign = ">" if local else "\u2264"
                step.lines.append(
                    f"Here {me}.data = {fmt(node.data)} {sign} 0, so the local derivative is {sym}."
                )
            wrap = (lambda x: f"({x})") if " " in sym else (lambda x: x)
            shown_t = _factor(0.0 if tj is None else tj)
            symbolic.append(f"{wrap(sym)} \u00d7 {_ref(names[j])}.tangent")
            numeric.append(f"{wrap(num)} \u00d7 {shown_t}")
            evaluated.append(
                None if _same_number(num, local) else f"{_factor(local)} \u00d7 {shown_t}"
            )
        independent = [
            _ref(names[position[id(v)]]) for v in dict.fromkeys(inputs) if id(v) not in tangent
        ]
        if t is None:
            step.lines.append(
                f"None of its inputs depends on {wname}, so neither does {me}: {me}.tangent = 0."
            )
        elif independent:
            who = " and ".join(independent)
            verb = "does" if len(independent) == 1 else "do"
            step.lines.append(f"{who} {verb} not depend on {wname} (tangent 0): its term is 0.")
        step.lines.append("One term per input, local derivative \u00d7 that input's tangent:")
        # one row per stage of the sum (the page breaks the lines): names, numbers, terms
        rows = [f"{me}.tangent = " + " + ".join(symbolic), "= " + " + ".join(numeric)]
        if any(e is not None for e in evaluated):
            rows.append("= " + " + ".join(e or n for e, n in zip(evaluated, numeric)))
        if len(inputs) > 1:
            rows.append("= " + _sum_text([0.0 if x.term is None else x.term for x in step.terms]))
        rows[-1] += f" = {fmt(step.tangent)}"
        step.formulas.append("\n".join(rows))
        steps.append(step)
    tangents = [tangent.get(id(v), 0.0) for v in order]  # 0: does not depend on wrt
    return steps, tangents


def _factor(x: float) -> str:
    """A number as a factor of a product: bracketed when negative, so '2.0 × (−3.0)'."""
    text = fmt(x)
    return f"({text})" if text.startswith("-") else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _forward_summary(names, root, w, tangents, grads, leaves, position) -> ForwardStep:
    out, wname = _ref(names[root]), _ref(names[w])
    t, g = tangents[root], grads[w]
    n = len(leaves)
    lines = [
        f"The tangent that reached the output is the derivative of {out} with respect to "
        f"{wname}: nudge {wname} by a small h and {out} changes by about {fmt(t)} \u00d7 h.",
        f"backward() gets the same number, as {wname}.grad = {fmt(g)}"
        + ("." if _same_float(t, g) else " (equal up to rounding: it adds in another order)."),
        f"That took one forward sweep and gave one gradient. This graph has "
        f"{_plural(n, 'leaf').replace('leafs', 'leaves')}, so forward mode needs "
        f"{_plural(n, 'sweep')} like this one, each seeding another leaf's tangent with 1, to "
        f"get every gradient. Reverse mode, {out}.backward(), gets all {n} in 1 sweep: that "
        "is why training, one loss and many parameters, uses backpropagation.",
    ]
    sums = []
    for v in leaves[:12]:
        j = position[id(v)]
        mark = f"  \u2190 this sweep: {out}.tangent" if j == w else ""
        sums.append(f"{_ref(names[j])}.grad = {fmt(grads[j])}{mark}")
    if n > 12:
        lines.append(f"The first 12 of the {n} leaves' gradients from that one backward():")
    else:
        lines.append("Every leaf's gradient, from that one backward():")
    title = f"Done: {out}.tangent = {fmt(t)} = \u2202{out}/\u2202{wname}"
    return ForwardStep("done", None, title, lines, sums=sums, tangent=t)


def _forward_steps_data(ex: ForwardExplanation) -> list[dict]:
    """The steps as explain.js reads them; each forward step sets its node's tangent once:
    [node, before, after, before as shown ('?'), after as shown]."""
    out = []
    for s in ex.steps:
        if s.kind == "seed":
            changes = [
                [i, 0.0, _json_float(ex.tangents[i]), ex.cell_start, fmt(ex.tangents[i])]
                for i in ex.leaves
            ]
        elif s.kind == "forward":
            changes = [[s.node, 0.0, _json_float(s.tangent), ex.cell_start, fmt(s.tangent)]]
        else:
            changes = []
        out.append({
            "kind": s.kind,
            "node": s.node,
            "title": s.title,
            "lines": s.lines,
            "formulas": s.formulas,
            "sums": s.sums,
            "changes": changes,
        })  # fmt: skip
    return out


def _forward_page(ex: ForwardExplanation) -> str:
    esc = html.escape
    root, wrt = esc(_ref(ex.names[ex.root])), esc(_ref(ex.names[ex.wrt]))
    n = ex.sweeps
    intro = FORWARD_INTRO.format(
        root=root,
        wrt=wrt,
        nodes=len(ex.names),
        steps=len(ex.steps) - 1,
        leaves=_plural(n, "leaf").replace("leafs", "leaves"),
        sweeps=_plural(n, "sweep"),
    )
    extra = {"mode": "forward", "cell": ex.cell, "cellStart": ex.cell_start}
    legend = FORWARD_LEGEND.format(root=root, wrt=wrt)
    return _write_page(
        ex, extra, _forward_steps_data(ex), "bp-explain bp-forward", intro, legend=legend
    )


FORWARD_LEGEND = """    <details id="legend" open>
      <summary>How to read this page</summary>
      <ul>
        <li><span class="sw cur"></span> the node whose tangent this step computes</li>
        <li><span class="sw rec"></span> its inputs: their tangents, already known, go into
        it</li>
        <li><span class="sw fin"></span> tangent computed (it will not change)</li>
        <li><span class="sw pen"></span> not computed yet: <code>tangent ?</code></li>
        <li>a grey <code>tangent 0.0</code>: nudging {wrt} does not move that node</li>
      </ul>
      <p><b>data</b> is the value the forward pass computed. <b>tangent</b> is the derivative
      of that node with respect to <b>{wrt}</b>, &part;node/&part;{wrt}: if {wrt}
      alone grew by a small h, the node would change by about tangent &times; h. (Many texts
      write a tangent with a dot, &#x1E8B; for x, "x dot"; this page spells it out.)</p>
      <p>Arrows point forward, and tangents flow the same way: from the leaves
      ({wrt}.tangent = 1, every other leaf's 0) through each operation (oval) to the output,
      one node at a time, each from its inputs' tangents, in the order the forward pass
      computed them (topological order). The tangent at the output
      <span class="bp-rootname">{root}</span> is &part;{root}/&part;{wrt}, the number
      <code>backward()</code> puts in <code>{wrt}.grad</code>.</p>
      <p>Keys: &larr; &rarr; step, space plays, Home / End jump to the start / end.</p>
    </details>
"""

FORWARD_INTRO = """\
  <p class="sub">Watch forward-mode differentiation carry the derivative with respect to {wrt}
  from the leaves to the output {root}, one node at a time, in the order the forward pass
  computed them. {nodes} nodes, {steps} steps.</p>
  <p class="bp-sweeps" id="bp-sweeps">This graph has <b>{leaves}</b>: forward mode needs
  <b>{sweeps}</b> like this one to get every gradient (this one is for {wrt}); reverse mode,
  <code>{root}.backward()</code>, needs <b>1</b>.</p>
"""
