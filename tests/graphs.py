"""The graphs the tests share: the notebook's neuron and the usual graphs, each built fresh.

Import the builders (``from graphs import GRAPHS, neuron``) where a test needs a fresh graph
more than once; take the fixtures of conftest.py (``notebook_neuron``, ``usual_graph``) where
one graph a test is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from backprop import MLP, Value

# The notebook's numbers: b is chosen so that n = 0.8813735870195432 and o = tanh(n) = 0.7071...
NEURON_DATA = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}


@dataclass
class Neuron:
    """Every node of the notebook's neuron, o = tanh(x1*w1 + x2*w2 + b), by its name."""

    x1: Value
    x2: Value
    w1: Value
    w2: Value
    b: Value
    x1w1: Value
    x2w2: Value
    s: Value  # x1w1 + x2w2
    n: Value
    o: Value

    @property
    def leaves(self) -> dict[str, Value]:
        """The five inputs by label, in the order x1, w1, x2, w2, b."""
        return {"x1": self.x1, "w1": self.w1, "x2": self.x2, "w2": self.w2, "b": self.b}


def build_neuron(*, named_terms: bool = True, **data: float) -> Neuron:
    """The notebook's neuron, before backward(). Leaves, n and o are labelled; with
    ``named_terms`` the products and their sum are too (x1w1, x2w2, "x1w1 + x2w2"), as in the
    notebook. ``data`` replaces leaves' values by label (``build_neuron(x1=0.75)``)."""
    unknown = set(data) - set(NEURON_DATA)
    if unknown:
        raise ValueError(f"build_neuron() has no leaf {sorted(unknown)}")
    v = {**NEURON_DATA, **data}
    x1, x2 = Value(v["x1"], label="x1"), Value(v["x2"], label="x2")
    w1, w2 = Value(v["w1"], label="w1"), Value(v["w2"], label="w2")
    b = Value(v["b"], label="b")
    x1w1 = x1 * w1
    x2w2 = x2 * w2
    s = x1w1 + x2w2
    if named_terms:
        x1w1.label, x2w2.label, s.label = "x1w1", "x2w2", "x1w1 + x2w2"
    n = s + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    return Neuron(x1, x2, w1, w2, b, x1w1, x2w2, s, n, o)


# ---- the usual graphs, each built fresh by a function -----------------------------------------
def neuron() -> Value:
    """The notebook's neuron's output o, every node labelled as in the notebook."""
    return build_neuron().o


def neuron_exp_tanh() -> Value:
    """The notebook's neuron with tanh written out: (e^2n - 1) / (e^2n + 1)."""
    o = neuron()
    n = o._prev[0]
    e = (2 * n).exp()
    e.label = "e"
    out = (e - 1) / (e + 1)
    out.label = "o"
    return out


def reused() -> Value:
    a = Value(2.0, label="a")
    b = a * a
    b.label = "b"
    c = b + a
    c.label = "c"
    return c


def mlp_output() -> Value:
    model = MLP(3, [4, 4, 1], seed=7)
    return model([2.0, 3.0, -1.0])


def mlp_loss() -> Value:
    model = MLP(3, [4, 4, 1], seed=3)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    return sum((model(x) - y) ** 2 for x, y in zip(xs, ys))


def all_ops() -> Value:
    """Every op in ops.OPS, unlabelled nodes included, and a reused x."""
    x, y = Value(0.5, label="x"), Value(2.0, label="y")
    t = ((x + y) * (x - y) / y + x**y + x**3 + 2**x - x).exp().log().tanh()
    return t + x.sigmoid() + x.relu() + (-x).relu() + y.sqrt() + abs(x - y)


GRAPHS = {
    "neuron": neuron,
    "exp_tanh": neuron_exp_tanh,
    "reused": reused,
    "mlp_output": mlp_output,
    "mlp_loss": mlp_loss,
    "all_ops": all_ops,
}


def backward_grads(build) -> list[float]:
    """The gradients backward() gives on a freshly built graph, in topological order."""
    root = build()
    root.backward()
    return [v.grad for v in root.topological_order()]
