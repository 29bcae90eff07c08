"""backprop.Recorder: what it keeps of a training loop, how it thins, and its page's data."""

from __future__ import annotations

import base64
import json
import math
from array import array

import pytest

import backprop
from backprop import MLP, Recorder, Value
from backprop.viz.recorder_page import explore_recording


def _f64(text: str) -> list[float]:
    numbers = array("d")
    numbers.frombytes(base64.b64decode(text))
    return numbers.tolist()


def _mlp_loop(rec: Recorder, model: MLP, steps: int, lr: float = 0.1) -> None:
    X = [[0.5, -1.0], [1.5, 0.25], [-0.5, 0.75]]
    Y = [1.0, -1.0, 1.0]
    for _ in range(steps):
        loss = sum(((model(x) - y) ** 2 for x, y in zip(X, Y)), Value(0.0))
        model.zero_grad()
        loss.backward()
        rec.step(loss, lr=lr)
        for p in model.parameters():
            p.data -= lr * p.grad


def test_exported():
    assert backprop.Recorder is Recorder
    assert "Recorder" in backprop.__all__


def test_a_module_is_named_layer_by_layer_and_frames_hold_data_and_grads():
    model = MLP(2, [3, 1], seed=0)
    rec = Recorder(model)
    assert [name for name, _ in rec.matrices] == [
        "layer 1 weights", "layer 1 biases", "layer 2 weights", "layer 2 biases"
    ]  # fmt: skip
    assert rec.shapes == [[2, 2, 2], [3], [3], [1]]
    assert rec.params == [p for layer in model.layers for n in layer.neurons for p in n.w] + [
        n.b for layer in model.layers for n in layer.neurons
    ] or len(rec.params) == len(model.parameters())
    _mlp_loop(rec, model, 1)
    (frame,) = rec.kept()
    assert frame.step == 0
    assert list(frame.grads) == [p.grad for p in rec.params]  # read before the update
    assert list(rec.scalars) == ["loss", "lr"]


def test_a_dict_of_values_lists_and_ragged_matrices():
    a, b = Value(1.0), [Value(2.0), Value(3.0)]
    m = [[Value(4.0), Value(5.0)], [Value(6.0), Value(7.0)], [Value(8.0), Value(9.0)]]
    rec = Recorder({"a": a, "b": b, "m": m})
    assert rec.shapes == [[1], [2], [2, 2, 2]]
    assert [p.data for p in rec.params] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


@pytest.mark.parametrize(
    "params, error",
    [
        ({}, ValueError),
        (backprop.Module(), ValueError),
        ({"a": 1.0}, TypeError),
        ({"a": [[Value(1.0)], 2.0]}, TypeError),
        ({3: Value(1.0)}, TypeError),
        ([Value(1.0), 2.0], TypeError),
        ([], TypeError),
    ],
)
def test_bad_parameters_are_one_line_errors(params, error):
    with pytest.raises(error) as e:
        Recorder(params)
    assert "\n" not in str(e.value)


def test_frames_thin_evenly_and_keep_the_first_and_the_latest():
    v = Value(0.0)
    rec = Recorder({"v": v}, max_frames=9)
    for step in range(100):
        v.data = float(step)
        rec.step(step * 0.5)
    kept = rec.kept()
    steps = [f.step for f in kept]
    assert len(kept) <= 9 + 1
    assert steps[0] == 0 and steps[-1] == 99
    gaps = {b - a for a, b in zip(steps[:-1], steps[1:-1])}
    assert len(gaps) == 1  # evenly spaced, but for the latest step
    assert [f.data[0] for f in kept] == [float(s) for s in steps]
    assert list(rec.scalars["loss"]) == [s * 0.5 for s in range(100)]  # every step


def test_watch_belongs_to_the_next_step_and_keeps_ragged_rows():
    v = Value(1.0)
    rec = Recorder({"v": v})
    rows = [[Value(1.0)], [Value(0.25), Value(0.75)], [0.2, 0.3, 0.5]]
    rec.watch("attention", rows)
    rec.step(1.0)
    rec.step(0.5)
    first, second = rec.kept()
    assert first.watched == {"attention": [[1.0], [0.25, 0.75], [0.2, 0.3, 0.5]]}
    assert second.watched == {}
    with pytest.raises(TypeError):
        rec.watch("x", ["text"])
    with pytest.raises(TypeError):
        rec.watch("", [1.0])


