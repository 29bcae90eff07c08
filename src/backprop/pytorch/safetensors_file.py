"""``backprop export --to torch``: the state_dict as a .safetensors file (never a pickle), and
reading one back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._optional import require
from ..nn import MLP
from .convert import _check_mlp, from_torch, to_torch

__all__ = ["safetensors_bytes", "load_safetensors"]


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
