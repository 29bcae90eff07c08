"""explore(Recorder)'s page in headless chromium: a microgpt-style loop of our own (embeddings,
one causal attention layer with two heads, a softmax readout, Adam) recorded for 20 steps with
step, watch and probe. The page opens offline with no console errors, names every recorded
matrix and watched value, stays under 10 MB, and its probe step-through equals eager
backward() on that step's parameters, bit for bit."""

from __future__ import annotations

import math
import random
import struct

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import Recorder, Value, explore

VOCAB, EMBD, HEADS, BLOCK = 5, 4, 2, 4
HEAD = EMBD // HEADS


def matrix(rng, rows, cols, std=0.3):
    return [[Value(rng.gauss(0, std)) for _ in range(cols)] for _ in range(rows)]


def linear(x, w):
    return [sum((wi * xi for wi, xi in zip(row, x)), Value(0.0)) for row in w]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps, Value(0.0))
    return [e / total for e in exps]


def model_loss(sd, tokens, watch=None):
    """Mean next-token loss of one sequence; each head's causal attention weights given to
    watch(head, rows)."""
    keys, values, losses = [], [], []
    attention = [[] for _ in range(HEADS)]
    for pos, (tok, nxt) in enumerate(zip(tokens, tokens[1:])):
        x = [t + p for t, p in zip(sd["wte"][tok], sd["wpe"][pos])]
        q, k, v = linear(x, sd["wq"]), linear(x, sd["wk"]), linear(x, sd["wv"])
        keys.append(k)
        values.append(v)
        out = []
        for h in range(HEADS):
            s = slice(h * HEAD, (h + 1) * HEAD)
            scores = [
                sum((a * b for a, b in zip(q[s], kk[s])), Value(0.0)) * (1 / math.sqrt(HEAD))
                for kk in keys
            ]
            weights = softmax(scores)
            attention[h].append(weights)
            out += [
                sum((w * vv[s][j] for w, vv in zip(weights, values)), Value(0.0))
                for j in range(HEAD)
            ]
        hidden = [(a + b).tanh() for a, b in zip(x, linear(out, sd["wo"]))]
        probs = softmax(linear(hidden, sd["lm_head"]))
        losses.append(-probs[nxt].log())
    if watch is not None:
        names = [str(t) for t in tokens[:-1]]
        for h in range(HEADS):
            watch(f"attention head {h}", attention[h], rows=names, columns=names)
    return sum(losses, Value(0.0)) * (1 / len(losses))


@pytest.fixture(scope="module")
def recorded():
    rng = random.Random(0)
    sd = {
        "wte": matrix(rng, VOCAB, EMBD),
        "wpe": matrix(rng, BLOCK, EMBD),
        "wq": matrix(rng, EMBD, EMBD),
        "wk": matrix(rng, EMBD, EMBD),
        "wv": matrix(rng, EMBD, EMBD),
        "wo": matrix(rng, EMBD, EMBD),
        "lm_head": matrix(rng, VOCAB, EMBD),
    }
    params = [p for mat in sd.values() for row in mat for p in row]
    data = [[0, 1, 2, 3], [0, 2, 4, 1], [0, 3, 1, 2]]
    probe_name = [0, 1, 2, 3]
    rec = Recorder(sd, title="a tiny attention model")
    rec.probe(lambda: model_loss(sd, probe_name))
    m = [0.0] * len(params)
    v = [0.0] * len(params)
    snapshots = {}
    for step in range(20):
        loss = model_loss(sd, data[step % len(data)])
        model_loss(sd, probe_name, watch=rec.watch)  # the probe name's attention this step
        for p in params:
            p.grad = 0.0
        loss.backward()
        snapshots[step] = [p.data for p in params]
        if step % 5 == 0:
            rec.note("samples", f"sample at step {step}")
        rec.step(loss, lr=0.05)
        for i, p in enumerate(params):
            m[i] = 0.9 * m[i] + 0.1 * p.grad
            v[i] = 0.99 * v[i] + 0.01 * p.grad**2
            p.data -= 0.05 * m[i] / (v[i] ** 0.5 + 1e-8)
    return rec, sd, params, probe_name, snapshots