def test_scalars_missing_at_a_step_are_nan():
    rec = Recorder({"v": Value(1.0)})
    rec.step(1.0)
    rec.step(0.5, accuracy=0.9)
    rec.step(0.25)
    assert list(rec.scalars["loss"]) == [1.0, 0.5, 0.25]
    acc = list(rec.scalars["accuracy"])
    assert math.isnan(acc[0]) and acc[1] == 0.9 and math.isnan(acc[2])


def test_a_probe_must_keep_its_shape():
    w = Value(0.5)
    rec = Recorder({"w": w})
    calls = []

    def probe():
        calls.append(1)
        return (w * 2.0).tanh() if len(calls) == 1 else (w * 2.0 + 1.0).tanh()

    rec.probe(probe)
    rec.step(1.0)
    with pytest.raises(ValueError, match="another shape"):
        rec.step(0.5)
    rec2 = Recorder({"w": w})
    rec2.probe(lambda: 3.0)
    with pytest.raises(TypeError, match="must return a Value"):
        rec2.step(1.0)


def test_the_page_names_everything_and_keeps_to_max_bytes():
    model = MLP(2, [3, 1], seed=0)
    rec = Recorder(model)
    x = [0.5, -1.0]
    rec.probe(lambda: (model(x) - 1.0) ** 2)
    for k in range(3):
        rec.watch(f"w{k}", [[1.0, 2.0], [3.0]])
    rec.watch("big", [[0.123456 * (i + j) for j in range(20)] for i in range(20)])
    _mlp_loop(rec, model, 1)
    for _ in range(39):
        rec.watch("big", [[0.123456 * (i - j) for j in range(20)] for i in range(20)])
        _mlp_loop(rec, model, 1)
    page = explore_recording(rec)
    data = page.data
    assert [p["name"] for p in data["params"]] == [name for name, _ in rec.matrices]
    assert [w["name"] for w in data["watched"]] == ["big", "w0", "w1", "w2"]
    assert data["probe"]["note"] is None and data["probe"]["tape"]["view"] is not None
    assert _f64(data["scalars"][0]["values"]) == list(rec.scalars["loss"])
    assert len(_f64(data["data"])) == len(data["frameSteps"]) * len(rec.params)
    full = len(page.html.encode())
    small = explore_recording(rec, max_bytes=full - 60_000)
    assert len(small.html.encode()) <= full - 60_000
    assert small.data["thinned"] == {"kept": len(small.data["frameSteps"]), "recorded": 40,
                                     "maxBytes": full - 60_000}  # fmt: skip
    assert len(small.data["frameSteps"]) < 40
    html = page.html
    assert json.loads(html.split('id="bpr-data">', 1)[1].split("</script>", 1)[0]) == data


def test_a_probe_the_browser_cannot_replay_exactly_is_said():
    w = Value(2.0)
    rec = Recorder({"w": w})
    rec.probe(lambda: (w * w + 1.0) ** w)  # a power of a Value: its derivative needs log
    rec.step(1.0)
    note = explore_recording(rec).data["probe"]["note"]
    assert "is pow" in note and "explain()" in note


def test_constant_powers_are_replayed_with_hints_for_their_derivatives():
    w = Value(2.0)
    rec = Recorder({"w": w})
    rec.probe(lambda: (w * w + 1.0) ** -0.5 + w**3 + w**0.5 + w**1.5)
    rec.step(1.0)
    probe = explore_recording(rec).data["probe"]
    assert probe["note"] is None
    tape = probe["tape"]
    powers = {i: tape["args"][i] for i, op in enumerate(tape["ops"]) if op == "powc"}
    # the data of ** 3 and ** 1.5 are libm pows (hinted), of ** -0.5 and ** 0.5 not (1/sqrt,
    # sqrt); of the derivatives' powers only -0.5's x ** -1.5 is one (x*x, sqrt, 1/sqrt)
    assert sorted(powers[i] for i in tape["hinted"] if i in powers) == [1.5, 3.0]
    assert [powers[i] for i in tape["bhinted"]] == [-0.5]
    assert probe["H"] == len(tape["hinted"]) + len(tape["bhinted"])
    assert probe["free"] == [i for i, leaf in enumerate(tape["leaves"]) if leaf and "const" in leaf]


