"""Eager engine vs Karpathy's micrograd 0.1.0 and a slotted microgpt-style Value: time per
training step, bytes per graph node and the garbage collector's share of a step.

Run:  pip install -e '.[bench]' && python benchmarks/bench_engine.py [--rounds R --repeats N]

Engines: micrograd 0.1.0; backprop (with its native part, when built); backprop-pure
(BACKPROP_NATIVE=0: the pure-Python Value); and, for W3 only, "slotted": microgpt's own kind of
Value (__slots__, children and local gradients, no closures), written in this file.
Workloads:
  W1  the notebook's toy training: MLP(3, [4, 4, 1]) with tanh everywhere, 4 points,
      squared-error sum, plain gradient descent. micrograd has no tanh, so both engines use
      tanh written as exp, the notebook's own (e^2x - 1) / (e^2x + 1).
  W2  micrograd's moons demo: MLP(2, [16, 16, 1]), relu hidden layers, linear output, 100 points,
      hinge loss + 1e-4 L2, full batch, SGD.
  W3  a microgpt-style GPT (1 layer, n_embd 16, 4 heads, block 16) on the makemore names, one
      name per step, Adam, in a plain user loop (micrograd 0.1.0 has no exp or log: not run).
A step is: build the graph, zero the gradients, backward, update. The garbage collector stays
on, as it is for every user: micrograd's per-node closures make every graph a reference cycle.
The collector's share is 1 - (step with it off) / (step with it on), from extra steps run with
gc.disable().
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from functools import partial

import micrograd.engine as mg_engine
import micrograd.nn as mg_nn
from slot_value import SlotValue  # benchmarks/slot_value.py, beside this file

import backprop
import backprop.nn as bp_nn
from backprop._base import NATIVE

sys.setrecursionlimit(20_000)  # the slotted Value's recursive sort (as microgpt's own)


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
# the same engine in a process started with BACKPROP_NATIVE=0
ENGINES.append(Engine("backprop-pure", backprop.Value, ENGINES[1].mlp))
ENV = {"backprop-pure": {"BACKPROP_NATIVE": "0"}}


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


# ---- W3: a microgpt-style GPT in a user's loop ---------------------------------------------


EMBD, HEADS, BLOCK = 16, 4, 16
HEAD = EMBD // HEADS


def gpt_params(value, vocab: int, seed: int = 42) -> dict:
    rng = random.Random(seed)

    def matrix(rows, cols):
        return [[value(rng.gauss(0.0, 0.08)) for _ in range(cols)] for _ in range(rows)]

    params = {"wte": matrix(vocab, EMBD), "wpe": matrix(BLOCK, EMBD)}
    for name in ("wq", "wk", "wv", "wo"):
        params[name] = matrix(EMBD, EMBD)
    params["fc1"], params["fc2"] = matrix(4 * EMBD, EMBD), matrix(EMBD, 4 * EMBD)
    params["head"] = matrix(vocab, EMBD)
    return params


def linear(x, w):
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def rmsnorm(x):
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def gpt_loss(p, tokens):
    """Mean cross-entropy of each next character of one name, as microgpt computes it."""
    n = min(BLOCK, len(tokens) - 1)
    keys, values, losses = [], [], []
    for pos in range(n):
        x = rmsnorm([t + q for t, q in zip(p["wte"][tokens[pos]], p["wpe"][pos])])
        skip = x
        x = rmsnorm(x)
        q, k, v = linear(x, p["wq"]), linear(x, p["wk"]), linear(x, p["wv"])
        keys.append(k)
        values.append(v)
        heads = []
        for h in range(HEADS):
            part = slice(h * HEAD, (h + 1) * HEAD)
            scores = [sum(a * b for a, b in zip(q[part], kt[part])) / HEAD**0.5 for kt in keys]
            weights = softmax(scores)
            for j in range(h * HEAD, (h + 1) * HEAD):
                heads.append(sum(w * vt[j] for w, vt in zip(weights, values)))
        x = [a + b for a, b in zip(linear(heads, p["wo"]), skip)]
        skip = x
        x = [a.relu() for a in linear(rmsnorm(x), p["fc1"])]
        x = [a + b for a, b in zip(linear(x, p["fc2"]), skip)]
        losses.append(-softmax(linear(x, p["head"]))[tokens[pos + 1]].log())
    return (1.0 / n) * sum(losses)


class Adam:
    """microgpt's Adam in plain Python (betas 0.85, 0.99; the rate decays linearly to 0)."""

    def __init__(self, params, lr=0.01, steps=1000):
        self.params, self.lr, self.steps, self.t = params, lr, steps, 0
        self.m, self.v = [0.0] * len(params), [0.0] * len(params)

    def step(self):
        b1, b2, eps = 0.85, 0.99, 1e-8
        lr = self.lr * (1 - self.t / self.steps)
        self.t += 1
        for i, p in enumerate(self.params):
            self.m[i] = b1 * self.m[i] + (1 - b1) * p.grad
            self.v[i] = b2 * self.v[i] + (1 - b2) * p.grad**2
            m_hat = self.m[i] / (1 - b1**self.t)
            v_hat = self.v[i] / (1 - b2**self.t)
            p.data -= lr * m_hat / (v_hat**0.5 + eps)
            p.grad = 0.0


def names_as_tokens(seed: int = 42):
    from backprop.data import names

    docs = names()
    random.Random(seed).shuffle(docs)
    chars = "".join(sorted(set("".join(docs))))
    bos = len(chars)
    return [[bos] + [chars.index(c) for c in doc] + [bos] for doc in docs], bos + 1