@pytest.fixture(scope="module")
def page(browser, recorded, tmp_path_factory):
    rec = recorded[0]
    path = explore(rec).save(tmp_path_factory.mktemp("rec") / "run.html")
    assert path.stat().st_size < 10_000_000
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
            requests.append(r.url))  # fmt: skip
    page.route("**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else
               r.continue_())  # fmt: skip
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    page.close()
    assert errors == []
    assert requests == []


def test_it_names_every_matrix_and_watched_value(page, recorded):
    rec = recorded[0]
    text = page.text_content("body")
    for name, _ in rec.matrices:
        assert page.locator(f"canvas.bpr-map[data-name='{name}']").count() == 1
        assert name in text
    for h in range(HEADS):
        table = page.locator(f"table.bpr-labelled[data-name='attention head {h}']")
        assert table.locator("th.col").all_text_contents() == ["0", "1", "2"]
        assert table.locator("tr").count() == 4  # the labels, then 3 causal rows
    assert page.locator("svg[data-name='loss']").count() == 1
    assert page.locator("svg[data-name='lr']").count() == 1


def test_weights_and_gradients_are_the_recorded_ones(page, recorded):
    rec, _, params, _, snapshots = recorded
    for k in (0, 7, 19):
        flat = [x for name, _ in rec.matrices for x in page.evaluate(f"bpr.params({k}, '{name}')")]
        assert flat == snapshots[k]
    before = page.eval_on_selector("canvas[data-name='wq']", "c => c.toDataURL()")
    page.evaluate("bpr.showGradients(true)")
    after = page.eval_on_selector("canvas[data-name='wq']", "c => c.toDataURL()")
    assert before != after
    page.evaluate("bpr.showGradients(false)")


def test_the_cursor_moves_every_view(page):
    page.evaluate("bpr.frame(0)")
    first = page.eval_on_selector("canvas[data-name='wte']", "c => c.toDataURL()")
    head = page.inner_html("[data-name='attention head 0']")
    cursor = page.get_attribute("svg[data-name='loss']", "data-cursor")
    page.click("#bpr-last")
    assert page.evaluate("bpr.step()") == 19
    assert page.eval_on_selector("canvas[data-name='wte']", "c => c.toDataURL()") != first
    assert page.inner_html("[data-name='attention head 0']") != head
    assert page.get_attribute("svg[data-name='loss']", "data-cursor") != cursor


def bits(xs):
    return [struct.pack("<d", x) for x in xs]


def test_the_probe_step_through_equals_eager_backward(page, recorded):
    _, sd, params, probe_name, snapshots = recorded
    for k in (0, 12, 19):
        saved = [p.data for p in params]
        for p, x in zip(params, snapshots[k]):
            p.data = x
        root = model_loss(sd, probe_name)
        order = root.topological_order()
        grads = [p.grad for p in params]
        for node in order:
            node.grad = 0.0
        root.backward()
        want_data = [n.data for n in order]
        want_grad = [n.grad for n in order]
        for p, x, g in zip(params, saved, grads):
            p.data, p.grad = x, g
        got = page.evaluate(f"bpr.probe({k})")
        assert bits(got["data"]) == bits(want_data)
        assert bits(got["grad"]) == bits(want_grad)
    page.evaluate("bpr.frame(19)")
    page.click("#bpr-step-probe")
    assert page.evaluate("bpr.stepThroughOpen()")
    page.keyboard.press("Escape")
    assert not page.evaluate("bpr.stepThroughOpen()")


def test_notes_are_listed_up_to_the_cursor(page):
    page.evaluate("bpr.frame(7)")
    items = page.eval_on_selector_all("#bpr-notes li", "ls => ls.map(l => l.textContent)")
    assert items == ["step 5sample at step 5", "step 0sample at step 0"]
    page.evaluate("bpr.frame(19)")
    assert page.locator("#bpr-notes li").count() == 4


def test_image_inputs_draw_each_weight_row_as_an_image(browser, tmp_path):
    from backprop import MLP

    model = MLP(4, [3, 1], seed=0)
    rec = Recorder(model, image_shape=(2, 2))
    for _ in range(3):
        loss = model([1.0, 0.0, 0.5, 0.25]) ** 2
        model.zero_grad()
        loss.backward()
        rec.step(loss)
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    path = explore(rec).save(tmp_path / "img.html")
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator(".bpr-images canvas").count() == 3  # layer 1: 3 rows of 4 pixels
    finally:
        page.close()
    assert errors == []
