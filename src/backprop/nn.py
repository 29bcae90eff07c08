"""Neural-net building blocks on top of Value: Module, Neuron, Layer, MLP."""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce

from ._optional import shown
from .engine import Value
from .scopes import current_scope, methods_in, scope

__all__ = ["Module", "Neuron", "Layer", "MLP", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "tanh": Value.tanh,
    "relu": Value.relu,
    "sigmoid": Value.sigmoid,
    "linear": lambda v: v,
}


# the op whose node each activation makes (none for linear)
_ACTIVATION_OP = {"tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "linear": None}


def _identity(v: Value) -> Value:
    return v


def _join(outer: str, name: str) -> str:
    return f"{outer}/{name}" if outer else name


def _outer(module) -> str:
    """The scope around module's own: the open one, less module's if _call_in opened that one
    (for a subclass's own __call__ that calls the base class's)."""
    path, name = current_scope(), module.scope_name
    if path == name or path.endswith("/" + name):
        return path[: -len(name)].rstrip("/")
    return path


def _check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return name


def _check_size(what: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {shown(n)}")
    return n


def _check_count(what: str, count: int) -> None:
    """Refuse a model of more than serialize.MAX_PARAMETERS parameters before building any:
    ``MLP(10**9, [10**9])`` would otherwise fill the memory for minutes, then fail."""
    from . import serialize  # (serialize imports this module)

    limit = serialize.MAX_PARAMETERS
    if count > limit:
        raise ValueError(
            f"{what} would have {_count_text(count)} parameters, over the limit of {limit:,} "
            "(backprop.serialize.MAX_PARAMETERS; raise it to build a bigger model)"
        )


def _count_text(n: int) -> str:
    """n with thousands separators, or its number of digits when that would be long."""
    if n < 10**30:
        return f"{n:,}"
    return f"a {n.bit_length() * 0.30103:,.0f}-digit number of"


def _rng(seed: int | random.Random | None):
    """A random source: a given Random, a new one seeded with an int, or Python's global one
    (so that ``random.seed(...)`` applies, as in the notebook)."""
    if isinstance(seed, random.Random):
        return seed
    if seed is None or seed is random:
        return random
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a random.Random, got {type(seed).__name__}")
    return random.Random(seed)


def _call_in(module, x, outer: str):
    """module(x) in scope outer/module.scope_name. Neuron and Layer pass the path down without
    opening a scope() block; a subclass that defines its own __call__ runs inside one."""
    kind = type(module)
    if kind.__call__ is Neuron.__call__ or kind.__call__ is Layer.__call__:
        return module._forward(x, outer)
    with scope._at(_join(outer, module.scope_name)):
        return module(x)


class Module:
    """Anything with parameters."""

    def __getstate__(self) -> dict:  # copies and pickles leave out what a call caches
        return {k: v for k, v in vars(self).items() if k != "_ops"}

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        """Set every parameter's .grad to 0 (gradients accumulate across backward() calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(dotted name, parameter) pairs such as ('layers.0.neurons.3.w.1', Value(...)).

        Found by walking the module's attributes: a Value, a list of Values, a Module or a list
        of Modules. The order must match parameters(), which state_dict() relies on.
        """
        named: list[tuple[str, Value]] = []
        for attr, x in vars(self).items():
            items = list(enumerate(x)) if isinstance(x, (list, tuple)) else [(None, x)]
            for i, item in items:
                name = attr if i is None else f"{attr}.{i}"
                if isinstance(item, Value):
                    named.append((name, item))
                elif isinstance(item, Module):
                    named.extend((f"{name}.{n}", p) for n, p in item.named_parameters())
        params = self.parameters()
        if [id(p) for _, p in named] != [id(p) for p in params]:
            raise TypeError(
                f"{type(self).__name__}.parameters() does not match its attributes; "
                "override named_parameters() to name them"
            )
        return named

    def state_dict(self) -> dict[str, float]:
        """Every parameter's value by name, in parameters() order (plain floats, JSON-ready)."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: Mapping[str, float]) -> None:
        """Set the parameters from a state_dict() of a model with the same architecture.

        Everything is checked first (the same names, real finite numbers), so on any error
        the model is left exactly as it was.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        named = self.named_parameters()
        names = [name for name, _ in named]
        known = set(names)  # once: a set per key made loading quadratic in the model's size
        missing = [n for n in names if n not in state_dict]
        unexpected = [n for n in state_dict if n not in known]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} ({', '.join(missing[:3])}...)")
            if unexpected:
                parts.append(
                    f"unexpected {len(unexpected)} ({', '.join(map(str, unexpected[:3]))}...)"
                )
            raise ValueError(
                f"state_dict does not fit this {type(self).__name__} "
                f"({len(names)} parameters): {'; '.join(parts)}"
            )
        values = []
        for name in names:
            x = state_dict[name]
            if isinstance(x, Value):
                x = x.data
            if isinstance(x, bool) or not isinstance(x, numbers.Real):
                raise TypeError(f"parameter {name} must be a real number, got {x!r:.60}")
            if not math.isfinite(x):
                raise ValueError(f"parameter {name} is not a finite number: {x!r}")
            values.append(float(x))
        for (_, p), x in zip(named, values):
            p.data = x


class Neuron(Module):
    """activation(w · x + b), with w and b drawn from uniform(-1, 1).

    Its nodes carry the scope ``neuron`` (``Value.scope``); in a Layer, ``neuron0``, ``neuron1``
    ... under the layer's scope, e.g. ``mlp/layer1/neuron3``, under any scope() open around it.
    """

    scope_name = "neuron"  # a Layer names its own neurons neuron0, neuron1, ...
    _ops = None  # _forward's op methods for its scope, kept between calls (not saved or copied)

    def __init__(
        self, nin: int, activation: str = "tanh", seed: int | random.Random | None = None
    ) -> None:
        self.nin = _check_size("nin", nin)
        _check_count(f"Neuron({shown(nin)})", nin + 1)
        self.activation = _check_activation(activation)
        rng = _rng(seed)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(rng.uniform(-1, 1))

    def __call__(self, x: Sequence[Value | float]) -> Value:
        return self._forward(x, _outer(self))

    def _forward(self, x: Sequence[Value | float], outer: str) -> Value:
        """self(x) with its nodes in scope outer/scope_name, made by the scope's own op methods
        (scopes.methods_in): no scope() block is opened, so this costs what plain ops do."""
        if len(x) != self.nin:
            raise ValueError(f"Neuron expects {self.nin} inputs, got {len(x)}")
        ops = self._ops  # (outer, add, mul, activation) of the last call: usually this one's
        if ops is None or ops[0] != outer or ops[4] != self.activation:
            op = methods_in(f"{outer}/{self.scope_name}" if outer else self.scope_name)
            name = _ACTIVATION_OP[self.activation]
            act = _identity if name is None else op[name]
            ops = self._ops = (outer, op["add"], op["mul"], act, self.activation)
        act = reduce(ops[1], map(ops[2], self.w, x), self.b)  # b + w0*x0 + w1*x1 + ...
        return ops[3](act)

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"Neuron({self.nin}, activation={self.activation!r})"


class Layer(Module):
    """nout neurons reading the same inputs. A layer of one neuron returns a single Value.

    Its scope is ``layer`` (in an MLP ``layer0``, ``layer1``, ...), its neurons' ``neuron0`` ...
    """

    scope_name = "layer"  # an MLP names its own layers layer0, layer1, ...

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str = "tanh",
        seed: int | random.Random | None = None,
    ) -> None:
        _check_size("nin", nin)
        _check_size("nout", nout)
        _check_count(f"Layer({shown(nin)}, {shown(nout)})", (nin + 1) * nout)
        rng = _rng(seed)
        self.neurons = [Neuron(nin, activation, rng) for _ in range(nout)]
        for j, n in enumerate(self.neurons):
            n.scope_name = f"neuron{j}"

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        return self._forward(x, _outer(self))

    def _forward(self, x: Sequence[Value | float], outer: str) -> Value | list[Value]:
        path = _join(outer, self.scope_name)
        plain = Neuron.__call__  # (a subclass with a __call__ of its own: _call_in)
        outs = [
            n._forward(x, path) if type(n).__call__ is plain else _call_in(n, x, path)
            for n in self.neurons
        ]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        n = self.neurons[0]
        return f"Layer({n.nin}, {len(self.neurons)}, activation={n.activation!r})"