def test_notes_belong_to_the_coming_step():
    rec = Recorder({"v": Value(1.0)})
    rec.step(1.0)
    rec.note("samples", "anna")
    rec.step(0.5)
    assert rec.notes == {"samples": [(1, "anna")]}
    assert explore_recording(rec).data["notes"] == [{"name": "samples", "entries": [[1, "anna"]]}]
    with pytest.raises(TypeError):
        rec.note("samples", 3)


def test_non_finite_numbers_reach_the_page():
    w = Value(1.0)
    rec = Recorder({"w": w})
    rec.probe(lambda: (w * 0.0).log())  # log(0) = -inf
    rec.watch("x", [float("nan"), 1.0])
    w.grad = float("inf")
    rec.step(float("nan"))
    data = explore_recording(rec).data
    assert data["probe"]["outputs"] == ["-inf"]
    assert data["watched"][0]["frames"] == [[[None, 1.0]]]
    assert math.isnan(_f64(data["scalars"][0]["values"])[0])
    assert _f64(data["grads"]) == [math.inf]


def test_a_list_of_values_is_one_row_and_the_page_shows_inline_in_jupyter():
    model = MLP(2, [2, 1], seed=0)
    rec = Recorder(model.parameters())
    assert rec.matrices[0][0] == "parameters" and rec.shapes == [[9]]
    _mlp_loop(rec, model, 2)
    frame = explore_recording(rec)._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame


def test_watched_labels():
    rec = Recorder({"v": Value(1.0)})
    rec.watch("attention", [[1.0], [0.5, 0.5]], rows=["a", "b"], columns=["a", "b"])
    rec.step(1.0)
    (w,) = explore_recording(rec).data["watched"]
    assert (w["rows"], w["columns"]) == (["a", "b"], ["a", "b"])
    with pytest.raises(TypeError):
        rec.watch("attention", [1.0], rows="ab")


def test_a_list_of_matrices_is_one_map_each_and_numpy_numbers_are_numbers():
    np = pytest.importorskip("numpy")
    rec = Recorder({"v": Value(1.0)})
    heads = [[[Value(1.0)], [Value(0.5), Value(0.5)]], [[1.0], [0.25, 0.75]]]
    rec.watch("attention", heads)
    rec.step(np.float32(0.5), tokens=np.int64(7))
    (frame,) = rec.kept()
    assert frame.watched == {
        "attention [0]": [[1.0], [0.5, 0.5]],
        "attention [1]": [[1.0], [0.25, 0.75]],
    }
    assert list(rec.scalars["tokens"]) == [7.0]


def test_the_probe_names_parameters_for_where_they_sit_and_leaves_labels_alone():
    a, own = Value(1.0), Value(2.0, label="mine")
    m = [[Value(0.5), Value(0.2)], [Value(0.1), Value(-0.3)]]
    rec = Recorder({"a": a, "m": m, "row": [own, Value(3.0)]})
    rec.probe(lambda: a * m[1][0] + m[0][1].tanh() + own + rec.params[-1])
    rec.step(1.0)
    names = explore_recording(rec).data["probe"]["tape"]["view"]["names"]
    assert {"a", "m[1][0]", "m[0][1]", "mine", "row[1]", "probe"} <= set(names)
    assert [v.label for v in (a, m[1][0], m[0][1], rec.params[-1])] == [""] * 4
    assert own.label == "mine"


def test_a_big_watched_map_is_shown_strided_and_the_page_stays_small():
    w = Value(1.0)
    rec = Recorder({"w": w})
    for step in range(3):
        rec.watch(
            "big", [[(i * 3001 + j + step) % 7 * 0.5 for j in range(1500)] for i in range(1200)]
        )
        rec.watch("small", [[1.0, 2.0]], rows=["r"], columns=["a", "b"])
        rec.step(1.0)
    page = explore_recording(rec)
    big, small = page.data["watched"]
    assert (big["stride"], big["size"]) == (7, [1200, 1500])  # sqrt(1.8M / 40,000) -> 7
    rows = big["frames"][2]
    assert (len(rows), len(rows[0])) == (172, 215)  # every 7th: ceil(1200/7), ceil(1500/7)
    assert rows[1][2] == (7 * 3001 + 14 + 2) % 7 * 0.5  # row 7, column 14 of step 2
    assert "stride" not in small and small["frames"][0] == [[1.0, 2.0]]
    assert len(page.html.encode()) < 2_000_000
