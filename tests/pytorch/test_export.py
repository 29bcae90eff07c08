"""`backprop export`: every format round-trips random MLPs of every activation to backprop's own
outputs (float64: 1e-12; an ONNX file run in onnxruntime; the Python script in a fresh process,
printing what `backprop predict` prints), and every bad input is a one-line error.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
import os
import random
import re
import shlex
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from backprop import MLP, Value, save  # noqa: E402
from backprop.cli import main  # noqa: E402
from backprop.pytorch import (  # noqa: E402
    from_torch,
    load_safetensors,
    python_script,
    safetensors_bytes,
    to_torch,
)
from backprop.pytorch.script import shell_word  # noqa: E402

ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]


def random_mlp(seed: int) -> MLP:
    rng = random.Random(seed)
    nouts = [rng.randint(1, 5) for _ in range(rng.randint(0, 2))] + [rng.randint(1, 3)]
    return MLP(rng.randint(1, 4), nouts, activation=[rng.choice(ACTIVATIONS) for _ in nouts])


def every_activation() -> list[MLP]:
    """One model per activation (every layer), then random mixes."""
    models = [MLP(3, [5, 4, 2], activation=a, seed=k) for k, a in enumerate(ACTIVATIONS)]
    random.seed(7)
    return models + [random_mlp(seed) for seed in range(4)]


def sample_rows(model: MLP, n: int = 6, seed: int = 1) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-3, 3) for _ in range(model.sizes[0])] for _ in range(n)]


def outputs(model: MLP, xs) -> list[list[float]]:
    outs = [model(x) for x in xs]
    return [[o.data] if isinstance(o, Value) else [v.data for v in o] for o in outs]


def export(capsys, *argv) -> str:
    code = main(["export", *map(str, argv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


# ---- torch: a safetensors state_dict -------------------------------------------------------


@pytest.mark.parametrize("k", range(8))
def test_safetensors_round_trip(tmp_path, capsys, k):
    from safetensors.torch import load_file

    model = every_activation()[k]
    save(model, tmp_path / "m.json", metadata={"loss": "mse"})
    out = tmp_path / "m.safetensors"
    text = export(capsys, "--model", tmp_path / "m.json", "--to", "torch", "--out", out)
    assert f"wrote a state_dict (float64) of the MLP {model.sizes}" in text
    raw = out.read_bytes()
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_size])  # a JSON header and raw numbers: no pickle
    assert header["__metadata__"]["format"] == "backprop-mlp"
    state = load_file(out)
    assert all(t.dtype == torch.float64 for t in state.values())
    module = to_torch(MLP(model.sizes[0], model.sizes[1:], activation=model.activations, seed=99))
    module.load_state_dict(state)
    xs = sample_rows(model)
    with torch.no_grad():
        got = module(torch.tensor(xs, dtype=torch.float64)).tolist()
    for a, b in zip(got, outputs(model, xs)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14)
    assert load_safetensors(out).state_dict() == model.state_dict()  # and back, exactly


# ---- onnx: through torch.onnx.export, run in onnxruntime -------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onnx_runs_in_onnxruntime_with_equal_outputs(tmp_path, capsys, dtype):
    import numpy as np
    import onnxruntime

    for k, model in enumerate(every_activation()):
        save(model, tmp_path / f"m{k}.json")
        out = tmp_path / f"m{k}.onnx"
        export(
            capsys,
            "--model",
            tmp_path / f"m{k}.json",
            "--to",
            "onnx",
            "--out",
            out,
            "--dtype",
            dtype,
        )
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        xs = sample_rows(model, n=5, seed=k)
        (got,) = session.run(None, {"input": np.array(xs, dtype=dtype)})
        assert got.dtype == np.dtype(dtype) and got.shape == (5, model.sizes[-1])
        rel, abs_ = (1e-12, 1e-14) if dtype == "float64" else (1e-5, 1e-6)
        for a, b in zip(got.tolist(), outputs(model, xs)):
            assert a == pytest.approx(b, rel=rel, abs=abs_), (k, model)


# ---- python: a standalone script ----------------------------------------------------------------


def predict_csv(capsys, model_file, data_file) -> list[list[str]]:
    assert main(["predict", "--model", str(model_file), "--data", str(data_file)]) == 0
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))


def run_script(path, *args) -> list[list[str]]:
    """Run the script in a fresh interpreter in which backprop cannot be imported."""
    blocker = (
        "import runpy, sys; sys.modules['backprop'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker, str(path), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))


def assert_same_predictions(script_rows, predict_rows):
    assert script_rows[0] == predict_rows[0]  # the header
    assert len(script_rows) == len(predict_rows)
    for mine, theirs in zip(script_rows[1:], predict_rows[1:]):
        assert mine[0] == theirs[0]  # the predicted label, exactly
        scores = [float(x) for x in mine[1:]]
        assert scores == pytest.approx([float(x) for x in theirs[1:]], rel=1e-12, abs=1e-14)


def test_the_python_script_prints_what_predict_prints(tmp_path, capsys):
    """Two scripts of a model trained here, one with its weights inline (run on a CSV) and one
    reading the JSON beside it (run on its example rows), each in a fresh process."""
    for folder in ("inline", "json"):
        (tmp_path / folder).mkdir()
    model_file = tmp_path / "inline" / "model.json"
    argv = ["train", "--dataset", "moons", "--samples", "30", "--hidden", "6", "--epochs", "5"]
    assert main(argv + ["--quiet", "--save", str(model_file)]) == 0
    capsys.readouterr()
    points = tmp_path / "points.csv"
    rng = random.Random(3)
    points.write_text(
        "x1,x2\n" + "".join(f"{rng.uniform(-2, 3)},{rng.uniform(-1, 2)}\n" for _ in range(25))
    )
    expected = predict_csv(capsys, model_file, points)
    assert {row[0] for row in expected[1:]} == {"0", "1"}  # both classes predicted

    inline = tmp_path / "inline" / "model.py"
    export(capsys, "--model", model_file, "--to", "python", "--out", inline)
    text = inline.read_text()
    assert "import backprop" not in text and "from backprop" not in text
    assert "torch.nn.Linear(2, 6)" in text and "torch.nn.ReLU()" in text
    compile(text, str(inline), "exec")

    beside = tmp_path / "json" / "model.py"
    printed = export(
        capsys, "--model", model_file, "--to", "python", "--out", beside, "--weights", "json"
    )
    assert "wrote its weights beside it" in printed
    assert json.loads((tmp_path / "json" / "model.json").read_text())["weights"]
    assert "weight.copy_" not in beside.read_text()  # it reads them, it does not hold them

    assert_same_predictions(run_script(inline, points), expected)
    # without a CSV, the JSON-reading script predicts its example rows
    examples = tmp_path / "examples.csv"
    namespace: dict = {"__name__": "exported"}
    exec(beside.read_text().replace("Path(__file__)", f"Path({str(beside)!r})"), namespace)
    with examples.open("w") as f:
        csv.writer(f).writerows(namespace["EXAMPLES"])
    assert_same_predictions(run_script(beside), predict_csv(capsys, model_file, examples))


def test_the_python_script_says_in_one_line_when_a_csv_does_not_fit(tmp_path, capsys):
    """An empty CSV, a header alone, or rows of another width than the model's ended in torch's
    'mat1 and mat2 shapes cannot be multiplied (1x0 and 2x4)'."""
    save(MLP(2, [4, 1], seed=2), tmp_path / "m.json")
    script = tmp_path / "m.py"
    export(capsys, "--model", tmp_path / "m.json", "--to", "python", "--out", script)
    cases = {
        "empty.csv": ("", "no rows of numbers"),
        "header.csv": ("x1,x2\n", "no rows of numbers"),
        "wide.csv": ("1,2,3,4\n", "row 1 has 4 numbers; the model takes 2"),
        "narrow.csv": ("x1,x2\n1,2\n5\n", "row 3 has 1 numbers; the model takes 2"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and done.stdout == "", done
        assert done.stderr == f"{tmp_path / name}: {message}\n", done.stderr
    ok = tmp_path / "ok.csv"
    ok.write_text("x1,x2,label\n1,2,a\n3,4,b\n")  # a label column is dropped
    done = subprocess.run([sys.executable, str(script), str(ok)], capture_output=True, text=True)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 3, done


@pytest.mark.parametrize("k", range(8))
def test_python_scripts_of_every_activation_rebuild_the_model(k):
    """Each script run in this process (its text, not backprop, builds the model)."""
    model = every_activation()[k]
    xs = sample_rows(model, seed=k)
    text = python_script(model, examples=xs)
    namespace: dict = {"__name__": "exported"}
    exec(compile(text, "model.py", "exec"), namespace)
    with torch.no_grad():
        got = namespace["model"](torch.tensor(xs, dtype=torch.float64)).tolist()
    for a, b in zip(got, outputs(model, xs)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14)
    assert from_torch(namespace["model"]).state_dict() == model.state_dict()


def test_example_rows_from_a_csv_and_cross_entropy_labels(tmp_path, capsys):
    model = MLP(2, [4, 3], activation=["tanh", "linear"], seed=2)
    save(model, tmp_path / "m.json", metadata={"loss": "cross-entropy", "classes": ["a", "b", "c"]})
    (tmp_path / "ex.csv").write_text("1.5,-0.5\n0,0\n-2,1\n")
    out = tmp_path / "m.py"
    export(
        capsys,
        "--model",
        tmp_path / "m.json",
        "--to",
        "python",
        "--out",
        out,
        "--examples",
        tmp_path / "ex.csv",
    )
    namespace: dict = {"__name__": "exported"}
    exec(out.read_text(), namespace)
    assert namespace["EXAMPLES"] == [[1.5, -0.5], [0.0, 0.0], [-2.0, 1.0]]
    assert namespace["CLASSES"] == ["a", "b", "c"]
    scores = [o.data for o in model([1.5, -0.5])]
    assert namespace["predict"](scores) == "abc"[scores.index(max(scores))]


# ---- errors ------------------------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.json"
    save(MLP(2, [3, 1], seed=0), path)
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--to", "torch", "--out", "{d}/m.pt"],
            "--to torch writes a file whose name ends in .safetensors",
        ),
        (["--to", "onnx", "--out", "{d}/m.py"], "--to onnx writes a file whose name ends in .onnx"),
        (["--to", "python", "--out", "{d}/nowhere/m.py"], "does not exist"),
        (
            ["--to", "torch", "--out", "{d}/m.safetensors", "--weights", "json"],
            "--weights applies to --to python only",
        ),
        (["--to", "python", "--out", "{d}/m.py", "--examples", "{d}/none.csv"], "none.csv"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, model_file, args, message):
    argv = ["export", "--model", str(model_file)] + [a.format(d=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop export: error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # nothing written


def test_an_export_never_overwrites_its_model_and_gets_the_usual_mode(tmp_path, capsys, model_file):
    import os

    link = tmp_path / "same.py"
    os.link(model_file, link)  # another name for the model file
    before = model_file.read_bytes()
    assert main(["export", "--model", str(model_file), "--to", "python", "--out", str(link)]) == 2
    assert "is the file --model reads" in capsys.readouterr().err
    assert model_file.read_bytes() == before
    out = tmp_path / "m.py"
    mask = os.umask(0o022)
    try:
        assert (
            main(["export", "--model", str(model_file), "--to", "python", "--out", str(out)]) == 0
        )
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_bad_model_file_and_a_bad_format(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "bad.json"),
                "--to",
                "python",
                "--out",
                str(tmp_path / "m.py"),
            ]
        )
        == 2
    )
    assert "not valid JSON" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "none.json"),
                "--to",
                "python",
                "--out",
                str(tmp_path / "m.py"),
            ]
        )
        == 2
    )
    assert "no such model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", "m.json", "--to", "keras", "--out", "m.h5"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'keras'" in capsys.readouterr().err


def test_the_json_weights_never_overwrite_another_file(tmp_path, capsys, model_file):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "s.json").write_text("mine")
    argv = ["export", "--model", str(model_file), "--to", "python", "--weights", "json"]
    assert main(argv + ["--out", str(tmp_path / "out" / "s.py")]) == 2
    assert "s.json exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "s.json").read_text() == "mine"
    # beside the model file itself, the script reads that file and writes no copy
    assert main(argv + ["--out", str(tmp_path / "s.py")]) == 0
    assert "Path(__file__).with_name('m.json')" in (tmp_path / "s.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "out", "s.py"]


@pytest.mark.parametrize(
    "fmt, missing", [("torch", "safetensors"), ("onnx", "onnx"), ("onnx", "torch")]
)
def test_without_the_optional_packages_the_command_says_what_to_install(
    tmp_path, capsys, model_file, monkeypatch, fmt, missing
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    suffix = {"torch": ".safetensors", "onnx": ".onnx"}[fmt]
    assert (
        main(
            [
                "export",
                "--model",
                str(model_file),
                "--to",
                fmt,
                "--out",
                str(tmp_path / f"m{suffix}"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        f"needs {missing}" in err
        and "pip install --break-system-packages '.[torch]' in the backprop" in err
    )
    assert "backprop[" not in err
    # the python format writes text: it needs no torch here (the script needs it where it runs)
    assert (
        main(
            [
                "export",
                "--model",
                str(model_file),
                "--to",
                "python",
                "--out",
                str(tmp_path / "m.py"),
            ]
        )
        == 0
    )


def test_reading_a_safetensors_file_that_is_not_an_export(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        load_safetensors(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not written by backprop export"):
        load_safetensors(tmp_path / "other.safetensors")
    save_file(
        {"w": torch.zeros(2)},
        str(tmp_path / "bad.safetensors"),
        metadata={"format": "backprop-mlp", "architecture": "{"},
    )
    with pytest.raises(ValueError, match="architecture is not readable"):
        load_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="no such file"):
        load_safetensors(tmp_path / "none.safetensors")


def test_reading_what_is_not_a_safetensors_file_says_what_it_is(tmp_path):
    """A folder and /dev/zero were 'no such file'; safetensors' reason came as a repr cut in
    the middle ('invalid JSON i... (116 chars)'); a nan weight's error named from_torch."""
    import struct

    with pytest.raises(ValueError, match="is a folder, not a .safetensors file"):
        load_safetensors(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match=r"^/dev/zero: not a regular file"):
            load_safetensors("/dev/zero")
    with pytest.raises(ValueError, match="File name too long"):
        load_safetensors(tmp_path / ("a" * 300 + ".safetensors"))
    (tmp_path / "loop.safetensors").symlink_to("loop.safetensors")
    with pytest.raises(ValueError, match="symbolic links"):
        load_safetensors(tmp_path / "loop.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 9) + b"{not json")
    with pytest.raises(ValueError) as caught:
        load_safetensors(bad)
    message = str(caught.value)
    assert "invalid JSON in header" in message and "..." not in message, message
    assert "SafetensorError(" not in message
    good = tmp_path / "good.safetensors"
    good.write_bytes(safetensors_bytes(MLP(2, [1], seed=3)))
    size = int.from_bytes(good.read_bytes()[:8], "little")
    data = bytearray(good.read_bytes())
    data[8 + size : 16 + size] = struct.pack("<d", float("nan"))  # the first weight
    good.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(good))}: .*nan or infinite"):
        load_safetensors(good)


