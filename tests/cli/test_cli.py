"""The backprop command, run as a user would: exit codes, messages, files written or left alone."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from backprop.data import moons
from backprop.serialize import load, load_metadata
from backprop.train import predict_outputs

SMALL = ["--samples", "30", "--hidden", "4", "--epochs", "5", "--quiet"]


def run(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "backprop", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def _write_csv(path, rows, header=None):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def test_help_lists_the_options():
    out = run("train", "--help")
    assert out.returncode == 0
    for option in [
        "--dataset",
        "--hidden",
        "--activation",
        "--loss",
        "--optimizer",
        "--lr",
        "--epochs",
        "--batch-size",
        "--seed",
        "--compile",
        "--save",
        "--plot",
        "cross-entropy",
        "adamw",
        "sigmoid",
        "full batch",
    ]:
        assert option in out.stdout
    out = run("--help")
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout


def test_train_saves_and_plots(tmp_path):
    out = run(
        "train",
        "--dataset",
        "moons",
        *SMALL,
        "--loss",
        "hinge",
        "--optimizer",
        "sgd",
        "--lr",
        "1.0",
        "--seed",
        "1",
        "--save",
        "m.json",
        "--plot",
        "m.png",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "training accuracy" in out.stdout and "saved the model to m.json" in out.stdout
    model = load(tmp_path / "m.json")
    assert model.sizes == [2, 4, 1] and model.activations == ["relu", "linear"]
    meta = load_metadata(tmp_path / "m.json")
    assert meta["loss"] == "hinge" and meta["classes"] == [0, 1]
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "labels",
    [("cat", "dog"), (-1, 1), (0, 1), ("1.5", "yes")],
    ids=["names", "minus-one-one", "zero-one", "mixed"],
)
def test_csv_trains_saves_loads_and_predicts_the_same_numbers(tmp_path, labels):
    X, y = moons(40, noise=0.1, seed=3)
    _write_csv(
        tmp_path / "train.csv",
        [[a, b, labels[t]] for (a, b), t in zip(X, y)],
        header=["width", "height", "kind"],
    )
    out = run(
        "train",
        "--dataset",
        "train.csv",
        "--hidden",
        "8",
        "--epochs",
        "40",
        "--quiet",
        "--save",
        "model.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "classes " in out.stdout

    _write_csv(tmp_path / "points.csv", X, header=["width", "height"])
    out = run(
        "predict",
        "--model",
        "model.json",
        "--data",
        "points.csv",
        "--out",
        "preds.csv",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "preds.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(X)
    model = load(tmp_path / "model.json")
    scores = predict_outputs(model, X)
    assert [float(r["score"]) for r in rows] == scores  # bit for bit
    names = [str(v) for v in labels]
    assert [r["prediction"] for r in rows] == [names[s > 0] for s in scores]
    assert sum(r["prediction"] == names[t] for r, t in zip(rows, y)) >= 0.85 * len(y)

    # the training file itself (with its label column) predicts the same, to stdout
    out = run("predict", "--model", "model.json", "--data", "train.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == (tmp_path / "preds.csv").read_text().splitlines()


def test_multiclass_csv_predicts_scores_per_class(tmp_path):
    rows = [[i % 3 + 0.1 * (i % 5), (i % 3) * 2.0, ["a", "b", "c"][i % 3]] for i in range(30)]
    _write_csv(tmp_path / "three.csv", rows)
    out = run(
        "train",
        "--dataset",
        "three.csv",
        "--hidden",
        "6",
        "--epochs",
        "30",
        "--quiet",
        "--save",
        "m.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "cross-entropy" in out.stdout
    out = run("predict", "--model", "m.json", "--data", "three.csv", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "prediction,score_a,score_b,score_c" and len(lines) == 31
    assert {line.split(",")[0] for line in lines[1:]} <= {"a", "b", "c"}


def test_spiral_defaults_to_cross_entropy(tmp_path):
    out = run(
        "train",
        "--dataset",
        "spiral",
        "--samples",
        "30",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--quiet",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "cross-entropy loss" in out.stdout and "adam lr 0.05" in out.stdout


BAD_TRAIN = [
    (["--loss", "squared"], "argument --loss: invalid choice: 'squared'"),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--activation", "gelu"], "invalid choice: 'gelu'"),
    (["--lr", "-1"], "argument --lr: expected a positive number, got '-1'"),
    (["--lr", "fast"], "expected a number, got 'fast'"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["--batch-size", "-2"], "expected an integer >= 0, got '-2'"),
    (["--hidden", "16,x"], "argument --hidden"),
    (["--hidden", "0"], "('none' for a linear model), got '0'"),
    (["--hidden", ""], "('none' for a linear model), got ''"),
    (["--hidden", "16,0"], "('none' for a linear model), got '16,0'"),
    (["--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["--val-split", "1.5"], "expected a fraction"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--dataset", "missing.csv"], "missing.csv: no such file"),
    (["--dataset", "spiral", "--loss", "hinge"], "loss 'hinge' handles 2 classes, the data has 3"),
    (["--dataset", "toy", "--classes", "3"], "--classes applies to spiral and blobs"),
    (["--save", "nodir/m.json"], "the folder 'nodir' does not exist"),
    (["--save", "model.pkl"], "must end in .json"),
    (["--plot", "plot.jpg"], "must end in .png"),
    (["--momentum", "0.9"], "--momentum applies to --optimizer sgd only"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize("args, message", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_bad_train_arguments_give_one_line_and_exit_2(tmp_path, args, message):
    out = run("train", *args, "--epochs" if "--epochs" not in args else "--seed", "1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith(("backprop train: error: ", "backprop: error: "))
    assert message in out.stderr


def test_bad_csv_names_line_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n")
    out = run("train", "--dataset", "bad.csv", cwd=tmp_path)
    assert out.returncode == 2
    assert "bad.csv line 3, column 2 ('b'): expected a number, got 'oops'" in out.stderr
    (tmp_path / "one.csv").write_text("1,2,x\n3,4,x\n")
    out = run("train", "--dataset", "one.csv", cwd=tmp_path)
    assert out.returncode == 2 and "need at least 2 classes" in out.stderr


def test_a_failed_train_leaves_an_existing_model_file_alone(tmp_path):
    (tmp_path / "m.json").write_text("precious")
    out = run("train", "--dataset", "missing.csv", "--save", "m.json", cwd=tmp_path)
    assert out.returncode == 2
    assert (tmp_path / "m.json").read_text() == "precious"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    out = run("train", *SMALL, "--save", "m.json", cwd=folder)
    assert out.returncode == 0, out.stderr
    _write_csv(folder / "points.csv", [[0.1, 0.2], [1.0, -0.5]])
    return folder


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t[: len(t) // 2], "looks truncated"),
        (lambda t: t.replace('"relu"', '"gelu"'), "'gelu'"),
        (lambda t: t.replace('"nouts": [4, 1]', '"nouts": [5, 1]'), "has 21 parameters but"),
        (
            lambda t: t.replace('"layers.0.neurons.0.b": ', '"layers.0.neurons.0.b": "nan", "x": '),
            "'nan'",
        ),
        (lambda t: "", "empty"),
    ],
)
def test_predict_with_a_corrupt_model_file(saved_model, tmp_path, edit, message):
    (tmp_path / "bad.json").write_text(edit((saved_model / "m.json").read_text()))
    out = run(
        "predict", "--model", str(tmp_path / "bad.json"), "--data", str(saved_model / "points.csv")
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("backprop predict: error: ") and message in out.stderr


def test_the_default_lr_of_adam_minibatches_follows_the_batch_size_as_in_fit():
    from backprop.train import default_lr

    out = run("train", "--samples", "100", "--hidden", "4", "--epochs", "1", "--batch-size",
              "10", "--val-split", "0.2")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"adam lr {default_lr('adam', 10, 80):g}," in out.stdout  # 80 rows after the split
    out = run("train", *SMALL, "--batch-size", "10", "--lr", "0.02")
    assert "adam lr 0.02," in out.stdout


def test_a_noise_that_overflows_is_named():
    out = run("train", "--dataset", "moons", "--noise", "1e308", "--epochs", "1")
    assert out.returncode == 2 and out.stdout == ""
    assert "--noise 1e+308 is too big: the moons points it makes overflow" in out.stderr
    out = run("train", "--dataset", "moons", "--noise", "1e200", "--epochs", "1", "--quiet")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()[-1]) < 80  # a huge loss in 4 significant digits


@pytest.mark.parametrize("command", ["predict", "export"])
def test_a_model_given_through_a_pipe_is_read_once(saved_model, tmp_path, command):
    # `--model <(cat m.json)`: a pipe can be read once (it used to be read for the model, then
    # again for its metadata, which then looked empty)
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    text = (saved_model / "m.json").read_bytes()
    writer = threading.Thread(target=lambda: fifo.write_bytes(text))
    writer.start()
    args = {"predict": ["--data", "points.csv"], "export": ["--to", "python", "--out"]}[command]
    got = run(command, "--model", str(fifo), *args, *(["piped.py"] * (command == "export")),
              cwd=saved_model)  # fmt: skip
    writer.join(timeout=10)
    assert got.returncode == 0, got.stderr
    want = run(command, "--model", "m.json", *args, *(["plain.py"] * (command == "export")),
               cwd=saved_model)  # fmt: skip
    if command == "predict":
        assert got.stdout == want.stdout
    else:
        piped, plain = (saved_model / name for name in ("piped.py", "plain.py"))
        assert piped.read_text().replace(fifo.name, "m.json").replace("piped.py", "plain.py") == (
            plain.read_text()
        )


def test_predict_bad_data_and_arguments(saved_model, tmp_path):
    _write_csv(tmp_path / "wide.csv", [[1, 2, 3, 4]])
    out = run(
        "predict", "--model", str(saved_model / "m.json"), "--data", str(tmp_path / "wide.csv")
    )
    assert (
        out.returncode == 2
        and "takes 2 features (x1, x2), but the file has 4 columns" in out.stderr
    )
    out = run("predict", "--model", str(saved_model / "m.json"))
    assert out.returncode == 2 and "--data" in out.stderr
    out = run("predict", "--model", "nope.json", "--data", str(saved_model / "points.csv"))
    assert out.returncode == 2 and "no such model file" in out.stderr


def test_predict_output_file_is_written_whole(saved_model):
    out = run(
        "predict", "--model", "m.json", "--data", "points.csv", "--out", "p.csv", cwd=saved_model
    )
    assert out.returncode == 0, out.stderr
    assert (saved_model / "p.csv").read_text().splitlines()[0] == "prediction,score"
    assert not [p for p in os.listdir(saved_model) if p.endswith(".tmp")]


def test_demo_still_works(tmp_path):
    out = run("demo", "--steps", "5", "--graph", "", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "step    0  loss" in out.stdout and "predictions vs targets" in out.stdout


def test_ctrl_c_keeps_the_best_weights_and_still_saves(tmp_path):
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backprop",
                "train",
                "--samples",
                "30",
                "--hidden",
                "4",
                "--epochs",
                "100000",
                "--save",
                "m.json",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        deadline = time.time() + 120
        while "loss=" not in (tmp_path / "err.txt").read_text() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, (tmp_path / "err.txt").read_text()[-500:]
    assert "interrupted: keeping the weights of epoch" in stdout
    assert "saved the model to m.json" in stdout
    assert load_metadata(tmp_path / "m.json")["epochs_trained"] >= 1
    json.loads((tmp_path / "m.json").read_text())


def test_csv_with_large_features_is_standardized_and_still_predicts_raw_rows(tmp_path):
    X, y = moons(40, noise=0.1, seed=4)
    rows = [[1000 + 300 * a, 0.01 * b, ["no", "yes"][t]] for (a, b), t in zip(X, y)]
    _write_csv(tmp_path / "big.csv", rows, header=["grams", "metres", "ok"])
    out = run(
        "train",
        "--dataset",
        "big.csv",
        "--hidden",
        "8",
        "--epochs",
        "60",
        "--quiet",
        "--save",
        "m.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "standardized" in out.stdout
    accuracy = float(out.stdout.split("training accuracy ")[1].split("%")[0])
    assert accuracy >= 85.0
    out = run("predict", "--model", "m.json", "--data", "big.csv", cwd=tmp_path)
    lines = out.stdout.splitlines()[1:]
    scores = predict_outputs(load(tmp_path / "m.json"), [r[:2] for r in rows])
    assert [float(line.split(",")[1]) for line in lines] == scores
    right = sum(line.split(",")[0] == r[2] for line, r in zip(lines, rows))
    assert right / len(rows) == pytest.approx(accuracy / 100, abs=0.03)


def test_train_compile_trains_moons_as_without_it_and_saves_the_same_model(tmp_path):
    """The end-to-end check of --compile, on the judged moons run (the eager run takes ~30 s)."""
    command = ["train", "--dataset", "moons", "--hidden", "16,16", "--activation", "relu"]
    command += ["--loss", "hinge", "--optimizer", "sgd", "--lr", "1.0", "--epochs", "100"]
    command += ["--seed", "1", "--quiet"]
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "backprop", *command, *extra, "--save", f"{name}.json"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in (("eager", []), ("compiled", ["--compile"]))
    }
    outs = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, outs[name][1]
    assert "full batch, compiled" in outs["compiled"][0]

    def summary(stdout):
        return [line for line in stdout.splitlines() if line.startswith("training accuracy")]

    assert summary(outs["compiled"][0]) == summary(outs["eager"][0])
    assert float(summary(outs["eager"][0])[0].split()[2].rstrip("%,")) >= 97
    eager, compiled = load(tmp_path / "eager.json"), load(tmp_path / "compiled.json")
    weights = [p.data for p in compiled.parameters()]
    assert weights == pytest.approx([p.data for p in eager.parameters()], rel=1e-9, abs=1e-12)
    grid = [[x / 4, y / 4] for x in range(-6, 11) for y in range(-4, 7)]
    _write_csv(tmp_path / "grid.csv", grid)
    predictions = {}
    for name in procs:
        out = run("predict", "--model", f"{name}.json", "--data", "grid.csv", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        predictions[name] = [line.split(",")[0] for line in out.stdout.splitlines()]
    assert predictions["compiled"] == predictions["eager"]


# ---- a careless user's first hour (issue 8) -----------------------------------------------------


def call(capsys, *args):
    """main() in this process: (exit code, stdout, stderr)."""
    from backprop.cli import main

    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "graph, message",
    [
        ("/nonexistent/x.svg", "the folder '/nonexistent' does not exist"),
        ("d", "'d' is a directory"),
        ("out.txt", "the file name must end in .svg or .png"),
    ],
)
def test_demo_checks_its_graph_path_before_training(capsys, tmp_path, monkeypatch, graph, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    code, out, err = call(capsys, "demo", "--graph", graph)
    assert code == 2 and out == ""  # nothing trained
    assert err.startswith(f"backprop demo: error: --graph {graph!r}")
    assert message in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_demo_writes_a_png_with_the_usual_mode(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        code, out, _ = call(capsys, "demo", "--steps", "2", "--graph", "n.png")
    finally:
        os.umask(old)
    assert code == 0 and "to n.png" in out
    assert (tmp_path / "n.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "n.png").stat().st_mode & 0o777 == 0o644


def _mode(path):
    return path.stat().st_mode & 0o777


def test_saved_files_get_the_umask_default_or_keep_their_mode(saved_model, tmp_path):
    """train --save and predict --out create 0644 files under umask 022 (not mkstemp's 0600),
    and a file written over keeps the mode it had."""
    old = os.umask(0o022)
    try:
        out = run("train", *SMALL, "--save", "new.json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert _mode(tmp_path / "new.json") == 0o644
        (tmp_path / "kept.json").write_text("old")
        os.chmod(tmp_path / "kept.json", 0o640)
        out = run("train", *SMALL, "--save", "kept.json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert _mode(tmp_path / "kept.json") == 0o640
        assert load(tmp_path / "kept.json").sizes == [2, 4, 1]
        model, points = saved_model / "m.json", saved_model / "points.csv"
        out = run("predict", "--model", model, "--data", points, "--out", "p.csv", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert _mode(tmp_path / "p.csv") == 0o644
    finally:
        os.umask(old)


def test_predict_refuses_to_overwrite_its_input(saved_model, tmp_path):
    points = tmp_path / "p.csv"
    points.write_bytes((saved_model / "points.csv").read_bytes())
    before = points.read_bytes()
    model = str(saved_model / "m.json")
    for out_path in ("p.csv", "./p.csv", str(points)):
        out = run("predict", "--model", model, "--data", "p.csv", "--out", out_path, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.count("\n") == 1
        assert "is the file --data reads" in out.stderr
    os.link(points, tmp_path / "same.csv")  # a hard link is the same file too
    out = run("predict", "--model", model, "--data", "p.csv", "--out", "same.csv", cwd=tmp_path)
    assert out.returncode == 2 and "is the file --data reads" in out.stderr
    (tmp_path / "m.csv").write_bytes((saved_model / "m.json").read_bytes())
    out = run("predict", "--model", "m.csv", "--data", "p.csv", "--out", "m.csv", cwd=tmp_path)
    assert out.returncode == 2 and "is the file --model reads" in out.stderr
    assert points.read_bytes() == before


def test_train_refuses_to_save_over_its_training_data(tmp_path):
    data = tmp_path / "pts.json"  # a CSV file, named oddly
    _write_csv(data, [[0, 0, "a"], [1, 1, "b"], [0, 1, "a"], [1, 0, "b"]], ["u", "v", "kind"])
    before = data.read_bytes()
    out = run("train", "--dataset", "pts.json", "--save", "pts.json", "--quiet", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--save 'pts.json' is the file --dataset reads" in out.stderr
    assert "training" not in out.stdout and data.read_bytes() == before


def test_predict_says_what_a_wrong_model_file_looks_like(saved_model, capsys):
    code, _, err = call(
        capsys,
        "predict",
        "--model",
        str(saved_model / "points.csv"),
        "--data",
        str(saved_model / "points.csv"),
    )
    assert code == 2 and "this looks like a CSV file, not a saved backprop model" in err
    assert "truncated" not in err
    code, _, err = call(
        capsys,
        "predict",
        "--model",
        str(saved_model / "m.json"),
        "--data",
        str(saved_model / "m.json"),
    )
    assert code == 2 and "this looks like a saved backprop model, not a CSV file" in err


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    """A model trained on a CSV whose columns are x1, x2 and the label y."""
    folder = tmp_path_factory.mktemp("named")
    rows = [[i / 10, (i % 3) / 3, "a" if i % 2 else "b"] for i in range(12)]
    _write_csv(folder / "train.csv", rows, ["x1", "x2", "y"])
    out = run("train", "--dataset", "train.csv", "--hidden", "3", "--epochs", "2", "--quiet",
              "--save", "m.json", cwd=folder)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return folder


def test_the_model_file_keeps_the_training_columns(named_model):
    metadata = load_metadata(named_model / "m.json")
    assert metadata["feature_names"] == ["x1", "x2"] and metadata["label_name"] == "y"
    assert metadata["label_column"] == 2


@pytest.mark.parametrize(
    "header, rows, ok",
    [
        (["x1", "x2"], [[0.1, 0.2]], True),
        (None, [[0.1, 0.2]], True),  # no header, the right width
        (["x1", "x2", "y"], [[0.1, 0.2, "a"]], True),  # the training file itself
        (None, [[0.1, 0.2, "a"]], True),  # the same without its header
        (["x1", "x2", "x3"], [[0.1, 0.2, 0.3]], False),
        (["x2", "x1"], [[0.1, 0.2]], False),
        (["a", "b"], [[0.1, 0.2]], False),
        (None, [[0.1, 0.2, 0.3, 0.4]], False),
    ],
)
def test_predict_checks_the_columns(named_model, tmp_path, capsys, header, rows, ok):
    data = _write_csv(tmp_path / "p.csv", rows, header)
    code, out, err = call(
        capsys, "predict", "--model", str(named_model / "m.json"), "--data", str(data)
    )
    if ok:
        assert code == 0, err
        assert out.splitlines()[0] == "prediction,score" and len(out.splitlines()) == 2
    else:
        assert code == 2 and err.count("\n") == 1
        if header:
            assert f"the file's columns are {', '.join(header)}" in err
            assert "the model was trained on x1, x2" in err
        else:
            assert "the model takes 2 features (x1, x2), but the file has 4 columns" in err


def test_a_built_in_dataset_model_refuses_an_extra_unnamed_column(saved_model, tmp_path, capsys):
    data = _write_csv(tmp_path / "p.csv", [[0.1, 0.2, 0.3]], ["x1", "x2", "x3"])
    code, _, err = call(
        capsys, "predict", "--model", str(saved_model / "m.json"), "--data", str(data)
    )
    assert code == 2 and "takes 2 features (x1, x2), but the file has 3 columns (x1, x2, x3)" in err
    data = _write_csv(tmp_path / "q.csv", [[0.1, 0.2, 0.3]])
    code, _, err = call(
        capsys, "predict", "--model", str(saved_model / "m.json"), "--data", str(data)
    )
    assert code == 2 and "but the file has 3 columns" in err


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = call(capsys, "--version")
    assert code == 0 and out == f"backprop {version('backprop-toolkit')}\n"


def test_one_epoch_one_column_in_good_grammar(tmp_path, saved_model, capsys):
    out = run("train", "--samples", "10", "--hidden", "2", "--epochs", "1", "--quiet",
              "--patience", "1", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "1 epoch," in out.stdout and "1 epochs" not in out.stdout
    code, printed, _ = call(capsys, "demo", "--steps", "1", "--graph", "")
    assert code == 0 and "4 points: 1 step of gradient descent" in printed
    data = _write_csv(tmp_path / "one.csv", [[0.5]])
    code, _, err = call(
        capsys, "predict", "--model", str(saved_model / "m.json"), "--data", str(data)
    )
    assert code == 2 and "the file has 1 column" in err and "1 columns" not in err


def test_hidden_none_is_a_linear_model(tmp_path):
    out = run("train", "--samples", "10", "--hidden", "none", "--epochs", "1", "--quiet",
              "--save", "m.json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert load(tmp_path / "m.json").sizes == [2, 1]


# ---- hostile outputs and model files (issue 17) ----------------------------------------------


def test_an_output_through_a_symlink_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "precious.py").write_text("keep me")
    (tmp_path / "link.json").symlink_to("precious.py")
    code, out, err = call(capsys, "train", *SMALL, "--save", "link.json")
    assert code == 2 and out == ""  # refused before the work, not after
    assert "--save 'link.json' is a symbolic link (to 'precious.py')" in err
    assert (tmp_path / "precious.py").read_text() == "keep me"
    (tmp_path / "gone.html").symlink_to(tmp_path / "no" / "such" / "folder.html")
    code, out, err = call(capsys, "train", *SMALL, "--explore", "gone.html")
    assert code == 2 and out == "" and "--explore 'gone.html' is a symbolic link" in err
    code, _, err = call(capsys, "demo", "--graph", "link.json")
    assert code == 2 and "symbolic link" in err


def test_two_outputs_that_are_one_file_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text("{}")
    os.link(tmp_path / "m.json", tmp_path / "p.png")  # a hard link: the same file
    code, out, err = call(capsys, "train", *SMALL, "--save", "m.json", "--plot", "p.png")
    assert code == 2 and out == ""
    assert "--save and --plot name the same file" in err
    assert (tmp_path / "m.json").read_text() == "{}"


def test_an_output_linked_to_another_output_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.png").symlink_to("m.json")
    code, out, err = call(capsys, "train", *SMALL, "--save", "m.json", "--plot", "p.png")
    assert code == 2 and out == "" and "symbolic link" in err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"classes": 7}, "metadata classes must be a list of labels"),
        ({"classes": {"a": 1}}, "metadata classes must be a list of labels"),
        ({"loss": ["hinge"]}, "metadata loss must be one of"),
        ({"loss": "cross-entropy", "classes": [0, 1]}, "lists 2 classes"),
    ],
)
def test_predict_refuses_metadata_that_does_not_fit_in_one_line(
    tmp_path, capsys, metadata, message
):
    from backprop import MLP
    from backprop.serialize import save

    save(MLP(2, [3, 1], seed=0), tmp_path / "m.json", metadata=metadata)
    _write_csv(tmp_path / "x.csv", [[0.5, 0.25]])
    code, out, err = call(
        capsys, "predict", "--model", str(tmp_path / "m.json"), "--data", str(tmp_path / "x.csv")
    )
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_predict_refuses_a_huge_declared_model_at_once(tmp_path, capsys):
    doc = {
        "format": "backprop-model",
        "version": 1,
        "architecture": {"type": "MLP", "nin": 20_000_000, "nouts": [1], "activation": ["relu"]},
        "weights": {},
    }
    (tmp_path / "m.json").write_text(json.dumps(doc))
    _write_csv(tmp_path / "x.csv", [[0.5, 0.25]])
    start = time.perf_counter()
    code, _, err = call(
        capsys, "predict", "--model", str(tmp_path / "m.json"), "--data", str(tmp_path / "x.csv")
    )
    assert code == 2 and "20,000,001 parameters, over the limit" in err
    assert time.perf_counter() - start < 5


def test_an_error_message_is_one_bounded_line(capsys):
    from backprop.cli.commands import MAX_MESSAGE, _one_line

    long = "x" * 10**6 + "\nsecond line"
    line = _one_line(long)
    assert "\n" not in line and len(line) < MAX_MESSAGE + 100 and "1,000,012 characters" in line
    assert _one_line("short") == "short"


def test_plot_of_wide_data_says_the_boundary_is_left_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_csv(
        tmp_path / "d.csv", [[i, i % 3, i % 5, i % 2] for i in range(20)], ["a", "b", "c", "y"]
    )
    code, out, _ = call(
        capsys, "train", "--dataset", "d.csv", "--epochs", "3", "--quiet", "--plot", "p.png"
    )
    assert code == 0 and (tmp_path / "p.png").is_file()
    assert (
        "wrote the plot to p.png (no decision boundary: it is drawn over 2 input features, and "
        "this data has 3" in out
    )


def test_the_dataset_line_names_many_classes_briefly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [[i % 7, i % 5, f"a-rather-long-label-number-{i}"] for i in range(200)]
    _write_csv(tmp_path / "d.csv", rows, ["a", "b", "y"])
    code, out, _ = call(capsys, "train", "--dataset", "d.csv", "--epochs", "1", "--quiet",
                        "--hidden", "none")  # fmt: skip
    (line,) = [x for x in out.splitlines() if x.startswith("dataset:")]
    assert code == 0 and len(line) < 600 and "(200 in all)" in line


def test_digits_reports_its_test_accuracy(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--dataset", "digits", "--hidden", "none", "--epochs", "2", "--quiet"]
    code, out, _ = call(capsys, *argv, "--batch-size", "256", "--compile", "--save", "m.json")
    assert code == 0, out
    assert "dataset: digits train (1347 rows, 64 features" in out
    # images: pixels to 0..1, not per-pixel standardizing; folded, so the file takes raw rows
    assert "pixels scaled to 0..1 by the largest value, 16 (folded into the first" in out
    (line,) = [x for x in out.splitlines() if x.startswith("test accuracy ")]
    from backprop.data import digits
    from backprop.train import accuracy, predict

    test = digits("test")  # rows the model never trained on, measured again here
    model = load(tmp_path / "m.json")
    expected = accuracy(predict(model, test.X, "cross-entropy", list(range(10))), test.y)
    assert line == f"test accuracy {expected:.1%} on digits test (450 rows)"


@pytest.mark.parametrize(
    "shape, message",
    [
        ("7x9", "image_shape 7x9 holds 63 pixels, but a row has 64 features"),
        ("8by8", "argument --image-shape: expected ROWSxCOLUMNS such as 8x8, got '8by8'"),
        ("0x64", "expected ROWSxCOLUMNS"),
    ],
)
def test_a_wrong_image_shape_is_one_line(tmp_path, capsys, monkeypatch, shape, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = call(
        capsys, "train", "--dataset", "digits", "--image-shape", shape, "--epochs", "1"
    )
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


# ---- issue 17: sizes, paths and terminal output from a hostile user ---------------------------


def _no_data(*args, **kwargs):
    raise AssertionError("the dataset was made before the sizes were checked")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "1000000000"], "a layer of 1,000,000,000 holds at least 2,000,000,000 "),
        (["--hidden", "5000,5000"], "layers of 5,000 and 5,000 hold 25,005,000 parameters"),
        (["--samples", "1000000000"], "--samples: expected at most 1,000,000"),
        (["--dataset", "blobs", "--classes", "1000000"], "expected at most 1,000 "),
        (["--epochs", "100000000000000000000"], "--epochs: expected at most 1,000,000 "),
        (["--epochs", "9" * 5000], "characters)"),
    ],
)
def test_huge_sizes_are_refused_before_any_work(capsys, monkeypatch, args, message):
    """These built the data or the model first: a MemoryError after a minute, a run still
    going at 60 s, tqdm's OverflowError traceback. Now one line naming the limit, exit 2."""
    import backprop.cli.train as train_module

    monkeypatch.setattr(train_module, "_load_dataset", _no_data)
    code, out, err = call(capsys, "train", "--quiet", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and len(err) < 400, err
    assert message in err and ("MAX_" in err or "characters" in err)


def test_a_model_over_the_parameter_limit_is_refused_before_it_is_built(capsys, monkeypatch):
    import backprop.cli.train as train_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before its size was checked")

    monkeypatch.setattr(train_module, "MLP", no_model)
    code, _, err = call(capsys, "train", "--dataset", "digits", "--hidden", "20000", "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "the model (64, 20000, 10) would have 1,500,010 parameters, over the limit of " in err
    assert "backprop.serialize.MAX_PARAMETERS" in err


LONG = "a" * 300


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "toy", "--save", LONG + ".json"],
        ["train", "--dataset", "toy", "--plot", LONG + ".png"],
        ["train", "--dataset", "toy", "--explore", LONG + ".html"],
        ["train", "--dataset", LONG + ".csv"],
        ["predict", "--model", LONG + ".json", "--data", "p.csv"],
        ["predict", "--model", "m.json", "--data", "p.csv", "--out", LONG + ".csv"],
        ["demo", "--graph", LONG + ".svg"],
        ["graph", "x*2", "--set", "x=1", "--html", LONG + ".html"],
        ["graph", "x*2", "--set", "x=1", "--svg", LONG + ".svg"],
        ["predict", "--model", "loop/m.json", "--data", "p.csv"],
        ["predict", "--model", "m.json", "--data", "loop/p.csv", "--out", "o.csv"],
        ["train", "--dataset", "loop/d.csv", "--save", "m.json"],
        ["train", "--dataset", "loop/d.csv"],
    ],
    ids=lambda a: " ".join(x if len(x) < 40 else "LONG" for x in a),
)
def test_a_name_too_long_or_a_loop_of_links_is_one_line(capsys, tmp_path, monkeypatch, args):
    """OSError ENAMETOOLONG / ELOOP, and pathlib's RuntimeError for a loop in resolve(), were
    tracebacks from every command."""
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", "loop")
    _write_csv(tmp_path / "p.csv", [[1, 2]])
    code, _, err = call(capsys, *args, *(["--quiet"] if args[0] == "train" else []))
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"backprop {args[0]}: error: ")
    assert "File name too long" in err or "symbolic links" in err or "Symlink loop" in err, err
    assert len(err) < 1100  # bounded (main cuts a message over MAX_MESSAGE)


