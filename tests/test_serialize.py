"""Module.state_dict and the JSON model file: round trips, and bad files that change nothing."""

import json
import os

import pytest

from backprop import MLP, Value
from backprop.nn import Module
from backprop.serialize import FORMAT, ModelFileError, load, load_metadata, save


def _model(seed=0, sizes=(4, 3, 2), activation=("relu", "tanh", "linear")):
    return MLP(3, list(sizes), activation=list(activation), seed=seed)


def _weights(model):
    return [p.data for p in model.parameters()]


def test_state_dict_names_follow_the_attributes():
    m = MLP(2, [3, 1], seed=0)
    sd = m.state_dict()
    assert list(sd)[:3] == [
        "layers.0.neurons.0.w.0",
        "layers.0.neurons.0.w.1",
        "layers.0.neurons.0.b",
    ]
    assert list(sd.values()) == _weights(m)
    assert m.layers[1].neurons[0].b.data == sd["layers.1.neurons.0.b"]


def test_state_dict_round_trip_between_models():
    a, b = _model(seed=1), _model(seed=2)
    assert _weights(a) != _weights(b)
    b.load_state_dict(a.state_dict())
    assert _weights(a) == _weights(b)
    x = [0.3, -1.2, 2.0]
    assert [v.data for v in a(x)] == [v.data for v in b(x)]


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda sd: sd.pop("layers.0.neurons.0.b"), ValueError, "missing 1"),
        (lambda sd: sd.update(extra=1.0), ValueError, "unexpected 1"),
        (lambda sd: sd.update({"layers.2.neurons.1.b": "0.5"}), TypeError, "layers.2.neurons.1.b"),
        (lambda sd: sd.update({"layers.1.neurons.0.w.2": float("nan")}), ValueError, "nan"),
        (lambda sd: sd.update({"layers.1.neurons.0.w.2": True}), TypeError, "True"),
    ],
)
def test_load_state_dict_rejects_bad_dicts_and_changes_nothing(change, error, message):
    m = _model()
    before = _weights(m)
    sd = _model(seed=5).state_dict()
    change(sd)
    with pytest.raises(error, match=message):
        m.load_state_dict(sd)
    assert _weights(m) == before


def test_load_state_dict_from_another_architecture_fails():
    m = _model()
    before = _weights(m)
    with pytest.raises(ValueError, match="does not fit"):
        m.load_state_dict(MLP(3, [5, 2], seed=0).state_dict())
    assert _weights(m) == before


def test_custom_module_state_dict():
    class Affine(Module):
        def __init__(self):
            self.scale = Value(2.0)
            self.shift = [Value(0.5), Value(-1.0)]

        def parameters(self):
            return [self.scale, *self.shift]

    m = Affine()
    assert m.state_dict() == {"scale": 2.0, "shift.0": 0.5, "shift.1": -1.0}
    m.load_state_dict({"scale": 3.0, "shift.0": 0.0, "shift.1": 1.0})
    assert [p.data for p in m.parameters()] == [3.0, 0.0, 1.0]


# ---- files ------------------------------------------------------------------------------------


def test_save_load_round_trip_is_exact(tmp_path):
    m = _model(seed=3)
    path = save(m, tmp_path / "m.json", metadata={"loss": "hinge", "classes": ["cat", "dog"]})
    loaded = load(path)
    assert loaded.sizes == m.sizes and loaded.activations == m.activations
    assert _weights(loaded) == _weights(m)  # repr floats round-trip bit for bit
    assert load_metadata(path) == {"loss": "hinge", "classes": ["cat", "dog"]}
    into = _model(seed=9)
    assert load(path, into) is into and _weights(into) == _weights(m)


def test_file_is_readable_json_with_architecture(tmp_path):
    path = save(_model(), tmp_path / "m.json")
    text = path.read_text()
    doc = json.loads(text)
    assert doc["format"] == FORMAT and doc["version"] == 1
    assert doc["architecture"] == {
        "type": "MLP",
        "nin": 3,
        "nouts": [4, 3, 2],
        "activation": ["relu", "tanh", "linear"],
    }
    assert '    "layers.0.neurons.0.w.0": ' in text  # one weight per line
    assert not text.startswith("\x80")  # not a pickle


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    save(_model(seed=1), path)
    original = path.read_text()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save(_model(seed=2), path)
    assert path.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_save_refuses_nan_weights_and_unserializable_metadata(tmp_path):
    m = _model()
    m.layers[0].neurons[0].b.data = float("nan")
    with pytest.raises(ValueError, match="layers.0.neurons.0.b is nan"):
        save(m, tmp_path / "m.json")
    with pytest.raises(ValueError, match="metadata"):
        save(_model(), tmp_path / "m.json", metadata={"x": object()})
    assert not list(tmp_path.iterdir())