def test_the_help_installs_the_extras_from_the_checkout(capsys):
    """`backprop` on the package index is another project: never tell a user to install it."""
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "backprop[" not in text and "pip install backprop" not in text
    assert "in the backprop repository folder, run python3 -m pip install" in text
    assert "--break-system-packages '.[torch]'" in text


# ---- untrusted names never become code (issue 17) -----------------------------------------------

# every kind of text that can end a string, a docstring, a comment or a page's script
HOSTILE = [
    'q"uote',
    "s'ingle",
    'tri"""ple',
    "tri'''ple",
    "back\\slash",
    "trailing\\",
    "\\N{",
    "new\nline",
    "car\rriage",
    "<!--",
    "</script>",
    'm""";__import__("os").system("touch PWN");"""x',
    "m''';__import__('os').system('touch PWN');'''x",
    "ümlaut \u2028 sep",
    "bad\udcffbyte",  # a file name that is not UTF-8, as Python reads it
]
RUNNER = """
import io, json, runpy, sys
sys.modules['backprop'] = None  # the scripts need torch only
outputs = []
for path in sys.argv[1:]:
    sys.argv = [path]
    out, sys.stdout = sys.stdout, io.StringIO()
    try:
        runpy.run_path(path, run_name='__main__')
    finally:
        out, sys.stdout = sys.stdout.getvalue(), out
    outputs.append(out)
print(json.dumps(outputs))
"""


