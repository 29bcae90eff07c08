"""`backprop export --model m.json --to python|torch|onnx --out PATH`: a model in PyTorch."""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path

from .common import CommandError, _output_path

__all__ = ["add_export_command", "cmd_export"]


def cmd_export(args: argparse.Namespace) -> int:
    """Write a model saved by `backprop train --save` in one of three formats:

      python  a standalone, readable PyTorch script (torch only, never backprop) that rebuilds
              the model with its weights and prints its predictions, as `backprop predict`
              does, for the example rows in it or for a CSV named on its command line
      torch   the torch state_dict as a .safetensors file (never a pickle)
      onnx    an ONNX file, through torch.onnx.export (input "input": batch x features)

    The torch and onnx formats need PyTorch and safetensors or onnx: in the backprop repository
    folder, run python3 -m pip install --break-system-packages '.[torch]'. Example:

      backprop export --model model.json --to python --out model.py && python3 model.py
    """
    try:
        return _export(args)
    except OSError as e:  # a name too long, a loop of links, a folder it may not read: one line
        where = f"{_shown(e.filename)}: " if e.filename is not None else ""
        raise CommandError(f"{where}{e.strerror or e}") from None


def _export(args: argparse.Namespace) -> int:
    from .._optional import MissingDependency
    from ..pytorch import FORMATS, export
    from ..pytorch.script import shell_word
    from ..serialize import ModelFileError, load_with_metadata

    suffix = FORMATS[args.to]
    if Path(args.out).suffix.lower() != suffix and not Path(args.out).is_dir():
        raise CommandError(
            f"--out {args.out!r}: --to {args.to} writes a file whose name ends in {suffix}"
        )
    # the checks every command makes: a folder that exists and takes files, no input overwritten
    inputs = [("--model", args.model), ("--examples", args.examples)]
    for _option, value in inputs:  # a loop of links: an OSError here, not resolve()'s error
        if value is not None:
            try:
                os.stat(value)
            except (FileNotFoundError, NotADirectoryError):
                pass  # the reader says so, in its words
    out = _output_path("--out", args.out, (suffix,), inputs)
    if args.to != "python":
        for option, value in (("--weights", args.weights), ("--examples", args.examples)):
            if value is not None:
                raise CommandError(f"{option} applies to --to python only")
    try:
        model, metadata = load_with_metadata(args.model)
    except ModelFileError as e:
        raise CommandError(str(e)) from None
    examples = None
    if args.examples is not None:
        from ..data import CSVError, read_features_csv

        try:
            examples = read_features_csv(args.examples, model.sizes[0])
        except CSVError as e:
            raise CommandError(str(e)) from None
    try:
        written = export(
            model,
            out,
            args.to,
            metadata=metadata,
            dtype=args.dtype,
            weights=args.weights or "inline",
            examples=examples,
            model_file=args.model,
        )
    except MissingDependency as e:
        raise CommandError(str(e)) from None
    except ValueError as e:
        raise CommandError(str(e)) from None
    sizes = model.sizes
    what = {"python": "a PyTorch script", "torch": "a state_dict", "onnx": "an ONNX model"}
    print(f"wrote {what[args.to]} ({args.dtype}) of the MLP {sizes} to {_shown(written[0])}")
    if len(written) > 1:
        print(f"wrote its weights beside it, to {_shown(written[1])}")
    if args.to == "python":
        print(f"run it with: python3 {shell_word(written[0])}  (it needs only torch)")
    return 0


def _shown(text: object) -> str:
    """text for the terminal: a file name's unprintable characters (a newline, an escape
    sequence) as their Python escapes, so that a name cannot forge or hide output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def add_export_command(sub) -> None:
    export = sub.add_parser(
        "export",
        help="write a saved model as a PyTorch script, a .safetensors state_dict or ONNX",
        description=inspect.cleandoc(cmd_export.__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--model", required=True, metavar="PATH.json", help="a model saved by train --save"
    )
    export.add_argument(
        "--to", required=True, choices=["python", "torch", "onnx"], help="the format to write"
    )
    export.add_argument(
        "--out", required=True, metavar="PATH", help="the file: .py, .safetensors or .onnx"
    )
    export.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="the weights' and the computation's type (float64, backprop's own)",
    )
    export.add_argument(
        "--weights",
        choices=["inline", "json"],
        help="python: write the weights into the script (inline, the default), or make it read "
        "them from the model's JSON beside it (json)",
    )
    export.add_argument(
        "--examples",
        metavar="PATH.csv",
        help="python: the rows the script predicts when run without a CSV (default: 4 made up)",
    )
    export.set_defaults(run=cmd_export)
