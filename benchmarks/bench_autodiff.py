"""Higher-order gradients on the W2 moons loss: building the gradient graph vs eager backward.

Run:  python benchmarks/bench_autodiff.py [--repeats N]

Workload: micrograd's moons demo (as bench_engine.py's W2): MLP(2, [16, 16, 1]), relu hidden
layers, linear output, 100 points, hinge loss + 1e-4 L2. The forward graph is built once; then,
timed on that same graph:
  backward          loss.backward(), the eager first-order sweep (floats)
  grad              backprop.grad(loss, params): the same sweep, into a dict (floats)
  grad graph        backprop.grad(loss, params, create_graph=True): the gradient as a graph
  second backward   backward() of sum(g * g) over that gradient graph (a gradient penalty)
and PyTorch (float64 tensors, one thread) on the same model, batched: autograd.grad with
create_graph=True, then backward of sum(g * g) (double backward). The target: the gradient
graph in under 3x the time of an eager backward. The garbage collector stays on, as for users.
Times are this process's CPU time (time.process_time), medians: on a shared machine the other
processes' load then weighs less on the ratios than it does on wall-clock time.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import time

import backprop
from backprop import MLP, Value


def moons(n: int, noise: float, seed: int) -> tuple[list[list[float]], list[float]]:
    """Two interleaved half circles, labels -1/+1 (as bench_engine.py)."""
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


def moons_loss(model, xs, ys):
    inputs = [[Value(v) for v in row] for row in xs]
    scores = [model(x) for x in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def timed(fn, repeats: int) -> tuple[list[float], object]:
    """Seconds per call; each call starts after a full collection, and the last call's result
    is freed outside the timing (freeing a gradient graph takes a while too)."""
    times, out = [], None
    for _ in range(repeats):
        out = None
        gc.collect()
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return times, out


def count_nodes(roots) -> int:
    return len(backprop.engine._topological_order(roots))


def torch_workload(model, xs, ys, repeats: int):
    import torch

    torch.set_num_threads(1)
    dt = torch.float64
    layers = []
    for layer in model.layers:
        w = torch.tensor([[p.data for p in n.w] for n in layer.neurons], dtype=dt)
        b = torch.tensor([n.b.data for n in layer.neurons], dtype=dt)
        layers.append((w.requires_grad_(), b.requires_grad_()))
    params = [t for wb in layers for t in wb]
    X, Y = torch.tensor(xs, dtype=dt), torch.tensor(ys, dtype=dt)

    def loss_fn():
        h = X
        for k, (w, b) in enumerate(layers):
            h = h @ w.T + b
            if k < len(layers) - 1:
                h = h.relu()
        data_loss = (1 - Y * h[:, 0]).relu().mean()
        return data_loss + 1e-4 * sum((p * p).sum() for p in params)

    loss = loss_fn()
    grad_times, grads = timed(
        lambda: torch.autograd.grad(loss, params, create_graph=True, retain_graph=True),
        repeats,
    )

    def double_backward():
        gs = torch.autograd.grad(loss, params, create_graph=True, retain_graph=True)
        penalty = sum((g * g).sum() for g in gs)
        t0 = time.process_time()
        penalty.backward(retain_graph=True)
        return time.process_time() - t0

    second = [double_backward() for _ in range(repeats)]
    return grad_times, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (7)")
    args = parser.parse_args()

    xs, ys = moons(100, 0.1, seed=1)
    model = MLP(2, [16, 16, 1], activation="relu", output_activation="linear", seed=0)
    params = model.parameters()
    loss = moons_loss(model, xs, ys)
    loss.backward()  # warm-up

    eager, _ = timed(loss.backward, args.repeats)
    plain, _ = timed(lambda: backprop.grad(loss, params), args.repeats)
    graph_times, grads = timed(lambda: backprop.grad(loss, params, create_graph=True), args.repeats)

    def second_backward():
        gs = backprop.grad(loss, params, create_graph=True)
        penalty = sum(g * g for g in gs)
        gc.collect()
        t0 = time.process_time()
        penalty.backward()
        return time.process_time() - t0

    second = [second_backward() for _ in range(args.repeats)]
    t_grad, t_second = torch_workload(model, xs, ys, args.repeats)

    med = statistics.median
    forward_nodes = count_nodes([loss])
    both_nodes = count_nodes(list(grads))
    rows = [
        ("backprop backward()", med(eager)),
        ("backprop grad()", med(plain)),
        ("backprop grad(create_graph=True)", med(graph_times)),
        ("backprop backward() of sum(g*g)", med(second)),
        ("torch autograd.grad(create_graph)", med(t_grad)),
        ("torch double backward of sum(g*g)", med(t_second)),
    ]
    print(f"W2 moons loss: {forward_nodes} nodes; forward + gradient graph: {both_nodes} nodes")
    print(f"{'':<36}{'median':>12}{'x backward()':>14}")
    for name, t in rows:
        print(f"{name:<36}{t * 1e3:>9.2f} ms{t / med(eager):>13.2f}x")
    ratio = med(graph_times) / med(eager)
    verdict = "under" if ratio < 3 else "OVER"
    print(
        f"\nthe gradient graph is built in {ratio:.2f}x an eager backward ({verdict} the 3x "
        f"target); {args.repeats} runs each, one process"
    )


if __name__ == "__main__":
    main()