def test_hostile_file_names_and_labels_never_run_as_code(tmp_path, capsys):
    """The model file's name and the --out name went raw into the script's docstring: a model
    file named m\"\"\";__import__("os").system("touch PWN");\"\"\"x.json ran that code, and a
    backslash gave a SyntaxError. Each name here, as the model file, the script and a class."""
    import ast
    import shlex

    model = MLP(2, [3, 2], activation=["tanh", "linear"], seed=5)
    scripts, expected = [], []
    for k, name in enumerate(HOSTILE):
        folder = tmp_path / f"case{k}"
        folder.mkdir()
        file_name = name.replace("/", "|")  # a file name cannot hold a slash
        model_file = folder / f"{file_name}.json"
        classes = [name, f"{name}\x00 second"]
        metadata = {"loss": "cross-entropy", "classes": classes, "feature_names": [name, name]}
        save(model, model_file, metadata=metadata)
        for weights in ("inline", "json"):
            out = folder / f"{file_name}.{weights}.py"
            printed = export(capsys, "--model", model_file, "--to", "python", "--out", out,
                             "--weights", weights)  # fmt: skip
            command = printed.splitlines()[-1].removeprefix("run it with: ")
            assert "\n" not in command and "\r" not in command
            if file_name.isprintable():
                assert shlex.split(command)[:2] == ["python3", str(out)]
            text = out.read_text(encoding="utf-8")
            tree = ast.parse(text)  # compiles, and its docstring reads as the names themselves
            doc = ast.get_docstring(tree, clean=False)
            assert doc.startswith(f"The backprop model {model_file.name}, rebuilt in PyTorch")
            assert f"python3 {shell_word(out.name)} points.csv" in doc
            word = command.removeprefix("python3 ").removesuffix("  (it needs only torch)")
            assert shell_reads(word) == os.fsencode(out)
            # the only calls at the top level are the script's own
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            assert "__import__" not in names and "os" not in names
            scripts.append(out)
            expected.append(classes)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no file made (no PWN)

    def as_csv(cells) -> str:  # as `backprop predict` writes them (a \r is not quoted there)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()

    for printed, classes in zip(json.loads(done.stdout), expected):
        header = as_csv(["prediction"] + [f"score_{c}" for c in classes])
        assert printed.startswith(header)
        first = printed[len(header) :]
        assert any(first.startswith(as_csv([c, 0.5])[:-5]) for c in classes), first


