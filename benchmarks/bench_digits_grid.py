"""Digits test accuracy over the configurations a held-out script might use: one hidden layer.

    python3 benchmarks/bench_digits_grid.py --lrs default        # fit's default lr (~30 min)
    python3 benchmarks/bench_digits_grid.py --lrs 0.05           # the default before default_lr
    python3 benchmarks/bench_digits_grid.py --hidden 16 --activations tanh --batch-sizes 32
    python3 benchmarks/bench_digits_grid.py --check              # the two shortcuts below hold

Every run is what a learner writes: ``MLP(64, [H, 10], ...)`` seeded with the seed, then
``fit(model, X, y, loss="cross-entropy", optimizer="adam", epochs=E, batch_size=B,
compile=True, seed=seed)`` on ``digits("train")``, with ``lr`` left out ("default") or given,
and the accuracy of the returned model on ``digits("test")``. With no schedule, the first E
epochs of a longer run are an E-epoch run, so each configuration trains once for the largest E
with the test split as ``validation_data`` (it changes nothing in training) and reads the test
accuracy after each E from ``history.val_accuracy``. ``--check`` confirms both shortcuts:
a separate E-epoch run's ``predict`` accuracy, and an eager run's, equal those figures.

Activations: ``tanh`` is MLP's default (every layer tanh, the output too), ``relu`` is
``activation="relu"`` (the output too), ``tanh/linear`` and ``relu/linear`` add
``output_activation="linear"``. The table shows, per configuration and E, the lowest and the
mean test accuracy over the seeds, with ``*`` where the lowest is under 95%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from backprop import MLP, fit
from backprop.data import digits
from backprop.train import accuracy, predict
from backprop.train.plan import default_lr

BAR = 0.95


def make_model(hidden: int, activation: str, seed: int) -> MLP:
    hidden_act, _, output_act = activation.partition("/")
    return MLP(64, [hidden, 10], activation=hidden_act, output_activation=output_act or None,
               seed=seed)  # fmt: skip


def run(hidden, activation, batch_size, lr, seed, epochs, data, compile=True) -> list[float]:
    """Test accuracy after each epoch of one fit (the test split as validation_data)."""
    (X, y), test = data
    model = make_model(hidden, activation, seed)
    history = fit(model, X, y, loss="cross-entropy", optimizer="adam", lr=lr, epochs=epochs,
                  batch_size=batch_size, seed=seed, compile=compile, progress=False,
                  validation_data=test)  # fmt: skip
    return history.val_accuracy


def test_accuracy(hidden, activation, batch_size, lr, seed, epochs, data, compile=True) -> float:
    """A run exactly as a held-out script writes it, measured with predict()."""
    (X, y), (X_test, y_test) = data
    model = make_model(hidden, activation, seed)
    fit(model, X, y, loss="cross-entropy", optimizer="adam", lr=lr, epochs=epochs,
        batch_size=batch_size, seed=seed, compile=compile, progress=False)  # fmt: skip
    return accuracy(predict(model, X_test, "cross-entropy", list(range(10))), y_test)


def check(data) -> None:
    """The shortcuts agree: a separate E-epoch run, and an eager one, give the same accuracy."""
    for hidden, act, bs, lr, epochs in [
        (16, "tanh", 32, None, 20),
        (32, "relu/linear", 64, None, 30),
    ]:
        curve = run(hidden, act, bs, lr, 1, 50, data)
        alone = test_accuracy(hidden, act, bs, lr, 1, epochs, data)
        print(f"H={hidden} {act} batch {bs}: epoch {epochs} of a 50-epoch run "
              f"{curve[epochs - 1]:.4f}, a {epochs}-epoch run {alone:.4f}")  # fmt: skip
    for hidden, act, bs, epochs in [(16, "tanh", 32, 4), (16, "relu/linear", 128, 6)]:
        compiled = run(hidden, act, bs, None, 0, epochs, data)
        eager = run(hidden, act, bs, None, 0, epochs, data, compile=False)
        print(f"H={hidden} {act} batch {bs}, {epochs} epochs: compiled "
              f"{' '.join(f'{a:.4f}' for a in compiled)}; eager "
              f"{' '.join(f'{a:.4f}' for a in eager)}")  # fmt: skip


def row(hidden, act, bs, lr_name, args, data) -> tuple[str, int]:
    """One configuration over the seeds: its table line and how many of its cells are under
    the bar."""
    lr = None if lr_name == "default" else float(lr_name)
    start = time.perf_counter()
    curves = []
    for seed in args.seeds:
        curves.append(run(hidden, act, bs, lr, seed, max(args.epochs), data))
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as out:
                found = dict(hidden=hidden, activation=act, batch_size=bs, lr=lr_name,
                             seed=seed, val_accuracy=curves[-1])  # fmt: skip
                out.write(json.dumps(found) + "\n")
    cells, below = [], 0
    for e in args.epochs:
        at = [c[e - 1] for c in curves]
        below += min(at) < BAR
        mark = "*" if min(at) < BAR else " "
        cells.append(f"{min(at):6.1%}/{statistics.mean(at):5.1%}{mark}")
    shown_lr = lr_name if lr is not None else f"def {default_lr('adam', bs, len(data[0][0])):.4g}"
    took = time.perf_counter() - start
    return f"{hidden:>3} {act:<12} {bs:>5} {shown_lr:>14} {' '.join(cells)}  {took:4.0f}s", below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--activations", nargs="+",
                        default=["tanh", "relu", "tanh/linear", "relu/linear"])  # fmt: skip
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[0, 16, 32, 64, 128])
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 30, 50, 100])
    parser.add_argument("--lrs", nargs="+", default=["default", "0.01"],
                        help="'default' leaves lr out (fit's default_lr); 0.05 is the default "
                             "before it followed the batch size")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jsonl", help="also append every run's curve to this file")
    parser.add_argument("--check", action="store_true", help="check the shortcuts and stop")
    args = parser.parse_args()
    data = (tuple(digits("train")), tuple(digits("test")))
    if args.check:
        check(data)
        return
    head = " ".join(f"{f'E={e}':>13}" for e in args.epochs)
    print(f"lowest/mean test accuracy over seeds {args.seeds}, * where a seed is under {BAR:.0%}")
    print(f"{'H':>3} {'activation':<12} {'batch':>5} {'lr':>14} {head}  time")
    below = 0
    for hidden in args.hidden:
        for act in args.activations:
            for bs in args.batch_sizes:
                for lr_name in args.lrs:
                    line, under = row(hidden, act, bs, lr_name, args, data)
                    below += under
                    print(line, flush=True)
    print(f"{below} cells with a seed under {BAR:.0%}")


if __name__ == "__main__":
    main()
