"""From backprop to PyTorch and back: to_torch, from_torch, check_torch, and the export formats.

- ``to_torch(mlp)`` gives the equivalent ``torch.nn.Sequential`` (float64 by default);
  ``from_torch(module)`` reads such a Sequential back into an ``MLP`` (convert.py).
- ``check_torch(root)`` replays a graph of Values node by node with torch float64 0-d tensors
  and compares every node's data and grad, in ulps: a ``TorchCheck`` report (check.py,
  report.py).
- ``python_script`` (script.py), ``safetensors_bytes`` (safetensors_file.py) and ``onnx_bytes``
  (onnx_file.py) are what ``backprop export`` writes; ``export`` writes them to a file
  (export.py).

torch, safetensors and onnx are optional (from the checkout:
``python3 -m pip install --break-system-packages '.[torch]'``) and imported inside the
functions that need them (backprop._optional), so that ``import backprop`` never pays for torch.
"""

from __future__ import annotations

from .._optional import INSTALL, MissingDependency, check_device, require
from .check import check_torch
from .convert import from_torch, to_torch
from .export import FORMATS, export
from .onnx_file import onnx_bytes
from .report import Mismatch, NodeCheck, TorchCheck, ulps_apart
from .safetensors_file import load_safetensors, safetensors_bytes
from .script import python_script

__all__ = [
    "to_torch",
    "from_torch",
    "check_torch",
    "TorchCheck",
    "NodeCheck",
    "Mismatch",
    "MissingDependency",
    "require",
    "check_device",
    "export",
    "FORMATS",
    "python_script",
    "safetensors_bytes",
    "onnx_bytes",
    "load_safetensors",
    "ulps_apart",
    "INSTALL",
]
