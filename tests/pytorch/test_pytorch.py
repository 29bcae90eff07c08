"""backprop.pytorch: to_torch and from_torch against backprop's own outputs, training carried on
in torch against one more step here, and check_torch on the notebook's graphs and planted bugs.
"""

from __future__ import annotations

import importlib.util
import math
import random
import re

import pytest

torch = pytest.importorskip("torch")

import backprop  # noqa: E402
from backprop import (  # noqa: E402
    MLP,
    Value,
    check_torch,
    from_torch,
    ops,  # noqa: E402
    to_torch,
)
from backprop.data import moons  # noqa: E402
from backprop.pytorch import MissingDependency, TorchCheck, ulps_apart  # noqa: E402
from backprop.train import fit  # noqa: E402

ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]


def random_mlp(seed: int, activation=None) -> MLP:
    """An MLP of random shape: 0 to 3 hidden layers, 1 to 3 outputs, random activations."""
    rng = random.Random(seed)
    nouts = [rng.randint(1, 6) for _ in range(rng.randint(0, 3))] + [rng.randint(1, 3)]
    acts = [activation or rng.choice(ACTIVATIONS) for _ in nouts]
    return MLP(rng.randint(1, 4), nouts, activation=acts, seed=seed)


def rows(model: MLP, n: int = 7, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-3, 3) for _ in range(model.sizes[0])] for _ in range(n)]


def backprop_outputs(model: MLP, xs) -> list[list[float]]:
    outs = [model(x) for x in xs]
    return [[o.data] if isinstance(o, Value) else [v.data for v in o] for o in outs]


def assert_close(a, b, rel=1e-12, abs_=1e-14):
    for ra, rb in zip(a, b, strict=True):
        assert ra == pytest.approx(rb, rel=rel, abs=abs_)


# ---- to_torch and from_torch --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("activation", ACTIVATIONS + [None])
def test_to_torch_gives_the_same_outputs_and_from_torch_the_same_weights(seed, activation):
    model = random_mlp(seed, activation)
    xs = rows(model)
    module = to_torch(model)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    with torch.no_grad():
        out = module(torch.tensor(xs, dtype=torch.float64))
    assert out.shape == (len(xs), model.sizes[-1])
    assert_close(out.tolist(), backprop_outputs(model, xs))
    back = from_torch(module)
    assert back.architecture() == model.architecture()
    assert back.state_dict() == model.state_dict()  # exactly: float64 both ways


def test_the_torch_module_reads_like_the_model():
    module = to_torch(MLP(3, [4, 4, 1], seed=0))
    kinds = [type(m).__name__ for m in module]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Tanh"]
    relu = to_torch(MLP(2, [16, 16, 1], activation="relu", output_activation="linear", seed=0))
    assert [type(m).__name__ for m in relu] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_one_neuron_output_shapes_are_documented_ones():
    model = MLP(3, [4, 1], seed=1)
    module = to_torch(model)
    x = [2.0, 3.0, -1.0]
    with torch.no_grad():
        batch = module(torch.tensor([x, x], dtype=torch.float64))
        single = module(torch.tensor(x, dtype=torch.float64))
    assert batch.shape == (2, 1)  # (batch, nout): squeeze(-1) gives backprop's list of Values
    assert single.shape == (1,)
    assert batch.squeeze(-1).tolist() == pytest.approx([model(x).data] * 2, rel=1e-12)


def test_float32_and_the_model_left_alone():
    model = MLP(2, [3, 2], seed=3)
    before = model.state_dict()
    module = to_torch(model, dtype="float32")
    assert all(p.dtype == torch.float32 for p in module.parameters())
    with torch.no_grad():
        module[0].weight.zero_()  # a copy: the backprop model keeps its weights
    assert model.state_dict() == before
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        to_torch(model, dtype="int8")
    with pytest.raises(TypeError, match="to_torch converts an MLP, got Layer"):
        to_torch(backprop.Layer(2, 3))


def test_from_torch_reads_a_module_built_in_torch():
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU()),
        torch.nn.Linear(5, 5),
        torch.nn.Identity(),
        torch.nn.Linear(5, 3),
        torch.nn.Sigmoid(),
    )  # float32: from_torch reads the weights exactly, as float64
    model = from_torch(module)
    assert model.sizes == [2, 5, 5, 3]
    assert model.activations == ["relu", "linear", "sigmoid"]
    xs = rows(model, seed=4)
    with torch.no_grad():
        expected = module.double()(torch.tensor(xs, dtype=torch.float64)).tolist()
    assert_close(backprop_outputs(model, xs), expected)
    one = from_torch(torch.nn.Linear(3, 1))
    assert one.sizes == [3, 1] and one.activations == ["linear"]


