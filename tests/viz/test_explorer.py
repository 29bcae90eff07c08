"""explore(history): the page data agrees with training, and the tape replays eager mode."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from array import array

import pytest

import backprop
from backprop import MLP, Value
from backprop.data import moons, spiral
from backprop.train import fit, get_objective
from backprop.viz.explorer import Explorer, Tape, explore, point_loss

X, Y = moons(30, noise=0.1, seed=2)


@pytest.fixture(scope="module")
def run():
    model = MLP(2, [5, 4, 1], activation="tanh", output_activation="linear", seed=1)
    return fit(model, X, Y, epochs=8, optimizer="sgd", lr=0.5, progress=False, record=True)


@pytest.fixture(scope="module")
def page(run):
    return explore(run)


def _f64(text: str) -> list[float]:
    numbers = array("d")
    numbers.frombytes(base64.b64decode(text))
    return numbers.tolist()


def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _from_bits(n: int) -> float:
    return struct.unpack("<d", struct.pack("<q", n))[0]


def _fix(approx: float, low: int) -> float:
    """The page's correction (replay.js's fix), in Python: the double nearest to approx whose
    lowest byte is low."""
    n = _bits(approx)
    base = (n & ~0xFF) | low
    return _from_bits(min((base - 256, base, base + 256), key=lambda m: abs(m - n)))


TARGETS = {"hinge": [-1.0, 1.0], "mse": [-1.0, 1.0], "bce": [0.0, 1.0], "cross-entropy": [0, 1, 2]}
CASES = [
    ("hinge", "tanh", 1),
    ("hinge", "relu", 1),
    ("bce", "sigmoid", 1),
    ("mse", "tanh", 1),
    ("cross-entropy", "tanh", 3),
    ("cross-entropy", "relu", 3),
]


@pytest.mark.parametrize("loss,activation,nout", CASES)
def test_the_tape_replays_eager_forward_and_the_hints_pin_every_libm_result(loss, activation, nout):
    objective = get_objective(loss)
    model = MLP(2, [6, nout], activation=activation, output_activation="linear", seed=4)
    for target in TARGETS[loss]:
        root, inputs, leaf = point_loss(model, [0.25, -1.5], target, objective)
        tape = Tape.read(root, model.parameters(), inputs, leaf)
        eager = [v.data for v in root.topological_order()]
        params = [p.data for p in model.parameters()]
        assert tape.evaluate(params, [0.25, -1.5], target) == eager
        hinted = tape.hinted_values()(params, [0.25, -1.5], target)
        assert hinted == [eager[i] for i in tape.hinted]
        for i in tape.hinted:  # a browser's result up to 3 ulps off either way is corrected
            exact = eager[i]
            low = struct.pack("<d", exact)[0]
            for off in (-3, -1, 0, 1, 3):
                assert _fix(_from_bits(_bits(exact) + off), low) == exact


def test_fix_crosses_a_power_of_two_and_handles_negatives():
    for exact in (1.0, 0.5, -2.0, -0.75, 1e-300, 0.9999999999999999):
        low = struct.pack("<d", exact)[0]
        for off in range(-5, 6):
            assert _fix(_from_bits(_bits(exact) + off), low) == exact


def test_point_loss_is_the_data_loss_of_one_point():
    model = MLP(2, [3, 1], seed=0)
    root, inputs, leaf = point_loss(model, [1.0, 2.0], -1.0, get_objective("hinge"))
    expected = max(0.0, 1.0 + model([1.0, 2.0]).data)
    assert root.data == pytest.approx(expected, rel=1e-15) and root.label == "loss"
    assert [v.label for v in inputs] == ["x1", "x2"] and leaf.label == "y"


def test_the_page_data_holds_every_snapshot_exactly(run, page):
    d = page.data
    F, P = len(run.snapshots), len(run.snapshots[0].parameters)
    assert [f["epoch"] for f in d["frames"]] == list(range(9)) == page.epochs
    assert d["P"] == P and d["sizes"] == [2, 5, 4, 1]
    assert d["activations"] == ["tanh", "tanh", "linear"]
    params, grads = _f64(d["params"]), _f64(d["grads"])
    assert len(params) == len(grads) == F * P
    for k, snap in enumerate(run.snapshots):
        assert params[k * P : (k + 1) * P] == snap.parameters
        assert grads[k * P : (k + 1) * P] == snap.grads
        assert d["frames"][k]["loss"] == snap.loss
    assert d["X"] == run.recording.X and d["y"] == run.recording.y
    assert d["classes"] == [str(c) for c in run.classes] and d["binary"] is True


def test_hints_are_the_low_bytes_of_pythons_numbers(run, page):
    d = page.data
    hints = base64.b64decode(d["hints"])
    tape = Tape.read(*_graph(run, 5))
    H, n = d["H"], len(run.recording.X)
    assert H == len(tape.hinted) == len(d["tapes"][0]["hinted"]) > 0
    assert len(hints) == len(run.snapshots) * n * H
    for k in (0, 4, 8):
        model = run.model_at(k)
        for i in (0, 7, n - 1):
            x, label = run.recording.X[i], run.recording.y[i]
            root, _, _ = point_loss(model, x, d["targetOfClass"][label], "hinge")
            values = [v.data for v in root.topological_order()]
            row = hints[(k * n + i) * H : (k * n + i + 1) * H]
            assert list(row) == [struct.pack("<d", values[j])[0] for j in tape.hinted]


def _graph(run, epoch):
    model = run.model_at(epoch)
    root, inputs, leaf = point_loss(model, run.recording.X[0], 1.0, "hinge")
    return root, model.parameters(), inputs, leaf


def test_cross_entropy_has_one_tape_per_class():
    Xs, ys = spiral(12, classes=3, seed=0)
    model = MLP(2, [4, 3], activation="relu", output_activation="linear", seed=0)
    history = fit(model, Xs, ys, epochs=2, progress=False, record=True)
    d = explore(history).data
    assert d["binary"] is False and d["tapeOfClass"] == [0, 1, 2] and len(d["tapes"]) == 3
    assert d["targetOfClass"] == [0.0, 1.0, 2.0]


def test_big_runs_thin_their_frames_keeping_the_first_and_the_last(run):
    d = explore(run, max_bytes=1).data
    assert [f["epoch"] for f in d["frames"]] == [0, 8]
    assert d["recordedFrames"] == 9
    assert len(_f64(d["params"])) == 2 * d["P"]


def test_the_page_is_one_offline_file(page, tmp_path):
    text = page.html
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "{{" not in text.split('id="bpx-data"')[0]  # every template token was filled
    payload = re.search(r'<script[^>]*id="bpx-data"[^>]*>(.*?)</script>', text, re.S)
    assert json.loads(payload.group(1))["P"] == page.data["P"]
    path = page.save(tmp_path / "run.html")
    assert path.read_text(encoding="utf-8") == text
    frame = page._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame


def test_a_feature_named_like_a_template_token_stays_as_it_is(run):
    text = explore(run, features=["{{CSS}}", "b"]).html
    assert '"{{CSS}}"' in text


def test_errors_say_what_went_wrong(run):
    with pytest.raises(TypeError, match="expects the History that fit"):
        explore(Value(1.0))
    plain = fit(MLP(2, [3, 1], seed=0), X, Y, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"no snapshots: train with fit\(\.\.\., record=True\)"):
        explore(plain)
    with pytest.raises(ValueError, match=r"features must be 2 names"):
        explore(run, features=["only one"])
    assert backprop.explore is explore and isinstance(explore(run), Explorer)


def test_the_moons_page_stays_under_5_mb():
    model = MLP(2, [16, 16, 1], activation="tanh", output_activation="linear", seed=1)
    Xm, ym = moons(100, noise=0.1, seed=1)
    history = fit(model, Xm, ym, epochs=100, compile=True, progress=False, record=True)
    page = explore(history)
    size = len(page.html.encode("utf-8"))
    assert size < 5_000_000, size
    assert len(page.data["frames"]) == 101
    assert math.isfinite(page.data["frames"][-1]["loss"])


def _cli(*args, cwd):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "backprop", *args], capture_output=True, text=True, cwd=cwd
    )


def test_train_explore_writes_the_page(tmp_path):
    out = _cli("train", "--dataset", "moons", "--samples", "30", "--hidden", "4", "--epochs",
               "3", "--quiet", "--explore", "run.html", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "wrote the training explorer to run.html" in out.stdout
    text = (tmp_path / "run.html").read_text(encoding="utf-8")
    payload = re.search(r'<script[^>]*id="bpx-data"[^>]*>(.*?)</script>', text, re.S)
    data = json.loads(payload.group(1))
    assert [f["epoch"] for f in data["frames"]] == [0, 1, 2, 3] and data["sizes"] == [2, 4, 1]
    assert (tmp_path / "run.html").stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "path, message",
    [("run.png", "must end in .html"), ("nodir/run.html", "the folder 'nodir' does not exist")],
)
def test_train_checks_the_explore_path_before_training(tmp_path, path, message):
    out = _cli("train", "--epochs", "1", "--explore", path, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []
