"""Neuron, Layer, MLP: the notebook's defaults, activation choice, seeding, bad input."""

from __future__ import annotations

import random

import pytest
import torch

from backprop import MLP, Layer, Module, Neuron, Value


def test_notebook_architecture():
    n = MLP(3, [4, 4, 1])
    assert len(n.parameters()) == 41
    assert len(n.layers) == 3
    assert len(n.layers[0].neurons) == 4
    w = n.layers[0].neurons[0].w[0]
    assert isinstance(w, Value) and -1 <= w.data <= 1
    assert isinstance(n.layers[0].neurons[0].b, Value)
    out = n([2.0, 3.0, -1.0])
    assert isinstance(out, Value)  # a layer of one neuron returns a single Value
    assert out._op == "tanh"  # the output applies tanh too


def test_weights_are_uniform_minus_one_to_one():
    ws = [p.data for p in MLP(10, [50, 50, 1], seed=3).parameters()]
    assert min(ws) >= -1 and max(ws) <= 1
    assert min(ws) < -0.9 and max(ws) > 0.9


def test_inputs_may_be_floats_or_values():
    n = MLP(2, [3, 1], seed=0)
    a = n([1.0, -2.0]).data
    b = n([Value(1.0), Value(-2.0)]).data
    assert a == b


def test_layer_of_many_returns_a_list():
    out = Layer(2, 3, seed=0)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3


def test_micrograd_classic_is_one_argument_away():
    n = MLP(2, [16, 16, 1], activation="relu", output_activation="linear", seed=1)
    assert n.activations == ["relu", "relu", "linear"]
    assert n.sizes == [2, 16, 16, 1]
    out = n([0.5, -0.3])
    assert out._op == "+"  # linear output: the bias add is the last node


@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid", "linear"])
def test_each_activation_matches_pytorch(act):
    n = MLP(3, [5, 2], activation=act, seed=7)
    x = [0.3, -1.2, 2.0]
    outs = n(x)
    loss = sum(o * o for o in outs)
    loss.backward()

    torch_act = {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "linear": lambda t: t,
    }[act]
    h = torch.tensor(x, dtype=torch.float64)
    params = []
    for layer in n.layers:
        W = torch.tensor(
            [[w.data for w in ne.w] for ne in layer.neurons],
            dtype=torch.float64,
            requires_grad=True,
        )
        b = torch.tensor(
            [ne.b.data for ne in layer.neurons], dtype=torch.float64, requires_grad=True
        )
        params.append((W, b))
        h = torch_act(W @ h + b)
    (h * h).sum().backward()
    for layer, (W, b) in zip(n.layers, params):
        for i, ne in enumerate(layer.neurons):
            for j, w in enumerate(ne.w):
                assert w.grad == pytest.approx(W.grad[i, j].item(), rel=1e-12, abs=1e-15)
            assert ne.b.grad == pytest.approx(b.grad[i].item(), rel=1e-12, abs=1e-15)


def test_per_layer_activations():
    n = MLP(2, [3, 3, 1], activation=["relu", "sigmoid", "tanh"], seed=0)
    assert n.activations == ["relu", "sigmoid", "tanh"]
    with pytest.raises(ValueError, match="2 activations for 3 layers"):
        MLP(2, [3, 3, 1], activation=["relu", "relu"])


def test_seed_reproduces_and_differs():
    a = [p.data for p in MLP(3, [4, 1], seed=42).parameters()]
    b = [p.data for p in MLP(3, [4, 1], seed=42).parameters()]
    c = [p.data for p in MLP(3, [4, 1], seed=43).parameters()]
    assert a == b and a != c
    rng = random.Random(5)
    d = [p.data for p in MLP(3, [4, 1], seed=rng).parameters()]
    assert d == [p.data for p in MLP(3, [4, 1], seed=random.Random(5)).parameters()]


