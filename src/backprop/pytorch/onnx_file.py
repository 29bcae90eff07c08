"""``backprop export --to onnx``: the model as an ONNX file, through ``torch.onnx.export``."""

from __future__ import annotations

from .._optional import require
from ..nn import MLP
from .convert import _check_mlp, _dtype, to_torch

__all__ = ["onnx_bytes"]


def onnx_bytes(model: MLP, dtype: str = "float64") -> bytes:
    """The model as an ONNX file through ``torch.onnx.export``: input "input" of shape
    (batch, nin), output "output" of shape (batch, nout), any batch size."""
    model = _check_mlp(model, "onnx_bytes")
    require("exporting to ONNX", "torch", "onnx")
    import io
    import warnings

    import onnx
    import torch

    module = to_torch(model, dtype).eval()
    example = torch.zeros(1, model.sizes[0], dtype=_dtype(torch, dtype))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.13's default exporter needs onnxscript; the TorchScript one it deprecates
        # handles Linear and activations exactly, with only torch and onnx installed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            dynamo=False,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data
