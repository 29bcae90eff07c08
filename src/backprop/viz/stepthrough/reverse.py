"""The reverse sweep: explain(root) copies the graph, seeds the copy's root with ``grad`` and
replays ``_backward()`` node by node in the order ``backward()`` uses (reverse of
``topological_order()``), recording every term it adds to an input's ``.grad``. So the page's
gradients are exactly those of a fresh ``backward()`` (all ``.grad`` starting at 0, as after
``zero_grad()``), and the user's graph, its ``.data`` and ``.grad``, is left untouched."""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field

from ...engine import Value, _to_float
from ...ops import SCALAR
from ..draw import node_names
from ..page import Page, fill
from .blocks import block_order, block_tree
from .view import _json_float, blocks_intro, write_page
from .wording import (
    LOCAL_DERIVATIVES,
    _fill,
    _placeholders,
    _ref,
    _same_float,
    _same_number,
    _sum_text,
    fmt,
)

MAX_NODES = 20000  # beyond this the page gets too heavy for a browser (tens of MB)


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


class Explanation(Page):
    """The backward pass of one graph, step by step: ``.save(path)`` writes the page, Jupyter
    displays it inline, and ``.steps``, ``.names`` and ``.grads`` hold the numbers."""

    cell = "grad"  # the word in each node's third cell, and what it shows before any step
    cell_start = "0.0"
    forward = False  # the steps run from the output back to the inputs

    def __init__(self, order, names, root_index, seed, steps, grads, engine, title) -> None:
        index = {id(v): i for i, v in enumerate(order)}
        self.values = [v.data for v in order]
        self.labels = [v.label for v in order]
        self.ops = [None if v._fn is None else v._fn.name for v in order]
        self.op_symbols = [v._op for v in order]
        self.inputs = [tuple(index[id(p)] for p in v._prev) for v in order]
        self.args = [v._arg for v in order]
        self.scopes = [getattr(v, "scope", "") or "" for v in order]
        self.names: list[str] = names
        self.root = root_index
        self.seed = seed
        self.steps: list[Step] = steps
        self.grads: list[float] = grads  # final, equal to a fresh backward() from the root
        self.layout_engine = engine
        self.title = title
        self._html: str | None = None
        self._blocks: tuple[list[int], list[dict]] | None = None

    @property
    def grad_by_name(self) -> dict[str, float]:
        """Final gradients keyed by node name."""
        return dict(zip(self.names, self.grads))

    def _render(self) -> str:
        return _page(self)

    def block_steps(self) -> tuple[list[int], list[dict]]:
        """The page's block-by-block view of the steps (see blocks.py): the indices into
        ``steps`` of the nodes' steps in the order the page takes them, and the blocks, from
        the scopes the nodes were made in (``backprop.scope``)."""
        if self._blocks is None:
            nodes = block_order(self.ops, self.inputs, self.scopes, forward=self.forward)
            kinds = ("backward", "forward")
            step_of = {s.node: k for k, s in enumerate(self.steps) if s.kind in kinds}
            tree = block_tree(nodes, self.scopes, self.inputs, self.root)
            self._blocks = ([step_of[i] for i in nodes], tree)
        return self._blocks

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


def explain_reverse(root: Value, grad, title, layout_engine, max_nodes) -> Explanation:
    """explain(root, grad) in reverse mode (see explain())."""
    seed = _to_float(grad)
    order = order_within(root, max_nodes)
    by_id = node_names(order)
    names = [by_id[id(v)] for v in order]
    copies = _copy_graph(order)
    root_index = len(order) - 1
    steps = _replay(copies, names, root_index, seed)
    grads = [c.grad for c in copies]
    text = title or f"The backward pass of {names[root_index]}"
    return Explanation(order, names, root_index, seed, steps, grads, layout_engine, text)


def order_within(root: Value, max_nodes: int) -> list[Value]:
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


