"""Optional packages (torch, safetensors, onnx): imported only where needed, with an error that
says what to install.

It sits on the ground floor so that every layer that needs torch (compiled mode's torch
backend, the PyTorch bridge) asks here, and ``import backprop`` never pays for torch.
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["MissingDependency", "require", "import_torch", "check_device", "shown", "INSTALL"]

# the extras come from the checkout: `backprop` on the package index is another project
INSTALL = (
    "python3 -m pip install --break-system-packages '.[torch]' in the backprop repository folder"
)
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


def import_torch(what: str):
    """The torch module, or MissingDependency saying that ``what`` needs it."""
    require(what, "torch")
    import torch

    return torch


def shown(value: object, limit: int = 80) -> str:
    """repr(value) for an error message (which echoes untrusted input), cut to about ``limit``
    characters with a mark that says so (a ``{value!r:.80}`` cut drops the closing quote and
    says nothing); an int past Python's 4,300-digit str() limit is given by its size."""
    try:
        text = repr(value)
    except ValueError:  # an int (or a list holding one) over Python's str() digit limit
        if isinstance(value, int):
            return f"an int of {value.bit_length():,} bits"
        return f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else f"{text[: max(limit - 20, 10)]}... ({len(text):,} chars)"


def check_device(device: Any):
    """A torch.device that holds float64 tensors, or a ValueError saying why not."""
    torch = import_torch("running on a torch device")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"unknown device {shown(device)}: use 'cpu', or 'cuda' (or 'cuda:N') for a GPU"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {shown(device)}: CUDA is not available here (this torch is "
            f"{torch.__version__}, and it sees no GPU): use device='cpu'"
        )
    if dev.type == "meta":  # shapes without numbers: every result would be read from nothing
        raise ValueError(
            f"device {shown(device)} holds no numbers (a meta tensor is a shape only): use "
            "device='cpu', or 'cuda' for a GPU"
        )
    try:  # a number must get there and come back
        torch.full((1,), 1.5, dtype=torch.float64, device=dev).cpu().item()
    except (RuntimeError, TypeError, NotImplementedError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        reason = reason if len(reason) <= 160 else f"{reason[:150]}..."
        raise ValueError(f"device {shown(device)} cannot hold float64 tensors: {reason}") from None
    return dev