def test_from_torch_leaves_the_global_random_state_alone():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    from_torch(torch.nn.Linear(3, 2))
    assert random.random() == expected


@pytest.mark.parametrize(
    "module, message",
    [
        (
            lambda: torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Linear(2, 1)),
            "layer '0' (Conv1d) is not supported",
        ),
        (
            lambda: torch.nn.Sequential(
                torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
            ),
            "layer '1' (BatchNorm1d) is not supported",
        ),
        (
            lambda: torch.nn.Sequential(
                torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(4, 1)
            ),
            "layer '2' (Dropout) is not supported",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 4, bias=False)),
            "layer '0' (Linear without bias)",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.ReLU()),
            "layer '2' (ReLU) is a second activation after '0'",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(2, 4)),
            "layer '0' (Tanh) comes before any Linear layer",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(3, 1)),
            "layer '1' takes 3 inputs, but the layer before it, '0', gives 4",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.GELU()),
            "layer '1' (GELU) is not supported",
        ),
        (lambda: torch.nn.Sequential(), "the module has no Linear layer"),
        (lambda: torch.nn.Conv2d(1, 1, 3), "got a Conv2d"),
    ],
)
def test_from_torch_refuses_other_layers_naming_the_first(module, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_torch(module())


def test_from_torch_refuses_a_custom_module_and_non_finite_weights():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(ValueError, match="got a Net: its own forward"):
        from_torch(Net())
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="nan or infinite"):
        from_torch(linear)
    with pytest.raises(TypeError, match="needs a torch.nn.Module, got dict"):
        from_torch({"0.weight": torch.zeros(1, 2)})


class TimesHundred(torch.nn.Sequential):
    """A Sequential subclass whose own forward() is not its layers in a row."""

    def forward(self, x):
        return super().forward(x) * 100


class ScaledLinear(torch.nn.Linear):
    def forward(self, x):
        return super().forward(x) * 100


def _plain():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))


def _with_hook(kind: str):
    module = _plain()
    if kind == "forward":
        module[2].register_forward_hook(lambda m, inputs, out: out * 100)
    elif kind == "pre":
        module[0].register_forward_pre_hook(lambda m, inputs: (inputs[0] * 100,))
    elif kind == "backward":
        module.register_full_backward_hook(lambda m, gin, gout: None)
    elif kind == "instance forward":
        module[1].forward = lambda x: x * 100
    return module


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: TimesHundred(torch.nn.Linear(2, 3), torch.nn.Tanh()),
            "got a TimesHundred, a subclass of torch.nn.Sequential: its own forward()",
        ),
        (lambda: ScaledLinear(2, 1), "got a ScaledLinear, a subclass of torch.nn.Linear"),
        (
            lambda: torch.nn.Sequential(ScaledLinear(2, 3), torch.nn.Tanh()),
            "layer '0' (ScaledLinear, a subclass of torch.nn.Linear) is not supported",
        ),
        (
            lambda: torch.nn.Sequential(TimesHundred(torch.nn.Linear(2, 3)), torch.nn.Tanh()),
            "layer '0' (TimesHundred, a subclass of torch.nn.Sequential) is not supported",
        ),
        (lambda: _with_hook("forward"), "layer '2' (Linear) has a forward hook"),
        (lambda: _with_hook("pre"), "layer '0' (Linear) has a forward pre-hook"),
        (lambda: _with_hook("backward"), "layer 'Sequential' (Sequential) has a backward hook"),
        (lambda: _with_hook("instance forward"), "layer '1' (Tanh) has its own forward set"),
    ],
)
def test_from_torch_refuses_what_computes_otherwise_by_name(make, message):
    """Issue 17: such modules were converted silently into a different model (torch -68.9,
    the converted MLP -0.689)."""
    module = make()
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        from_torch(module)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kind", ["register_module_forward_hook", "register_module_forward_pre_hook"]
)
def test_from_torch_refuses_while_a_global_hook_is_registered(kind):
    hook = (lambda m, i, o: o) if kind.endswith("_hook") and "pre" not in kind else (lambda m, i: i)
    handle = getattr(torch.nn.modules.module, kind)(hook)
    try:
        with pytest.raises(ValueError, match=f"a global module hook is registered .*{kind}"):
            from_torch(_plain())
    finally:
        handle.remove()
    assert from_torch(_plain()).sizes == [2, 3, 1]  # and once it is gone, it converts


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "int64", "bool"])
def test_from_torch_refuses_weights_that_are_not_real_floats(dtype):
    module = _plain()
    with torch.no_grad():
        module[0].weight = torch.nn.Parameter(
            module[0].weight.to(getattr(torch, dtype)), requires_grad=False
        )
    with pytest.raises(ValueError, match=f"layer '0' has a weight of dtype torch.{dtype}"):
        from_torch(module)