def _replay(copies: list[Value], names: list[str], root: int, seed: float) -> list[Step]:
    """Run backward() on the copy as backward() itself does, recording each step's terms."""
    position = {id(c): i for i, c in enumerate(copies)}
    received: list[list[tuple[int, float]]] = [[] for _ in copies]  # (from step node, term)
    copies[root].grad += seed
    steps = [_seed_step(_ref(names[root]), root, seed)]
    for i in range(len(copies) - 1, -1, -1):  # reversed(topological_order())
        if copies[i]._fn is not None:  # a leaf's _backward() does nothing
            steps.append(_backward_step(copies, names, i, position, received))
    steps.append(_done_step(copies, names, root))
    return steps


def _seed_step(out_name: str, root: int, seed: float) -> Step:
    return Step(
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


def _backward_step(copies, names, i: int, position: dict, received: list) -> Step:
    """Node i's _backward(), run on the copy, with one chain-rule line per term it adds."""
    node = copies[i]
    fn = node._fn
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
        line = f"{who}.grad += {wrap(symbolic)} \u00d7 {me}.grad = {wrap(numeric)} \u00d7 {fmt(g)}"
        if not _same_number(numeric, local):
            line += f" = {fmt(local)} \u00d7 {fmt(g)}"
        line += f" = {fmt(term)}"
        received[j].append((i, term))
        step.contributions.append(Contribution(j, local, term, before, after, line))
    _trust_backward(step, copies)
    step.sums.extend(_sum_lines(step, copies, names, received))
    return step


def _trust_backward(step: Step, copies) -> None:
    """Trust _backward()'s sums over ours (they agree today)."""
    for k, c in enumerate(step.contributions):
        if k == max(m for m, d in enumerate(step.contributions) if d.node == c.node):
            actual = copies[c.node].grad
            if not _same_float(actual, c.after):  # pragma: no cover - they agree today
                step.contributions[k] = Contribution(
                    c.node, c.local, actual - c.before, c.before, actual, c.text
                )


def _sum_lines(step: Step, copies, names, received) -> list[str]:
    """For each input used more than once so far: its grad as the sum of one term per use."""
    lines = []
    for j in dict.fromkeys(c.node for c in step.contributions):
        got = received[j]
        if len(got) > 1:
            parts = _sum_text([t for _, t in got])
            by = Counter(_ref(names[s]) for s, _ in got)
            if len(by) <= 4:
                uses = ", ".join(f"{k} by {u}" for u, k in by.items())
            else:
                uses = f"by {len(by)} different nodes"
            lines.append(
                f"{_ref(names[j])} is used {len(got)} times ({uses}), so its "
                f"gradient is the sum of one term per use: {_ref(names[j])}.grad = {parts} "
                f"= {fmt(copies[j].grad)}"
            )
    return lines


def _done_step(copies, names, root: int) -> Step:
    out_name = _ref(names[root])
    leaves = [i for i, c in enumerate(copies) if c._fn is None and i != root]
    summary = [
        f"Every gradient is now final. Each one says how {out_name} responds to a small nudge h "
        f"of that node: {out_name} changes by about grad \u00d7 h.",
    ]
    sums = [f"{_ref(names[i])}.grad = {fmt(copies[i].grad)}" for i in leaves[:12]]
    if len(leaves) > 12:
        summary.append(f"The first 12 of {len(leaves)} inputs (click a node to see its grad):")
    return Step("done", None, "Done: the backward pass is complete", summary, sums)


# ---- the page -------------------------------------------------------------------------------


def _page(ex: Explanation) -> str:
    """The whole page: CSS, an SVG of the graph, the steps as JSON, and the script."""
    root = html.escape(_ref(ex.names[ex.root]))
    intro = fill(
        "explain_intro.html",
        ROOT=root,
        NODES=str(len(ex.names)),
        STEPS=str(len(ex.steps) - 1),
        BLOCKS=blocks_intro(ex),
    )
    return write_page(ex, {}, steps_data(ex), "bp-explain", intro, root=ex.names[ex.root])


def steps_data(ex: Explanation) -> list[dict]:
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
