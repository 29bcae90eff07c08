"""replay.js in a real headless browser (Debian's chromium, driven by playwright).

The explorer replays a point's loss graph in the page; these tests hold that replay to Python's
eager ``backward()``, bit for bit (every double compared by its bytes), on random graphs of
every op it replays and on MLP point-loss graphs of every activation and loss; its
step-through words to explain()'s, text for text; and fix(), which moves the browser's libm
results onto CPython's, on numbers a few ulps off. Skipped only when chromium or playwright is
genuinely absent (CI installs both).
"""

from __future__ import annotations

import json
import math
import random
import struct

import pytest
from browser import sync_api  # noqa: F401  (skips without chromium)

from backprop import MLP, Value
from backprop.data import moons
from backprop.train import fit, get_objective
from backprop.viz.assets import read_asset
from backprop.viz.explorer import HINTED_OPS, Tape, explore, point_loss
from backprop.viz.page import scripts
from backprop.viz.stepthrough import (
    LOCAL_DERIVATIVES,
    explain,
    fmt,
    step_view_markup,
    view_of,
)
from backprop.viz.stepthrough.reverse import steps_data as _steps_data

# doubles cross into the page as the hex of their little-endian bytes, so nothing rounds them
HELPERS = """
window.T = (function () {
  const dv = new DataView(new ArrayBuffer(8));
  function hex(x) {
    if (x !== x) return "nan";  // any nan: its payload bits are nobody's business
    dv.setFloat64(0, x, true);
    let s = "";
    for (let i = 0; i < 8; i++) s += dv.getUint8(i).toString(16).padStart(2, "0");
    return s;
  }
  function unhex(h) {
    if (h === "nan") return NaN;
    for (let i = 0; i < 8; i++) dv.setUint8(i, parseInt(h.slice(2 * i, 2 * i + 2), 16));
    return dv.getFloat64(0, true);
  }
  return { hex: hex, unhex: unhex };
})();
"""


def hexed(x: float) -> str:
    return "nan" if x != x else struct.pack("<d", x).hex()


def unhexed(h: str) -> float:
    return math.nan if h == "nan" else struct.unpack("<d", bytes.fromhex(h))[0]


def low_byte(x: float) -> int:
    return struct.pack("<d", x)[0]


DERIVATIVES = {
    name: {"computes": d.computes, "locals": list(d.locals), "why": d.why}
    for name, d in LOCAL_DERIVATIVES.items()
}


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """One blank page holding the step view, common.js, explain.js and replay.js, as the explorer
    has."""
    path = tmp_path_factory.mktemp("replay") / "replay.html"
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<style>{read_asset('explain.css')}</style></head><body style='height:700px'>"
        f"<div style='height:640px;display:flex'>{step_view_markup()}</div>"
        f"<script>{scripts('explain.js', 'replay.js')}\n{HELPERS}</script>"
        "</body></html>",
        encoding="utf-8",
    )
    errors: list[str] = []
    tab = browser.new_page(viewport={"width": 1300, "height": 700})
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.route(
        "**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_()
    )  # fmt: skip
    tab.goto(path.as_uri())
    tab.wait_for_function("window.bpReplay && window.bpStepThrough && window.T")
    yield tab
    tab.close()
    assert errors == []


# ---- tapes ----------------------------------------------------------------------------------


def tape_of(root: Value) -> tuple[dict, list[Value]]:
    """A tape of root's graph, every leaf a constant, as the explorer's tapes are laid out."""
    order = root.topological_order()
    index = {id(v): i for i, v in enumerate(order)}
    ops = [None if v._fn is None else v._fn.name for v in order]
    tape = {
        "ops": ops,
        "inputs": [[index[id(p)] for p in v._prev] for v in order],
        "args": [v._arg for v in order],
        "leaves": [{"const": hexed(v.data)} if v._fn is None else None for v in order],
        "hinted": [i for i, op in enumerate(ops) if op in HINTED_OPS],
        "root": index[id(root)],
        "view": view_of(explain(root), number_chars=11),
    }
    return tape, order


REPLAY = """([tape, hints]) => {
  const leaf = (l) => T.unhex(l.const);
  const r = bpReplay.run(tape, leaf, hints);
  return { data: Array.from(r.data, T.hex), grad: Array.from(r.grad, T.hex) };
}"""

