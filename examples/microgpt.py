"""microgpt on backprop's Value: a GPT-2-like character model that learns to make up names.

The algorithm of Karpathy's microgpt (February 2026), written here from its published
description: token and position embeddings, RMSNorm, one block of multi-head causal self
attention and a ReLU MLP, each with a residual connection, a linear head and a softmax;
no biases; Adam with a linearly decaying learning rate; one name per step, its loss the mean
of -log p(next character) over its positions. Trained on the 32,033 makemore names shipped in
``backprop.data.names()``; then it samples new names.

    python3 examples/microgpt.py --steps 200          # eager: a new graph every step
    python3 examples/microgpt.py --steps 1000 --jit   # backprop.jit: one program per length

With ``--jit`` the loss function is traced once per name length (``backprop.take`` gathers the
embedding row of a token and the probability of the target, whose ids are data), and every
later name of that length replays the compiled program. The losses are eager mode's to about
1e-15 (softmax's max, read from ``.data``, is frozen at trace time: see docs/jit.md).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np

import backprop
from backprop import Value, take

N_EMBD, N_HEAD, N_LAYER, BLOCK = 16, 4, 1, 16
HEAD = N_EMBD // N_HEAD


def matrix(rng: random.Random, rows: int, cols: int, std: float = 0.08) -> list[list[Value]]:
    return [[Value(rng.gauss(0.0, std)) for _ in range(cols)] for _ in range(rows)]


def init(vocab: int, seed: int) -> dict[str, list[list[Value]]]:
    """The model's weights, by name: embeddings, one attention block's and MLP's, the head."""
    rng = random.Random(seed)
    params = {"wte": matrix(rng, vocab, N_EMBD), "wpe": matrix(rng, BLOCK, N_EMBD)}
    for i in range(N_LAYER):
        for name in ("wq", "wk", "wv", "wo"):
            params[f"{i}.{name}"] = matrix(rng, N_EMBD, N_EMBD)
        params[f"{i}.fc1"] = matrix(rng, 4 * N_EMBD, N_EMBD)
        params[f"{i}.fc2"] = matrix(rng, N_EMBD, 4 * N_EMBD)
    params["head"] = matrix(rng, vocab, N_EMBD)
    return params


def linear(x: list[Value], w: list[list[Value]]) -> list[Value]:
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def rmsnorm(x: list[Value]) -> list[Value]:
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def softmax(logits: list[Value]) -> list[Value]:
    top = max(v.data for v in logits)  # for stability only: frozen at trace time under jit
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def gpt(params, token, pos: int, keys: list, values: list, attention=None) -> list[Value]:
    """The logits of the next token, given this one and the keys and values of those before
    (``attention``, a list per head, collects each head's weights over the positions). Its
    parts are made in named scopes (``backprop.scope``), so that a step-through of the graph
    (explain(), or the --explore page's probe) goes block by block."""
    with backprop.scope("embedding"):
        x = [t + p for t, p in zip(take(params["wte"], token), params["wpe"][pos])]
        x = rmsnorm(x)
    for i in range(N_LAYER):
        skip = x
        with backprop.scope(f"attention {i}" if N_LAYER > 1 else "attention"):
            with backprop.scope("rmsnorm"):
                x = rmsnorm(x)
            with backprop.scope("q, k, v"):
                q, k, v = (linear(x, params[f"{i}.{name}"]) for name in ("wq", "wk", "wv"))
            keys[i].append(k)
            values[i].append(v)
            heads = []
            for h in range(N_HEAD):
                with backprop.scope(f"head {h}"):
                    part = slice(h * HEAD, (h + 1) * HEAD)
                    scores = [
                        sum(a * b for a, b in zip(q[part], kt[part])) / HEAD**0.5 for kt in keys[i]
                    ]
                    weights = softmax(scores)
                    if attention is not None:
                        attention[h].append(weights)
                    for j in range(h * HEAD, (h + 1) * HEAD):
                        heads.append(sum(w * vt[j] for w, vt in zip(weights, values[i])))
            with backprop.scope("output"):
                x = [a + b for a, b in zip(linear(heads, params[f"{i}.wo"]), skip)]
        skip = x
        with backprop.scope(f"mlp {i}" if N_LAYER > 1 else "mlp"):
            with backprop.scope("rmsnorm"):
                x = rmsnorm(x)
            with backprop.scope("fc1, relu"):
                x = [a.relu() for a in linear(x, params[f"{i}.fc1"])]
            with backprop.scope("fc2"):
                x = [a + b for a, b in zip(linear(x, params[f"{i}.fc2"]), skip)]
    with backprop.scope("logits"):
        return linear(x, params["head"])


def loss_of(params, tokens) -> Value:
    """Mean cross-entropy of predicting each next token of one name ([BOS] name [BOS]); each
    position's part of the graph is made in a scope of its own ("position 2")."""
    n = min(BLOCK, len(tokens) - 1)
    keys, values = [[] for _ in range(N_LAYER)], [[] for _ in range(N_LAYER)]
    losses = []
    for pos in range(n):
        with backprop.scope(f"position {pos}"):
            logits = gpt(params, tokens[pos], pos, keys, values)
            with backprop.scope("loss"):
                probs = softmax(logits)
                losses.append(-take(probs, tokens[pos + 1]).log())
    return (1.0 / n) * sum(losses)


def attention_of(params, tokens) -> list[list[list[Value]]]:
    """Every head's attention weights over one name (a row per position), without a graph."""
    keys, values = [[] for _ in range(N_LAYER)], [[] for _ in range(N_LAYER)]
    heads = [[] for _ in range(N_HEAD)]
    with backprop.no_grad():
        for pos in range(min(BLOCK, len(tokens) - 1)):
            gpt(params, tokens[pos], pos, keys, values, heads)
    return heads


