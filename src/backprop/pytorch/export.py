"""``export``: a model written to a file in one of the formats ``backprop export`` knows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..nn import MLP
from .convert import _check_mlp
from .onnx_file import onnx_bytes
from .safetensors_file import safetensors_bytes
from .script import python_script

__all__ = ["export", "FORMATS"]

FORMATS = {
    "python": ".py",  # a standalone PyTorch script (torch only, never backprop)
    "torch": ".safetensors",  # the torch state_dict, never a pickle
    "onnx": ".onnx",  # through torch.onnx.export
}


def export(
    model: MLP,
    path: str | Path,
    to: str,
    *,
    metadata: dict[str, Any] | None = None,
    dtype: str = "float64",
    weights: str = "inline",
    examples: Sequence[Sequence[float]] | None = None,
    model_file: str | Path | None = None,
) -> list[Path]:
    """Write the model to path in format ``to`` ('python', 'torch' or 'onnx'); return the
    files written. A python script with ``weights='json'`` reads its weights from the backprop
    model file beside it: ``model_file`` when it is there already, else ``<script>.json``,
    written now. Nothing is written through a symbolic link, and nothing is written at all
    when any of the files cannot be."""
    from ..serialize import write_atomic

    model = _check_mlp(model, "export")
    if to not in FORMATS:
        raise ValueError(f"unknown format {to!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if path.suffix.lower() != FORMATS[to]:
        raise ValueError(f"{path}: a {to} export's file name must end in {FORMATS[to]}")
    _check_writable(path)
    if to == "python":
        return _export_script(model, path, metadata, dtype, weights, examples, model_file)
    if to == "torch":
        data = safetensors_bytes(model, metadata, dtype)
    else:
        data = onnx_bytes(model, dtype)
    write_atomic(path, data)
    return [path]


def _check_writable(path: Path) -> None:
    if path.is_symlink():
        raise ValueError(
            f"{path} is a symbolic link: not writing through it (give the file's own path, or "
            "remove the link)"
        )
    if path.is_dir():
        raise ValueError(f"{path} is a folder: name the file to write")


def _export_script(model, path, metadata, dtype, weights, examples, model_file) -> list[Path]:
    """The python script, and its weights' JSON beside it when it needs one written."""
    from ..serialize import save, write_text_atomic

    weights_file, companion = None, None
    if weights == "json":
        here = path.resolve().parent
        if model_file is not None and Path(model_file).resolve().parent == here:
            weights_file = Path(model_file).name  # already beside the script
        else:
            companion = path.with_suffix(".json")
            if companion.exists() or companion.is_symlink():
                raise ValueError(
                    f"{companion} exists: the script's weights would overwrite it (choose "
                    "another output name, or put the model file beside the script)"
                )
            weights_file = companion.name
    source = f"the backprop model {Path(model_file).name}" if model_file else "a backprop model"
    text = python_script(
        model, metadata, weights=weights, weights_file=weights_file, examples=examples,
        dtype=dtype, source=source, name=path.name,
    )  # fmt: skip
    if companion is not None:
        save(model, companion, metadata=metadata)
    write_text_atomic(path, text)
    return [path] if companion is None else [path, companion]
