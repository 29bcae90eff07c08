"""Eager engine vs Karpathy's micrograd 0.1.0: time per training step and bytes per graph node.

Run:  pip install -e '.[bench]' && python benchmarks/bench_engine.py [--rounds R --repeats N]

Workloads, each run for both engines in this one process:
  W1  the notebook's toy training: MLP(3, [4, 4, 1]) with tanh everywhere, 4 points,
      squared-error sum, plain gradient descent. micrograd has no tanh, so both engines use
      tanh written as exp, the notebook's own (e^2x - 1) / (e^2x + 1).
  W2  micrograd's moons demo: MLP(2, [16, 16, 1]), relu hidden layers, linear output, 100 points,
      hinge loss + 1e-4 L2, full batch, SGD.
A step is: build the graph, zero the gradients, backward, update. The garbage collector stays
on, as it is for every user: micrograd's per-node closures make every graph a reference cycle.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from functools import partial

import micrograd.engine as mg_engine
import micrograd.nn as mg_nn

import backprop
import backprop.nn as bp_nn


def moons(n: int, noise: float, seed: int) -> tuple[list[list[float]], list[float]]:
    """Two interleaved half circles, labels -1/+1 (as sklearn.make_moons, then y*2-1)."""
    rng = random.Random(seed)
    half = n // 2
    xs, ys = [], []
    for i in range(n):
        upper = i < half
        t = math.pi * (i if upper else i - half) / ((half if upper else n - half) - 1)
        x, y = (math.cos(t), math.sin(t)) if upper else (1 - math.cos(t), 0.5 - math.sin(t))
        xs.append([x + rng.gauss(0, noise), y + rng.gauss(0, noise)])
        ys.append(-1.0 if upper else 1.0)
    return xs, ys


TOY_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
TOY_YS = [1.0, -1.0, -1.0, 1.0]


def tanh_as_exp(v):
    e = (2 * v).exp()
    return (e - 1) / (e + 1)


class Engine:
    """What a workload needs from an engine: its Value and an MLP factory."""

    def __init__(self, name, value, mlp):
        self.name, self.Value, self.mlp = name, value, mlp


def micrograd_exp(self):
    # micrograd 0.1.0 has no exp: the lecture's own definition, added for W1 only
    out = mg_engine.Value(math.exp(self.data), (self,), "exp")

    def _backward():
        self.grad += out.data * out.grad

    out._backward = _backward
    return out


mg_engine.Value.exp = micrograd_exp

ENGINES = [
    Engine(
        "micrograd",
        mg_engine.Value,
        lambda nin, nouts, relu: (
            mg_nn.MLP(nin, nouts) if relu else _micrograd_linear_mlp(nin, nouts)
        ),
    ),
    Engine(
        "backprop",
        backprop.Value,
        lambda nin, nouts, relu: bp_nn.MLP(
            nin, nouts, activation="relu" if relu else "linear", output_activation="linear"
        ),
    ),
]


def _micrograd_linear_mlp(nin, nouts):
    model = mg_nn.MLP(nin, nouts)
    for layer in model.layers:
        for n in layer.neurons:
            n.nonlin = False
    return model


def toy_step(engine, model, lr=0.05):
    # W1: the notebook's loop, tanh applied by hand after each linear layer
    def forward(x):
        for layer in model.layers:
            x = [tanh_as_exp(n(x)) for n in layer.neurons]
        return x[0]

    ypred = [forward(x) for x in TOY_XS]
    loss = sum((yout - ygt) ** 2 for ygt, yout in zip(TOY_YS, ypred))
    for p in model.parameters():
        p.grad = 0.0
    loss.backward()
    for p in model.parameters():
        p.data += -lr * p.grad
    return loss


def moons_loss(engine, model, xs, ys):
    inputs = [[engine.Value(v) for v in row] for row in xs]
    scores = [model(x) for x in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def moons_step(engine, model, xs, ys, lr=0.5):
    loss = moons_loss(engine, model, xs, ys)
    for p in model.parameters():
        p.grad = 0.0
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss


def count_nodes(root):
    seen, stack = set(), [root]
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            stack.extend(v._prev)
    return len(seen)


def bytes_per_node(engine, model, xs, ys):
    """Memory a graph holds, divided by its node count (tracemalloc, graph alive)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    loss = moons_loss(engine, model, xs, ys)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count_nodes(loss)


def measure(engine: Engine, repeats: int) -> dict:
    """Step times (seconds) for W1 and W2, bytes per node and node count, for one engine."""
    xs, ys = moons(100, 0.1, seed=1)
    random.seed(0)
    toy = engine.mlp(3, [4, 4, 1], relu=False)
    toy_step(engine, toy)  # warm-up
    w1 = [timed(partial(toy_step, engine, toy)) for _ in range(repeats * 5)]
    random.seed(0)
    model = engine.mlp(2, [16, 16, 1], relu=True)
    moons_step(engine, model, xs, ys)
    w2 = [timed(partial(moons_step, engine, model, xs, ys)) for _ in range(repeats)]
    mem = bytes_per_node(engine, model, xs, ys)
    nodes = count_nodes(moons_loss(engine, model, xs, ys))
    return {"w1": w1, "w2": w2, "mem": mem, "nodes": nodes}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="W2 steps per round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both engines (3)")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # internal: one engine, as JSON
    args = parser.parse_args()
    if args.engine:
        engine = next(e for e in ENGINES if e.name == args.engine)
        print(json.dumps(measure(engine, args.repeats)))
        return

    # Each engine runs in a fresh process (a clean heap: no garbage or arenas left by the other),
    # and the engines take turns, round after round, so that a slow spell of a shared machine
    # falls on both. Medians are over all the steps of all rounds.
    runs: dict[str, list[dict]] = {e.name: [] for e in ENGINES}
    for _ in range(args.rounds):
        for engine in ENGINES:
            out = subprocess.run(
                [sys.executable, __file__, "--engine", engine.name, "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[engine.name].append(json.loads(out.stdout))

    results = {}
    print(
        f"{'engine':<11}{'W1 toy step':>14}{'W2 moons step':>16}{'bytes/node':>12}{'W2 nodes':>10}"
    )
    for name, rs in runs.items():
        w1 = statistics.median(t for r in rs for t in r["w1"])
        w2 = statistics.median(t for r in rs for t in r["w2"])
        mem, nodes = rs[0]["mem"], rs[0]["nodes"]
        results[name] = (w1, w2, mem)
        print(f"{name:<11}{w1 * 1e3:>11.2f} ms{w2 * 1e3:>13.1f} ms{mem:>12.0f}{nodes:>10}")
    mg, bp = results["micrograd"], results["backprop"]
    print(
        f"\nbackprop vs micrograd: W1 {mg[0] / bp[0]:.1f}x faster, W2 {mg[1] / bp[1]:.1f}x "
        f"faster, {bp[2] / mg[2]:.2f}x the memory per node "
        f"({args.rounds} rounds of {args.repeats} W2 steps each)"
    )


if __name__ == "__main__":
    main()
