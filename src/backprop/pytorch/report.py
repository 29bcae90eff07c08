"""check_torch's report: each node's numbers beside PyTorch's (``NodeCheck``), the first
disagreement and the op at fault (``Mismatch``), and the whole table (``TorchCheck``)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from ..engine import Value

__all__ = ["TorchCheck", "NodeCheck", "Mismatch", "ulps_apart"]


def ulps_apart(a: float, b: float, scale: float = 0.0) -> float:
    """|a - b| in units in the last place of max(|a|, |b|, scale); 0 when equal or both nan,
    inf when only one is nan or infinite."""
    if a == b or (a != a and b != b):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / math.ulp(max(abs(a), abs(b), scale))


@dataclass
class NodeCheck:
    """One node of the graph, backprop's numbers next to PyTorch's.

    ``data`` is backprop's value and ``torch_data`` torch's op applied to backprop's values of
    the node's inputs; ``grad`` is d(root)/d(node) in backprop and ``torch_grad`` the sum of what
    torch's backward rules of its consumers send it (from backprop's grads of those consumers).
    ``grad_ulps`` is the largest difference among those contributions, each in ulps of itself.
    """

    index: int
    node: Value = field(repr=False)
    label: str
    op: str
    data: float
    torch_data: float
    data_ulps: float
    grad: float
    torch_grad: float
    grad_ulps: float
    stale: bool = False  # node.data is not what its op gives from its inputs' data now


@dataclass
class Mismatch:
    """Where backprop and PyTorch first disagree, and which op's rule is at fault."""

    node: Value = field(repr=False)
    index: int
    label: str
    op: str
    what: str  # 'data' or 'grad'
    ours: float
    theirs: float
    ulps: float
    source: Value = field(repr=False)  # the node whose op's rule gave the wrong number
    source_index: int
    source_label: str
    source_op: str
    sent: float | None = None  # grad: what the source's backward rule sent, here and in torch
    torch_sent: float | None = None

    def __str__(self) -> str:
        node = _describe(self.label, self.op, self.index)
        if self.what == "data":
            return (
                f"{node}: data {self.ours!r} here, {self.theirs!r} in PyTorch "
                f"({_ulps_text(self.ulps)} apart): the forward rule of {self.op!r} disagrees"
            )
        source = _describe(self.source_label, self.source_op, self.source_index)
        return (
            f"{node}: grad {self.ours!r} here, {self.theirs!r} in PyTorch "
            f"({_ulps_text(self.ulps)} apart): the backward rule of {self.source_op!r} at "
            f"{source} sent it {self.sent!r} where PyTorch's sends {self.torch_sent!r}"
        )


def _describe(label: str, op: str, index: int) -> str:
    kind = f"{op}, " if op else "leaf, "
    return f"node {label!r} ({kind}#{index})" if label else f"node #{index} ({kind.rstrip(', ')})"


def _ulps_text(u: float) -> str:
    if math.isinf(u):
        return "infinitely many ulps"
    if u == 1:
        return "1 ulp"
    return f"{u:.3g} ulps" if u >= 1e4 else f"{u:g} ulps"