def test_global_random_seed_applies_by_default():
    random.seed(11)
    a = [p.data for p in MLP(3, [4, 1]).parameters()]
    random.seed(11)
    b = [p.data for p in MLP(3, [4, 1]).parameters()]
    assert a == b


def test_zero_grad_and_training_reduces_loss():
    n = MLP(3, [4, 4, 1], seed=0)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    losses = []
    for _ in range(30):
        loss = sum((n(x) - y) ** 2 for x, y in zip(xs, ys))
        n.zero_grad()
        assert all(p.grad == 0.0 for p in n.parameters())
        loss.backward()
        for p in n.parameters():
            p.data -= 0.1 * p.grad
        losses.append(loss.data)
    assert losses[-1] < 0.1 * losses[0]


def test_module_base_has_no_parameters():
    assert Module().parameters() == []


def test_repr_shows_the_architecture():
    r = repr(MLP(3, [4, 4, 1]))
    assert "Layer(3, 4" in r and "Layer(4, 1" in r and "41 parameters" in r
    assert repr(Neuron(2, "relu")) == "Neuron(2, activation='relu')"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MLP(0, [1]), "nin must be a positive int"),
        (lambda: MLP(2, []), "non-empty"),
        (lambda: MLP(2, 3), "non-empty list"),
        (lambda: MLP(2, [3, -1]), "layer size must be a positive int, got -1"),
        (lambda: MLP(2, [3.5]), "3.5"),
        (lambda: Neuron(2, "gelu"), "unknown activation 'gelu'"),
        (lambda: Layer(2, 0), "nout"),
    ],
)
def test_bad_architecture_raises_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_number_of_inputs():
    with pytest.raises(ValueError, match="expects 3 inputs, got 2"):
        MLP(3, [1])([1.0, 2.0])


def test_bad_seed_type():
    with pytest.raises(TypeError, match="seed"):
        MLP(2, [1], seed="abc")


def test_mlp_layers_and_neurons_open_their_own_scopes():
    from backprop import MLP, Layer, Neuron, Value, scope

    model = MLP(3, [4, 4, 1], seed=0)
    out = model([1.0, -2.0, 0.5])
    assert out.scope == "mlp/layer2/neuron0"
    scopes = {v.scope for v in out.topological_order()}
    assert "mlp/layer1/neuron3" in scopes and "" in scopes  # the parameters are leaves outside
    with scope("net"):
        assert model([1.0, -2.0, 0.5]).scope == "net/mlp/layer2/neuron0"
    assert Layer(2, 3, seed=1)([1.0, 2.0])[2].scope == "layer/neuron2"
    assert Neuron(2, seed=1)([Value(1.0), 2.0]).scope == "neuron"
    with pytest.raises(TypeError, match="Value or a number"):
        Neuron(2, seed=1)([1.0, "x"])


def test_scopes_leave_the_numbers_alone():
    import random

    from backprop import MLP

    model = MLP(2, [3, 1], seed=4)
    out = model([0.5, -1.5])
    out.backward()
    random.seed(0)
    # the same sums, written out: activation(b + w0*x0 + w1*x1)
    hidden = [(n.b.data + n.w[0].data * 0.5 + n.w[1].data * -1.5) for n in model.layers[0].neurons]
    import math

    h = [math.tanh(a) for a in hidden]
    last = model.layers[1].neurons[0]
    expected = math.tanh(last.b.data + sum(w.data * x for w, x in zip(last.w, h)))
    assert out.data == expected


def test_a_subclass_with_its_own_call_runs_inside_a_scope():
    from backprop import MLP, Neuron
    from backprop.nn import Layer

    class Doubled(Neuron):
        def __call__(self, x):
            return super().__call__(x) * 2

    layer = Layer(2, 2, seed=0)
    layer.neurons[1] = Doubled(2, seed=0)
    layer.neurons[1].scope_name = "neuron1"
    outs = layer([1.0, 2.0])
    assert outs[1].scope == "layer/neuron1" and outs[1]._prev[0].scope == "layer/neuron1"
    assert MLP(2, [2], seed=0)([1.0, 2.0])[0].scope == "mlp/layer0/neuron0"


