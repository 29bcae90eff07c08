"""``backprop export --to python``: a standalone PyTorch script (torch only, never backprop)
that rebuilds the model and prints its predictions as ``backprop predict`` does."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._optional import shown
from ..nn import MLP
from ..serialize import prediction_task
from .convert import _TORCH_ACTIVATION, _check_mlp, _layer_weights

__all__ = ["python_script", "shell_word"]


def _objective(model: MLP, metadata: dict[str, Any]) -> tuple[str, bool, list]:
    """(loss, binary, classes) as ``backprop predict`` reads them from a model's metadata."""
    loss, classes = prediction_task("python_script", model.sizes[-1], metadata)
    return loss, loss != "cross-entropy", list(classes)


def _example_rows(nin: int) -> list[list[float]]:
    import random

    rng = random.Random(0)
    return [[round(rng.uniform(-2.0, 2.0), 2) for _ in range(nin)] for _ in range(4)]


def _check_examples(examples: Sequence[Sequence[float]] | None, nin: int) -> list[list[float]]:
    if examples is None:
        return _example_rows(nin)
    rows = []
    for i, row in enumerate(examples):
        try:
            if isinstance(row, (str, bytes)):
                raise TypeError
            rows.append([float(x) for x in row])
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"example row {i} is not a row of numbers: {shown(row)}") from None
    if not rows:
        raise ValueError("examples holds no rows")
    for i, row in enumerate(rows):
        if len(row) != nin:
            raise ValueError(f"example row {i} has {len(row)} numbers, the model takes {nin}")
        if not all(map(math.isfinite, row)):
            raise ValueError(f"example row {i} holds a number that is not finite: {shown(row)}")
    return rows


def _check_options(model: MLP, weights: str, weights_file: str | None, dtype: str) -> None:
    if weights not in ("inline", "json"):
        raise ValueError(f"weights must be 'inline' or 'json', got {shown(weights)}")
    if weights == "json":
        if not weights_file:
            raise ValueError("weights='json' needs weights_file, the model file beside the script")
        if (
            not isinstance(weights_file, str)
            or "\0" in weights_file
            or weights_file in (".", "..")
            or Path(weights_file).name != weights_file
        ):
            raise ValueError(
                f"weights_file must be a file name beside the script (no folder), got "
                f"{weights_file!r}"
            )
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {shown(dtype)}")
    if weights == "inline":
        for k, (rows, biases) in enumerate(_layer_weights(model)):
            if not all(math.isfinite(x) for row in [*rows, biases] for x in row):
                raise ValueError(f"layer {k} of the model holds a weight that is nan or infinite")


def _label_column(metadata: dict[str, Any], nin: int) -> int:
    """Where the label is in a CSV row of nin + 1 cells (the last, unless the metadata says)."""
    column = metadata.get("label_column")
    if isinstance(column, bool) or not isinstance(column, int) or not -nin - 1 <= column <= nin:
        return -1
    return column


def _docstring_text(text: str) -> str:
    """text as it may stand in a triple-quoted docstring and read as itself: backslashes and
    quotes escaped, anything unprintable (a newline, NUL, a lone surrogate) as its escape. A
    name the user chose must never end the docstring and run as code."""
    return "".join(
        "\\" + c if c in '\\"' else c if c.isprintable() else repr(c)[1:-1] for c in text
    )


def shell_word(path: str | Path) -> str:
    """path as one word a POSIX shell reads back as that path, to show in a command to copy:
    shlex.quote's quoting, './' before a relative name that starts with '-' (python3 would
    read -m.py as its -m option), and bash's $'...' with escapes for a name holding anything
    unprintable (a newline, an escape sequence, a byte that is not UTF-8), which a terminal
    must not receive raw and quotes cannot carry."""
    text = str(path)
    if text.startswith("-"):
        text = "./" + text
    if text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(_ansi_c(c) for c in text) + "'"