def _corrupt(tmp_path, edit):
    path = save(_model(seed=4), tmp_path / "m.json")
    doc = json.loads(path.read_text())
    text = edit(doc, path.read_text())
    path.write_text(text if isinstance(text, str) else json.dumps(doc))
    return path


CORRUPTIONS = [
    ("truncated", lambda d, t: t[: len(t) // 2], "truncated"),
    ("empty", lambda d, t: "", "empty"),
    ("not json", lambda d, t: "hello", "not valid JSON"),
    ("a list", lambda d, t: "[1, 2]", "not a backprop model file"),
    ("other format", lambda d, t: d.update(format="keras"), "not a backprop model file"),
    ("future version", lambda d, t: d.update(version=2), "unsupported format version 2"),
    ("NaN literal", lambda d, t: t.replace(": -0.", ': NaN, "x": -0.', 1), "NaN"),
    ("nan string", lambda d, t: d["weights"].update({"layers.0.neurons.0.b": "nan"}), "'nan'"),
    ("bool weight", lambda d, t: d["weights"].update({"layers.0.neurons.0.b": True}), "True"),
    ("missing weight", lambda d, t: d["weights"].popitem(), "39 parameters but the file holds 38"),
    ("extra weight", lambda d, t: d["weights"].update(x=1.0), "holds 40 weights"),
    (
        "renamed weight",
        lambda d, t: d["weights"].update(x=d["weights"].pop("layers.0.neurons.0.b")),
        "missing 1.*unexpected 1",
    ),
    (
        "nested list activation",
        lambda d, t: d["architecture"].update(activation=[["relu"]] * 3),
        r"\[\['relu'\]",
    ),
    ("bad activation", lambda d, t: d["architecture"].update(activation=["gelu"] * 3), "gelu"),
    ("bad sizes", lambda d, t: d["architecture"].update(nouts=[4, "3", 2]), "positive ints"),
    ("no weights", lambda d, t: d.pop("weights"), "'weights'"),
]


@pytest.mark.parametrize("name, edit, message", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_files_give_clear_errors_and_leave_the_model_alone(tmp_path, name, edit, message):
    path = _corrupt(tmp_path, edit)
    m = _model(seed=8)
    before = _weights(m)
    with pytest.raises(ModelFileError, match=message):
        load(path, m)
    with pytest.raises(ModelFileError, match=message):
        load(path)
    assert _weights(m) == before
    assert str(path) in str(pytest.raises(ModelFileError, load, path).value)


def test_wrong_architecture_leaves_the_model_alone(tmp_path):
    path = save(MLP(3, [5, 2], seed=0), tmp_path / "m.json")
    m = _model()
    before = _weights(m)
    with pytest.raises(
        ModelFileError, match=r"holds an MLP \[3, 5, 2\].*model is an MLP \[3, 4, 3, 2\]"
    ):
        load(path, m)
    assert _weights(m) == before
    same_sizes = MLP(3, [4, 3, 2], activation="tanh")
    with pytest.raises(ModelFileError, match="activations"):
        load(save(_model(), tmp_path / "n.json"), same_sizes)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.json")
    with pytest.raises(ModelFileError, match="directory"):
        load(tmp_path)


# ---- the file a save leaves behind (issue 8) ---------------------------------------------------


def _mode(path):
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umask_default(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        save(_model(), tmp_path / "m.json")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "m.json") == expected  # as open(path, "w") would give, not 0600


def test_saving_over_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    save(_model(), path)
    assert _mode(path) == 0o640 and load(path).sizes == [3, 4, 3, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file


def test_write_atomic_leaves_the_old_file_whole_on_failure(tmp_path, monkeypatch):
    from backprop import serialize

    path = tmp_path / "p.csv"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialize.os, "replace", broken_replace)
    with pytest.raises(OSError):
        serialize.write_text_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["p.csv"]


@pytest.mark.parametrize(
    "text, kind",
    [
        ("x1,x2,label\n0.5,1.0,a\n", "a CSV file"),
        ("0.5,1.0\n2,3\n", "a CSV file"),
        ("<!DOCTYPE html>\n<html></html>", "an HTML page"),
        ('<?xml version="1.0"?>\n<svg></svg>', "an SVG drawing"),
        ("digraph {\n a -> b\n}", "a Graphviz DOT file"),
        ('{"cells": [], "nbformat": 4, "metadata": {}}', "a Jupyter notebook"),
        ('{"format": "backprop-graph", "version": 1}', "a graph exported by backprop graph"),
    ],
)
def test_a_file_that_is_not_a_model_is_named_for_what_it_looks_like(tmp_path, text, kind):
    path = tmp_path / "file.json"
    path.write_text(text)
    with pytest.raises(ModelFileError) as info:
        load(path)
    assert f"this looks like {kind}" in str(info.value) and "truncated" not in str(info.value)


# ---- untrusted model files (issue 17): sizes before allocation, one-line errors ---------------


def _model_file(tmp_path, **architecture):
    arch = {"type": "MLP", "nin": 2, "nouts": [1], "activation": ["linear"], **architecture}
    doc = {"format": "backprop-model", "version": 1, "architecture": arch, "weights": {}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_huge_declared_model_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    from backprop import nn, serialize

    built = []
    monkeypatch.setattr(nn.Neuron, "__init__", lambda *a, **k: built.append(1))
    path = _model_file(tmp_path, nin=20_000_000, nouts=[16, 1], activation=["relu", "linear"])
    with pytest.raises(
        ModelFileError, match=r"320,000,033 parameters, over the limit of 1,000,000"
    ):
        load(path)
    assert len(str(pytest.raises(ModelFileError, load, path).value).splitlines()) == 1
    # within the limit, the count must agree with the weights, still before building
    path = _model_file(tmp_path, nin=1000, nouts=[100, 1], activation=["relu", "linear"])
    with pytest.raises(ModelFileError, match="has 100,201 parameters but the file holds 0"):
        load(path)
    assert not built
    assert serialize.MAX_PARAMETERS == 1_000_000  # the documented limit (docs/training.md)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    from backprop import serialize

    path = save(_model(), tmp_path / "m.json")
    monkeypatch.setattr(serialize, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"bytes, over the 100 a model file may have"):
        load(path)


def test_a_deeply_nested_file_is_one_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested too deeply") as info:
        load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "architecture, message",
    [
        (dict(activation=[["relu"]]), r"activation must list one of .* got \[\['relu'\]\]"),
        (dict(activation=[{"a": 1}]), "activation must list"),
        (dict(nouts=[1] * 100_000 + ["x"]), r"nouts must be a list of positive ints.*chars\)"),
        (dict(type=["MLP"] * 100_000), r"unknown architecture type \['MLP'.*chars\)"),
    ],
)
def test_malformed_architectures_are_one_short_line(tmp_path, architecture, message):
    with pytest.raises(ModelFileError, match=message) as info:
        load(_model_file(tmp_path, **architecture))
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "metadata, n_outputs, message",
    [
        ({"classes": 7}, 1, "metadata classes must be a list of labels .* got 7"),
        ({"classes": {"a": 1}}, 1, r"got \{'a': 1\}"),
        ({"classes": [[1], [2]]}, 1, "must be a list of labels"),
        ({"loss": ["hinge"]}, 1, r"metadata loss must be one of .* got \['hinge'\]"),
        ({"loss": "hinge"}, 3, "reads one output, but the model has 3"),
        ({"loss": "hinge", "classes": [0, 1, 2]}, 1, "lists 3 classes .* needs 2"),
        ({"classes": list(range(10**6))}, 3, "lists 1,000,000 classes"),
    ],
)
def test_prediction_task_refuses_metadata_that_does_not_fit(metadata, n_outputs, message):
    from backprop.serialize import prediction_task

    with pytest.raises(ModelFileError, match=message) as info:
        prediction_task("m.json", n_outputs, metadata)
    assert len(str(info.value)) < 300


def test_prediction_task_defaults():
    from backprop.serialize import prediction_task

    assert prediction_task("m", 1, {}) == ("hinge", [0, 1])
    assert prediction_task("m", 3, {}) == ("cross-entropy", [0, 1, 2])
    assert prediction_task("m", 1, {"loss": "bce", "classes": ["a", "b"]}) == ("bce", ["a", "b"])


def test_writing_through_a_symlink_is_refused_and_the_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "m.json"
    link.symlink_to(target)
    with pytest.raises(OSError, match=r"symbolic link \(to .*precious.txt'\)"):
        save(_model(), link)
    dangling = tmp_path / "d.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    with pytest.raises(OSError, match="symbolic link"):
        save(_model(), dangling)
    assert target.read_text() == "keep me" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "m.json", "precious.txt"]


def test_load_and_load_metadata_build_the_model_at_most_once(tmp_path, monkeypatch):
    # export reads a file with load() then load_metadata(): each built the whole model (and
    # loaded it in quadratic time); load_metadata now builds nothing, load one model
    path = save(_model(seed=3), tmp_path / "m.json", metadata={"classes": ["a", "b"]})
    target = _model(seed=9)
    built = []
    init = MLP.__init__

    def counted(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(MLP, "__init__", counted)
    assert load_metadata(path) == {"classes": ["a", "b"]}
    assert built == []
    model = load(path)
    assert built == [1]
    assert load(path, target) is target
    assert built == [1]
    assert _weights(target) == _weights(model) == _weights(_model(seed=3))


def _pipe_of(text, path):
    import threading

    os.mkfifo(path)

    def write():
        with open(path, "w") as f:
            try:
                f.write(text)
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_pipe_is_read_up_to_the_size_limit_only(tmp_path, monkeypatch):
    # a pipe or a device reports size 0, so the size check passed and the read never ended
    from backprop import serialize

    monkeypatch.setattr(serialize, "MAX_FILE_BYTES", 100)
    thread = _pipe_of("{" + " " * 10_000 + "}", tmp_path / "fifo")
    with pytest.raises(ModelFileError, match="over the 100 bytes a model file may have"):
        load(tmp_path / "fifo")
    thread.join(5)
    # a whole model through a pipe (``--model <(...)``) still loads
    text = save(_model(seed=5), tmp_path / "m.json").read_text()
    monkeypatch.setattr(serialize, "MAX_FILE_BYTES", 100 * 2**20)
    thread = _pipe_of(text, tmp_path / "fifo2")
    assert _weights(load(tmp_path / "fifo2")) == _weights(_model(seed=5))
    thread.join(5)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_in_one_line():
    import resource
    import subprocess
    import sys

    def cap():  # the old code read /dev/zero until the memory ran out
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    run = subprocess.run(
        [sys.executable, "-c", "import backprop; backprop.load('/dev/zero')"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "backprop.serialize.ModelFileError: /dev/zero: a device, not a model file"
    )


def _with_metadata(tmp_path, **metadata):
    return save(MLP(2, [3, 1], seed=0), tmp_path / "m.json", metadata=metadata)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"classes": ["a", "a"]}, "metadata classes name 'a' twice"),
        ({"classes": [1, "1"]}, "metadata classes name '1' twice"),
        ({"classes": [1, 1.0]}, "metadata classes name 1.0 twice"),
        ({"feature_names": ["x"]}, "metadata lists 1 feature_names for a model of 2 inputs"),
        ({"feature_names": [1, 2]}, r"feature_names must be a list of texts, got \[1, 2\]"),
        ({"label_column": -7}, r"label_column must be a column .* \(-3 to 2\) or null, got -7"),
        ({"label_column": 10**30}, "label_column must be a column"),
        ({"label_column": True}, "label_column must be a column"),
    ],
)
def test_metadata_that_does_not_fit_the_model_is_refused(tmp_path, metadata, message):
    path = _with_metadata(tmp_path, **metadata)
    for read in (load, load_metadata):
        with pytest.raises(ModelFileError, match=message):
            read(path)


