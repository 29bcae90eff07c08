"""The loss of one token through a small attention layer, as microgpt writes it (n_embd 16,
four heads, a 27-letter vocabulary, no MLP), built under ``backprop.scope`` blocks: the graph
of issue 20's block-by-block step-through (about 4,000 nodes).

``token_loss()`` returns (loss, params). Where ``backprop.scope`` is not there yet, ``scoped``
tags the nodes a block makes itself (walking back from its outputs to what existed before),
and ``tagged_scopes()`` patches a read-only ``Value.scope`` that reads those tags, so the pages
can be built and tested the same way.
"""

from __future__ import annotations

import contextlib
import functools
import random

import backprop
from backprop import Value

N_EMBD, N_HEAD, VOCAB = 16, 4, 27
_TAGS: dict[int, str] = {}
_KEEP: list[Value] = []  # tagged nodes stay alive, so their ids stay theirs


def _values(x) -> list[Value]:
    if isinstance(x, Value):
        return [x]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _values(item)]
    return []


def scoped(name: str):
    """backprop.scope(name) as a decorator, or the tagging stand-in without it."""
    if not _SCOPED[0]:
        return lambda fn: fn
    real = getattr(backprop, "scope", None)
    if real is not None:
        return real(name)

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args):
            known = {id(v) for root in _values(args) + _PARAMS for v in root.topological_order()}
            out = fn(*args)
            stack, seen = _values(out), set()
            while stack:
                v = stack.pop()
                if id(v) in seen or id(v) in known:
                    continue
                seen.add(id(v))
                inner = _TAGS.get(id(v))
                _TAGS[id(v)] = name + ("/" + inner if inner else "")
                _KEEP.append(v)
                stack.extend(v._prev)
            return out

        return run

    return decorate


_PARAMS: list[Value] = []
_SCOPED = [True]


@contextlib.contextmanager
def tagged_scopes():
    """Value.scope from the stand-in's tags, while the block lasts (no-op with the real one)."""
    if hasattr(backprop, "scope") or "scope" in Value.__dict__:  # the real one, or nested
        yield
        return
    Value.scope = property(lambda v: _TAGS.get(id(v), ""))
    try:
        yield
    finally:
        del Value.scope


def _matrix(rng, rows, cols, name):
    m = [[Value(rng.gauss(0, 0.08), label=f"{name}[{i}][{j}]") for j in range(cols)]
         for i in range(rows)]  # fmt: skip
    _PARAMS.extend(v for row in m for v in row)
    return m


def linear(x, w):
    return [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    ms = sum(xi * xi for xi in x) / len(x)
    scale = 1 / (ms + 1e-5).sqrt()  # microgpt's ** -0.5, in ops the page can replay exactly
    return [xi * scale for xi in x]


def token_loss(token=3, target=7, seed=0, n_embd=N_EMBD, n_head=N_HEAD, vocab=VOCAB, scoped=True):
    """The loss of predicting ``target`` after ``token`` at position 0, and the parameters
    (smaller sizes give a smaller graph of the same shape; scoped=False, no scopes)."""
    _SCOPED[0] = scoped
    try:
        return _token_loss(token, target, seed, n_embd, n_head, vocab)
    finally:
        _SCOPED[0] = True


def _token_loss(token, target, seed, n_embd, n_head, vocab):
    _PARAMS.clear()
    rng = random.Random(seed)
    head_dim = n_embd // n_head
    wte, wpe = _matrix(rng, vocab, n_embd, "wte"), _matrix(rng, 8, n_embd, "wpe")
    wq, wk, wv = (_matrix(rng, n_embd, n_embd, n) for n in ("wq", "wk", "wv"))
    head = _matrix(rng, vocab, n_embd, "lm_head")

    @scoped("embed")
    def embed(tok, pos):
        return rmsnorm([t + p for t, p in zip(wte[tok], wpe[pos])])

    def attention_head(h, q, k, v):
        @scoped(f"head{h}")
        def run(q, k, v):
            s = slice(h * head_dim, (h + 1) * head_dim)
            logits = [sum(a * b for a, b in zip(q[s], k[s])) / head_dim**0.5]
            weights = scoped("softmax")(softmax)(logits)
            return [weights[0] * vj for vj in v[s]]

        return run(q, k, v)

    @scoped("attn")
    def attention(x):
        h = scoped("rmsnorm")(rmsnorm)(x)
        q, k, v = (scoped(n)(linear)(h, w) for n, w in (("q", wq), ("k", wk), ("v", wv)))
        heads = [out for i in range(n_head) for out in attention_head(i, q, k, v)]
        return [a + b for a, b in zip(heads, x)]

    @scoped("loss")
    def loss_of(logits):
        return -scoped("softmax")(softmax)(logits)[target].log()

    x = embed(token, 0)
    x = attention(x)
    logits = scoped("lm_head")(linear)(x, head)
    loss = loss_of(logits)
    loss.label = "loss"
    return loss, list(_PARAMS)