@dataclass
class TorchCheck:
    """check_torch's report: every node (``rows``, in topological order), ``ok``,
    ``first_mismatch`` (None or a Mismatch) and ``mismatches``. ``print(report)`` shows a table;
    Jupyter shows it as HTML."""

    rows: list[NodeCheck]
    tolerance: float
    first_mismatch: Mismatch | None
    mismatches: list[NodeCheck]

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    @property
    def max_ulps(self) -> float:
        return max((max(r.data_ulps, r.grad_ulps) for r in self.rows), default=0.0)

    @property
    def stale(self) -> list[NodeCheck]:
        return [r for r in self.rows if r.stale]

    def __bool__(self) -> bool:
        return self.ok

    def __len__(self) -> int:
        return len(self.rows)

    def summary(self) -> str:
        n = len(self.rows)
        if self.ok:
            text = (
                f"check_torch: all {n} nodes agree with PyTorch (float64) within "
                f"{self.tolerance:g} ulps; the largest difference is {_ulps_text(self.max_ulps)}"
            )
        else:
            text = (
                f"check_torch: {len(self.mismatches)} of {n} nodes disagree with PyTorch beyond "
                f"{self.tolerance:g} ulps. First: {self.first_mismatch}"
            )
        if self.stale:
            text += (
                f"\nnote: {len(self.stale)} nodes' .data are not what their ops give from their "
                "inputs now (a leaf changed after the graph was built, e.g. by an optimizer step): "
                "the check replayed the graph at the leaves' current values"
            )
        return text

    def _shown(self, limit: int) -> list[NodeCheck | None]:
        """The rows to show: all of them, or the first and last ones and every mismatch
        (None marks a gap)."""
        if len(self.rows) <= limit:
            return list(self.rows)
        keep = set(range(limit // 2)) | set(range(len(self.rows) - limit // 2, len(self.rows)))
        keep |= {r.index for r in self.mismatches[:limit]}
        shown: list[NodeCheck | None] = []
        for i in sorted(keep):
            if shown and shown[-1] is not None and shown[-1].index != i - 1:
                shown.append(None)
            shown.append(self.rows[i])
        return shown

    def table(self, limit: int | None = 40) -> str:
        """The report as a text table, one node a line (past ``limit`` nodes: the first and last
        ones and every mismatch)."""
        head = ("#", "node", "op", "data", "torch", "ulps", "grad", "torch", "ulps", "")
        lines = [head]
        for r in self._shown(limit or len(self.rows)):
            if r is None:
                lines.append(("...",) + ("",) * 9)
                continue
            bad = max(r.data_ulps, r.grad_ulps) > self.tolerance
            lines.append(
                (
                    str(r.index),
                    _printable(r.label or ""),
                    r.op or "leaf",
                    f"{r.data:.6g}",
                    f"{r.torch_data:.6g}",
                    _short_ulps(r.data_ulps),
                    f"{r.grad:.6g}",
                    f"{r.torch_grad:.6g}",
                    _short_ulps(r.grad_ulps),
                    "<- disagrees" if bad else ("stale" if r.stale else ""),
                )
            )
        widths = [max(len(row[k]) for row in lines) for k in range(len(head))]
        right = {0, 3, 4, 5, 6, 7, 8}
        text = [
            "  ".join(
                c.rjust(w) if k in right else c.ljust(w)
                for k, (c, w) in enumerate(zip(row, widths))
            ).rstrip()
            for row in lines
        ]
        return "\n".join(text)

    def __str__(self) -> str:
        return f"{self.summary()}\n{self.table()}"

    def __repr__(self) -> str:
        return (
            f"TorchCheck({len(self.rows)} nodes, ok={self.ok}, "
            f"max_ulps={self.max_ulps:g}, tolerance={self.tolerance:g})"
        )

    def _repr_html_(self, limit: int = 200) -> str:
        e = html.escape
        colour = "#1a7f37" if self.ok else "#cf222e"
        out = [
            '<div class="backprop-check-torch">',
            f'<p style="color:{colour};font-weight:bold">{e(self.summary())}</p>',
            '<table style="font-family:monospace;border-collapse:collapse">',
            "<thead><tr>"
            + "".join(
                f'<th style="padding:2px 8px;text-align:right">{e(h)}</th>'
                for h in ("#", "node", "op", "data", "torch", "ulps", "grad", "torch", "ulps")
            )
            + "</tr></thead><tbody>",
        ]
        for r in self._shown(limit):
            if r is None:
                out.append('<tr><td colspan="9" style="text-align:center">&hellip;</td></tr>')
                continue
            bad = max(r.data_ulps, r.grad_ulps) > self.tolerance
            style = ' style="background:#ffebe9"' if bad else ""
            cells = (
                r.index,
                r.label,
                r.op or "leaf",
                f"{r.data:.6g}",
                f"{r.torch_data:.6g}",
                _short_ulps(r.data_ulps),
                f"{r.grad:.6g}",
                f"{r.torch_grad:.6g}",
                _short_ulps(r.grad_ulps),
            )
            out.append(
                f"<tr{style}>"
                + "".join(
                    f'<td style="padding:2px 8px;text-align:right">{e(str(c))}</td>' for c in cells
                )
                + "</tr>"
            )
        out.append("</tbody></table></div>")
        return "\n".join(out)


def _printable(text: str) -> str:
    """A label as one cell of the text table: a newline (or any unprintable character) as its
    escape, so that a label cannot break or forge the table's lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short_ulps(u: float) -> str:
    if math.isinf(u):
        return "inf"
    return f"{u:.3g}" if u >= 1e4 else f"{u:g}"
