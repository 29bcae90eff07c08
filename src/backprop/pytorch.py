"""From backprop to PyTorch and back: to_torch, from_torch, check_torch, and the export formats.

- ``to_torch(mlp)`` gives the equivalent ``torch.nn.Sequential`` (float64 by default);
  ``from_torch(module)`` reads such a Sequential back into an ``MLP``.
- ``check_torch(root)`` replays a graph of Values node by node with torch float64 0-d tensors
  and compares every node's data and grad, in ulps: a ``TorchCheck`` report.
- ``python_script``, ``safetensors_bytes`` and ``onnx_bytes`` are what ``backprop export``
  writes (``export`` writes them to a file).

torch, safetensors and onnx are optional (``pip install 'backprop[torch]'``) and imported
inside the functions that need them, so that ``import backprop`` never pays for torch.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Value
from .nn import MLP
from .ops import SCALAR

if TYPE_CHECKING:
    import torch

__all__ = [
    "to_torch",
    "from_torch",
    "check_torch",
    "TorchCheck",
    "NodeCheck",
    "Mismatch",
    "MissingDependency",
    "require",
    "check_device",
    "export",
    "FORMATS",
    "python_script",
    "safetensors_bytes",
    "onnx_bytes",
    "load_safetensors",
    "ulps_apart",
    "INSTALL",
]

INSTALL = "python3 -m pip install 'backprop[torch]'"
# what each optional package is installed as (torch pinned: an unpinned torch is a CUDA build)
_PINS = {"torch": "torch==2.13.0", "safetensors": "safetensors", "onnx": "onnx"}


class MissingDependency(ImportError):
    """An optional package (torch, safetensors, onnx) is not installed; the message says
    exactly what to install."""


def require(what: str, *packages: str) -> None:
    """Raise MissingDependency, naming the install command, unless every package imports."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        pins = " ".join(_PINS.get(p, p) for p in missing)
        raise MissingDependency(
            f"{what} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'}"
            f" not installed: install with {INSTALL} (or: python3 -m pip install {pins})"
        )


def _torch(what: str):
    require(what, "torch")
    import torch

    return torch


def check_device(device: Any):
    """A torch.device that holds float64 tensors, or a ValueError saying why not."""
    torch = _torch("running on a torch device")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"unknown device {device!r}: use 'cpu', or 'cuda' (or 'cuda:N') for a GPU"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r}: CUDA is not available here (this torch is "
            f"{torch.__version__}, and it sees no GPU): use device='cpu'"
        )
    try:
        torch.zeros(1, dtype=torch.float64, device=dev)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} cannot hold float64 tensors: {e}") from None
    return dev


def _dtype(torch, dtype: Any):
    """torch.float64 or torch.float32, from a torch dtype or its name."""
    names = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32}
    names["float"] = torch.float32
    if isinstance(dtype, str) and dtype in names:
        return names[dtype]
    if dtype in (torch.float64, torch.float32):
        return dtype
    raise ValueError(f"dtype must be 'float64' or 'float32' (or the torch dtype), got {dtype!r}")


# ---- models -----------------------------------------------------------------------------------

# backprop's activation -> the torch module class's name (linear: no module at all)
_TORCH_ACTIVATION = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid", "linear": None}
_FROM_TORCH_ACTIVATION = {"Tanh": "tanh", "ReLU": "relu", "Sigmoid": "sigmoid", "Identity": None}


def _check_mlp(model: object, what: str) -> MLP:
    if not isinstance(model, MLP):
        raise TypeError(f"{what} converts an MLP, got {type(model).__name__}: {model!r:.60}")
    return model


def _layer_weights(model: MLP) -> list[tuple[list[list[float]], list[float]]]:
    """Each layer as (weight rows, biases): row j of a torch Linear's weight is neuron j's w."""
    return [
        ([[w.data for w in n.w] for n in layer.neurons], [n.b.data for n in layer.neurons])
        for layer in model.layers
    ]


