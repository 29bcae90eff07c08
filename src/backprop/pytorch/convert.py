"""torch.nn.Sequential <-> MLP: ``to_torch`` builds the equivalent Sequential, ``from_torch``
reads one back, refusing whatever it cannot read exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import serialize
from .._optional import check_device, import_torch, shown
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
    raise ValueError(
        f"dtype must be 'float64' or 'float32' (or the torch dtype), got {shown(dtype)}"
    )


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


# what a module's call reads besides its class: an instance attribute of one of these names
# replaces the method for that one module
_CALL_ATTRIBUTES = ("forward", "_call_impl", "_wrapped_call_impl", "__call__")
_HOOKS = {
    "_forward_pre_hooks": "forward pre-hook",
    "_forward_hooks": "forward hook",
    "_backward_pre_hooks": "backward pre-hook",
    "_backward_hooks": "backward hook",
}
# torch.nn.modules.module's hooks that every module runs (register_module_forward_hook ...)
_GLOBAL_HOOKS = {
    "_global_forward_pre_hooks": "register_module_forward_pre_hook",
    "_global_forward_hooks": "register_module_forward_hook",
    "_global_backward_pre_hooks": "register_module_full_backward_pre_hook",
    "_global_backward_hooks": "register_module_full_backward_hook",
}


def _kind(module: Any, torch) -> str:
    """The module's class name, and the torch.nn class it subclasses when it is not a torch
    class itself (its own methods may compute something else)."""
    cls = type(module)
    if getattr(torch.nn, cls.__name__, None) is not cls:
        for base in cls.__mro__[1:]:
            if base is not torch.nn.Module and getattr(torch.nn, base.__name__, None) is base:
                return f"{cls.__name__}, a subclass of torch.nn.{base.__name__}"
    return cls.__name__


def _check_plain(name: str, module: Any, torch) -> None:
    """Refuse a module whose call does more than its class's forward(): hooks, or a method
    replaced on the instance."""
    for attribute in _CALL_ATTRIBUTES:
        if attribute in vars(module):
            raise ValueError(
                f"from_torch: layer {name!r} ({_kind(module, torch)}) has its own {attribute} "
                "set on the instance, which can compute something else: convert the plain module"
            )
    for attribute, hook in _HOOKS.items():
        if getattr(module, attribute, None):
            raise ValueError(
                f"from_torch: layer {name!r} ({_kind(module, torch)}) has a {hook}, which can "
                "change what it computes: remove it (handle.remove()) before converting"
            )


def _check_no_global_hooks(torch) -> None:
    registry = torch.nn.modules.module
    for attribute, register in _GLOBAL_HOOKS.items():
        if getattr(registry, attribute, None):
            raise ValueError(
                f"from_torch: a global module hook is registered (torch.nn.modules.module."
                f"{register}), which can change what every module computes: remove it before "
                "converting"
            )


def _flatten(module, torch) -> list[tuple[str, Any]]:
    """The layers of a (possibly nested) Sequential in the order its forward() calls them (a
    module placed twice comes twice), with their dotted names, each checked to be plain (no
    hooks, no methods replaced on the instance). A loop, without recursion: a Sequential that
    contains itself is refused, and one nested 100,000 deep is read."""
    layers: list[tuple[str, Any]] = []
    open_: list[tuple[str, Any, Any]] = []  # the Sequentials being read: (name, module, items)
    inside: set[int] = set()

    def visit(name: str, layer: Any) -> None:
        label = name or type(layer).__name__
        _check_plain(label, layer, torch)
        if type(layer) is not torch.nn.Sequential:
            layers.append((label, layer))
        elif id(layer) in inside:
            raise ValueError(f"from_torch: layer {label!r} (Sequential) contains itself")
        else:
            inside.add(id(layer))
            # _modules, as Sequential.forward reads it: named_children() skips a repeated module
            open_.append((name, layer, iter(list(layer._modules.items()))))

    visit("", module)
    while open_:
        name, sequential, items = open_[-1]
        child_name, child = next(items, (None, None))
        if child_name is None:
            open_.pop()
            inside.discard(id(sequential))
            continue
        full = f"{name}.{child_name}" if name else child_name
        if not isinstance(child, torch.nn.Module):
            raise ValueError(f"from_torch: layer {full!r} is {child!r:.60}, not a module")
        visit(full, child)
    return layers


def _check_root(module: Any, torch) -> None:
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"from_torch needs a torch.nn.Module, got {type(module).__name__}: {module!r:.60}"
        )
    if type(module) not in (torch.nn.Sequential, torch.nn.Linear):
        raise ValueError(
            f"from_torch reads a torch.nn.Sequential of Linear layers and activations, got a "
            f"{_kind(module, torch)}: its own forward() decides how its layers combine, which "
            "cannot be read from it. Put its layers in a torch.nn.Sequential"
        )


def _check_linear(name: str, layer: Any, before: tuple[str, Any] | None, torch) -> None:
    """A Linear that computes x @ weight.T + bias with the sizes it declares, in real numbers."""
    if layer.bias is None:
        raise ValueError(
            f"from_torch: layer {name!r} (Linear without bias) is not supported: every "
            "backprop neuron has a bias (build the Linear with bias=True)"
        )
    n_in, n_out = layer.in_features, layer.out_features
    if n_in < 1 or n_out < 1:  # torch allows a Linear of zero features; a Neuron has inputs
        raise ValueError(
            f"from_torch: layer {name!r} (Linear({n_in}, {n_out})) has no "
            f"{'inputs' if n_in < 1 else 'outputs'}: every backprop layer has at least one "
            "neuron, and every neuron at least one input"
        )
    for what, tensor, shape in (
        ("weight", layer.weight, (n_out, n_in)),
        ("bias", layer.bias, (n_out,)),
    ):
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(
                f"from_torch: layer {name!r} (Linear({n_in}, {n_out})) has a {what} of shape "
                f"{got}, not {shape}"
            )
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
            raise ValueError(
                f"from_torch: layer {name!r} has a {what} of type {type(tensor).__name__}: a "
                "tensor subclass can compute otherwise; use a plain tensor or Parameter"
            )
        if not tensor.dtype.is_floating_point:
            raise ValueError(
                f"from_torch: layer {name!r} has a {what} of dtype {tensor.dtype}: from_torch "
                "reads real floating-point weights (float16, bfloat16, float32, float64)"
            )
        if tensor.layout != torch.strided or tensor.is_meta:
            where = "on the meta device (no values)" if tensor.is_meta else f"{tensor.layout}"
            raise ValueError(f"from_torch: layer {name!r} has a {what} {where}: use dense values")
    if before is not None and n_in != before[1].out_features:
        raise ValueError(
            f"from_torch: layer {name!r} takes {n_in} inputs, but the layer "
            f"before it, {before[0]!r}, gives {before[1].out_features}"
        )


def _read_layers(layers: list[tuple[str, Any]], torch) -> tuple[list[tuple[str, Any]], list[str]]:
    """The Linear layers and each one's activation, refusing any other layer by name."""
    linears: list[tuple[str, Any]] = []
    activations: list[str] = []
    named_activation: list[bool] = []  # did a module (not the default 'linear') set it?
    for name, layer in layers:
        kind = type(layer).__name__
        if type(layer) is torch.nn.Linear:
            _check_linear(name, layer, linears[-1] if linears else None, torch)
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
                f"from_torch: layer {name!r} ({_kind(layer, torch)}) is not supported: a backprop "
                "MLP is torch.nn.Linear layers, each followed by Tanh, ReLU, Sigmoid or nothing "
                "(linear)"
            )
    if not linears:
        raise ValueError("from_torch: the module has no Linear layer")
    return linears, activations


