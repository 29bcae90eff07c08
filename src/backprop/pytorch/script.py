"""``backprop export --to python``: a standalone PyTorch script (torch only, never backprop)
that rebuilds the model and prints its predictions as ``backprop predict`` does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..nn import MLP
from .convert import _TORCH_ACTIVATION, _check_mlp, _layer_weights

__all__ = ["python_script"]


def _objective(model: MLP, metadata: dict[str, Any]) -> tuple[str, bool, list]:
    """(loss, binary, classes) as ``backprop predict`` reads them from a model's metadata."""
    n_out = model.sizes[-1]
    loss = metadata.get("loss") or ("hinge" if n_out == 1 else "cross-entropy")
    if loss not in ("hinge", "bce", "mse", "cross-entropy"):
        raise ValueError(f"unknown loss {loss!r} in the model's metadata")
    binary = loss != "cross-entropy"
    classes = list(metadata.get("classes") or range(2 if n_out == 1 else n_out))
    if len(classes) != (2 if binary else n_out):
        raise ValueError(
            f"the metadata lists {len(classes)} classes for a model with {n_out} output(s) and "
            f"loss {loss!r}"
        )
    return loss, binary, classes


def _example_rows(nin: int) -> list[list[float]]:
    import random

    rng = random.Random(0)
    return [[round(rng.uniform(-2.0, 2.0), 2) for _ in range(nin)] for _ in range(4)]


def _check_examples(examples: Sequence[Sequence[float]] | None, nin: int) -> list[list[float]]:
    if examples is None:
        return _example_rows(nin)
    rows = [list(map(float, row)) for row in examples]
    if not rows:
        raise ValueError("examples holds no rows")
    for i, row in enumerate(rows):
        if len(row) != nin:
            raise ValueError(f"example row {i} has {len(row)} numbers, the model takes {nin}")
        if not all(map(math.isfinite, row)):
            raise ValueError(f"example row {i} holds a number that is not finite: {row!r}")
    return rows


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
    from the backprop model file ``weights_file`` (a name beside the script).
    """
    model = _check_mlp(model, "python_script")
    metadata = dict(metadata or {})
    if weights not in ("inline", "json"):
        raise ValueError(f"weights must be 'inline' or 'json', got {weights!r}")
    if weights == "json" and not weights_file:
        raise ValueError("weights='json' needs weights_file, the model file beside the script")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    loss, binary, classes = _objective(model, metadata)
    sizes, acts = model.sizes, model.activations
    rows = _check_examples(examples, sizes[0])
    label_column = metadata.get("label_column")
    if not isinstance(label_column, int) or isinstance(label_column, bool):
        label_column = -1

    layers, linear_at = [], []
    for k, act in enumerate(acts):
        linear_at.append(len(layers))
        layers.append(
            f"    torch.nn.Linear({sizes[k]}, {sizes[k + 1]}),  # layer {k}: "
            f"{sizes[k + 1]} neuron{'s' if sizes[k + 1] > 1 else ''} of {sizes[k]} inputs"
        )
        if _TORCH_ACTIVATION[act] is not None:
            layers.append(f"    torch.nn.{_TORCH_ACTIVATION[act]}(),")
    lines = [
        f'"""{source[0].upper()}{source[1:]}, rebuilt in PyTorch: an MLP {sizes}, {acts}.',
        "",
        "Written by `backprop export --to python`. It needs only torch:",
        "",
        f"    python3 {name}             # predictions for the example rows below",
        f"    python3 {name} points.csv  # predictions for every row of a CSV",
        "",
        "It prints what `backprop predict` prints: a CSV of the predicted class and the scores.",
        '"""',
        "",
        "import csv",
        "import sys",
    ]
    if weights == "json":
        lines += ["import json", "from pathlib import Path"]
    lines += [
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
    if weights == "inline":
        lines.append("# row j of a Linear's weight is neuron j's w, bias[j] its b")
        lines.append("with torch.no_grad():")
        for k, (w_rows, biases) in enumerate(_layer_weights(model)):
            at = linear_at[k]
            lines.append(f"    model[{at}].weight.copy_(torch.tensor([")
            for j, row in enumerate(w_rows):
                lines.append(f"        [{', '.join(map(repr, row))}],  # neuron {j}")
            lines.append("    ], dtype=DTYPE))")
            numbers = ", ".join(map(repr, biases))
            lines.append(f"    model[{at}].bias.copy_(torch.tensor([{numbers}], dtype=DTYPE))")
    else:
        lines += [
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
    rule = (
        "the second class when the score is above 0, else the first"
        if binary
        else "the class with the highest score (the first of equal ones)"
    )
    header = ["prediction", "score"] if binary else ["prediction"] + [f"score_{c}" for c in classes]
    lines += [
        "",
        f"# the classes, in the model's order. The loss was {loss!r}, so a row's class is",
        f"# {rule}",
        f"CLASSES = {[str(c) for c in classes]!r}",
        "",
        "# example rows: replace them, or name a CSV on the command line",
        "EXAMPLES = [",
        *[f"    [{', '.join(map(repr, row))}]," for row in rows],
        "]",
        "",
        "",
        "def read_rows(path):",
        f'    """Rows of {sizes[0]} numbers; a header is skipped, a label column dropped."""',
        "    with open(path, newline='') as f:",
        "        table = [row for row in csv.reader(f) if row]",
        "    rows = []",
        "    for i, row in enumerate(table):",
        f"        if len(row) == {sizes[0] + 1}:",
        f"            del row[{label_column}]",
        "        try:",
        "            rows.append([float(x) for x in row])",
        "        except ValueError:",
        "            if i > 0:",
        "                raise",
        "    return rows",
        "",
        "",
        "def predict(scores):",
    ]
    if binary:
        lines.append("    return CLASSES[1] if scores[0] > 0 else CLASSES[0]")
    else:
        lines.append("    return CLASSES[max(range(len(scores)), key=scores.__getitem__)]")
    lines += [
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
    return "\n".join(lines)