def shell_reads(word: str) -> bytes:
    """What bash makes of one word shown in a command: the bytes of the path it names."""
    done = subprocess.run(
        ["bash", "-c", f"printf %s {word}"],
        capture_output=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "name", HOSTILE + ["-m", "--out", "\x1b[2Jescape", "tab\there", "\xa0nbsp"]
)
def test_the_command_to_run_the_script_names_it_exactly(tmp_path, capsys, monkeypatch, name):
    """`run it with: python3 -m.py` ran python's -m option on '.py'; a name with a newline was
    shown as 'm\\n.py', a different file. The command shown, and the one in the docstring,
    must name the script itself when pasted into a shell: ./ before a leading '-', and bash's
    $'...' for anything unprintable (never the raw character on the terminal)."""
    monkeypatch.chdir(tmp_path)
    save(MLP(2, [1], seed=1), tmp_path / "m.json")
    file_name = name.replace("/", "|") + ".py"
    printed = export(capsys, "--model", "m.json", "--to", "python", f"--out={file_name}")
    command = (
        printed.splitlines()[-1]
        .removeprefix("run it with: ")
        .removesuffix("  (it needs only torch)")
    )
    assert command.isprintable() and command.startswith("python3 ")
    word = command.removeprefix("python3 ")
    assert not word.startswith("-")
    assert os.path.normpath(shell_reads(word)) == os.fsencode(file_name)  # ./-m.py is -m.py
    doc = ast.get_docstring(ast.parse((tmp_path / file_name).read_text(encoding="utf-8")))
    assert f"    {command}             # predictions" in doc