def _check_size(linears: list[tuple[str, Any]]) -> None:
    """The model's size against the limit a model file has, before anything is built: each
    parameter takes about 200 bytes as a Value."""
    count = sum((linear.in_features + 1) * linear.out_features for _, linear in linears)
    if count > serialize.MAX_PARAMETERS:
        raise ValueError(
            f"from_torch: the module has {count:,} parameters, over the limit of "
            f"{serialize.MAX_PARAMETERS:,} (backprop.serialize.MAX_PARAMETERS; raise it to "
            "convert a bigger model: each parameter takes about 200 bytes as a Value)"
        )


def _read_weights(name: str, linear: Any, torch) -> tuple[list[list[float]], list[float]]:
    w = linear.weight.detach().to(device="cpu", dtype=torch.float64)
    b = linear.bias.detach().to(device="cpu", dtype=torch.float64)
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise ValueError(f"from_torch: layer {name!r} holds a weight that is nan or infinite")
    return w.tolist(), b.tolist()


def from_torch(module: torch.nn.Module) -> MLP:
    """The MLP with the weights of a torch module of MLP shape (a copy, in float64).

    The module is a ``torch.nn.Sequential`` (nested ones are read through) of ``Linear``
    layers with biases, each followed by at most one ``Tanh``, ``ReLU``, ``Sigmoid`` or
    ``Identity``, or a single ``Linear``: those classes exactly, with real floating-point
    weights. Anything else is refused with a ValueError naming the first layer it cannot read:
    other layers (convolutions, batch norm, dropout), a subclass (its own ``forward()`` may
    compute something else), a module with a forward or backward hook (or a global one), a
    ``forward`` replaced on the instance, complex or integer weights, more parameters than
    ``backprop.serialize.MAX_PARAMETERS``.
    """
    torch = import_torch("from_torch")
    _check_root(module, torch)
    _check_no_global_hooks(torch)
    linears, activations = _read_layers(_flatten(module, torch), torch)
    _check_size(linears)
    weights = [_read_weights(name, linear, torch) for name, linear in linears]
    nin = linears[0][1].in_features
    # seed=0: the initial weights are overwritten, and the user's global random is left alone
    model = MLP(nin, [lin.out_features for _, lin in linears], activation=activations, seed=0)
    for layer, (rows, biases) in zip(model.layers, weights):
        for neuron, row, bias in zip(layer.neurons, rows, biases):
            for w, x in zip(neuron.w, row):
                w.data = x
            neuron.b.data = bias
    return model
