"""backprop.jit and backprop.take against eager mode: random graphs of varying shape, the
traced-int errors, what retraces, the cache, replaced parameters, and the microgpt example."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import math
import os
import random

import pytest

import backprop
from backprop import Value, jit, take
from backprop.compiled import LeafMismatchError
from backprop.compiled.jit import JitResult, TracedIntError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def random_model(seed: int, vocab: int = 7, width: int = 5):
    """A table of embedding rows and a few weights, as leaf Values."""
    rng = random.Random(seed)
    table = [[Value(rng.uniform(-1, 1)) for _ in range(width)] for _ in range(vocab)]
    weights = [Value(rng.uniform(-1, 1)) for _ in range(width)]
    scale = Value(rng.uniform(0.5, 1.5))
    return table, weights, scale


def random_graph(seed: int):
    """A loss function over a list of token ids whose graph depends on the list's length,
    with takes of leaf rows, of intermediate Values and of plain numbers; the ops are drawn
    at random, once per seed."""
    rng = random.Random(seed)
    plan = [rng.choice(["tanh", "exp", "relu", "sigmoid", "mul", "div", "pow", "sub", "abs"])
            for _ in range(6)]  # fmt: skip
    numbers = [rng.uniform(-2, 2) for _ in range(7)]

    def loss(model, tokens):
        table, weights, scale = model
        acc = []
        for pos, tok in enumerate(tokens):
            row = take(table, tok)
            h = sum(w * r for w, r in zip(weights, row)) * scale
            for op in plan:
                if op == "mul":
                    h = h * row[pos % len(row)]
                elif op == "div":
                    h = h / (1.5 + row[0].tanh())
                elif op == "pow":
                    h = (h * h + 0.5) ** 0.75
                elif op == "sub":
                    h = h - row[1] * 0.5
                elif op == "abs":
                    h = abs(h)
                else:
                    h = getattr(h, op)()
            acc.append(h)
            choices = [h * c for c in numbers[:4]] + [h, row[0], acc[0]]  # intermediate Values
            acc.append(take(choices, tokens[0]) * take(numbers, tokens[-1]))
        return sum(acc) / len(acc)

    return loss


def eager_step(fn, model, params, *args):
    for p in params:
        p.grad = 0.0
    out = fn(model, *args)
    out.backward()
    return out.data, [p.grad for p in params]


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_of_varying_shape_equal_eager(seed):
    fn = random_graph(seed)
    model = random_model(seed)
    table, weights, scale = model
    params = [p for row in table for p in row] + weights + [scale]
    step = jit(lambda tokens: fn(model, tokens))
    rng = random.Random(100 + seed)
    for call in range(12):
        tokens = [rng.randrange(-7, 7) for _ in range(rng.randint(1, 5))]
        value, grads = eager_step(fn, model, params, tokens)
        for p in params:
            p.grad = 0.0
        out = step(tokens)
        assert isinstance(out, Value) and type(out) is JitResult
        out.backward()
        assert close(out.data, value)
        assert all(close(p.grad, g) for p, g in zip(params, grads)), call
        for p in params:  # the user's optimizer moves the leaves: read again at every call
            p.data -= 0.01 * p.grad
    lengths = {info["shape"] for info in step.cache_info()}
    assert step.traces == len(lengths) < 12  # one trace per length, replays for the rest


def test_leaves_accumulate_and_the_users_loop_zeroes_them():
    table, weights, scale = random_model(3)
    step = jit(lambda t: sum(take(table, t[0])) * scale)
    step([2]).backward()
    step([2]).backward()
    eager = sum(table[2]) * scale
    for p in table[2] + [scale]:
        p.grad = 0.0
    eager.backward()
    eager.backward()
    assert close(scale.grad, scale.grad) and table[2][0].grad == pytest.approx(2 * scale.data)
    assert table[1][0].grad == 0.0  # a row not taken gets nothing


def test_a_traced_int_used_as_an_int_is_refused_naming_the_line():
    table = [[Value(1.0)], [Value(2.0)]]

    def index(tokens):
        return table[tokens[0]][0]  # the misuse

    def arithmetic(tokens):
        return take(table, tokens[0] + 1)[0]

    def branch(tokens):
        if tokens[0] == 0:
            return table[0][0] * 1.0
        return table[1][0] * 1.0

    def loop(n, tokens):
        return sum(take(table, tokens[0])[0] for _ in range(n))

    for fn, line in [
        (index, "return table[tokens[0]][0]"),
        (arithmetic, "take(table, tokens[0] + 1)"),
        (branch, "if tokens[0] == 0:"),
    ]:
        with pytest.raises(TracedIntError, match="backprop.take") as info:
            jit(fn)([1])
        assert line in str(info.value) and "test_jit.py:" in str(info.value)
    with pytest.raises(TracedIntError, match="static_argnums"):
        jit(loop)(2, [1])

    def formatted(tokens):
        assert "TracedInt" in f"{tokens[0]}"  # shown while debugging a trace
        return table[0][0] * float(f"{tokens[0]:d}")

    with pytest.raises(TracedIntError) as info:
        jit(formatted)([1])
    assert 'float(f"{tokens[0]:d}")' in str(info.value)
    assert jit(loop, static_argnums=0)(2, [1]).data == 4.0  # n static: fine
    assert isinstance(TracedIntError("x"), TypeError)


def test_take_is_indexing_in_eager_mode_and_checks_its_index_under_jit():
    rows = [[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]]
    assert take(rows, 1) is rows[1] and take(rows, -1) is rows[-1]
    step = jit(lambda t: take(rows, t[0])[1] * 1.0)
    assert step([-1]).data == 4.0 and step([0]).data == 2.0  # one program, both indices
    assert step.traces == 1
    with pytest.raises(IndexError, match="index 2 out of range for length 2"):
        step([2])
    with pytest.raises(IndexError, match="out of range"):
        jit(lambda t: take(rows, t[0])[1] * 1.0)([-3])  # at trace time too


def test_a_change_of_length_or_of_a_static_or_float_argument_retraces():
    w = Value(0.5)
    runs = []

    def fn(tokens, k, scale):
        runs.append(len(tokens))
        return sum(take([w, w * 2.0, w * 3.0], t) for t in tokens) * k * scale

    step = jit(fn, static_argnums=(1,))
    assert step([0, 1], 2, 1.0).data == pytest.approx((0.5 + 1.0) * 2)
    assert step([2, 2], 2, 1.0).data == pytest.approx(3.0 * 2)  # same shape: no trace
    assert runs == [2]
    step([2, 2, 0], 2, 1.0)  # a new length
    step([2, 2], 3, 1.0)  # a new static number
    assert step([2, 2], 2, 0.5).data == pytest.approx(3.0)  # a new float value
    assert runs == [2, 3, 2, 2] and step.traces == 4
    assert step([1, 1], 2, 0.5).data == pytest.approx(2.0)  # each shape its own program
    assert step([0, 0, 0], 2, 1.0).data == pytest.approx(3.0)
    assert runs == [2, 3, 2, 2]
    info = step.cache_info()
    assert len(info) == 4 and all("new shape" in i["reason"] for i in info)
    assert [i["calls"] for i in info] == [2, 2, 1, 2]
    assert (info.misses, info.hits, info.currsize) == (4, 3, 4)  # as functools.lru_cache
    assert "4 programs, 4 traces, 3 replays" in repr(info)
    step.clear()
    step([0, 0], 2, 1.0)
    assert runs[-1] == 2 and step.traces == 5


def test_the_cache_never_replays_a_program_for_another_shape():
    """Every shape seen: the number of traces equals the number of distinct shapes, and a
    result always equals eager mode's (a program of the wrong length could not)."""
    w = [Value(0.1 * k) for k in range(5)]
    rng = random.Random(0)

    def fn(tokens, flag):
        s = sum(take(w, t) * (pos + 1) for pos, t in enumerate(tokens))
        return s.tanh() if flag else s * 2.0

    step = jit(fn)
    shapes = set()
    for _ in range(40):
        tokens = [rng.randrange(5) for _ in range(rng.randint(1, 4))]
        flag = rng.random() < 0.5
        shapes.add((len(tokens), flag))
        expected = fn([v for v in tokens], flag)
        assert step(tokens, flag).data == pytest.approx(expected.data, rel=1e-12)
    assert step.traces == len(shapes)