@pytest.mark.parametrize("word", ["model.py", "a b.py", "it's.py", "-x.py", "/abs/-x.py"])
def test_shell_word_leaves_plain_names_as_shlex_quotes_them(word):
    path = "./" + word if word.startswith("-") else word
    assert shell_word(word) == shlex.quote(path)
    assert shell_reads(shell_word(word)) == os.fsencode(path)


def test_export_gives_one_line_for_a_name_too_long_or_a_loop_of_links(tmp_path, capsys):
    """os.stat's ENAMETOOLONG and ELOOP came out as tracebacks (pathlib's resolve() even
    turns a loop into a RuntimeError)."""
    save(MLP(2, [1], seed=1), tmp_path / "m.json")
    (tmp_path / "loop").symlink_to("loop")
    cases = [
        (["--model", tmp_path / "m.json", "--out", tmp_path / ("a" * 300 + ".py")], "too long"),
        (["--model", tmp_path / "loop" / "m.json", "--out", tmp_path / "x.py"], "symbolic links"),
        (
            [
                "--model",
                tmp_path / "m.json",
                "--out",
                tmp_path / "x.py",
                "--examples",
                tmp_path / "loop" / "x.csv",
            ],
            "symbolic links",
        ),  # fmt: skip
    ]
    for argv, words in cases:
        code = main(["export", "--to", "python", *map(str, argv)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("backprop export: error: ") and words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop", "m.json"]


@pytest.mark.parametrize("name", HOSTILE + ["nul\x00", "\x1b[2Jescape"])
def test_python_script_escapes_every_name_it_is_given(name):
    """The same through the function, with what a file name cannot hold (NUL)."""
    model = MLP(2, [1], seed=1)
    classes = [name, name + "\x00"]
    text = python_script(
        model, {"loss": "hinge", "classes": classes}, source=f"the model {name}", name=name
    )
    namespace: dict = {"__name__": "exported"}
    exec(compile(text, "model.py", "exec"), namespace)
    assert namespace["__doc__"].startswith(f"The model {name}, rebuilt in PyTorch")
    assert namespace["CLASSES"] == classes
    assert "\x00" not in text and "\x1b" not in text
    json_text = python_script(
        model,
        weights="json",
        weights_file=f"{name}.json".replace("/", "|").replace("\x00", ""),
        name=name,
    )
    compile(json_text, "model.py", "exec")


@pytest.mark.parametrize("weights_file", ["../up.json", "a/b.json", "..", "nul\x00.json"])
def test_python_script_reads_its_weights_only_beside_itself(weights_file):
    with pytest.raises(ValueError, match="weights_file must be a file name beside the script"):
        python_script(MLP(2, [1], seed=1), weights="json", weights_file=weights_file)


def test_hostile_names_in_the_safetensors_header_and_onnx(tmp_path, capsys):
    """Names in metadata are JSON inside the .safetensors header (read back exactly); the ONNX
    file takes none of them."""
    from safetensors import safe_open

    model = MLP(2, [3, 1], seed=4)
    metadata = {"classes": ["<!--", "</script>\x00"], "feature_names": HOSTILE[:1] + ["n\nl"]}
    for k, name in enumerate(HOSTILE[:6]):
        model_file = tmp_path / f"{name}.json"
        save(model, model_file, metadata=metadata)
        out = tmp_path / f"{name}.safetensors"
        export(capsys, "--model", model_file, "--to", "torch", "--out", out)
        with safe_open(str(out), framework="pt") as f:
            assert json.loads(f.metadata()["metadata"]) == metadata
        assert load_safetensors(out).state_dict() == model.state_dict()
        onnx_out = tmp_path / f"{k}.onnx"
        export(capsys, "--model", model_file, "--to", "onnx", "--out", onnx_out)
        assert name.encode("utf-8", "surrogateescape") not in onnx_out.read_bytes()


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"classes": 7}, "classes must be a list of labels"),
        ({"classes": {"a": 1}}, "classes must be a list of labels"),
        ({"classes": [["a"], "b"]}, "classes must be a list of labels"),
        ({"loss": ["hinge"]}, "metadata loss must be one of hinge, bce, mse, cross-entropy"),
        ({"classes": ["a", "b", "c"]}, "lists 3 classes for a model with 1 output"),
        ({"loss": "mse", "classes": [0, 1]}, "loss 'mse' reads one output, but the model has 3"),
    ],
)
def test_python_script_refuses_metadata_it_cannot_write_in_one_line(metadata, message):
    """As `backprop predict` refuses them (serialize.prediction_task)."""
    model = MLP(2, [3 if metadata.get("loss") == "mse" else 1], seed=1)
    with pytest.raises(ValueError, match=re.escape(message)):
        python_script(model, metadata)