def measure_gpt(value, steps: int) -> dict:
    """W3: ms per step with the collector on (and off, for its share), losses, bytes per node."""
    docs, vocab = names_as_tokens()
    params = gpt_params(value, vocab)
    flat = [x for rows in params.values() for row in rows for x in row]
    opt = Adam(flat)
    losses, on, off = [], [], []
    for i in range(2 * steps + 1):
        if i == steps + 1:
            gc.disable()
        t0 = time.perf_counter()
        loss = gpt_loss(params, docs[i])
        loss.backward()
        opt.step()
        (on if i <= steps else off).append(time.perf_counter() - t0)
        losses.append(loss.data)
        del loss
    gc.enable()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    loss = gpt_loss(params, docs[0])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    n = count_nodes(loss) if hasattr(loss, "_prev") else _count_slot_nodes(loss)
    return {"w3": on[1:], "w3_off": off, "losses": losses[:steps], "w3_mem": used / n}


def _count_slot_nodes(root):
    seen, stack = set(), [root]
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            stack.extend(v._children)
    return len(seen)


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
    gc.disable()
    w2_off = [timed(partial(moons_step, engine, model, xs, ys)) for _ in range(repeats)]
    gc.enable()
    mem = bytes_per_node(engine, model, xs, ys)
    nodes = count_nodes(moons_loss(engine, model, xs, ys))
    out = {"w1": w1, "w2": w2, "w2_off": w2_off, "mem": mem, "nodes": nodes}
    if engine.name.startswith("backprop"):
        out.update(measure_gpt(backprop.Value, GPT_STEPS))
        out["native"] = NATIVE
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


GPT_STEPS = 10  # W3 steps per round (and as many again with the collector off)


def measure_slotted(repeats: int) -> dict:
    return measure_gpt(SlotValue, GPT_STEPS)


def main() -> None:
    global GPT_STEPS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="W2 steps per round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every engine (3)")
    parser.add_argument("--gpt-steps", type=int, default=GPT_STEPS, help="W3 steps per round")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # internal: one engine, as JSON
    args = parser.parse_args()
    GPT_STEPS = args.gpt_steps
    if args.engine:
        if args.engine == "slotted":
            print(json.dumps(measure_slotted(args.repeats)))
        else:
            engine = next(e for e in ENGINES if e.name == args.engine)
            print(json.dumps(measure(engine, args.repeats)))
        return

    # Each engine runs in a fresh process (a clean heap: no garbage or arenas left by the other),
    # and the engines take turns, round after round, so that a slow spell of a shared machine
    # falls on all. Medians are over all the steps of all rounds.
    names = [e.name for e in ENGINES] + ["slotted"]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            command = [sys.executable, __file__, "--engine", name, "--repeats", str(args.repeats)]
            out = subprocess.run(
                command + ["--gpt-steps", str(GPT_STEPS)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **ENV.get(name, {})},
            )
            runs[name].append(json.loads(out.stdout))

    def median(rs, key):
        return statistics.median(t for r in rs for t in r[key]) if key in rs[0] else math.nan

    def share(rs, key):  # the collector's share of a step
        return 1 - median(rs, key + "_off") / median(rs, key)

    print(
        f"{'engine':<14}{'W1 toy':>10}{'W2 moons':>11}{'GC':>5}{'B/node':>8}"
        f"{'W3 gpt':>10}{'GC':>5}{'B/node':>8}"
    )
    results = {}
    for name, rs in runs.items():
        row = {k: median(rs, k) for k in ("w1", "w2", "w3")}
        results[name] = row
        cells = [f"{name:<14}"]
        cells.append(f"{row['w1'] * 1e3:>7.2f} ms" if "w1" in rs[0] else f"{'':>10}")
        if "w2" in rs[0]:
            cells.append(f"{row['w2'] * 1e3:>8.1f} ms{share(rs, 'w2'):>5.0%}{rs[0]['mem']:>8.0f}")
        else:
            cells.append(f"{'':>24}")
        if "w3" in rs[0]:
            cells.append(
                f"{row['w3'] * 1e3:>7.1f} ms{share(rs, 'w3'):>5.0%}{rs[0]['w3_mem']:>8.0f}"
            )
        else:
            cells.append(f"{'n/a (no exp, log)':>23}")
        print("".join(cells))
    mg, bp, pure, slot = (results[n] for n in ("micrograd", "backprop", "backprop-pure", "slotted"))
    native = (
        "with its native part" if runs["backprop"][0].get("native") else "NOT NATIVE (not built)"
    )
    gap = max(
        abs(a - b) for a, b in zip(runs["backprop"][0]["losses"], runs["slotted"][0]["losses"])
    )
    print(
        f"\nbackprop ({native}) vs micrograd: W1 {mg['w1'] / bp['w1']:.1f}x, "
        f"W2 {mg['w2'] / bp['w2']:.1f}x faster (pure Python: {mg['w2'] / pure['w2']:.1f}x); "
        f"vs the slotted Value, W3 {slot['w3'] / bp['w3']:.1f}x faster "
        f"(pure Python: {slot['w3'] / pure['w3']:.1f}x), losses within {gap:.1e}\n"
        f"({args.rounds} rounds of {args.repeats} W2 and {GPT_STEPS} W3 steps; "
        f"Python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main()