EXPLAIN = """([tape, data]) => {
  const D = bpReplay.explanation(tape, data.map(T.unhex), %s);
  for (const s of D.steps) {
    for (const c of s.changes) { c[1] = T.hex(c[1]); c[2] = T.hex(c[2]); }
  }
  return { steps: D.steps, dataText: D.dataText, data: D.data.map(T.hex) };
}""" % json.dumps(DERIVATIVES)


def python_side(root: Value, order: list[Value]) -> tuple[list[str], list[str]]:
    """Data and grads of a fresh eager backward(), as hex."""
    for v in order:
        v.grad = 0.0
    data = [hexed(v.data) for v in order]
    root.backward()
    return data, [hexed(v.grad) for v in order]


def expected_steps(root: Value) -> list[dict]:
    """explain()'s steps, as its page gets them, with the numbers as hex."""
    steps = _steps_data(explain(root))
    for s in steps:
        for c in s["changes"]:
            c[1], c[2] = hexed(float(c[1])), hexed(float(c[2]))
    return steps


def check_replay(page, root: Value) -> None:
    tape, order = tape_of(root)
    hints = [low_byte(order[i].data) for i in tape["hinted"]]
    data, grads = python_side(root, order)
    got = page.evaluate(REPLAY, [tape, hints])
    assert got["data"] == data
    assert got["grad"] == grads
    words = page.evaluate(EXPLAIN, [tape, data])
    assert words["dataText"] == [fmt(v.data) for v in order]
    assert words["steps"] == expected_steps(root)


# ---- random graphs of every op the page replays ---------------------------------------------

UNARY = ["neg", "abs", "relu", "sqrt", "exp", "log", "tanh", "sigmoid", "sq", "pow1", "pow0"]
BINARY = ["add", "sub", "mul", "div"]


def random_graph(seed: int, size: int = 30) -> Value:
    rng = random.Random(seed)

    def number() -> float:
        kind = rng.random()
        if kind < 0.08:
            return rng.choice([0.0, -0.0, 1.0, -1.0, 0.5])
        if kind < 0.2:
            return rng.uniform(-1e-3, 1e-3)
        return rng.uniform(-3.0, 3.0)

    nodes = [Value(number(), label=f"x{i}") for i in range(5)]
    for _ in range(size):
        a = rng.choice(nodes[-4:] + nodes)  # mostly recent nodes: deeper graphs
        if rng.random() < 0.5:
            op = rng.choice(UNARY)
            if op in ("sqrt", "log") and rng.random() < 0.8:
                a = a.abs()  # mostly real results, sometimes nan
            if op == "exp":
                a = a.tanh() * 3.0  # keep exp finite, mostly
            out = {
                "neg": Value.__neg__,
                "abs": Value.__abs__,
                "relu": Value.relu,
                "sqrt": Value.sqrt,
                "exp": Value.exp,
                "log": Value.log,
                "tanh": Value.tanh,
                "sigmoid": Value.sigmoid,
                "sq": lambda v: v**2,
                "pow1": lambda v: v**1,
                "pow0": lambda v: v**0,
            }[op](a)
        else:
            op = rng.choice(BINARY)
            b = rng.choice(nodes + [a])  # sometimes a op a: two edges to one node
            if op == "div" and rng.random() < 0.7:
                b = b * b + 0.5
            out = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
        if rng.random() < 0.2:
            out = out + rng.uniform(-2, 2)  # constant leaves
        if abs(out.data) > 1e6:
            out = out.tanh()
        nodes.append(out)
    root = nodes[-1]
    for v in rng.sample(nodes[5:-1], 4):  # keep more of the graph under the root
        root = root + v * 0.25
    root.label = "out"
    return root


@pytest.mark.parametrize("seed", range(8))
def test_random_graphs_replay_bit_for_bit(page, seed):
    check_replay(page, random_graph(seed))


def test_every_op_is_in_the_random_graphs():
    seen = set()
    for seed in range(8):
        root = random_graph(seed)
        seen |= {(v._fn.name, v._arg) for v in root.topological_order() if v._fn is not None}
    ops = {op for op, _ in seen}
    assert ops == {"add", "sub", "mul", "div", "neg", "abs", "relu", "sqrt", "exp", "log",
                   "tanh", "sigmoid", "powc"}  # fmt: skip
    assert {k for op, k in seen if op == "powc"} == {0.0, 1.0, 2.0}