@pytest.mark.parametrize(
    "examples, message",
    [
        ([[1e400, 0.0]], "not finite"),
        ([[10**400, 0.0]], "example row 0 is not a row of numbers"),
        (["12"], "example row 0 is not a row of numbers"),
        ([[None, 1.0]], "example row 0 is not a row of numbers"),
    ],
)
def test_python_script_refuses_example_rows_that_are_not_numbers(examples, message):
    with pytest.raises(ValueError, match=message):
        python_script(MLP(2, [1], seed=1), examples=examples)


def test_an_out_of_range_label_column_reads_the_last_column():
    """A huge label_column gave a ValueError (too many digits) or an IndexError at run time."""
    for column in (10**5000, 3, -4, True, "0"):
        text = python_script(MLP(2, [1], seed=1), {"label_column": column})
        assert "del row[-1]" in text
    assert "del row[0]" in python_script(MLP(2, [1], seed=1), {"label_column": 0})


def test_python_script_refuses_a_model_holding_nan():
    model = MLP(2, [1], seed=1)
    model.layers[0].neurons[0].w[1].data = float("inf")
    with pytest.raises(ValueError, match="layer 0 of the model holds a weight that is nan"):
        python_script(model)
    assert "WEIGHTS = json.loads" in python_script(model, weights="json", weights_file="m.json")


