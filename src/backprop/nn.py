"""Neural-net building blocks on top of Value: Module, Neuron, Layer, MLP."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "tanh": Value.tanh,
    "relu": Value.relu,
    "sigmoid": Value.sigmoid,
    "linear": lambda v: v,
}


def _check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return name


def _check_size(what: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    return n


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


class Module:
    """Anything with parameters."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        """Set every parameter's .grad to 0 (gradients accumulate across backward() calls)."""
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """activation(w · x + b), with w and b drawn from uniform(-1, 1)."""

    def __init__(
        self, nin: int, activation: str = "tanh", seed: int | random.Random | None = None
    ) -> None:
        self.nin = _check_size("nin", nin)
        self.activation = _check_activation(activation)
        rng = _rng(seed)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(rng.uniform(-1, 1))

    def __call__(self, x: Sequence[Value | float]) -> Value:
        if len(x) != self.nin:
            raise ValueError(f"Neuron expects {self.nin} inputs, got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return ACTIVATIONS[self.activation](act)

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"Neuron({self.nin}, activation={self.activation!r})"


class Layer(Module):
    """nout neurons reading the same inputs. A layer of one neuron returns a single Value."""

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str = "tanh",
        seed: int | random.Random | None = None,
    ) -> None:
        _check_size("nout", nout)
        rng = _rng(seed)
        self.neurons = [Neuron(nin, activation, rng) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        n = self.neurons[0]
        return f"Layer({n.nin}, {len(self.neurons)}, activation={n.activation!r})"


class MLP(Module):
    """A stack of Layers. By default every layer, the output included, applies tanh.

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
        if isinstance(nouts, int) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer sizes, got {nouts!r}")
        sizes = [nin] + [_check_size("layer size", n) for n in nouts]
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

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
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

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"MLP of [{inner}] ({len(self.parameters())} parameters)"