def test_from_torch_refuses_weights_of_another_shape_than_declared():
    module = _plain()
    module[0].weight = torch.nn.Parameter(torch.zeros(3, 7))  # torch would use all 7 columns
    with pytest.raises(ValueError, match=re.escape("layer '0' (Linear(2, 3)) has a weight of")):
        from_torch(module)
    module = _plain()
    module[2].bias = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=re.escape("has a bias of shape (2,), not (1,)")):
        from_torch(module)
    with pytest.raises(ValueError, match="on the meta device"):
        from_torch(torch.nn.Linear(2, 1, device="meta"))


def test_from_torch_still_reads_half_precision_weights():
    module = _plain().to(torch.bfloat16)
    model = from_torch(module)
    assert model.layers[0].neurons[0].w[0].data == module[0].weight[0, 0].item()


def test_without_torch_the_message_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(MissingDependency) as info:
        to_torch(MLP(2, [1], seed=0))
    # `backprop` on the package index is another project: the extras come from the checkout
    assert "'.[torch]' in the backprop repository folder" in str(info.value)
    assert "backprop[" not in str(info.value)
    with pytest.raises(MissingDependency, match="torch==2.13.0"):
        check_torch(Value(1.0))
    with pytest.raises(ImportError, match="the torch backend of compile"):
        backprop.compile(Value(1.0) * 2, backend="torch")


# ---- training carries on in torch ---------------------------------------------------------


def test_one_sgd_step_in_torch_equals_one_more_step_here(tmp_path):
    from safetensors.torch import load_file

    from backprop.pytorch import export

    X, y = moons(60, noise=0.1, seed=1)
    model = MLP(2, [8, 8, 1], activation="relu", output_activation="linear", seed=1)
    lr, l2 = 0.5, 1e-4
    options = dict(loss="hinge", optimizer="sgd", lr=lr, l2=l2, batch_size=0, progress=False)
    fit(model, X, y, epochs=15, **options)
    path = export(model, tmp_path / "moons.safetensors", "torch")[0]

    # torch: the same network from the exported state_dict, the same loss, one SGD step
    module = to_torch(MLP(2, [8, 8, 1], activation="relu", output_activation="linear", seed=9))
    module.load_state_dict(load_file(path))
    inputs = torch.tensor(X, dtype=torch.float64)
    targets = torch.tensor([1.0 if label == 1 else -1.0 for label in y], dtype=torch.float64)
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    scores = module(inputs).squeeze(-1)
    loss = torch.relu(1 - targets * scores).mean() + l2 * sum(
        (p**2).sum() for p in module.parameters()
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    fit(model, X, y, epochs=1, **options)  # one more full-batch step here
    stepped = from_torch(module).state_dict()
    ours = model.state_dict()
    assert list(stepped) == list(ours)
    for name in ours:
        assert stepped[name] == pytest.approx(ours[name], rel=1e-12, abs=1e-14), name


# ---- check_torch ---------------------------------------------------------------------------------


def notebook_graphs() -> dict[str, Value]:
    """The seed notebook's graphs, built as its cells build them."""
    graphs = {}
    a, b, c = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    graphs["L"] = L

    def neuron(split_tanh: bool) -> Value:
        x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
        w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
        b = Value(6.8813735870195432, label="b")
        x1w1 = x1 * w1
        x1w1.label = "x1w1"
        x2w2 = x2 * w2
        x2w2.label = "x2w2"
        x1w1x2w2 = x1w1 + x2w2
        x1w1x2w2.label = "x1w1 + x2w2"
        n = x1w1x2w2 + b
        n.label = "n"
        if split_tanh:
            e = (2 * n).exp()
            o = (e - 1) / (e + 1)
        else:
            o = n.tanh()
        o.label = "o"
        o.backward()
        return o

    graphs["neuron"] = neuron(False)
    graphs["neuron, tanh from exp"] = neuron(True)
    random.seed(0)
    n = MLP(3, [4, 4, 1])
    graphs["n(x), before training (stale)"] = n([2.0, 3.0, -1.0])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    for _ in range(50):
        ypred = [n(x) for x in xs]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred))
        for p in n.parameters():
            p.grad = 0.0
        loss.backward()
        for p in n.parameters():
            p.data += -0.1 * p.grad
    graphs["loss after training (stale)"] = loss
    graphs["loss"] = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, [n(x) for x in xs]))
    return graphs