def to_torch(model: MLP, dtype: Any = "float64", device: Any = "cpu") -> torch.nn.Sequential:
    """The MLP as an equivalent ``torch.nn.Sequential`` with the same weights (a copy).

    Each layer becomes a ``Linear`` followed by its activation (``Tanh``, ``ReLU``,
    ``Sigmoid``; nothing for 'linear'), so ``MLP(3, [4, 4, 1])`` becomes
    ``Sequential(Linear(3, 4), Tanh(), Linear(4, 4), Tanh(), Linear(4, 1), Tanh())``.

    Shapes: backprop's model takes one sample (a list of nin numbers) and gives a Value, or a
    list of Values when the last layer has several neurons. The torch module takes a batch,
    a tensor of shape (batch, nin), and gives (batch, nout): with one output neuron that is
    (batch, 1), so compare it with targets of shape (batch,) after ``.squeeze(-1)`` (else
    ``out - y`` broadcasts to (batch, batch)). A single sample of shape (nin,) gives (nout,).

    ``dtype`` is 'float64' (backprop's own) or 'float32'; ``device`` is where the copy lives.
    """
    model = _check_mlp(model, "to_torch")
    torch = _torch("to_torch")
    dtype = _dtype(torch, dtype)
    device = check_device(device)
    modules = []
    for (rows, biases), act in zip(_layer_weights(model), model.activations):
        linear = torch.nn.Linear(len(rows[0]), len(rows), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(rows, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(biases, dtype=torch.float64))
        modules.append(linear)
        if _TORCH_ACTIVATION[act] is not None:
            modules.append(getattr(torch.nn, _TORCH_ACTIVATION[act])())
    return torch.nn.Sequential(*modules).to(device=device, dtype=dtype)


def _flatten(module, torch, name: str = "") -> list[tuple[str, Any]]:
    """The layers of a (possibly nested) Sequential, with their dotted names."""
    if isinstance(module, torch.nn.Sequential):
        out = []
        for child_name, child in module.named_children():
            out += _flatten(child, torch, f"{name}.{child_name}" if name else child_name)
        return out
    return [(name or type(module).__name__, module)]


def from_torch(module: torch.nn.Module) -> MLP:
    """The MLP with the weights of a torch module of MLP shape (a copy, in float64).

    The module is a ``torch.nn.Sequential`` (nested ones are read through) of ``Linear``
    layers with biases, each followed by at most one ``Tanh``, ``ReLU``, ``Sigmoid`` or
    ``Identity``, or a single ``Linear``. Anything else (convolutions, batch norm, dropout, a
    module whose own ``forward()`` combines its layers) is refused with a ValueError naming the
    first unsupported layer.
    """
    torch = _torch("from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"from_torch needs a torch.nn.Module, got {type(module).__name__}: {module!r:.60}"
        )
    if not isinstance(module, (torch.nn.Sequential, torch.nn.Linear)):
        raise ValueError(
            f"from_torch reads a torch.nn.Sequential of Linear layers and activations, got a "
            f"{type(module).__name__}: its own forward() decides how its layers combine, which "
            "cannot be read from it. Put its layers in a torch.nn.Sequential"
        )
    layers = _flatten(module, torch)
    linears: list[tuple[str, Any]] = []
    activations: list[str] = []
    named_activation: list[bool] = []  # did a module (not the default 'linear') set it?
    for name, layer in layers:
        kind = type(layer).__name__
        if isinstance(layer, torch.nn.Linear):
            if layer.bias is None:
                raise ValueError(
                    f"from_torch: layer {name!r} (Linear without bias) is not supported: every "
                    "backprop neuron has a bias (build the Linear with bias=True)"
                )
            if linears and layer.in_features != linears[-1][1].out_features:
                raise ValueError(
                    f"from_torch: layer {name!r} takes {layer.in_features} inputs, but the layer "
                    f"before it, {linears[-1][0]!r}, gives {linears[-1][1].out_features}"
                )
            linears.append((name, layer))
            activations.append("linear")
            named_activation.append(False)
        elif kind in _FROM_TORCH_ACTIVATION and type(layer) is getattr(torch.nn, kind):
            if not linears:
                raise ValueError(
                    f"from_torch: layer {name!r} ({kind}) comes before any Linear layer: a "
                    "backprop MLP starts with a layer of neurons"
                )
            act = _FROM_TORCH_ACTIVATION[kind]
            if act is None:
                continue  # Identity: the linear activation
            if named_activation[-1]:
                raise ValueError(
                    f"from_torch: layer {name!r} ({kind}) is a second activation after "
                    f"{linears[-1][0]!r}: a backprop layer applies one"
                )
            activations[-1] = act
            named_activation[-1] = True
        else:
            raise ValueError(
                f"from_torch: layer {name!r} ({kind}) is not supported: a backprop MLP is Linear "
                "layers, each followed by Tanh, ReLU, Sigmoid or nothing (linear)"
            )
    if not linears:
        raise ValueError("from_torch: the module has no Linear layer")
    weights = []
    for name, linear in linears:
        w = linear.weight.detach().to(device="cpu", dtype=torch.float64)
        b = linear.bias.detach().to(device="cpu", dtype=torch.float64)
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise ValueError(f"from_torch: layer {name!r} holds a weight that is nan or infinite")
        weights.append((w.tolist(), b.tolist()))
    nin = linears[0][1].in_features
    # seed=0: the initial weights are overwritten, and the user's global random is left alone
    model = MLP(nin, [lin.out_features for _, lin in linears], activation=activations, seed=0)
    for layer, (rows, biases) in zip(model.layers, weights):
        for neuron, row, bias in zip(layer.neurons, rows, biases):
            for w, x in zip(neuron.w, row):
                w.data = x
            neuron.b.data = bias
    return model


# ---- check_torch: the graph replayed node by node in torch ------------------------------------


def _torch_twins(torch) -> dict[str, tuple[Callable, Callable | None]]:
    """For every op of ops.OPS, torch's forward and, where torch's derivative reads the op's
    result, torch's backward evaluated at backprop's result (None: autograd, at backprop's
    inputs). Evaluating at backprop's own values means a difference is the op's own, never a
    forward difference carried into the backward: near tanh's saturation a 1-ulp difference in
    tanh(x) is thousands of ulps in 1 - tanh(x)^2."""
    aten = torch.ops.aten

    def exponent_grad(g, out, base, exponent):
        # derivatives.yaml, pow_backward_exponent: grad * (0 if base == 0 and exp >= 0 else
        # result * log(base))
        zero = (base == 0.0) & (exponent >= 0.0)
        return g * torch.where(zero, torch.zeros_like(out), out * torch.log(base))

    def pow_tensor(g, out, a, b):
        base_grad = torch.where(b == 0.0, torch.zeros_like(g), g * (b * torch.pow(a, b - 1.0)))
        return (base_grad, exponent_grad(g, out, a, b))

    return {
        "add": (lambda a, b: a + b, None),
        "sub": (lambda a, b: a - b, None),
        "mul": (lambda a, b: a * b, None),
        "div": (lambda a, b: a / b, None),
        "pow": (torch.pow, pow_tensor),
        "powc": (lambda a, k: torch.pow(a, k), None),
        "rpow": (
            lambda a, k: torch.pow(k, a),
            lambda g, out, a, k: (exponent_grad(g, out, torch.full_like(a, k), a),),
        ),
        "neg": (lambda a: -a, None),
        "exp": (torch.exp, lambda g, out, a: (g * out,)),
        "log": (torch.log, None),
        "tanh": (torch.tanh, lambda g, out, a: (aten.tanh_backward(g, out),)),
        "sigmoid": (torch.sigmoid, lambda g, out, a: (aten.sigmoid_backward(g, out),)),
        "relu": (torch.relu, lambda g, out, a: (aten.threshold_backward(g, out, 0.0),)),
        "sqrt": (torch.sqrt, lambda g, out, a: (g / (2.0 * out),)),
        "abs": (torch.abs, None),
        "sign": (torch.sign, None),
        "relu_grad": (lambda g, c: aten.threshold_backward(g, c, 0.0), None),
    }


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
                    r.label or "",
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


def _short_ulps(u: float) -> str:
    if math.isinf(u):
        return "inf"
    return f"{u:.3g}" if u >= 1e4 else f"{u:g}"


def check_torch(root: Value, ulps: float = 4) -> TorchCheck:
    """Replay the graph under root in PyTorch, node by node, and compare every data and grad.

    Backprop's side is the graph replayed at the leaves' current values with the same op
    rules and the same order as ``root.backward()`` (so the graph's own .data and .grad are
    left as they are, and a graph whose leaves an optimizer step changed is still checked).
    Each node is checked on its own: torch float64 0-d tensors compute the node's op from
    backprop's values of its inputs, and each gradient contribution with torch's backward rule
    from backprop's grad of the consumer. A difference is therefore the op's own, never rounding
    carried from upstream. ``ulps`` is the tolerance: CPython's and torch's ``tanh`` and ``exp``
    differ by 1-2 ulps.

    ``report.first_mismatch`` is the first node where the numbers go wrong: the first, in the
    forward pass, whose data disagrees, or else the first, in backward order, whose grad does;
    its text names the op whose rule is at fault.
    """
    if not isinstance(root, Value):
        raise TypeError(f"check_torch needs a Value, got {type(root).__name__}: {root!r:.60}")
    if isinstance(ulps, bool) or not isinstance(ulps, (int, float)) or not 0 <= ulps < math.inf:
        raise ValueError(f"ulps must be a number >= 0, got {ulps!r}")
    torch = _torch("check_torch")
    twins = _torch_twins(torch)
    order = root.topological_order()
    position = {id(v): i for i, v in enumerate(order)}
    n = len(order)
    inputs = [[position[id(x)] for x in v._prev] for v in order]
    for v in order:
        if v._fn is not None and v._fn.name not in twins:
            raise ValueError(f"check_torch has no torch twin for op {v._fn.name!r} of {v!r}")

    # backprop: forward and backward with eager's own rules, in eager's order
    data = [0.0] * n
    stale = [False] * n
    for i, v in enumerate(order):
        fn = v._fn
        if fn is None:
            data[i] = v.data
            continue
        xs = [data[j] for j in inputs[i]] + ([v._arg] if fn.has_arg else [])
        data[i] = fn.forward(SCALAR, *xs)
        stale[i] = not _same(data[i], v.data)
    grad = [0.0] * n
    grad[n - 1] = 1.0
    sent: list[list[tuple[int, float]]] = [[] for _ in range(n)]  # per node: (consumer, amount)
    for i in range(n - 1, -1, -1):
        fn = order[i]._fn
        if fn is None:
            continue
        xs = [data[j] for j in inputs[i]] + ([order[i]._arg] if fn.has_arg else [])
        for j, g in zip(inputs[i], fn.backward(SCALAR, grad[i], data[i], *xs)):
            grad[j] += g
            sent[j].append((i, g))

    # torch: each node's op from backprop's inputs; each contribution from backprop's grads
    def tensor(x: float, requires_grad: bool = False):
        return torch.tensor(x, dtype=torch.float64, requires_grad=requires_grad)

    torch_data = list(data)
    torch_sent: dict[tuple[int, int], float] = {}  # (consumer, edge k) -> amount
    for i, v in enumerate(order):
        fn = v._fn
        if fn is None:
            continue
        forward, backward = twins[fn.name]
        args = [tensor(data[j], requires_grad=backward is None) for j in inputs[i]]
        extra = [v._arg] if fn.has_arg else []
        with torch.enable_grad():
            out = forward(*args, *extra)
        torch_data[i] = out.item()
        g = tensor(grad[i])
        if backward is None:
            contributions = torch.autograd.grad(out, args, grad_outputs=g, allow_unused=True)
            contributions = [torch.zeros(()) if c is None else c for c in contributions]
        else:
            with torch.no_grad():
                ins = [a.detach() for a in args]
                contributions = backward(g, tensor(data[i]), *ins, *extra)
        for k, c in enumerate(contributions):
            torch_sent[(i, k)] = float(c)

    rows = []
    edges_into: list[list[tuple[int, float, float, float]]] = []
    bad_data = None
    for i, v in enumerate(order):
        edges = []  # (consumer, ours, theirs, ulps) for each edge into node i
        torch_grad = 1.0 if i == n - 1 else 0.0
        k_of: dict[int, int] = {}
        for consumer, amount in sent[i]:
            k = _edge(inputs[consumer], i, k_of, consumer)
            theirs = torch_sent[(consumer, k)]
            torch_grad += theirs
            edges.append((consumer, amount, theirs, ulps_apart(amount, theirs)))
        row = NodeCheck(
            index=i,
            node=v,
            label=v.label,
            op=v._op,
            data=data[i],
            torch_data=torch_data[i],
            data_ulps=ulps_apart(data[i], torch_data[i]),
            grad=grad[i],
            torch_grad=torch_grad,
            grad_ulps=max((e[3] for e in edges), default=0.0),
            stale=stale[i],
        )
        edges_into.append(edges)
        rows.append(row)
        if bad_data is None and row.data_ulps > ulps:
            bad_data = row
    mismatches = [r for r in rows if max(r.data_ulps, r.grad_ulps) > ulps]
    first = None
    if bad_data is not None:
        r = bad_data
        first = Mismatch(
            r.node, r.index, r.label, r.op, "data", r.data, r.torch_data, r.data_ulps,
            r.node, r.index, r.label, r.op,
        )  # fmt: skip
    else:
        for r in reversed(rows):
            if r.grad_ulps > ulps:
                consumer, amount, theirs, u = max(edges_into[r.index], key=lambda e: e[3])
                src = order[consumer]
                first = Mismatch(
                    r.node, r.index, r.label, r.op, "grad", r.grad, r.torch_grad, u,
                    src, consumer, src.label, src._op, amount, theirs,
                )  # fmt: skip
                break
    return TorchCheck(rows, float(ulps), first, mismatches)


def _edge(operands: list[int], j: int, seen: dict[int, int], consumer: int) -> int:
    """Which operand position of ``consumer`` node ``j`` is, the next one each time (a*a)."""
    start = seen.get(consumer, -1) + 1
    k = operands.index(j, start)
    seen[consumer] = k
    return k


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


# ---- export formats -------------------------------------------------------------------------

FORMATS = {
    "python": ".py",  # a standalone PyTorch script (torch only, never backprop)
    "torch": ".safetensors",  # the torch state_dict, never a pickle
    "onnx": ".onnx",  # through torch.onnx.export
}


def _objective(model: MLP, metadata: dict[str, Any]) -> tuple[str, bool, list]:
    """(loss, binary, classes) as ``backprop predict`` reads them from a model's metadata."""
    n_out = model.sizes[-1]
    loss = metadata.get("loss") or ("hinge" if n_out == 1 else "cross-entropy")
    if loss not in ("hinge", "bce", "mse", "cross-entropy"):
        raise ValueError(f"unknown loss {loss!r} in the model's metadata")
    binary = loss != "cross-entropy"
    classes = list(metadata.get("classes") or range(2 if n_out == 1 else n_out))
    if len(classes) != (2 if binary else n_out):
        raise ValueError(
            f"the metadata lists {len(classes)} classes for a model with {n_out} output(s) and "
            f"loss {loss!r}"
        )
    return loss, binary, classes


def _example_rows(nin: int) -> list[list[float]]:
    import random

    rng = random.Random(0)
    return [[round(rng.uniform(-2.0, 2.0), 2) for _ in range(nin)] for _ in range(4)]


def _check_examples(examples: Sequence[Sequence[float]] | None, nin: int) -> list[list[float]]:
    if examples is None:
        return _example_rows(nin)
    rows = [list(map(float, row)) for row in examples]
    if not rows:
        raise ValueError("examples holds no rows")
    for i, row in enumerate(rows):
        if len(row) != nin:
            raise ValueError(f"example row {i} has {len(row)} numbers, the model takes {nin}")
        if not all(map(math.isfinite, row)):
            raise ValueError(f"example row {i} holds a number that is not finite: {row!r}")
    return rows


def python_script(
    model: MLP,
    metadata: dict[str, Any] | None = None,
    *,
    weights: str = "inline",
    weights_file: str | None = None,
    examples: Sequence[Sequence[float]] | None = None,
    dtype: str = "float64",
    source: str = "a backprop model",
    name: str = "model.py",
) -> str:
    """A standalone PyTorch script (it imports torch, never backprop) that rebuilds the model
    and prints its predictions as ``backprop predict`` does: for the rows of a CSV named on its
    command line, or for ``examples``.

    ``weights='inline'`` writes every weight into the script; ``'json'`` makes it read them
    from the backprop model file ``weights_file`` (a name beside the script).
    """
    model = _check_mlp(model, "python_script")
    metadata = dict(metadata or {})
    if weights not in ("inline", "json"):
        raise ValueError(f"weights must be 'inline' or 'json', got {weights!r}")
    if weights == "json" and not weights_file:
        raise ValueError("weights='json' needs weights_file, the model file beside the script")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    loss, binary, classes = _objective(model, metadata)
    sizes, acts = model.sizes, model.activations
    rows = _check_examples(examples, sizes[0])
    label_column = metadata.get("label_column")
    if not isinstance(label_column, int) or isinstance(label_column, bool):
        label_column = -1

    layers, linear_at = [], []
    for k, act in enumerate(acts):
        linear_at.append(len(layers))
        layers.append(
            f"    torch.nn.Linear({sizes[k]}, {sizes[k + 1]}),  # layer {k}: "
            f"{sizes[k + 1]} neuron{'s' if sizes[k + 1] > 1 else ''} of {sizes[k]} inputs"
        )
        if _TORCH_ACTIVATION[act] is not None:
            layers.append(f"    torch.nn.{_TORCH_ACTIVATION[act]}(),")
    lines = [
        f'"""{source[0].upper()}{source[1:]}, rebuilt in PyTorch: an MLP {sizes}, {acts}.',
        "",
        "Written by `backprop export --to python`. It needs only torch:",
        "",
        f"    python3 {name}             # predictions for the example rows below",
        f"    python3 {name} points.csv  # predictions for every row of a CSV",
        "",
        "It prints what `backprop predict` prints: a CSV of the predicted class and the scores.",
        '"""',
        "",
        "import csv",
        "import sys",
    ]
    if weights == "json":
        lines += ["import json", "from pathlib import Path"]
    lines += [
        "",
        "import torch",
        "",
        f"DTYPE = torch.{dtype}  # backprop computes in float64",
        "",
        "# backprop's Layer(nin, nout) is a Linear(nin, nout) followed by its activation",
        "model = torch.nn.Sequential(",
        *layers,
        ").to(DTYPE)",
        "",
    ]
    if weights == "inline":
        lines.append("# row j of a Linear's weight is neuron j's w, bias[j] its b")
        lines.append("with torch.no_grad():")
        for k, (w_rows, biases) in enumerate(_layer_weights(model)):
            at = linear_at[k]
            lines.append(f"    model[{at}].weight.copy_(torch.tensor([")
            for j, row in enumerate(w_rows):
                lines.append(f"        [{', '.join(map(repr, row))}],  # neuron {j}")
            lines.append("    ], dtype=DTYPE))")
            numbers = ", ".join(map(repr, biases))
            lines.append(f"    model[{at}].bias.copy_(torch.tensor([{numbers}], dtype=DTYPE))")
    else:
        lines += [
            "# the weights, from the backprop model file beside this script: parameter",
            '# "layers.L.neurons.J.w.K" is weight[J, K] of layer L\'s Linear, "...J.b" its bias[J]',
            f"WEIGHTS = json.loads(Path(__file__).with_name({weights_file!r}).read_text())",
            'weights = WEIGHTS["weights"]',
            f"LINEARS = [model[i] for i in {linear_at!r}]",
            "with torch.no_grad():",
            "    for layer, linear in enumerate(LINEARS):",
            "        for j in range(linear.out_features):",
            "            for k in range(linear.in_features):",
            '                linear.weight[j, k] = weights[f"layers.{layer}.neurons.{j}.w.{k}"]',
            '            linear.bias[j] = weights[f"layers.{layer}.neurons.{j}.b"]',
        ]
    rule = (
        "the second class when the score is above 0, else the first"
        if binary
        else "the class with the highest score (the first of equal ones)"
    )
    header = ["prediction", "score"] if binary else ["prediction"] + [f"score_{c}" for c in classes]
    lines += [
        "",
        f"# the classes, in the model's order. The loss was {loss!r}, so a row's class is",
        f"# {rule}",
        f"CLASSES = {[str(c) for c in classes]!r}",
        "",
        "# example rows: replace them, or name a CSV on the command line",
        "EXAMPLES = [",
        *[f"    [{', '.join(map(repr, row))}]," for row in rows],
        "]",
        "",
        "",
        "def read_rows(path):",
        f'    """Rows of {sizes[0]} numbers; a header is skipped, a label column dropped."""',
        "    with open(path, newline='') as f:",
        "        table = [row for row in csv.reader(f) if row]",
        "    rows = []",
        "    for i, row in enumerate(table):",
        f"        if len(row) == {sizes[0] + 1}:",
        f"            del row[{label_column}]",
        "        try:",
        "            rows.append([float(x) for x in row])",
        "        except ValueError:",
        "            if i > 0:",
        "                raise",
        "    return rows",
        "",
        "",
        "def predict(scores):",
    ]
    if binary:
        lines.append("    return CLASSES[1] if scores[0] > 0 else CLASSES[0]")
    else:
        lines.append("    return CLASSES[max(range(len(scores)), key=scores.__getitem__)]")
    lines += [
        "",
        "",
        "def main():",
        "    rows = read_rows(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES",
        "    with torch.no_grad():",
        "        outputs = model(torch.tensor(rows, dtype=DTYPE)).tolist()  # (rows, outputs)",
        "    writer = csv.writer(sys.stdout, lineterminator='\\n')",
        f"    writer.writerow({header!r})",
        "    for scores in outputs:",
        "        writer.writerow([predict(scores)] + [repr(s) for s in scores])",
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]
    return "\n".join(lines)


def _architecture(model: MLP) -> dict[str, Any]:
    return {"type": "MLP", **model.architecture()}


def safetensors_bytes(
    model: MLP, metadata: dict[str, Any] | None = None, dtype: str = "float64"
) -> bytes:
    """The ``to_torch(model).state_dict()`` as a .safetensors file (never a pickle), with the
    architecture and backprop's metadata as JSON in its header."""
    model = _check_mlp(model, "safetensors_bytes")
    require("exporting to a .safetensors file", "torch", "safetensors")
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in to_torch(model, dtype).state_dict().items()}
    try:
        header = {
            "format": "backprop-mlp",
            "architecture": json.dumps(_architecture(model)),
            "metadata": json.dumps(dict(metadata or {}), allow_nan=False),
        }
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata is not JSON-serializable ({e})") from None
    return save(state, metadata=header)