class Adam:
    """Adam over a list of Values (betas 0.85, 0.99, as microgpt), with the learning rate
    decaying linearly to 0; the moments are arrays, read and written in a few numpy calls."""

    def __init__(self, params: list[Value], lr: float = 0.01, steps: int = 1000) -> None:
        self.params, self.lr, self.steps = params, lr, steps
        self.m = np.zeros(len(params))
        self.v = np.zeros(len(params))
        self.t = 0

    def step(self) -> None:
        b1, b2, eps = 0.85, 0.99, 1e-8
        n = len(self.params)
        g = np.fromiter((p.grad for p in self.params), np.float64, n)
        x = np.fromiter((p.data for p in self.params), np.float64, n)
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        self.t += 1
        lr = self.lr * (1 - (self.t - 1) / self.steps)
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        x -= lr * m_hat / (np.sqrt(v_hat) + eps)
        for p, xi in zip(self.params, x.tolist()):
            p.data = xi
            p.grad = 0.0


def sample(params, bos: int, chars: str, rng: random.Random, temperature: float = 0.5) -> str:
    """One name, drawn a character at a time (eagerly, without recording a graph)."""
    keys, values = [[] for _ in range(N_LAYER)], [[] for _ in range(N_LAYER)]
    token, out = bos, []
    with backprop.no_grad():
        for pos in range(BLOCK):
            logits = gpt(params, token, pos, keys, values)
            probs = softmax([v / temperature for v in logits])
            token = rng.choices(range(len(probs)), weights=[p.data for p in probs])[0]
            if token == bos:
                break
            out.append(chars[token])
    return "".join(out)


def train(
    steps: int = 100, seed: int = 42, use_jit: bool = False, log_every: int = 0, explore=None
):
    """Train for ``steps`` names; return (params, losses, tokenizer (bos, chars)). With
    ``explore`` a path, the run is recorded (backprop.Recorder) and its page saved there."""
    docs = backprop.data.names()
    random.Random(seed).shuffle(docs)
    chars = "".join(sorted(set("".join(docs))))
    bos = len(chars)
    params = init(bos + 1, seed)
    flat = [p for rows in params.values() for row in rows for p in row]
    opt = Adam(flat, steps=steps)

    def loss_fn(tokens):
        return loss_of(params, tokens)

    step_loss = backprop.jit(loss_fn) if use_jit else loss_fn
    record = explore and Recorder(params, title="microgpt on the makemore names", steps=steps)
    losses = []
    for step in range(steps):
        doc = docs[step % len(docs)]
        tokens = [bos] + [chars.index(c) for c in doc] + [bos]
        loss = step_loss(tokens)
        loss.backward()
        if record:
            record.step(loss, lr=opt.lr * (1 - step / steps), chars=len(doc))
        opt.step()
        losses.append(loss.data)
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:4d} / {steps}: loss {loss.data:.4f}")
    if use_jit:
        print(f"jit: {len(step_loss.cache_info())} programs traced (one per name length)")
    if record:
        record.save(explore)
        print(f"wrote {explore}: the run's page (open it in a browser)")
    return params, losses, (bos, chars)


class Recorder:
    """What --explore records: the loss, every matrix and its gradient, each head's attention
    on a probe name, names sampled as it learns, and the probe name's loss graph."""

    def __init__(self, params, title: str, steps: int, probe: str = "emma") -> None:
        docs = backprop.data.names()
        self.chars = "".join(sorted(set("".join(docs))))
        self.bos = len(self.chars)
        self.params = params
        self.tokens = [self.bos] + [self.chars.index(c) for c in probe] + [self.bos]
        self.labels = ["BOS"] + list(probe)
        self.every = max(1, steps // 10)
        self.rng = random.Random(0)
        self.rec = backprop.Recorder(params, title=title)
        self.rec.probe(lambda: loss_of(params, self.tokens))
        self.probe = probe

    def step(self, loss: Value, **scalars) -> None:
        """Call after backward() and before the update: the step's gradients are recorded."""
        for h, rows in enumerate(attention_of(self.params, self.tokens)):
            labels = self.labels[: len(rows)]
            name = f"attention head {h} on '{self.probe}'"
            self.rec.watch(name, rows, rows=labels, columns=labels)
        if self.rec.steps % self.every == 0:
            names = (sample(self.params, self.bos, self.chars, self.rng) for _ in range(5))
            self.rec.note("samples", " ".join(names))
        self.rec.step(loss, **scalars)

    def save(self, path: str) -> None:
        backprop.explore(self.rec).save(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps (one name each)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jit", action="store_true", help="compile the loss with backprop.jit")
    parser.add_argument("--samples", type=int, default=10, help="names to sample at the end")
    parser.add_argument(
        "--explore", metavar="PAGE", help="record the run and write its page (an .html file)"
    )
    args = parser.parse_args(argv)
    if args.explore and not os.path.isdir(os.path.dirname(args.explore) or "."):
        parser.error(f"--explore: no folder {os.path.dirname(args.explore)!r} to write the page in")
    start = time.perf_counter()
    params, losses, (bos, chars) = train(
        args.steps, args.seed, args.jit, log_every=max(1, args.steps // 10), explore=args.explore
    )
    seconds = time.perf_counter() - start
    print(f"trained {args.steps} steps in {seconds:.1f} s; final loss {losses[-1]:.4f}")
    rng = random.Random(args.seed)
    print("samples:", " ".join(sample(params, bos, chars, rng) for _ in range(args.samples)))
    return losses


if __name__ == "__main__":
    main()