@pytest.mark.parametrize("name", list(notebook_graphs()))
def test_the_notebooks_graphs_agree_with_torch(name):
    root = notebook_graphs()[name]
    nodes = root.topological_order()
    before = [(v.data, v.grad) for v in nodes]
    report = check_torch(root)
    assert report.ok, str(report)
    assert report.first_mismatch is None and report.mismatches == []
    assert len(report) == len(nodes)
    assert report.max_ulps <= 4
    assert [(v.data, v.grad) for v in nodes] == before  # the user's graph is left as it was
    assert bool(report.stale) == name.endswith("(stale)")


def test_the_report_holds_backprops_numbers_and_torchs():
    o = notebook_graphs()["neuron"]
    report = check_torch(o)
    by_label = {r.label: r for r in report.rows}
    assert by_label["o"].data == pytest.approx(0.7071067811865476, rel=1e-15)
    assert by_label["n"].grad == pytest.approx(0.5, rel=1e-14)
    assert by_label["x1"].grad == pytest.approx(-1.5, rel=1e-14)
    assert by_label["x1"].torch_grad == pytest.approx(-1.5, rel=1e-14)
    assert by_label["o"].op == "tanh" and by_label["x1"].op == ""
    text = str(report)
    assert "all 10 nodes agree with PyTorch" in text
    assert text.splitlines()[1].split() == [
        "#",
        "node",
        "op",
        "data",
        "torch",
        "ulps",
        "grad",
        "torch",
        "ulps",
    ]
    assert "x1w1 + x2w2" in text and "tanh" in text
    page = report._repr_html_()
    assert page.count("<tr") == 11 and "<table" in page and "x1w1 + x2w2" in page
    assert repr(report).startswith("TorchCheck(10 nodes, ok=True")


@pytest.fixture
def planted():
    """Plant a wrong rule into an op's row for one test (an Op is a frozen dataclass)."""
    undo = []

    def plant(op, rule, wrong):
        undo.append((op, rule, getattr(op, rule)))
        object.__setattr__(op, rule, wrong)

    yield plant
    for op, rule, original in reversed(undo):
        object.__setattr__(op, rule, original)


def test_a_wrong_backward_rule_is_named(planted):
    o = notebook_graphs()["neuron"]
    planted(ops.TANH, "backward", lambda m, g, out, a: (g * (1.0 - out),))  # forgot the square
    report = check_torch(o)
    assert not report.ok
    bad = report.first_mismatch
    assert bad.node.label == "n" and bad.what == "grad"
    assert bad.source.label == "o" and bad.source_op == "tanh"
    text = str(bad)
    assert "node 'n' (+" in text and "the backward rule of 'tanh' at node 'o'" in text
    assert [r.label for r in report.mismatches] == ["n"]  # only the node the rule fed
    assert "disagrees" in str(report) and "1 of 10 nodes disagree" in str(report)
    assert "#ffebe9" in report._repr_html_()


def test_a_wrong_backward_rule_deep_in_an_mlp_is_named(planted):
    random.seed(1)
    model = MLP(3, [4, 4, 1], activation=["tanh", "relu", "tanh"])
    x = [Value(2.0), Value(3.0), Value(-1.0)]
    loss = (model(x) - 1.0) ** 2
    planted(ops.RELU, "backward", lambda m, g, out, a: (g * 0.5,))
    report = check_torch(loss)
    assert not report.ok
    bad = report.first_mismatch
    assert bad.what == "grad" and bad.source._fn is ops.RELU and bad.source_op == "ReLU"
    assert bad.node in bad.source._prev  # the relu's input, fed by the planted rule
    assert all(
        r.node in {v for m in report.mismatches for v in [m.node]} for r in report.mismatches
    )
    assert {id(r.node) for r in report.mismatches} <= {
        id(v._prev[0]) for v in loss.topological_order() if v._fn is ops.RELU
    }