def test_special_numbers_replay(page):
    """Zeros of both signs, nan, infinity, division by zero, relu at 0, tanh near +-1."""
    z, nz = Value(0.0, label="z"), Value(-0.0, label="nz")
    big, neg = Value(800.0, label="big"), Value(-2.0, label="neg")
    root = (
        (z / nz) + (neg / z) + big.exp() + neg.log() + neg.sqrt() + nz.relu() + z.relu()
        + abs(nz) + (big * 0.05).tanh() * nz + (-big).sigmoid() + (big / 40).tanh()
    )  # fmt: skip
    check_replay(page, root)


def test_accumulation_and_long_sums_word_as_explain_does(page):
    a = Value(1.5, label="a")
    uses = [a * float(k) for k in range(15)]  # 15 terms into a: the sum text is cut
    root = sum(uses[1:], uses[0]).tanh()
    check_replay(page, root)
    b = Value(-0.25, label="b value")  # a name that needs brackets
    check_replay(page, (b * b + b.relu() + (b + 1.0) ** 2 - b / 3.0).sigmoid())


NOISY_MATH = """(on) => {
  // a browser whose Math.tanh, exp and log are up to 3 ulps off CPython's (as another libm may
  // be): the hints must bring every result back
  if (!on) { Object.assign(Math, window.trueMath); return; }
  window.trueMath = { tanh: Math.tanh, exp: Math.exp, log: Math.log };
  let k = 0;
  const dv = new DataView(new ArrayBuffer(8));
  const nudge = (x) => {
    if (!Number.isFinite(x) || x === 0) return x;
    const d = BigInt((k++ % 7) - 3);  // -3 .. 3 ulps
    dv.setFloat64(0, x);
    const bits = dv.getBigUint64(0);
    dv.setBigUint64(0, bits + d);
    const y = dv.getFloat64(0);
    return Number.isFinite(y) && Math.sign(y) === Math.sign(x) ? y : x;
  };
  for (const name of ["tanh", "exp", "log"]) {
    const f = window.trueMath[name];
    Math[name] = (x) => nudge(f(x));
  }
}"""


def test_hints_correct_a_browser_whose_math_is_a_few_ulps_off(page):
    page.evaluate(NOISY_MATH, True)
    try:
        assert page.evaluate("Math.tanh(0.5) !== window.trueMath.tanh(0.5) || "
                             "Math.tanh(0.5) !== window.trueMath.tanh(0.5)")  # fmt: skip
        for seed in range(3):
            check_replay(page, random_graph(seed))
        model = MLP(2, [3, 1], activation="tanh", output_activation="linear", seed=4)
        root, _, _ = point_loss(model, [0.3, -1.2], 0.0, "bce")
        check_replay(page, root)
        tape, order = tape_of(root)
        unhinted = page.evaluate(REPLAY, [tape, None])["data"]
        assert unhinted != [hexed(v.data) for v in order]  # the noise was there to correct
    finally:
        page.evaluate(NOISY_MATH, False)
    assert page.evaluate("Math.tanh === window.trueMath.tanh")


# ---- MLP point-loss graphs, as the explorer's tapes ------------------------------------------

TARGETS = {"hinge": [-1.0, 1.0], "mse": [-1.0, 1.0], "bce": [0.0, 1.0], "cross-entropy": [0, 1, 2]}
ACTIVATIONS = ["tanh", "relu", "sigmoid"]


def neuron_values(model: MLP, x: list[float]) -> list[list[str]]:
    """Every neuron's output for input x, as hex: what the page shows when a point is clicked."""
    out, values = [Value(v) for v in x], []
    for layer in model.layers:
        y = layer(out)
        out = [y] if isinstance(y, Value) else y
        values.append([hexed(v.data) for v in out])
    return values