class MLP(Module):
    """A stack of Layers. By default every layer, the output included, applies tanh.

    Its nodes are grouped in scopes: ``mlp``, then ``mlp/layer0``, ``mlp/layer0/neuron0`` ...
    (``Value.scope``), for drawings and step-throughs that show a block at a time.

    ``activation`` is one name for all layers or a list with one name per layer, and
    ``output_activation`` overrides the last layer's: micrograd's classic net is
    ``MLP(2, [16, 16, 1], activation='relu', output_activation='linear')``.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str | Sequence[str] = "tanh",
        output_activation: str | None = None,
        seed: int | random.Random | None = None,
    ) -> None:
        _check_size("nin", nin)
        if isinstance(nouts, (int, str, bytes)) or not isinstance(nouts, Iterable):
            raise ValueError(f"nouts must be a non-empty list of layer sizes, got {shown(nouts)}")
        nouts = list(nouts)
        if not nouts:
            raise ValueError("nouts must be a non-empty list of layer sizes, got []")
        sizes = [nin] + [_check_size("layer size", n) for n in nouts]
        count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        _check_count(f"MLP({shown(nin)}, {shown(nouts)})", count)
        if isinstance(activation, str):
            acts = [activation] * len(nouts)
        else:
            acts = list(activation)
            if len(acts) != len(nouts):
                raise ValueError(f"got {len(acts)} activations for {len(nouts)} layers")
        if output_activation is not None:
            acts[-1] = output_activation
        rng = _rng(seed)
        self.layers = [Layer(sizes[i], sizes[i + 1], acts[i], rng) for i in range(len(nouts))]
        for i, layer in enumerate(self.layers):
            layer.scope_name = f"layer{i}"

    scope_name = "mlp"

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        path = _join(_outer(self), self.scope_name)
        for layer in self.layers:
            x = _call_in(layer, x, path)
            if isinstance(x, Value):
                x = [x]
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].neurons[0].nin] + [len(layer.neurons) for layer in self.layers]

    @property
    def activations(self) -> list[str]:
        return [layer.neurons[0].activation for layer in self.layers]

    def architecture(self) -> dict:
        """What it takes to rebuild this model: ``MLP(**model.architecture())``."""
        return {"nin": self.sizes[0], "nouts": self.sizes[1:], "activation": self.activations}

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"MLP of [{inner}] ({len(self.parameters())} parameters)"