def load_safetensors(path: str | Path) -> MLP:
    """The MLP in a .safetensors file written by ``backprop export --to torch``."""
    require("reading a .safetensors file", "torch", "safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a corrupt file
        raise ValueError(f"{path}: not a readable .safetensors file ({e})") from None
    if header.get("format") != "backprop-mlp":
        raise ValueError(f"{path}: not written by backprop export (no backprop-mlp header)")
    try:
        arch = json.loads(header["architecture"])
        shell = MLP(arch["nin"], arch["nouts"], activation=arch["activation"], seed=0)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: its header's architecture is not readable ({e!r})") from None
    module = to_torch(shell)
    try:
        module.load_state_dict({k: v.to(module[0].weight.dtype) for k, v in state.items()})
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not match the architecture ({e})") from None
    return from_torch(module)


def onnx_bytes(model: MLP, dtype: str = "float64") -> bytes:
    """The model as an ONNX file through ``torch.onnx.export``: input "input" of shape
    (batch, nin), output "output" of shape (batch, nout), any batch size."""
    model = _check_mlp(model, "onnx_bytes")
    require("exporting to ONNX", "torch", "onnx")
    import io
    import warnings

    import onnx
    import torch

    module = to_torch(model, dtype).eval()
    example = torch.zeros(1, model.sizes[0], dtype=_dtype(torch, dtype))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.13's default exporter needs onnxscript; the TorchScript one it deprecates
        # handles Linear and activations exactly, with only torch and onnx installed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            dynamo=False,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def export(
    model: MLP,
    path: str | Path,
    to: str,
    *,
    metadata: dict[str, Any] | None = None,
    dtype: str = "float64",
    weights: str = "inline",
    examples: Sequence[Sequence[float]] | None = None,
    model_file: str | Path | None = None,
) -> list[Path]:
    """Write the model to path in format ``to`` ('python', 'torch' or 'onnx'); return the
    files written. A python script with ``weights='json'`` reads its weights from the backprop
    model file beside it: ``model_file`` when it is there already, else ``<script>.json``,
    written now."""
    from .serialize import save, write_atomic, write_text_atomic

    model = _check_mlp(model, "export")
    if to not in FORMATS:
        raise ValueError(f"unknown format {to!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if path.suffix.lower() != FORMATS[to]:
        raise ValueError(f"{path}: a {to} export's file name must end in {FORMATS[to]}")
    if to == "python":
        weights_file, companion = None, None
        if weights == "json":
            here = path.resolve().parent
            if model_file is not None and Path(model_file).resolve().parent == here:
                weights_file = Path(model_file).name  # already beside the script
            else:
                companion = path.with_suffix(".json")
                if companion.exists():
                    raise ValueError(
                        f"{companion} exists: the script's weights would overwrite it (choose "
                        "another output name, or put the model file beside the script)"
                    )
                weights_file = companion.name
        source = f"the backprop model {Path(model_file).name}" if model_file else "a backprop model"
        text = python_script(
            model, metadata, weights=weights, weights_file=weights_file, examples=examples,
            dtype=dtype, source=source, name=path.name,
        )  # fmt: skip
        if companion is not None:
            save(model, companion, metadata=metadata)
        write_text_atomic(path, text)
        return [path] if companion is None else [path, companion]
    if to == "torch":
        data = safetensors_bytes(model, metadata, dtype)
    else:
        data = onnx_bytes(model, dtype)
    write_atomic(path, data)
    return [path]