def test_a_wrong_forward_rule_is_named(planted):
    a, b = Value(0.5, label="a"), Value(1.5, label="b")
    s = a * b
    s.label = "s"
    e = s.exp()
    e.label = "e"
    out = e + a
    out.label = "out"
    planted(ops.EXP, "forward", lambda m, x: m.exp(x) * 1.001)
    report = check_torch(out)
    bad = report.first_mismatch
    assert bad.what == "data" and bad.node is e and bad.source is e
    assert "node 'e' (exp" in str(bad) and "the forward rule of 'exp' disagrees" in str(bad)


def test_every_op_is_checked_against_torch():
    from catalog import CASES

    covered = set()
    for case in CASES:
        rng = random.Random(case.name)
        lo = 0.1 if case.positive else case.low
        xs = [Value(rng.uniform(lo, case.high)) for _ in range(case.arity)]
        root = case.ours(*xs) * 1.5 + case.ours(*xs)
        report = check_torch(root)
        assert report.ok, (case.name, str(report))
        covered |= {v._fn.name for v in root.topological_order() if v._fn is not None}
    assert {"add", "mul"} <= covered


def test_every_op_of_the_table_has_a_torch_twin():
    from backprop.pytorch.check import _torch_twins

    assert set(ops.OPS) <= set(_torch_twins(torch))


def test_nan_and_inf_agree_and_reused_nodes_get_both_edges():
    x = Value(-1.0, label="x")
    root = x.log() + x * x + (Value(0.0) ** -1.0)
    report = check_torch(root)
    assert report.ok, str(report)
    rows = {r.label: r for r in report.rows}
    assert math.isnan(report.rows[-1].data) and math.isnan(report.rows[-1].torch_data)
    assert rows["x"].grad == rows["x"].torch_grad == -1.0 + 2 * -1.0
    y = Value(3.0, label="y")
    report = check_torch(y * y)
    assert {r.label: r.grad for r in report.rows}["y"] == 6.0  # both edges of y*y


def test_ulps_and_bad_arguments():
    assert ulps_apart(1.0, 1.0 + 2**-52) == 1
    assert ulps_apart(float("nan"), float("nan")) == 0
    assert ulps_apart(float("inf"), 1.0) == math.inf
    with pytest.raises(TypeError, match="check_torch needs a Value, got float"):
        check_torch(1.5)
    with pytest.raises(ValueError, match="ulps must be a number >= 0"):
        check_torch(Value(1.0), ulps=-1)
    assert isinstance(check_torch(Value(2.0)), TorchCheck)


def test_a_big_report_shows_the_ends_and_every_mismatch(planted):
    xs = [Value(float(i) / 10) for i in range(60)]
    root = sum(x.tanh() for x in xs)
    planted(ops.TANH, "backward", lambda m, g, out, a: (g,))
    report = check_torch(root)
    table = report.table(limit=20)
    assert "..." in table
    shown = {int(line.split()[0]) for line in table.splitlines() if "<- disagrees" in line}
    assert {r.index for r in report.mismatches[:20]} <= shown  # the first mismatches, at least
    assert len(table.splitlines()) < len(report.rows)