def test_value_arguments_are_data():
    a, b = Value(2.0), Value(3.0)
    step = jit(lambda x, y: (x * y).tanh())
    out = step(a, b)
    out.backward()
    c, d = Value(0.5), Value(-1.0)
    out2 = step(c, d)  # the same shape: other Values, read and written
    out2.backward()
    assert step.traces == 1
    assert out2.data == math.tanh(-0.5)
    assert c.grad == pytest.approx(-1.0 * (1 - math.tanh(-0.5) ** 2), rel=1e-12)
    assert a.grad == pytest.approx(3.0 * (1 - math.tanh(6.0) ** 2), rel=1e-12)
    with pytest.raises(TypeError, match="must be a leaf"):
        step(a * 1.0, b)


def test_a_result_cannot_enter_an_eager_graph_nor_outlive_its_replay():
    w = Value(2.0)
    step = jit(lambda t: take([w, w * w], t[0]) * 1.0)
    first = step([0])
    with pytest.raises(TypeError, match="inside the jitted function"):
        first * 2.0
    with pytest.raises(TypeError, match="inside the jitted function"):
        1.0 + first
    for op in backprop.ops.OPS:  # every op's method, with no list to keep up to date
        if callable(getattr(Value, op, None)):
            with pytest.raises(TypeError, match="inside the jitted function"):
                getattr(first, op)()
    second = step([1])
    with pytest.raises(RuntimeError, match="before calling the jitted function again"):
        first.backward()
    second.backward()
    assert w.grad == 4.0
    with pytest.raises(TypeError, match="result.backward"):
        backprop.grad(second, [w])
    with pytest.raises(TypeError, match="must return a Value"):
        jit(lambda t: 1.0)([0])