POINT = """([tape, params, x, target, hints, sizes, activations]) => {
  const p = params.map(T.unhex), xs = x.map(T.unhex), t = T.unhex(target);
  const leaf = (l) => l.param !== undefined ? p[l.param] : l.input !== undefined ? xs[l.input] :
    l.target ? t : Number(l.const);
  const r = bpReplay.run(tape, leaf, hints);
  const neurons = bpReplay.neuronValues(bpReplay.neurons(tape, sizes, activations), r.data);
  return {
    data: Array.from(r.data, T.hex),
    grad: Array.from(r.grad, T.hex),
    params: Array.from(bpReplay.paramGrads(tape, r.grad, p.length), T.hex),
    neurons: neurons.out.map((layer) => layer.map(T.hex)),
  };
}"""


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", list(TARGETS))
def test_mlp_point_losses_replay_bit_for_bit(page, loss, activation):
    objective = get_objective(loss)
    k = 1 if objective.binary else 3
    rng = random.Random(f"{loss}-{activation}")
    for trial in range(2):
        model = MLP(2, [4, 3, k], activation=activation, output_activation="linear", seed=trial)
        x = [rng.uniform(-2, 2), rng.uniform(-2, 2)]
        for target in TARGETS[loss]:
            root, inputs, leaf = point_loss(model, x, target, loss)
            params = model.parameters()
            tape = Tape.read(root, params, inputs, leaf)
            order = tape.order
            view = view_of(explain(root), number_chars=11)
            hints = [low_byte(order[i].data) for i in tape.hinted]
            model.zero_grad()
            data, grads = python_side(root, order)
            got = page.evaluate(
                POINT,
                [tape.as_json(view), [hexed(p.data) for p in params], [hexed(v) for v in x],
                 hexed(float(target)), hints, model.sizes, model.activations],
            )  # fmt: skip
            assert got["data"] == data
            assert got["grad"] == grads
            assert got["params"] == [hexed(p.grad) for p in params]
            assert got["neurons"] == neuron_values(model, x)
            words = page.evaluate(EXPLAIN, [tape.as_json(view), data])
            assert words["steps"] == expected_steps(root)


