"""backprop.jit on a microgpt-style training step, against eager mode, a slotted Value, numpy
and PyTorch: steps per second, medians, ratios.

Run:  python benchmarks/bench_jit.py [--steps 60] [--seed 42] [--quick] [--user-loop]

The step is examples/microgpt.py's: one name (tokens [BOS] name [BOS]) through a GPT-2-like
model (n_embd 16, 4 heads, block 16, 1 layer, vocabulary 27: 4,192 weights), its mean
cross-entropy, the gradients of every weight, and an Adam update. Every engine starts from the
same weights and trains on the same names, and the program checks that their losses agree.

  eager      backprop's Value: the graph built and swept again every step
  jit        backprop.jit over the same loss function: one trace + compile per name length,
             then replays; timed as the whole run (every trace included) and in steady state
             (a second pass over the same names, every length already compiled)
  slotted    a micrograd-style Value written here, as microgpt's own (__slots__, each node
             keeps its children and local gradients; a recursive topological sort)
  numpy      the same step written here with arrays and a hand-written backward pass: the
             floor, what the algorithm costs without a scalar graph
  torch      the same model as float64 CPU tensors with autograd, one thread

The three Value engines share one Adam (numpy arrays, read from and written back to the
Values); numpy and torch update their arrays with the same formulas. The steady-state ratio
"jit / slotted" compares median step times; the whole-run ratio compares total times over
the same --steps names.

The user loop (printed last; alone with --user-loop): the held-out checks' kind of training
loop, with microgpt's own Adam written as its users write it, plain Python over the Values, no
numpy (python_adam below): the slotted Value and backprop eager, each building the graph every
step, and backprop.jit (steady state, and the whole run with every trace), each followed by
loss.backward() and that loop over the 4,192 weights. There the loop's attribute traffic
(.grad read twice, .data read and written, .grad zeroed, per weight) is most of a jit step.

Times are the process's CPU time (time.process_time), with numpy's and torch's BLAS on one
thread: on a shared machine, wall time mostly measures the other processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import random
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, so CPU time is the step's
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from slot_value import SlotValue  # noqa: E402  (benchmarks/slot_value.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.setrecursionlimit(20_000)  # the slotted Value's recursive sort


clock = time.process_time


def load_example():
    spec = importlib.util.spec_from_file_location(
        "microgpt", os.path.join(ROOT, "examples", "microgpt.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mg = load_example()
C, H, D, BLOCK = mg.N_EMBD, mg.N_HEAD, mg.HEAD, mg.BLOCK
SHAPES = {"wte": None, "wpe": (BLOCK, C), "0.wq": (C, C), "0.wk": (C, C), "0.wv": (C, C)}
SHAPES.update({"0.wo": (C, C), "0.fc1": (4 * C, C), "0.fc2": (C, 4 * C), "head": None})


# ---- the weights, the names -----------------------------------------------------------------


def initial_weights(seed: int, vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = dict(SHAPES, wte=(vocab, C), head=(vocab, C))
    return {name: rng.normal(0.0, 0.08, size=shape) for name, shape in shapes.items()}


def as_values(weights, make) -> dict:
    return {name: [[make(x) for x in row] for row in w.tolist()] for name, w in weights.items()}


def documents(seed: int):
    from backprop.data import names

    docs = names()
    random.Random(seed).shuffle(docs)
    chars = "".join(sorted(set("".join(docs))))
    bos = len(chars)
    return [[bos] + [chars.index(c) for c in doc] + [bos] for doc in docs], bos + 1


class ValueAdam:
    """examples/microgpt.py's Adam (numpy moments, read from and written to the Values)."""

    def __init__(self, params, lr=0.01, steps=1000):
        self.params, self.lr, self.steps = params, lr, steps
        self.m, self.v, self.t = np.zeros(len(params)), np.zeros(len(params)), 0

    def step(self):
        n = len(self.params)
        g = np.fromiter((p.grad for p in self.params), np.float64, n)
        x = np.fromiter((p.data for p in self.params), np.float64, n)
        x = adam_update(self, x, g)
        for p, xi in zip(self.params, x.tolist()):
            p.data = xi
            p.grad = 0.0