# ---- a .safetensors file is untrusted input ------------------------------------------------------


def _forged(tmp_path, arch, tensors, name="forged.safetensors"):
    from safetensors.torch import save_file

    path = tmp_path / name
    header = {"format": "backprop-mlp", "architecture": json.dumps(arch), "metadata": "{}"}
    save_file(tensors, str(path), metadata=header)
    return path


def _shapes_of(nin, nout, dtype=torch.float64):
    return {
        "0.weight": torch.zeros(nout, nin, dtype=dtype),
        "0.bias": torch.zeros(nout, dtype=dtype),
    }


@pytest.mark.parametrize(
    "arch, tensors, message",
    [
        (  # the huge model of issue 17 item 3, declared in the header: refused before building
            {"type": "MLP", "nin": 20_000_000, "nouts": [1], "activation": ["tanh"]},
            _shapes_of(2, 1),
            "over the limit of 1,000,000 (backprop.serialize.MAX_PARAMETERS)",
        ),
        (
            {"type": "MLP", "nin": 2, "nouts": [3], "activation": ["tanh"]},
            _shapes_of(2, 4),
            "the weights do not match the architecture",
        ),
        (
            {"type": "MLP", "nin": 2, "nouts": [1], "activation": [["relu"]]},
            _shapes_of(2, 1),
            "architecture activation must list one of",
        ),
        (
            {"type": "MLP", "nin": 2, "nouts": [1], "activation": ["tanh"]},
            _shapes_of(2, 1, torch.complex64),
            "is C64, not real floating point",
        ),
        (
            {"type": "MLP", "nin": 2, "nouts": [1], "activation": ["tanh"]},
            _shapes_of(2, 1, torch.int64),
            "is I64, not real floating point",
        ),
        ([[[]]], _shapes_of(2, 1), "architecture is not readable (not an object"),
    ],
)
def test_a_forged_safetensors_file_is_refused_in_one_line(tmp_path, arch, tensors, message):
    import time

    path = _forged(tmp_path, arch, tensors)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_safetensors(path)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value) and len(str(info.value)) < 1000