def test_metadata_that_fits_is_accepted(tmp_path):
    metadata = {"classes": ["a", "b"], "feature_names": ["x", "x"], "label_column": 0}
    assert load_metadata(_with_metadata(tmp_path, **metadata)) == metadata
    assert load_metadata(_with_metadata(tmp_path, label_column=None)) == {"label_column": None}


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.replace('"weights": {', '"weights": {\n"layers.0.neurons.0.b": 99,'),
            "the key 'layers.0.neurons.0.b' appears twice in one object",
        ),
        (
            lambda t: t.replace('"version"', '"format": "x", "version"'),
            "the key 'format' appears twice",
        ),
        (lambda t: t.replace('"version": 1', '"version": true'), "unsupported format version"),
        (
            lambda t: t.replace('"metadata": {}', '"metadata": {"n": ' + "9" * 5000 + "}"),
            "holds a number of over 4,300 digits, not a model file$",
        ),
    ],
    ids=["duplicate weight", "duplicate format", "version true", "5000 digits"],
)
def test_hand_edited_files_are_refused_in_one_line(tmp_path, edit, message):
    path = save(MLP(2, [3, 1], seed=0), tmp_path / "m.json")
    path.write_text(edit(path.read_text()))
    with pytest.raises(ModelFileError, match=message) as info:
        load(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = save(_model(seed=6), tmp_path / "m.json", metadata={"loss": "mse"})
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Notepad saves UTF-8
    assert _weights(load(path)) == _weights(_model(seed=6))
    assert load_metadata(path) == {"loss": "mse"}


@pytest.mark.parametrize("field", ["nin", "nouts"])
def test_a_size_of_thousands_of_digits_is_cut_in_the_error(tmp_path, field):
    huge = int("9" * 4000)
    arch = {"nin": huge} if field == "nin" else {"nouts": [huge]}
    with pytest.raises(ModelFileError, match="4,00.-digit number of parameters") as info:
        load(_model_file(tmp_path, **arch))
    assert len(str(info.value)) < 400
