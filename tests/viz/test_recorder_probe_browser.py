"""A big probe on explore(Recorder)'s page, in headless chromium: a microgpt-style model (RMSNorm
as microgpt writes it, ``** -0.5``; attention heads; a ReLU MLP) built under backprop.scope
blocks, whose probe graph is thousands of nodes. The page ships its drawing gzipped and
inflates it in the browser; the replay at a frame equals eager backward() on that step's
parameters bit for bit, the ** -0.5 powers included (one-byte hints); the step-through opens
block by block, a block opens with Enter and closes with Esc, and Esc at the top goes back to
the run."""

from __future__ import annotations

import random
import struct

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)
from token_graph import linear, softmax

from backprop import Recorder, Value, explore, scope

VOCAB, EMBD, HEADS = 7, 8, 2
HEAD = EMBD // HEADS


def matrix(rng, rows, cols, std=0.3):
    return [[Value(rng.gauss(0, std)) for _ in range(cols)] for _ in range(rows)]


def rmsnorm(x):  # microgpt's, with ** -0.5 (token_graph's is written with sqrt)
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def loss_of(sd, tokens):
    keys, values, losses = [], [], []
    for pos, (tok, nxt) in enumerate(zip(tokens, tokens[1:])):
        with scope(f"position {pos}"):
            with scope("embedding"):
                x = rmsnorm([a + b for a, b in zip(sd["wte"][tok], sd["wpe"][pos])])
            with scope("attention"):
                q, k, v = (linear(x, sd[n]) for n in ("wq", "wk", "wv"))
                keys.append(k)
                values.append(v)
                out = []
                for h in range(HEADS):
                    with scope(f"head {h}"):
                        part = slice(h * HEAD, (h + 1) * HEAD)
                        w = softmax([sum(a * b for a, b in zip(q[part], kt[part])) for kt in keys])
                        for j in range(h * HEAD, (h + 1) * HEAD):
                            out.append(sum(wt * vt[j] for wt, vt in zip(w, values)))
                x = [a + b for a, b in zip(linear(out, sd["wo"]), x)]
            with scope("mlp"):
                h1 = [a.relu() for a in linear(rmsnorm(x), sd["fc1"])]
                x = [a + b for a, b in zip(linear(h1, sd["fc2"]), x)]
            with scope("loss"):
                losses.append(-softmax(linear(x, sd["head"]))[nxt].log())
    return sum(losses) * (1.0 / len(losses))


@pytest.fixture(scope="module")
def recorded():
    rng = random.Random(1)
    sd = {"wte": matrix(rng, VOCAB, EMBD), "wpe": matrix(rng, 4, EMBD)}
    for name in ("wq", "wk", "wv", "wo"):
        sd[name] = matrix(rng, EMBD, EMBD)
    sd["fc1"], sd["fc2"] = matrix(rng, 2 * EMBD, EMBD), matrix(rng, EMBD, 2 * EMBD)
    sd["head"] = matrix(rng, VOCAB, EMBD)
    params = [p for m in sd.values() for row in m for p in row]
    probe = [0, 3, 5, 0]
    rec = Recorder(sd, title="a scoped microgpt")
    rec.probe(lambda: loss_of(sd, probe))
    snapshots = []
    for step in range(6):
        loss = loss_of(sd, [0, 1 + step % 5, 2, 4, 0])
        for p in params:
            p.grad = 0.0
        loss.backward()
        snapshots.append([p.data for p in params])
        rec.step(loss)
        for p in params:
            p.data -= 0.05 * p.grad
    return rec, sd, params, probe, snapshots


@pytest.fixture(scope="module")
def page(browser, recorded, tmp_path_factory):
    page = explore(recorded[0])
    assert "packed" in page.data["probe"] and page.data["probe"]["tape"] is None
    path = page.save(tmp_path_factory.mktemp("probe") / "run.html")
    assert path.stat().st_size < 10_000_000
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, requests = [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:")) else
           requests.append(r.url))  # fmt: skip
    tab.goto(path.as_uri())
    tab.wait_for_selector("body[data-probe-ready='1']", timeout=60_000)
    yield tab
    assert errors == [] and requests == []
    tab.close()


def bits(xs):
    return [struct.pack("<d", x) for x in xs]


def eager(recorded, k):
    """Every node's data and grad of the probe's graph on step k's parameters."""
    _, sd, params, probe, snapshots = recorded
    saved = [(p.data, p.grad) for p in params]
    for p, x in zip(params, snapshots[k]):
        p.data = x
    root = loss_of(sd, probe)
    order = root.topological_order()
    for node in order:
        node.grad = 0.0
    root.backward()
    out = [n.data for n in order], [n.grad for n in order]
    for p, (x, g) in zip(params, saved):
        p.data, p.grad = x, g
    return out


def test_the_graph_is_big_and_uses_powers_a_browser_computes_otherwise(recorded):
    root = loss_of(recorded[1], recorded[3])
    order = root.topological_order()
    assert len(order) > 3_000
    assert sum(1 for v in order if v._op == "**-0.5") == 2 * 3  # 2 rmsnorms a position


def test_the_replay_at_a_frame_equals_eager_backward_bit_for_bit(page, recorded):
    for k in (0, 5):
        data, grad = eager(recorded, k)
        got = page.evaluate(f"bpr.probe({k})")
        assert bits(got["data"]) == bits(data)
        assert bits(got["grad"]) == bits(grad)


def test_the_step_through_goes_block_by_block(page, recorded):
    page.evaluate("bpr.frame(5)")
    page.click("#bpr-step-probe")  # (it says it is drawing, then draws)
    page.wait_for_function("bpr.stepThroughOpen()")
    data, grad = eager(recorded, 5)
    shown = page.evaluate("bpExplain.recorded().grads")
    assert bits(shown) == bits(grad)  # the step-through's numbers are eager's
    outline = page.eval_on_selector_all("#bp-outline li", "ls => ls.map(l => l.textContent)")
    assert any(t.startswith("position 0") for t in outline)
    assert page.evaluate("bpExplain.level()") == [0]
    for _ in range(3):  # the mean's two steps, then the first block: position 2, the last made
        page.keyboard.press("ArrowRight")
    assert page.text_content("#bp-open").startswith("Open position 2")
    page.keyboard.press("Enter")
    assert len(page.evaluate("bpExplain.level()")) == 2
    assert page.get_attribute("body", "data-level").startswith(">position")
    for _ in range(2):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Escape")  # closes the block, not the overlay
    assert page.evaluate("bpExplain.level()") == [0] and page.evaluate("bpr.stepThroughOpen()")
    # following the steps, the view is back on the block's step: its output is on screen
    page.wait_for_function("!!document.querySelector('#bp-nodes .vnode.cur')")
    box = page.eval_on_selector("#bp-nodes .vnode.cur", "g => g.getBoundingClientRect().toJSON()")
    view = page.eval_on_selector("#bp-svg", "s => s.getBoundingClientRect().toJSON()")
    assert view["left"] <= box["left"] and box["right"] <= view["right"] + 1
    page.keyboard.press("Escape")
    assert not page.evaluate("bpr.stepThroughOpen()")
    page.keyboard.press("Enter")  # no block opens behind the closed overlay
    assert not page.evaluate("bpr.stepThroughOpen()")


def test_parameters_are_named_for_where_they_sit(page):
    page.evaluate("bpr.frame(0)")
    page.click("#bpr-step-probe")
    page.wait_for_function("bpr.stepThroughOpen()")
    names = page.evaluate("bpExplain.recorded().names")
    assert "wte[3][0]" in names and "head[5][7]" in names
    page.keyboard.press("Escape")
