"""explain(root): a self-contained HTML page that steps through the backward pass from root
(or, with mode="forward", through the tangents of one forward-mode sweep).

The numbers come from Python, not from the page: explain() copies the graph, seeds the copy's
root with ``grad`` and replays ``_backward()`` node by node in the order ``backward()`` uses
(reverse of ``topological_order()``), recording every term it adds to an input's ``.grad``. So
the page's gradients are exactly those of a fresh ``backward()`` (all ``.grad`` starting at 0,
as after ``zero_grad()``), and the user's graph, its ``.data`` and ``.grad``, is left untouched.

The package, one module per part:
- ``wording``: ``fmt`` and ``LOCAL_DERIVATIVES``, every op's local derivative in words;
- ``reverse``: the backward pass replayed (``Explanation``, ``Step``, ``Contribution``);
- ``forward``: one forward-mode sweep (``ForwardExplanation``, ``ForwardStep``, ``TangentTerm``);
- ``view``: the drawing (``view_of``), the view's markup and the page, from the HTML template
  asset files ``explain*.html`` (filled by ``viz.page.fill``).
"""

from __future__ import annotations

from ...engine import Value
from ..layout import check_engine
from .forward import ForwardExplanation, ForwardStep, TangentTerm, explain_forward
from .reverse import MAX_NODES, Contribution, Explanation, Step, explain_reverse
from .view import _json_float, step_view_markup, view_of
from .wording import (
    LOCAL_DERIVATIVES,
    LocalDerivative,
    _constant,
    _fill,
    _ref,
    _same_float,
    _same_number,
    _sum_text,
    fmt,
)

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
# the helpers other modules and tests import from here (explorer.py: _json_float)
_PRIVATE = (_json_float, _constant, _fill, _ref, _same_float, _same_number, _sum_text)
_KEPT = (LocalDerivative,)


def explain(
    root: Value,
    grad: float = 1.0,
    *,
    mode: str = "reverse",
    wrt: Value | None = None,
    title: str | None = None,
    layout_engine: str = "auto",
    max_nodes: int = MAX_NODES,
    blocks: bool = True,
) -> Explanation:
    """Step through ``root.backward(grad)``: returns an Explanation that displays inline in
    Jupyter and writes a self-contained page with ``.save("page.html")``.

    The gradients shown are those of a fresh ``backward()`` (every ``.grad`` starting at 0, as
    after ``zero_grad()``), computed by replaying ``_backward()`` on a copy of the graph: the
    graph you pass in, its ``.data`` and its ``.grad``, is not changed.

    With ``mode="forward"`` and ``wrt=`` a leaf of the graph, it steps through one forward-mode
    sweep instead: every node's tangent d(node)/d(wrt), from the inputs to root, computed as
    ``jvp(root, [wrt], [1.0])`` computes it (a ForwardExplanation).

    A graph built in ``backprop.scope`` blocks (``MLP``, ``Layer`` and ``Neuron`` open their
    own) is stepped through block by block: the page opens at the top level of the scopes,
    one step per block, and a block opens in place; ``blocks=False`` gives the flat page, one
    step per node. The numbers are the same either way, bit for bit.

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
    if not isinstance(blocks, bool):
        raise TypeError(f"blocks must be True or False, got {blocks!r:.60}")
    check_engine(layout_engine)  # now, not when the page is first drawn
    if mode == "forward":
        ex = explain_forward(root, wrt, grad, title, layout_engine, max_nodes)
    elif wrt is not None:
        raise ValueError(
            f"wrt= is for mode='forward' (one sweep per leaf); reverse mode gets every "
            f"gradient in one sweep and takes no wrt, got wrt={wrt!r:.60}"
        )
    else:
        ex = explain_reverse(root, grad, title, layout_engine, max_nodes)
    if not blocks:  # the flat page: no scopes, so one level of single steps
        ex.scopes = [""] * len(ex.names)
    return ex