def adam_update(state, x, g):
    b1, b2, eps = 0.85, 0.99, 1e-8
    state.m = b1 * state.m + (1 - b1) * g
    state.v = b2 * state.v + (1 - b2) * g * g
    state.t += 1
    lr = state.lr * (1 - (state.t - 1) / state.steps)
    m_hat = state.m / (1 - b1**state.t)
    v_hat = state.v / (1 - b2**state.t)
    return x - lr * m_hat / (np.sqrt(v_hat) + eps)


# ---- numpy: the same step with arrays -------------------------------------------------------


def rmsnorm_fwd(x):
    s = (np.mean(x * x, axis=1, keepdims=True) + 1e-5) ** -0.5
    return x * s, s


def rmsnorm_bwd(x, s, dy):
    return s * dy - (s**3 / x.shape[1]) * np.sum(dy * x, axis=1, keepdims=True) * x


def softmax_rows(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_loss_and_grads(w, tokens):
    """The loss of one name and the gradient of every weight, by hand."""
    n = min(BLOCK, len(tokens) - 1)
    tok, tgt = np.array(tokens[:n]), np.array(tokens[1 : n + 1])
    x0 = w["wte"][tok] + w["wpe"][:n]
    x1, s1 = rmsnorm_fwd(x0)
    x2, s2 = rmsnorm_fwd(x1)
    q, k, v = x2 @ w["0.wq"].T, x2 @ w["0.wk"].T, x2 @ w["0.wv"].T
    mask = np.tril(np.ones((n, n), dtype=bool))
    att, probs = np.zeros((n, C)), []
    for h in range(H):
        part = slice(h * D, (h + 1) * D)
        scores = np.where(mask, q[:, part] @ k[:, part].T / math.sqrt(D), -np.inf)
        p = softmax_rows(scores)
        probs.append(p)
        att[:, part] = p @ v[:, part]
    x3 = att @ w["0.wo"].T + x1
    x4, s4 = rmsnorm_fwd(x3)
    pre = x4 @ w["0.fc1"].T
    act = np.maximum(pre, 0.0)
    x5 = act @ w["0.fc2"].T + x3
    logits = x5 @ w["head"].T
    p_out = softmax_rows(logits)
    loss = -np.mean(np.log(p_out[np.arange(n), tgt]))
    # backward
    g = {name: np.zeros_like(a) for name, a in w.items()}
    dlogits = p_out.copy()
    dlogits[np.arange(n), tgt] -= 1.0
    dlogits /= n
    g["head"] = dlogits.T @ x5
    dx5 = dlogits @ w["head"]
    g["0.fc2"] = dx5.T @ act
    dpre = (dx5 @ w["0.fc2"]) * (pre > 0)
    g["0.fc1"] = dpre.T @ x4
    dx3 = rmsnorm_bwd(x3, s4, dpre @ w["0.fc1"]) + dx5
    g["0.wo"] = dx3.T @ att
    datt = dx3 @ w["0.wo"]
    dq, dk, dv = np.zeros((n, C)), np.zeros((n, C)), np.zeros((n, C))
    for h in range(H):
        part, p = slice(h * D, (h + 1) * D), probs[h]
        dp = datt[:, part] @ v[:, part].T
        dv[:, part] = p.T @ datt[:, part]
        ds = p * (dp - np.sum(dp * p, axis=1, keepdims=True)) / math.sqrt(D)
        dq[:, part] = ds @ k[:, part]
        dk[:, part] = ds.T @ q[:, part]
    g["0.wq"], g["0.wk"], g["0.wv"] = dq.T @ x2, dk.T @ x2, dv.T @ x2
    dx2 = dq @ w["0.wq"] + dk @ w["0.wk"] + dv @ w["0.wv"]
    dx1 = rmsnorm_bwd(x1, s2, dx2) + dx3
    dx0 = rmsnorm_bwd(x0, s1, dx1)
    np.add.at(g["wte"], tok, dx0)
    g["wpe"][:n] = dx0
    return loss, g


class ArrayAdam:
    def __init__(self, weights, lr=0.01, steps=1000):
        self.lr, self.steps, self.t = lr, steps, 0
        self.names = list(weights)
        n = sum(a.size for a in weights.values())
        self.m, self.v = np.zeros(n), np.zeros(n)

    def step(self, weights, grads):
        x = np.concatenate([weights[k].ravel() for k in self.names])
        g = np.concatenate([grads[k].ravel() for k in self.names])
        x = adam_update(self, x, g)
        at = 0
        for k in self.names:
            size = weights[k].size
            weights[k][...] = x[at : at + size].reshape(weights[k].shape)
            at += size


# ---- the runs -------------------------------------------------------------------------------


def run_values(docs, weights, steps, make, loss_fn, label):
    """Train a Value engine for steps names; (losses, seconds per step)."""
    params = as_values(weights, make)
    flat = [p for rows in params.values() for row in rows for p in row]
    opt = ValueAdam(flat, steps=steps)
    step = loss_fn(params)
    losses, times, graded = [], [], []
    for i in range(steps):
        start = clock()
        loss = step(docs[i])
        loss.backward()
        graded.append(clock() - start)
        opt.step()
        times.append(clock() - start)
        losses.append(loss.data)
    return losses, times, step, graded


def run_jit(docs, weights, steps):
    import backprop

    params = as_values(weights, backprop.Value)
    flat = [p for rows in params.values() for row in rows for p in row]
    step = backprop.jit(lambda tokens: mg.loss_of(params, tokens))
    losses, times, graded = [], [], []
    step.traced_times = []  # the steps that traced, CPU seconds (the update included)
    for i in range(2 * steps):  # the second pass: every length traced already
        if i % steps == 0:
            opt = ValueAdam(flat, steps=steps)
        start, traces = clock(), step.traces
        loss = step(docs[i % steps])
        loss.backward()
        graded.append(clock() - start)
        opt.step()
        times.append(clock() - start)
        if step.traces > traces:
            step.traced_times.append(times[-1])
        losses.append(loss.data)
    return losses, times, step, graded


def run_numpy(docs, weights, steps):
    w = {k: a.copy() for k, a in weights.items()}
    opt = ArrayAdam(w, steps=steps)
    losses, times = [], []
    for i in range(steps):
        start = clock()
        loss, g = numpy_loss_and_grads(w, docs[i])
        opt.step(w, g)
        times.append(clock() - start)
        losses.append(float(loss))
    return losses, times


def run_torch(docs, weights, steps):
    import torch

    torch.set_num_threads(1)
    w = {k: torch.tensor(a, dtype=torch.float64, requires_grad=True) for k, a in weights.items()}
    opt = ArrayAdam({k: a for k, a in weights.items()}, steps=steps)
    mask = torch.tril(torch.ones(BLOCK, BLOCK, dtype=torch.bool))

    def rms(x):
        return x * (x.pow(2).mean(dim=1, keepdim=True) + 1e-5) ** -0.5

    losses, times = [], []
    for i in range(steps):
        start = clock()
        tokens = docs[i]
        n = min(BLOCK, len(tokens) - 1)
        tok, tgt = torch.tensor(tokens[:n]), torch.tensor(tokens[1 : n + 1])
        x1 = rms(w["wte"][tok] + w["wpe"][:n])
        x2 = rms(x1)
        q, k, v = x2 @ w["0.wq"].T, x2 @ w["0.wk"].T, x2 @ w["0.wv"].T
        q, k, v = (t.view(n, H, D).transpose(0, 1) for t in (q, k, v))
        s = (q @ k.transpose(1, 2)) / math.sqrt(D)
        s = s.masked_fill(~mask[:n, :n], float("-inf"))
        att = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(n, C)
        x3 = att @ w["0.wo"].T + x1
        x5 = torch.relu(rms(x3) @ w["0.fc1"].T) @ w["0.fc2"].T + x3
        loss = torch.nn.functional.cross_entropy(x5 @ w["head"].T, tgt)
        for t in w.values():
            t.grad = None
        loss.backward()
        with torch.no_grad():
            arrays = {k: t.numpy() for k, t in w.items()}
            opt.step(arrays, {k: t.grad.numpy() for k, t in w.items()})
        times.append(clock() - start)
        losses.append(loss.item())
    return losses, times


# ---- the user loop: microgpt's Adam in plain Python -----------------------------------------


def python_adam(params, m, v, step, num_steps, lr=0.01, b1=0.85, b2=0.99, eps=1e-8):
    """microgpt's Adam as its users write it: a plain loop over the Values, no numpy."""
    lr_t = lr * (1 - step / num_steps)
    for i, p in enumerate(params):
        m[i] = b1 * m[i] + (1 - b1) * p.grad
        v[i] = b2 * v[i] + (1 - b2) * p.grad**2
        m_hat = m[i] / (1 - b1 ** (step + 1))
        v_hat = v[i] / (1 - b2 ** (step + 1))
        p.data -= lr_t * m_hat / (v_hat**0.5 + eps)
        p.grad = 0


def user_loop(docs, weights, steps, make, use_jit=False, passes=1):
    """A user's training loop: forward, backward, python_adam. Per step: (loss, seconds of
    forward + backward, seconds of the update); with passes=2 the second pass trains on over
    the same names (under jit: every length compiled already)."""
    import backprop

    params = as_values(weights, make)
    flat = [p for rows in params.values() for row in rows for p in row]
    fn = _closure(params)
    step_fn = backprop.jit(fn) if use_jit else fn
    rows = []
    for i in range(passes * steps):
        if i % steps == 0:
            m, v = [0.0] * len(flat), [0.0] * len(flat)
        start = clock()
        loss = step_fn(docs[i % steps])
        loss.backward()
        mid = clock()
        python_adam(flat, m, v, i % steps, steps)
        rows.append((loss.data, mid - start, clock() - mid))
    return rows


def user_loop_report(docs, weights, steps, slotted=True):
    import backprop
    from backprop._base import NATIVE

    print("\nthe user loop: forward, backward, microgpt's Adam in plain Python over the Values")
    print(f"(native part: {NATIVE}; {steps} names; CPU ms per step, medians)")
    runs = {}
    if slotted:
        runs["slotted Value"] = user_loop(docs, weights, steps, SlotValue)
    runs["eager"] = user_loop(docs, weights, steps, backprop.Value)
    both = user_loop(docs, weights, steps, backprop.Value, use_jit=True, passes=2)
    runs["jit (whole run)"], runs["jit (steady)"] = both[:steps], both[steps:]
    print(f"{'engine':<18}{'step':>10}{'fwd+bwd':>10}{'adam':>10}{'total s':>10}{'loss diff':>11}")
    eager = [r[0] for r in runs["eager"]]
    for name, rows in runs.items():
        step = statistics.median(r[1] + r[2] for r in rows)
        graded = statistics.median(r[1] for r in rows)
        adam = statistics.median(r[2] for r in rows)
        total = sum(r[1] + r[2] for r in rows)
        diff = max(abs(r[0] - e) / abs(e) for r, e in zip(rows, eager))
        shown = "-" if name == "jit (steady)" else f"{diff:.1e}"
        print(
            f"{name:<18}{step * 1e3:>10.3f}{graded * 1e3:>10.3f}{adam * 1e3:>10.3f}"
            f"{total:>10.2f}{shown:>11}"
        )
    if slotted:
        slot = runs["slotted Value"]
        med = statistics.median(r[1] + r[2] for r in slot)
        whole = sum(r[1] + r[2] for r in slot)
        for name, target in (("eager", 5), ("jit (steady)", 50)):
            ratio = med / statistics.median(r[1] + r[2] for r in runs[name])
            print(f"{name} vs slotted Value, per step: {ratio:.1f}x (target {target}x)")
        ratio = whole / sum(r[1] + r[2] for r in runs["jit (whole run)"])
        print(f"jit whole run vs slotted Value: {ratio:.1f}x (target 8x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="20 steps, no slotted Value")
    parser.add_argument("--user-loop", action="store_true", help="only the user loop")
    args = parser.parse_args()
    steps = 20 if args.quick else args.steps
    import backprop

    docs, vocab = documents(args.seed)
    weights = initial_weights(args.seed, vocab)
    if args.user_loop:
        user_loop_report(docs, weights, steps, slotted=not args.quick)
        return
    lengths = len({min(BLOCK, len(d) - 1) for d in docs[:steps]})
    print(f"{steps} names ({lengths} distinct lengths), {sum(a.size for a in weights.values())}")
    print("weights; one step = forward, backward and an Adam update of one name\n")
    results = {}
    jl, jt, step, jg = run_jit(docs, weights, steps)
    results["jit (whole run)"] = (jl[:steps], jt[:steps])
    results["jit (steady)"] = (jl[steps:], jt[steps:])
    el, et, _, eg = run_values(docs, weights, steps, backprop.Value, _closure, "eager")
    results["eager"] = (el, et)
    graded = {"jit (steady)": jg[steps:], "eager": eg}
    if not args.quick:
        sl, st, _, sg = run_values(docs, weights, steps, SlotValue, _closure, "slotted")
        results["slotted Value"] = (sl, st)
        graded["slotted Value"] = sg
    results["numpy"] = run_numpy(docs, weights, steps)
    try:
        results["torch f64"] = run_torch(docs, weights, steps)
    except ImportError:
        print("(torch is not installed: skipped)")
    print(f"{'engine':<18}{'median ms':>11}{'steps/s':>10}{'total s':>10}{'loss diff':>11}")
    for name, (losses, times) in results.items():
        # the largest relative difference from eager mode's losses, name by name (the steady
        # pass trains on from where the first ended: no eager losses to compare with)
        diff = max(abs(a - b) / abs(b) for a, b in zip(losses, el))
        shown = "-" if name == "jit (steady)" else f"{diff:.1e}"
        med = statistics.median(times)
        print(f"{name:<18}{med * 1e3:>11.3f}{1 / med:>10.1f}{sum(times):>10.2f}{shown:>11}")
    print("\nwithout the update (forward + backward only):")
    for name, times in graded.items():
        print(f"  {name:<16}{statistics.median(times) * 1e3:>11.3f} ms")
    if "slotted Value" in graded:
        ratio = statistics.median(graded["slotted Value"]) / statistics.median(jg[steps:])
        print(f"  jit steady vs slotted Value: {ratio:.0f}x")
    traced = statistics.median(step.traced_times)
    eager_med = statistics.median(et)
    print(
        f"\njit: {len(step.cache_info())} programs; a step that traces takes {traced * 1e3:.0f} "
        f"ms median ({traced / eager_med:.2f} eager steps: the function run once, tracing, "
        f"planning, one replay), {sum(step.traced_times):.2f} s in all"
    )
    steady = statistics.median(results["jit (steady)"][1])
    whole = sum(results["jit (whole run)"][1])
    print(f"jit steady vs eager: {eager_med / steady:.0f}x")
    if "slotted Value" in results:
        slot = results["slotted Value"][1]
        print(f"jit steady vs slotted Value: {statistics.median(slot) / steady:.0f}x (target 50x)")
        print(f"jit whole run vs slotted Value: {sum(slot) / whole:.1f}x (target 8x)")
    print(f"jit steady vs numpy: {steady / statistics.median(results['numpy'][1]):.1f}x slower")
    if "torch f64" in results:
        print(f"jit steady vs torch: {statistics.median(results['torch f64'][1]) / steady:.2f}x")
    user_loop_report(docs, weights, steps, slotted=not args.quick)


def _closure(params):
    return lambda tokens: mg.loss_of(params, tokens)


if __name__ == "__main__":
    main()