def test_a_safetensors_header_nested_deep_or_a_file_too_big(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    path = tmp_path / "deep.safetensors"
    header = {"format": "backprop-mlp", "architecture": "[" * 100_000 + "]" * 100_000}
    save_file(_shapes_of(2, 1), str(path), metadata=header)
    with pytest.raises(ValueError, match="architecture is not readable") as info:
        load_safetensors(path)
    assert len(str(info.value)) < 1000
    good = tmp_path / "good.safetensors"
    good.write_bytes(safetensors_bytes(MLP(2, [1], seed=0)))
    monkeypatch.setattr("backprop.serialize.MAX_FILE_BYTES", 100)
    with pytest.raises(ValueError, match="over the limit of 100 "):
        load_safetensors(good)


def test_a_safetensors_export_is_the_same_bytes_in_every_process():
    """safetensors writes its header's metadata from a hash map: its order changed run to run."""
    program = (
        "import hashlib; from backprop import MLP; from backprop.pytorch import safetensors_bytes;"
        "m = MLP(3, [4, 2], seed=1);"
        "data = safetensors_bytes(m, {'loss': 'cross-entropy', 'x': [1]});"
        "print(hashlib.sha256(data).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(digests) == 1


def test_an_export_never_writes_through_a_symbolic_link(tmp_path, capsys, model_file):
    """Through the function and the command: a link to another file, and a dangling link where
    the script's weights would go, are refused before anything is written."""
    from backprop.pytorch import export as export_to

    model = MLP(2, [3, 1], seed=0)
    other = tmp_path / "other.txt"
    other.write_text("mine")
    (tmp_path / "link.py").symlink_to(other)
    (tmp_path / "s.json").symlink_to(tmp_path / "nowhere.json")  # dangling
    before = sorted(p.name for p in tmp_path.iterdir())
    for to, name in (("python", "link.py"), ("torch", "link.safetensors"), ("onnx", "link.onnx")):
        if name != "link.py":
            (tmp_path / name).symlink_to(other)
            before.append(name)
        with pytest.raises(ValueError, match="is a symbolic link: not writing through it"):
            export_to(model, tmp_path / name, to)
        argv = ["export", "--model", str(model_file), "--to", to, "--out", str(tmp_path / name)]
        assert main(argv) == 2
        assert "link" in capsys.readouterr().err
    with pytest.raises(ValueError, match="s.json exists"):
        export_to(model, tmp_path / "s.py", "python", weights="json")
    assert other.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