def test_a_recorded_run_replays_every_point(page):
    """forPage() on explore()'s own page data: each point at the first, a middle and the last
    frame equals eager backward() on the snapshot's model."""
    X, Y = moons(12, noise=0.1, seed=3)
    model = MLP(2, [4, 1], activation="tanh", output_activation="linear", seed=2)
    history = fit(model, X, Y, epochs=5, optimizer="sgd", lr=0.3, progress=False, record=True)
    data = explore(history).data
    frames = [0, len(data["frames"]) // 2, len(data["frames"]) - 1]
    got = page.evaluate(
        """([D, frames]) => {
          const R = bpReplay.forPage(D), out = [];
          for (const f of frames) {
            for (let i = 0; i < D.X.length; i++) {
              const p = R.point(f, i);
              out.push([f, i, T.hex(p.loss), Array.from(p.paramGrads, T.hex)]);
            }
          }
          return out;
        }""",
        [data, frames],
    )
    objective = get_objective(history.loss_name)
    for f, i, loss, grads in got:
        snapshot = history.model_at(data["frames"][f]["epoch"])
        target = objective.target(data["y"][i])
        root, _, _ = point_loss(snapshot, data["X"][i], target, objective)
        snapshot.zero_grad()
        root.backward()
        assert loss == hexed(root.data), (f, i)
        assert grads == [hexed(p.grad) for p in snapshot.parameters()], (f, i)


# ---- the step-through view, mounted with the replay's data -----------------------------------


def test_the_step_view_mounts_a_replayed_point_and_unmounts(page):
    roots = [random_graph(11, size=12), random_graph(12, size=8)]
    for root in roots:
        tape, order = tape_of(root)
        hints = [low_byte(order[i].data) for i in tape["hinted"]]
        data, grads = python_side(root, order)
        got = page.evaluate(
            """([tape, hints]) => {
              const r = bpReplay.run(tape, (l) => T.unhex(l.const), hints);
              const D = bpReplay.explanation(tape, r.data, %s);
              const view = bpStepThrough.mount(D);
              const next = document.getElementById("bp-next");
              while (!next.disabled) next.click();
              const shown = Array.from(document.querySelectorAll("g.vnode"))
                .sort((a, b) => a.dataset.i - b.dataset.i);
              return {
                grads: window.backprop.grads().map(T.hex),
                attrs: shown.map((g) => T.hex(Number(g.dataset.grad))),
                data: shown.map((g) => g.querySelector("text.data").textContent),
                title: document.getElementById("bp-title").textContent,
                same: view === window.backprop,
              };
            }"""
            % json.dumps(DERIVATIVES),
            [tape, hints],
        )
        assert got["grads"] == grads and got["attrs"] == grads
        assert got["data"] == [f"data {fmt(v.data)}" for v in order]
        assert got["title"] == "Done: the backward pass is complete" and got["same"]
    # keys step the mounted view and go no further; after destroy() they reach the page again
    page.evaluate("""() => {
      window.seen = 0;
      document.addEventListener("keydown", () => { window.seen += 1; });
    }""")
    page.evaluate("window.backprop.go(0)")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("[window.backprop.step(), window.seen]") == [1, 0]
    page.evaluate("bpStepThrough.mounted().destroy()")
    assert page.evaluate("[window.backprop === undefined, bpStepThrough.mounted()]") == [True, None]
    page.keyboard.press("ArrowRight")
    page.click("#bp-next")  # its buttons do nothing now
    assert page.evaluate("window.seen") == 1
    assert page.text_content("#bp-counter").startswith("step 1 /")


def test_a_view_mounted_while_hidden_starts_when_shown(page):
    tape, order = tape_of(random_graph(13, size=10))
    hints = [low_byte(order[i].data) for i in tape["hinted"]]
    page.evaluate(
        """([tape, hints]) => {
          document.getElementById("bp-view").parentElement.style.display = "none";
          const r = bpReplay.run(tape, (l) => T.unhex(l.const), hints);
          bpStepThrough.mount(bpReplay.explanation(tape, r.data, %s));
        }"""
        % json.dumps(DERIVATIVES),
        [tape, hints],
    )
    page.evaluate("document.getElementById('bp-view').parentElement.style.display = 'flex'")
    page.wait_for_function("Number(document.getElementById('bp-svg').dataset.scale) > 0.3")
    view = [float(v) for v in page.get_attribute("#bp-svg", "data-view").split()]
    assert all(math.isfinite(v) for v in view) and view[2] > 0
    page.keyboard.press("End")
    assert page.evaluate("window.backprop.step()") == page.evaluate("window.backprop.steps") - 1
    page.evaluate("bpStepThrough.mounted().destroy()")


# ---- refusals, fix() and the codecs ----------------------------------------------------------


def test_it_refuses_what_it_cannot_replay_exactly(page):
    x = Value(1.5, label="x")
    for root, words in [
        (x**3, "only ** 0, 1, 2, 0.5 and -0.5 replay exactly without hints"),  # no data hint
        (x**-0.5, "only ** 0, 1, 2, 0.5 and -0.5 replay exactly without hints"),  # no power hint
        (x**x, "pow, which the page cannot replay exactly"),
        (2**x, "rpow, which the page cannot replay exactly"),
    ]:
        tape, _ = tape_of(root)
        tape["hinted"] = [i for i in tape["hinted"] if tape["ops"][i] != "powc"]
        tape.pop("bhinted", None)
        message = page.evaluate(
            """(tape) => { try { bpReplay.run(tape, (l) => T.unhex(l.const), []); }
              catch (e) { return e.message; } return null; }""",
            tape,
        )
        assert message is not None and words in message
    tape, _ = tape_of(x.tanh())
    tape["hinted"] = []  # a libm op without its hint
    message = page.evaluate(
        "(tape) => { try { bpReplay.run(tape, (l) => T.unhex(l.const), []); }"
        " catch (e) { return e.message; } return null; }",
        tape,
    )
    assert "has no hint" in message
    # without hints at all the browser's own numbers are used, and said to be inexact
    inexact = "(t) => bpReplay.run(t, (l) => T.unhex(l.const), null).exact === false"
    assert page.evaluate(inexact, tape)


def neighbours(x: float, steps: int) -> float:
    for _ in range(abs(steps)):
        x = math.nextafter(x, math.inf if steps > 0 else -math.inf)
    return x


def test_fix_moves_a_few_ulps_onto_the_hinted_double(page):
    rng = random.Random(5)
    targets = [rng.uniform(-4, 4) for _ in range(40)]
    targets += [math.tanh(rng.uniform(-3, 3)) for _ in range(20)]
    targets += [-0.7615941559557649, 1e-300, -3e-310, 123456.789, 0.9999999999999999]
    for k in (-3, 0, 1, 10, 52):  # powers of two, and their neighbours just below
        for s in (1.0, -1.0):
            targets += [s * 2.0**k, s * math.nextafter(2.0**k, 0.0), neighbours(s * 2.0**k, -2)]
    # low bytes that wrap (0x00 <-> 0xff) within a few ulps
    rest = struct.pack("<d", 1.3)[1:]
    targets += [struct.unpack("<d", bytes([b]) + rest)[0] for b in (0, 1, 254, 255)]
    cases = []
    for t in targets:
        for d in (-3, -2, -1, 1, 2, 3):
            cases.append([hexed(t), hexed(neighbours(t, d)), low_byte(t)])
    got = page.evaluate(
        "(cases) => cases.map(([t, a, low]) => T.hex(bpReplay.fix(T.unhex(a), low)))", cases
    )
    assert got == [t for t, _, _ in cases]
    # a value already right is kept; inf and nan pass through
    assert page.evaluate("bpReplay.fix(0.5, bpReplay.lowByte(0.5))") == 0.5
    assert page.evaluate("[bpReplay.fix(Infinity, 3), isNaN(bpReplay.fix(NaN, 3))]") == [
        math.inf,
        True,
    ]


def test_decoders_read_what_python_writes(page):
    import base64
    from array import array

    numbers = [0.0, -0.0, 1.5, -2.25e-300, math.pi, 1e308, 5e-324]
    b64 = base64.b64encode(array("d", numbers).tobytes()).decode()
    assert page.evaluate("(b) => Array.from(bpReplay.decodeF64(b), T.hex)", b64) == [
        hexed(x) for x in numbers
    ]
    raw = bytes(range(256))
    assert page.evaluate(
        "(b) => Array.from(bpReplay.decodeU8(b))", base64.b64encode(raw).decode()
    ) == list(raw)


def test_fmt_and_its_helpers_agree_with_python(page):
    from backprop.viz.stepthrough import _constant, _same_number, _sum_text

    rng = random.Random(9)
    xs = [rng.uniform(-10, 10) * 10.0 ** rng.randint(-12, 12) for _ in range(400)]
    xs += [k / 32 for k in range(-80, 80)] + [k / 2**14 for k in range(-40, 40)]  # exact ties
    xs += [0.99995, 0.999951, 9999999.99995, 1e7, 9.99995e-05, 0.00099995, 5e-324, 1e300]
    xs += [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, 2.0**60]
    got = page.evaluate("(xs) => xs.map((x) => bpReplay.fmt(T.unhex(x)))", [hexed(x) for x in xs])
    assert got == [fmt(x) for x in xs]
    ks = [2.0, 3.0, -1.0, 0.5, 1e15, 1e14, -0.0, 2.5e-7]
    got = page.evaluate(
        "(ks) => ks.map((k) => bpReplay.constant(T.unhex(k)))", [hexed(k) for k in ks]
    )
    assert got == [_constant(k) for k in ks]
    texts = ["2.0", "(-3.0)", "\u22121", "1 / 2.0", "nan", "inf", "(-inf)", "1_0.0", "1e-05",
             ".5", "1.", "((2.0))", "", "-", "e5", "0.0"]  # fmt: skip
    pairs = [[t, hexed(x)] for t in texts for x in (2.0, -3.0, -1.0, 10.0, 0.5, 1e-05, math.nan)]
    got = page.evaluate("(ps) => ps.map(([t, x]) => bpReplay.sameNumber(t, T.unhex(x)))", pairs)
    assert got == [_same_number(t, unhexed(x)) for t, x in pairs]
    sums = [[1.0, -0.5, 2.0], [1.0] * 30, [-1.0] * 13 + [0.25], [math.nan, -math.inf]]
    got = page.evaluate(
        "(ss) => ss.map((s) => bpReplay.sumText(s.map(T.unhex)))",
        [[hexed(t) for t in s] for s in sums],
    )
    assert got == [_sum_text(s) for s in sums]