def test_a_called_model_copies_and_pickles_without_its_cached_op_methods():
    import copy
    import pickle

    from backprop import MLP, scope

    model = MLP(2, [3, 1], seed=2)
    out = model([1.0, 2.0])
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin([1.0, 2.0]).data == out.data
        assert twin.state_dict() == model.state_dict()
    with scope("again"):  # a call under another scope gets that scope's methods
        assert model([1.0, 2.0]).scope == "again/mlp/layer1/neuron0"
    assert model([1.0, 2.0]).scope == "mlp/layer1/neuron0"


class _CountedName(str):
    """A parameter name that counts how often it is hashed (a set or dict lookup)."""

    hashes = 0

    def __hash__(self):
        type(self).hashes += 1
        return str.__hash__(self)


def test_load_state_dict_hashes_each_name_a_bounded_number_of_times(monkeypatch):
    # a set of all names built once per key made loading quadratic: 40k parameters took
    # minutes. Counting hashes checks the work is linear without timing anything.
    model = MLP(3, [20, 10, 1], seed=0)
    named = [(_CountedName(n), p) for n, p in model.named_parameters()]
    monkeypatch.setattr(model, "named_parameters", lambda: named)
    state = {n: p.data + 1.0 for n, p in named}
    _CountedName.hashes = 0
    model.load_state_dict(state)
    assert [p.data for p in model.parameters()] == list(state.values())
    assert _CountedName.hashes <= 5 * len(named)  # the old code: about len(named) ** 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(10**9, [10**9]),
        lambda: MLP(2, [10**6, 10**6]),
        lambda: MLP(10**4000, [1]),
        lambda: Layer(10**9, 10**9),
        lambda: Neuron(10**9),
    ],
    ids=["MLP 1e9", "MLP two wide layers", "4000 digits", "Layer", "Neuron"],
)
def test_a_huge_model_is_refused_before_anything_is_built(make, monkeypatch):
    made = []

    def counted(*args, **kwargs):  # (stop the old code early, before it fills the memory)
        made.append(1)
        raise MemoryError("a Value was built")

    monkeypatch.setattr(Value, "__init__", counted)
    with pytest.raises(ValueError, match="over the limit of 1,000,000") as info:
        make()
    message = str(info.value)
    assert "backprop.serialize.MAX_PARAMETERS" in message
    assert "\n" not in message and len(message) < 300
    assert not made


def test_the_size_limit_is_serialize_max_parameters(monkeypatch):
    import backprop.serialize

    assert len(MLP(10, [10, 1], seed=0).parameters()) == 121
    monkeypatch.setattr(backprop.serialize, "MAX_PARAMETERS", 120)
    with pytest.raises(ValueError, match="121 parameters, over the limit of 120"):
        MLP(10, [10, 1], seed=0)
    monkeypatch.setattr(backprop.serialize, "MAX_PARAMETERS", 121)
    assert len(MLP(10, [10, 1], seed=0).parameters()) == 121


@pytest.mark.parametrize(
    "nouts, message",
    [
        ([True], "layer size must be a positive int, got True"),
        ([2.0], "layer size must be a positive int, got 2.0"),
        ([-3], "layer size must be a positive int, got -3"),
        ("12", "nouts must be a non-empty list of layer sizes, got '12'"),
        (None, "nouts must be a non-empty list of layer sizes, got None"),
        ([], "nouts must be a non-empty list of layer sizes, got \\[\\]"),
    ],
)
def test_bad_layer_sizes_are_named(nouts, message):
    with pytest.raises(ValueError, match=message):
        MLP(2, nouts)


def test_nouts_may_be_any_iterable_of_sizes():
    assert MLP(2, iter([3, 1]), seed=0).sizes == MLP(2, (3, 1), seed=0).sizes == [2, 3, 1]
