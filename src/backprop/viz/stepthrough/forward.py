"""The forward sweep: explain(root, mode="forward", wrt=leaf) steps through one forward-mode
sweep, node by node: every node's tangent d(node)/d(wrt), seeded with 1 at wrt and 0 at the
other leaves, from its inputs' tangents in topological order. The numbers are
autodiff.forward._node_tangent's, the very terms jvp() adds, so the root's tangent is
jvp(root, [wrt], [1.0]) bit for bit. The local derivatives shown are the same op rows'."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ...autodiff import forward as jvp_sweep
from ...autodiff import grad as reverse_grad
from ...engine import Value, _to_float
from ...ops import SCALAR
from ..draw import node_names
from ..page import fill
from .reverse import Explanation, order_within
from .view import _json_float, blocks_intro, write_page
from .wording import (
    _FORWARD_WHY,
    LOCAL_DERIVATIVES,
    _factor,
    _fill,
    _placeholders,
    _plural,
    _ref,
    _same_float,
    _same_number,
    _sum_text,
    fmt,
)


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
    forward = True  # the steps run from the inputs to the output
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

    def _render(self) -> str:
        return _forward_page(self)

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


def explain_forward(root, wrt, grad, title, layout_engine, max_nodes) -> ForwardExplanation:
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
    order = order_within(root, max_nodes)
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
    reverse = reverse_grad(root, order, allow_unused=True)  # one reverse sweep, to compare
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
    tangent: dict[int, float] = {id(order[w]): 1.0}  # as jvp seeds it; absent means 0
    others = sum(1 for v in order if v._fn is None) - 1
    steps = [_forward_seed(_ref(names[w]), w, others)]
    for i, node in enumerate(order):
        if node._fn is not None:
            steps.append(_forward_step(node, i, names, w, position, tangent))
    tangents = [tangent.get(id(v), 0.0) for v in order]  # 0: does not depend on wrt
    return steps, tangents


def _forward_seed(wname: str, w: int, others: int) -> ForwardStep:
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
    return ForwardStep(
        "seed",
        w,
        f"Seed the tangents: {wname}.tangent = 1" + (", every other leaf's 0" if others else ""),
        seed_lines,
        tangent=1.0,
    )


def _forward_step(node, i: int, names, w: int, position: dict, tangent: dict) -> ForwardStep:
    """Node i's tangent from its inputs' (jvp's own terms), worked out in words and numbers;
    records it in ``tangent``."""
    fn = node._fn
    inputs = node._prev
    wname = _ref(names[w])
    t, shares = jvp_sweep._node_tangent(node, tangent, SCALAR, False)  # jvp's own terms
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
        evaluated.append(None if _same_number(num, local) else f"{_factor(local)} \u00d7 {shown_t}")
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
    step.formulas.append(_tangent_rows(me, step, symbolic, numeric, evaluated, len(inputs)))
    return step


def _tangent_rows(me, step, symbolic, numeric, evaluated, n_inputs) -> str:
    """One row per stage of the sum (the page breaks the lines): names, numbers, terms."""
    rows = [f"{me}.tangent = " + " + ".join(symbolic), "= " + " + ".join(numeric)]
    if any(e is not None for e in evaluated):
        rows.append("= " + " + ".join(e or n for e, n in zip(evaluated, numeric)))
    if n_inputs > 1:
        rows.append("= " + _sum_text([0.0 if x.term is None else x.term for x in step.terms]))
    rows[-1] += f" = {fmt(step.tangent)}"
    return "\n".join(rows)


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
    intro = fill(
        "explain_forward_intro.html",
        ROOT=root,
        WRT=wrt,
        NODES=str(len(ex.names)),
        STEPS=str(len(ex.steps) - 1),
        LEAVES=_plural(n, "leaf").replace("leafs", "leaves"),
        SWEEPS=_plural(n, "sweep"),
        BLOCKS=blocks_intro(ex),
    )
    extra = {"mode": "forward", "cell": ex.cell, "cellStart": ex.cell_start}
    legend = fill("explain_forward_legend.html", ROOT=root, WRT=wrt)
    return write_page(
        ex, extra, _forward_steps_data(ex), "bp-explain bp-forward", intro, legend=legend
    )