def _ansi_c(c: str) -> str:
    """One character inside bash's $'...': a byte that was not UTF-8 (read as a lone
    surrogate, U+DC80-U+DCFF) back as that byte, anything else unprintable as its code."""
    if c in "\\'":
        return "\\" + c
    if c.isprintable():
        return c
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\U{code:08x}"


def _docstring_lines(model: MLP, source: str, name: str) -> list[str]:
    about = _docstring_text(f"{source[:1].upper()}{source[1:]}")
    command = _docstring_text(f"python3 {shell_word(name)}")
    return [
        f'"""{about}, rebuilt in PyTorch: an MLP {model.sizes}, {model.activations}.',
        "",
        "Written by `backprop export --to python`. It needs only torch:",
        "",
        f"    {command}             # predictions for the example rows below",
        f"    {command} points.csv  # predictions for every row of a CSV",
        "",
        "It prints what `backprop predict` prints: a CSV of the predicted class and the scores.",
        '"""',
        "",
        "import csv",
        "import sys",
    ]


def _model_lines(model: MLP, dtype: str) -> tuple[list[str], list[int]]:
    """The Sequential, and where each of its Linear layers is in it."""
    sizes = model.sizes
    layers, linear_at = [], []
    for k, act in enumerate(model.activations):
        linear_at.append(len(layers))
        layers.append(
            f"    torch.nn.Linear({sizes[k]}, {sizes[k + 1]}),  # layer {k}: "
            f"{sizes[k + 1]} neuron{'s' if sizes[k + 1] > 1 else ''} of {sizes[k]} inputs"
        )
        if _TORCH_ACTIVATION[act] is not None:
            layers.append(f"    torch.nn.{_TORCH_ACTIVATION[act]}(),")
    lines = [
        "",
        "import torch",
        "",
        f"DTYPE = torch.{dtype}  # backprop computes in float64",
        "",
        "# backprop's Layer(nin, nout) is a Linear(nin, nout) followed by its activation",
        "model = torch.nn.Sequential(",
        *layers,
        ").to(DTYPE)",
        "",
    ]
    return lines, linear_at


def _inline_weight_lines(model: MLP, linear_at: list[int]) -> list[str]:
    lines = ["# row j of a Linear's weight is neuron j's w, bias[j] its b", "with torch.no_grad():"]
    for k, (w_rows, biases) in enumerate(_layer_weights(model)):
        at = linear_at[k]
        lines.append(f"    model[{at}].weight.copy_(torch.tensor([")
        for j, row in enumerate(w_rows):
            lines.append(f"        [{', '.join(map(repr, row))}],  # neuron {j}")
        lines.append("    ], dtype=DTYPE))")
        numbers = ", ".join(map(repr, biases))
        lines.append(f"    model[{at}].bias.copy_(torch.tensor([{numbers}], dtype=DTYPE))")
    return lines


def _json_weight_lines(weights_file: str, linear_at: list[int]) -> list[str]:
    return [
        "# the weights, from the backprop model file beside this script: parameter",
        '# "layers.L.neurons.J.w.K" is weight[J, K] of layer L\'s Linear, "...J.b" its bias[J]',
        f"WEIGHTS = json.loads(Path(__file__).with_name({weights_file!r}).read_text())",
        'weights = WEIGHTS["weights"]',
        f"LINEARS = [model[i] for i in {linear_at!r}]",
        "with torch.no_grad():",
        "    for layer, linear in enumerate(LINEARS):",
        "        for j in range(linear.out_features):",
        "            for k in range(linear.in_features):",
        '                linear.weight[j, k] = weights[f"layers.{layer}.neurons.{j}.w.{k}"]',
        '            linear.bias[j] = weights[f"layers.{layer}.neurons.{j}.b"]',
    ]