def test_every_graph_the_seed_notebook_builds_agrees_with_torch(monkeypatch):
    """The notebook's own cells, run in order in one namespace (its %magic lines dropped, from
    notebooks/ so that `from nn import ...` resolves); after each cell, every new graph a
    variable holds is checked."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    notebook = json.loads((folder / "seed_notebook.ipynb").read_text(encoding="utf-8"))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    random.seed(0)
    namespace: dict = {"__name__": "__main__"}
    checked = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
        exec(compile(code, "seed_notebook.ipynb", "exec"), namespace)
        for name, value in list(namespace.items()):
            if isinstance(value, Value) and value._fn is not None and id(value) not in checked:
                report = check_torch(value)
                assert report.ok, f"{name}: {report}"
                checked[id(value)] = (name, len(report), value)
    names = {name for name, _, _ in checked.values()}
    assert {"L", "o", "loss"} <= names
    assert max(size for _, size, _ in checked.values()) > 300  # the training loop's loss graph


def test_to_torch_on_a_device_it_cannot_use_is_a_clear_error():
    model = MLP(2, [1], seed=0)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        to_torch(model, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            to_torch(model, device="cuda")


def test_a_label_cannot_break_the_reports_table():
    x = Value(0.5, label="x\n 99  fake  leaf  1  1  0")
    y = (x * 2).tanh()
    y.label = "y\x1b[2J"
    report = check_torch(y)
    lines = report.table().splitlines()
    assert len(lines) == 1 + len(report.rows)
    assert "\x1b" not in report.table() and "x\\n 99" in report.table()


def test_from_torch_refuses_a_model_over_the_size_limit_before_building_it(monkeypatch):
    import backprop.serialize

    module = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Tanh(), torch.nn.Linear(20, 1))
    monkeypatch.setattr(backprop.serialize, "MAX_PARAMETERS", 600)
    with pytest.raises(ValueError, match=r"has 641 parameters, over the limit of 600 \(backprop"):
        from_torch(module)
    monkeypatch.setattr(backprop.serialize, "MAX_PARAMETERS", 641)
    assert from_torch(module).sizes == [30, 20, 1]


def test_from_torch_reads_a_layer_placed_twice_twice():
    """named_children() lists a repeated module once: Sequential(l, Tanh(), l) was converted
    as one layer, a different model."""
    torch.manual_seed(1)
    shared = torch.nn.Linear(2, 2)
    module = torch.nn.Sequential(shared, torch.nn.Tanh(), shared).double()
    model = from_torch(module)
    assert model.sizes == [2, 2, 2] and model.activations == ["tanh", "linear"]
    xs = rows(model, seed=2)
    with torch.no_grad():
        expected = module(torch.tensor(xs, dtype=torch.float64)).tolist()
    assert_close(backprop_outputs(model, xs), expected)


def test_from_torch_refuses_a_sequential_that_contains_itself_and_reads_deep_nests():
    loop = torch.nn.Sequential(torch.nn.Linear(2, 2))
    loop.add_module("1", loop)
    with pytest.raises(ValueError, match="layer '1' \\(Sequential\\) contains itself"):
        from_torch(loop)
    deep = torch.nn.Linear(2, 1)
    for _ in range(5_000):  # past Python's recursion limit
        deep = torch.nn.Sequential(deep)
    assert from_torch(deep).sizes == [2, 1]
    holed = torch.nn.Sequential(torch.nn.Linear(2, 1))
    holed._modules["1"] = None  # Sequential.forward would call None
    with pytest.raises(ValueError, match="layer '1' is None, not a module"):
        from_torch(holed)


def test_from_torch_refuses_weight_norm_either_way():
    """The new weight_norm swaps the Linear's class, the old one adds a forward pre-hook: each
    computes its weight from others, and each is refused by name."""
    import warnings

    new = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="ParametrizedLinear, a subclass of torch.nn.Linear"):
        from_torch(torch.nn.Sequential(new, torch.nn.Tanh()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the old one is deprecated
        old = torch.nn.utils.weight_norm(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="layer '0' \\(Linear\\) has a forward pre-hook"):
        from_torch(torch.nn.Sequential(old, torch.nn.Tanh()))


def test_a_huge_device_or_dtype_name_gives_a_short_error():
    for call in (
        lambda: to_torch(MLP(2, [1], seed=0), device="x" * 100_000),
        lambda: to_torch(MLP(2, [1], seed=0), device="cuda:" + "9" * 100_000),
        lambda: to_torch(MLP(2, [1], seed=0), dtype="f" * 100_000),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert len(str(info.value)) < 300


def test_from_torch_refuses_a_weight_of_a_tensor_subclass():
    """A tensor subclass's __torch_function__ can change what F.linear computes with it."""

    class Doubled(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            out = super().__torch_function__(func, types, args, kwargs or {})
            return out * 2 if func is torch.nn.functional.linear else out

    module = _plain()
    module[0].weight = torch.nn.Parameter(module[0].weight.detach().as_subclass(Doubled))
    with pytest.raises(ValueError, match="layer '0' has a weight of type Doubled"):
        from_torch(module)


def test_from_torch_refuses_a_linear_of_zero_features_by_name():
    """Linear(2, 0) and Linear(0, 2) reached MLP() and failed there, naming no layer."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: initializing zero-element tensors is a no-op
        for n_in, n_out, what in ((2, 0, "outputs"), (0, 2, "inputs")):
            module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(n_in, n_out))
            if n_in == 0:
                module = torch.nn.Sequential(torch.nn.Linear(n_in, n_out))
            with pytest.raises(
                ValueError, match=rf"layer '\d' \(Linear\({n_in}, {n_out}\)\) has no {what}"
            ):
                from_torch(module)
