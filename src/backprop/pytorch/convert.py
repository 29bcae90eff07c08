"""torch.nn.Sequential <-> MLP: ``to_torch`` builds the equivalent Sequential, ``from_torch``
reads one back, refusing whatever it cannot read exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import check_device, import_torch
from ..nn import MLP

if TYPE_CHECKING:
    import torch

__all__ = ["to_torch", "from_torch"]


def _dtype(torch, dtype: Any):
    """torch.float64 or torch.float32, from a torch dtype or its name."""
    names = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32}
    names["float"] = torch.float32
    if isinstance(dtype, str) and dtype in names:
        return names[dtype]
    if dtype in (torch.float64, torch.float32):
        return dtype
    raise ValueError(f"dtype must be 'float64' or 'float32' (or the torch dtype), got {dtype!r}")


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
    torch = import_torch("to_torch")
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
    torch = import_torch("from_torch")
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