def _classes_lines(loss: str, binary: bool, classes: list, rows: list[list[float]]) -> list[str]:
    rule = (
        "the second class when the score is above 0, else the first"
        if binary
        else "the class with the highest score (the first of equal ones)"
    )
    return [
        "",
        f"# the classes, in the model's order. The loss was {loss!r}, so a row's class is",
        f"# {rule}",
        f"CLASSES = {[str(c) for c in classes]!r}",
        "",
        "# example rows: replace them, or name a CSV on the command line",
        "EXAMPLES = [",
        *[f"    [{', '.join(map(repr, row))}]," for row in rows],
        "]",
    ]


def _prediction_lines(nin: int, label_column: int, binary: bool, header: list[str]) -> list[str]:
    if binary:
        choose = "    return CLASSES[1] if scores[0] > 0 else CLASSES[0]"
    else:
        choose = "    return CLASSES[max(range(len(scores)), key=scores.__getitem__)]"
    return [
        "",
        "",
        "def read_rows(path):",
        f'    """Rows of {nin} numbers; a header is skipped, a label column dropped."""',
        "    with open(path, newline='') as f:",
        "        table = [row for row in csv.reader(f) if row]",
        "    rows = []",
        "    for i, row in enumerate(table):",
        f"        if len(row) == {nin + 1}:",
        f"            del row[{label_column}]",
        "        try:",
        "            numbers = [float(x) for x in row]",
        "        except ValueError:",
        "            if i == 0:",
        "                continue  # the header",
        "            raise",
        f"        if len(numbers) != {nin}:",
        "            sys.exit(",
        '                f"{path}: row {i + 1} has {len(row)} numbers; "',
        f'                "the model takes {nin}"',
        "            )",
        "        rows.append(numbers)",
        "    if not rows:",
        '        sys.exit(f"{path}: no rows of numbers")',
        "    return rows",
        "",
        "",
        "def predict(scores):",
        choose,
        "",
        "",
        "def main():",
        "    rows = read_rows(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES",
        "    with torch.no_grad():",
        "        outputs = model(torch.tensor(rows, dtype=DTYPE)).tolist()  # (rows, outputs)",
        "    writer = csv.writer(sys.stdout, lineterminator='\\n')",
        f"    writer.writerow({header!r})",
        "    for scores in outputs:",
        "        writer.writerow([predict(scores)] + [repr(s) for s in scores])",
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]


def python_script(
    model: MLP,
    metadata: dict[str, Any] | None = None,
    *,
    weights: str = "inline",
    weights_file: str | None = None,
    examples: Sequence[Sequence[float]] | None = None,
    dtype: str = "float64",
    source: str = "a backprop model",
    name: str = "model.py",
) -> str:
    """A standalone PyTorch script (it imports torch, never backprop) that rebuilds the model
    and prints its predictions as ``backprop predict`` does: for the rows of a CSV named on its
    command line, or for ``examples``.

    ``weights='inline'`` writes every weight into the script; ``'json'`` makes it read them
    from the backprop model file ``weights_file`` (a name beside the script). ``source`` (what
    the model is) and ``name`` (the script's file name) go into its docstring, escaped: every
    name a user chose reads in the script as text, never as code.
    """
    model = _check_mlp(model, "python_script")
    metadata = dict(metadata or {})
    _check_options(model, weights, weights_file, dtype)
    loss, binary, classes = _objective(model, metadata)
    nin = model.sizes[0]
    rows = _check_examples(examples, nin)
    header = ["prediction", "score"] if binary else ["prediction"] + [f"score_{c}" for c in classes]

    lines = _docstring_lines(model, str(source), str(name))
    if weights == "json":
        lines += ["import json", "from pathlib import Path"]
    model_lines, linear_at = _model_lines(model, dtype)
    lines += model_lines
    if weights == "inline":
        lines += _inline_weight_lines(model, linear_at)
    else:
        lines += _json_weight_lines(weights_file, linear_at)
    lines += _classes_lines(loss, binary, classes, rows)
    lines += _prediction_lines(nin, _label_column(metadata, nin), binary, header)
    return "\n".join(lines)