def test_labels_and_file_names_reach_the_terminal_escaped(capsys, tmp_path, monkeypatch):
    """An escape sequence in a CSV label coloured and erased the terminal line; a newline in
    --save's name split the message in two."""
    monkeypatch.chdir(tmp_path)
    _write_csv(tmp_path / "ansi.csv", [[1, 2, "\x1b[31mRED\x1b[2K"], [2, 3, "b\x00"], [3, 1, "b"]])
    name = "new\nline.json"
    code, out, err = call(
        capsys, "train", "--dataset", "ansi.csv", "--epochs", "2", "--quiet", "--save", name
    )
    assert code == 0, err
    assert "\x1b" not in out and "\x00" not in out
    assert "classes \\x1b[31mRED\\x1b[2K, b, b\\x00)" in out
    assert "saved the model to new\\nline.json\n" in out
    assert load_metadata(name)["classes"] == ["\x1b[31mRED\x1b[2K", "b", "b\x00"]  # kept as is
    # predict: its CSV to a pipe is the data itself; to a terminal, escaped
    code, out, err = call(capsys, "predict", "--model", name, "--data", "ansi.csv")
    assert code == 0 and "\x1b[31mRED" in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = call(capsys, "predict", "--model", name, "--data", "ansi.csv")
    assert code == 0 and "\x1b" not in out and "\x00" not in out and "\\x1b[31mRED" in out


def test_demo_refuses_a_number_of_steps_it_would_never_finish(capsys):
    code, out, err = call(capsys, "demo", "--steps", "100000000000000000000", "--graph", "")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--steps: expected at most 1,000,000 (backprop.cli.train.MAX_EPOCHS)" in err