def test_a_replaced_parameter_is_detected():
    table, weights, scale = random_model(1)
    step = jit(lambda t: sum(take(table, t[0])) * scale)
    step([1]).backward()
    table[1][0] = Value(5.0)  # the program would keep reading the old Value
    with pytest.raises(LeafMismatchError, match="replaced"):
        step([1])
    step.clear()
    assert step([1]).data == pytest.approx(sum(v.data for v in table[1]) * scale.data)


def test_constants_made_inside_the_function_are_not_read_again():
    w = Value(1.5)
    step = jit(lambda t: take([w * 2.0, w + 1.0], t[0]).exp())
    step([0])
    entry = next(iter(step._cache.values()))
    assert entry.live == [w]  # 2.0 and 1.0 were lifted to Values inside: constants
    w.data = 0.5
    assert step([1]).data == pytest.approx(math.exp(1.5), rel=1e-15)


def load_microgpt():
    spec = importlib.util.spec_from_file_location(
        "microgpt", os.path.join(ROOT, "examples", "microgpt.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_microgpt_example_trains_the_same_eagerly_and_with_jit(capsys):
    microgpt = load_microgpt()
    _, eager, _ = microgpt.train(steps=5, seed=3, use_jit=False)
    params, jitted, (bos, chars) = microgpt.train(steps=5, seed=3, use_jit=True)
    assert all(close(a, b, 1e-10) for a, b in zip(eager, jitted))
    assert 2.5 < eager[0] < 4.0  # about log(27) at the start
    name = microgpt.sample(params, bos, chars, random.Random(0))
    assert set(name) <= set(chars)
    assert "programs traced" in capsys.readouterr().out


def test_the_microgpt_example_records_its_run_for_the_explorer(tmp_path, capsys):
    microgpt = load_microgpt()
    page = tmp_path / "run.html"
    losses = microgpt.main(["--steps", "4", "--jit", "--samples", "1", "--explore", str(page)])
    html = page.read_text()
    assert len(losses) == 4 and f"wrote {page}" in capsys.readouterr().out
    for name in ["wte", "0.wq", "head", "attention head 3 on 'emma'", "samples", "loss"]:
        assert json.dumps(name)[1:-1] in html, name
    # the probe, the loss of "emma" (43,021 nodes), can be stepped through block by block
    data = json.loads(html.split('id="bpr-data">', 1)[1].split("</script>", 1)[0])
    probe = data["probe"]
    assert probe["nodes"] > 40_000 and probe["note"] is None and len(html) < 10_000_000
    tape = json.loads(gzip.decompress(base64.b64decode(probe["packed"])))
    blocks = {b["name"] for b in tape["view"]["blocks"]}
    assert {"position 0", "position 4", "attention", "head 3", "mlp", "logits", "loss"} <= blocks
    assert "wte[26][0]" in tape["view"]["names"]  # BOS's embedding, named where it sits
    with pytest.raises(SystemExit):  # a folder that is not there: refused before training
        microgpt.main(["--steps", "4", "--explore", str(tmp_path / "no" / "run.html")])


def test_keyword_arguments_are_data_or_shape_as_positional_ones():
    w = [Value(1.0), Value(2.0), Value(3.0)]
    step = jit(lambda tokens, scale=1.0: take(w, tokens[0]) * scale)
    assert step(tokens=[2]).data == 3.0
    assert step(tokens=[0]).data == 1.0 and step.traces == 1
    assert step([1], scale=2.0).data == 4.0 and step.traces == 2


def test_a_graph_past_the_listing_limit_is_not_taken_for_a_replaced_parameter(monkeypatch):
    from backprop.compiled import program as program_module

    monkeypatch.setattr(program_module, "LISTING_LIMIT", 5)  # no tape kept for listing
    table, weights, scale = random_model(4)
    step = jit(lambda t: sum(take(table, t[0])) * scale)
    for token in (1, 2, 3, 1):
        step([token]).backward()
    assert step.traces == 1


def test_a_trace_inside_no_grad_is_refused_and_a_replay_is_not():
    w = [Value(1.0), Value(2.0)]
    step = jit(lambda t: take(w, t[0]) * 3.0)
    with backprop.no_grad():
        with pytest.raises(RuntimeError, match="outside no_grad"):
            step([0])
    assert step([0]).data == 3.0
    with backprop.no_grad():
        assert step([1]).data == 6.0  # a replay records nothing anyway
