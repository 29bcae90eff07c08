"""``backprop export --to torch``: the state_dict as a .safetensors file (never a pickle), and
reading one back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import serialize
from .._optional import require
from ..nn import MLP
from ..serialize import _short
from .convert import _TORCH_ACTIVATION, _check_mlp, from_torch, to_torch

__all__ = ["safetensors_bytes", "load_safetensors"]


def _architecture(model: MLP) -> dict[str, Any]:
    return {"type": "MLP", **model.architecture()}


def safetensors_bytes(
    model: MLP, metadata: dict[str, Any] | None = None, dtype: str = "float64"
) -> bytes:
    """The ``to_torch(model).state_dict()`` as a .safetensors file (never a pickle), with the
    architecture and backprop's metadata as JSON in its header. The same model and metadata
    give the same bytes."""
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
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"metadata is not JSON-serializable ({e})") from None
    return _in_order(save(state, metadata=header), list(header))


def _in_order(data: bytes, keys: list[str]) -> bytes:
    """The file with its header's metadata keys in the given order: safetensors writes them
    from a hash map, in an order that changes from one process to the next."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata = header.pop("__metadata__")
    header = {"__metadata__": {k: metadata[k] for k in keys}, **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as safetensors keeps it
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def _expected_shapes(arch: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state_dict's names and shapes of to_torch's Sequential for an architecture."""
    sizes = [arch["nin"], *arch["nouts"]]
    shapes: dict[str, tuple[int, ...]] = {}
    at = 0
    for k, act in enumerate(arch["activation"]):
        shapes[f"{at}.weight"] = (sizes[k + 1], sizes[k])
        shapes[f"{at}.bias"] = (sizes[k + 1],)
        at += 1 if _TORCH_ACTIVATION[act] is None else 2
    return shapes


def _read_header(path: Path) -> dict[str, Any]:
    """The architecture in a backprop export's header, checked (fields, and the size against
    serialize.MAX_PARAMETERS) before anything is built."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a corrupt file
        raise ValueError(f"{path}: not a readable .safetensors file ({_reason(e)})") from None
    if header.get("format") != "backprop-mlp":
        raise ValueError(f"{path}: not written by backprop export (no backprop-mlp header)")

    def fail(message: str):
        raise ValueError(f"{path}: its header's architecture is not readable ({message})")

    try:
        arch = json.loads(header.get("architecture", ""))
    except (ValueError, RecursionError) as e:
        fail(_reason(e))
    if not isinstance(arch, dict):
        fail(f"not an object: {_short(arch)}")
    serialize._check_architecture(arch, fail)
    expected = _expected_shapes(arch)
    if shapes != expected:
        raise ValueError(
            f"{path}: the weights do not match the architecture: it holds "
            f"{_short(shapes)}, the architecture needs {_short(expected)}"
        )
    for name, dtype in dtypes.items():
        if dtype not in ("F64", "F32", "F16", "BF16"):
            raise ValueError(f"{path}: tensor {_short(name)} is {dtype}, not real floating point")
    return arch


def load_safetensors(path: str | Path) -> MLP:
    """The MLP in a .safetensors file written by ``backprop export --to torch``.

    The file is untrusted input: its size (serialize.MAX_FILE_BYTES), its architecture
    (serialize.MAX_PARAMETERS) and its tensors' names, shapes and dtypes are checked against
    each other before any model is built."""
    require("reading a .safetensors file", "torch", "safetensors")
    from safetensors.torch import load_file

    path = Path(path)
    _check_regular_file(path)
    arch = _read_header(path)
    try:
        state = load_file(str(path))
    except Exception as e:
        raise ValueError(f"{path}: not a readable .safetensors file ({_reason(e)})") from None
    shell = MLP(arch["nin"], arch["nouts"], activation=arch["activation"], seed=0)
    module = to_torch(shell)
    try:
        module.load_state_dict({k: v.to(module[0].weight.dtype) for k, v in state.items()})
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not match the architecture ({e})") from None
    try:
        return from_torch(module)
    except ValueError as e:  # a nan or infinite weight: say which file holds it
        raise ValueError(f"{path}: {str(e).removeprefix('from_torch: ')}") from None


def _check_regular_file(path: Path) -> None:
    """A file of at most serialize.MAX_FILE_BYTES, said in one line otherwise: a folder, a
    device (/dev/zero never ends), a name too long or a loop of links are not 'no such file'."""
    import os
    import stat

    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"{path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path}: is a folder, not a .safetensors file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file (a device, a pipe or a socket)")
    if info.st_size > serialize.MAX_FILE_BYTES:
        raise ValueError(
            f"{path}: {info.st_size:,} bytes, over the limit of "
            f"{serialize.MAX_FILE_BYTES:,} (backprop.serialize.MAX_FILE_BYTES)"
        )


def _reason(error: Exception) -> str:
    """What safetensors said, readable: its message, not a repr cut in the middle of it."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else f"{text[:185]}... ({len(text):,} chars)"
