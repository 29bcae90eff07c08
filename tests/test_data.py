"""Datasets: shapes, labels, seed reproducibility, CSV loading and its errors, split, batches."""

import math
import random

import pytest

from backprop.data import (
    DATASETS,
    CSVError,
    Dataset,
    blobs,
    circles,
    digits,
    get_dataset,
    load_csv,
    minibatches,
    moons,
    names,
    plural,
    read_features_csv,
    spiral,
    standardize,
    toy,
    train_test_split,
    xor,
)

GENERATORS = [moons, circles, spiral, xor, blobs]


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_are_seeded_and_shaped(make):
    a, b, c = make(seed=1), make(seed=1), make(seed=2)
    assert a.X == b.X and a.y == b.y
    assert a.X != c.X
    assert len(a.X) == len(a.y) == len(a)
    assert all(len(row) == 2 and all(math.isfinite(v) for v in row) for row in a.X)
    assert set(a.y) == set(a.classes)
    X, y = a  # unpacks like scikit-learn's (X, y)
    assert X is a.X and y is a.y


@pytest.mark.parametrize("n", [3, 7, 100, 151])
def test_generators_give_the_requested_number_of_rows(n):
    for make in GENERATORS:
        assert len(make(n, seed=0)) == n


def test_moons_geometry_without_noise():
    X, y = moons(40, noise=0.0, seed=0)
    for (a, b), label in zip(X, y):
        if label == 0:  # upper half circle of radius 1 around (0, 0)
            assert math.hypot(a, b) == pytest.approx(1.0) and b >= -1e-12
        else:  # lower half circle around (1, 0.5)
            assert math.hypot(a - 1, b - 0.5) == pytest.approx(1.0) and b <= 0.5 + 1e-12
    assert y.count(0) == y.count(1) == 20


def test_circles_radii_and_classes():
    X, y = circles(50, noise=0.0, factor=0.3, seed=0)
    for (a, b), label in zip(X, y):
        assert math.hypot(a, b) == pytest.approx(0.3 if label == 1 else 1.0)


def test_spiral_has_k_balanced_classes():
    d = spiral(150, classes=5, seed=0)
    assert d.classes == [0, 1, 2, 3, 4]
    assert [d.y.count(k) for k in range(5)] == [30] * 5
    assert all(math.hypot(*row) <= 1 + 1e-12 for row in d.X)


def test_xor_labels_follow_quadrants():
    X, y = xor(200, seed=3)
    assert all(label == (1 if a * b > 0 else 0) for (a, b), label in zip(X, y))
    assert 0.3 < sum(y) / len(y) < 0.7


def test_blobs_centers():
    d = blobs(90, centers=4, std=0.1, seed=0)
    assert d.classes == [0, 1, 2, 3] and [d.y.count(k) for k in range(4)] == [23, 23, 22, 22]


def test_toy_is_the_notebooks_four_points():
    X, y = toy()
    assert X == [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    assert y == [1.0, -1.0, -1.0, 1.0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: moons(0), "n_samples must be an int >= 2, got 0"),
        (lambda: moons(10, noise=-1), "noise must be a number >= 0, got -1"),
        (lambda: spiral(10, classes=1), "classes must be an int >= 2, got 1"),
        (lambda: circles(10, factor=1.5), "factor must be a number in"),
        (lambda: get_dataset("nope"), "unknown dataset 'nope'"),
        (lambda: get_dataset("toy", noise=0.1), "does not take noise"),
    ],
)
def test_bad_generator_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_registry_names_every_generator():
    assert set(DATASETS) == {"moons", "circles", "spiral", "xor", "blobs", "toy", "digits"}
    assert get_dataset("spiral", n_samples=30, classes=3, seed=4).X == spiral(30, 3, seed=4).X


# ---- CSV --------------------------------------------------------------------------------------


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_with_header_and_names(tmp_path):
    path = _write(tmp_path, "height,width,kind\n1.5,2,cat\n-3,4e-1,dog\n\n0,0,cat\n")
    d = load_csv(path)
    assert d.X == [[1.5, 2.0], [-3.0, 0.4], [0.0, 0.0]]
    assert d.y == ["cat", "dog", "cat"] and d.classes == ["cat", "dog"]
    assert d.feature_names == ["height", "width"] and d.label_name == "kind"
    assert path.read_text().startswith("height")  # the file is untouched


def test_load_csv_without_header_numeric_labels(tmp_path):
    d = load_csv(_write(tmp_path, "1,2,-1\n3,4,1\n5,6,1\n"))
    assert d.X == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert d.y == [-1, 1, 1] and d.classes == [-1, 1]
    assert d.feature_names == ["x1", "x2"]


def test_load_csv_label_column_by_index_and_name(tmp_path):
    text = "y,a,b\n0,1,2\n1,3,4\n"
    path = _write(tmp_path, text)
    assert load_csv(path, label_column=0).X == [[1.0, 2.0], [3.0, 4.0]]
    assert load_csv(path, label_column="y").y == [0, 1]
    assert load_csv(path, label_column="y").label_column == 0


def test_numeric_labels_sort_numerically(tmp_path):
    d = load_csv(_write(tmp_path, "1,10\n2,9\n3,-2\n"))
    assert d.classes == [-2, 9, 10]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b,c\n1,2,x\n3,oops,y\n", r"line 3, column 2 \('b'\): expected a number, got 'oops'"),
        ("1,2,x\n3,4\n", "line 2: expected 3 fields, got 2"),
        ("a,b,c\n1,nan,x\n", "line 2, column 2 .*finite number, got 'nan'"),
        ("a,b,c\n1,inf,x\n", "line 2, column 2"),
        ("a,b,c\n", "header but no data rows"),
        ("", "holds no rows"),
        ("1\n2\n", "at least 2 columns"),
        ("a,b,c\n1,2,\n", "line 2, column 3: the label is empty"),
    ],
)
def test_bad_csv_names_line_and_column(tmp_path, text, message):
    with pytest.raises(CSVError, match=message):
        load_csv(_write(tmp_path, text))


def test_missing_and_binary_csv(tmp_path):
    with pytest.raises(CSVError, match="no such file"):
        load_csv(tmp_path / "missing.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(CSVError, match="not a UTF-8"):
        load_csv(path)
    with pytest.raises(CSVError, match="no column named 'z'"):
        load_csv(_write(tmp_path, "a,b\n1,2\n"), label_column="z")


def test_read_features_csv_drops_the_label_column(tmp_path):
    assert read_features_csv(_write(tmp_path, "a,b\n1,2\n3,4\n"), 2) == [[1.0, 2.0], [3.0, 4.0]]
    assert read_features_csv(_write(tmp_path, "a,b,c\n1,2,x\n"), 2) == [[1.0, 2.0]]
    assert read_features_csv(_write(tmp_path, "y,a,b\nx,1,2\n"), 2, label_column=0) == [[1.0, 2.0]]
    with pytest.raises(CSVError, match="takes 2 features, but the file has 4 columns"):
        read_features_csv(_write(tmp_path, "1,2,3,4\n"), 2)
    with pytest.raises(CSVError, match="line 3, column 1"):
        read_features_csv(_write(tmp_path, "1,2\n3,4\nx,6\n"), 2)


# ---- split and batches ------------------------------------------------------------------------


def test_train_test_split_partitions_the_rows():
    X = [[float(i)] for i in range(50)]
    y = list(range(50))
    Xtr, Xte, ytr, yte = train_test_split(X, y, 0.2, seed=1)
    assert len(Xte) == 10 and len(Xtr) == 40
    assert sorted(ytr + yte) == y
    assert all(row == [float(label)] for row, label in zip(Xtr + Xte, ytr + yte))
    assert train_test_split(X, y, 0.2, seed=1) == (Xtr, Xte, ytr, yte)
    assert train_test_split(X, y, 0.2, seed=2)[3] != yte
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        train_test_split(X, y, 1.5)
    with pytest.raises(ValueError, match="50 rows but y has 3"):
        train_test_split(X, y[:3])


def test_minibatches_cover_every_row_once():
    X = [[float(i)] for i in range(23)]
    y = list(range(23))
    batches = list(minibatches(X, y, batch_size=5, seed=0))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(label for _, yb in batches for label in yb) == y
    assert all(row == [float(t)] for xb, yb in batches for row, t in zip(xb, yb))
    full = list(minibatches(X, y, batch_size=0, shuffle=False))
    assert full == [(X, y)]
    rng = random.Random(0)
    first = [yb for _, yb in minibatches(X, y, 5, seed=rng)]
    second = [yb for _, yb in minibatches(X, y, 5, seed=rng)]
    assert first != second  # a shared Random gives a new order every epoch
    with pytest.raises(ValueError, match="batch_size must be an int >= 0"):
        list(minibatches(X, y, -1))


def test_dataset_checks_lengths():
    with pytest.raises(ValueError, match="2 rows but 1 label$"):
        Dataset([[1.0], [2.0]], [0])


def test_standardize_scales_each_column():
    X = [[1.0, 5.0, 100.0], [3.0, 5.0, 300.0], [5.0, 5.0, 200.0]]
    Z, mean, std = standardize(X)
    assert mean == pytest.approx([3.0, 5.0, 200.0])
    assert std == pytest.approx([math.sqrt(8 / 3), 1.0, math.sqrt(20000 / 3)])  # constant: 1
    for j in range(3):
        column = [row[j] for row in Z]
        assert sum(column) == pytest.approx(0.0, abs=1e-12)
    assert Z[0][1] == 0.0


def test_get_dataset_reads_a_csv_path(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,no\n3,4,yes\n")
    assert get_dataset(str(path)).classes == ["no", "yes"]


def test_read_features_csv_checks_names_when_given(tmp_path):
    names = {"feature_names": ["a", "b"], "label_name": "y"}
    assert read_features_csv(_write(tmp_path, "a,b\n1,2\n"), 2, **names) == [[1.0, 2.0]]
    assert read_features_csv(_write(tmp_path, "1,2\n"), 2, **names) == [[1.0, 2.0]]
    assert read_features_csv(_write(tmp_path, "a,b,y\n1,2,x\n"), 2, **names) == [[1.0, 2.0]]
    assert read_features_csv(_write(tmp_path, "y,a,b\nx,1,2\n"), 2, label_column=0, **names) == [
        [1.0, 2.0]
    ]
    for text in ("a,b,c\n1,2,3\n", "b,a\n1,2\n", "A,B\n1,2\n", "y,a,b\nx,1,2\n"):
        with pytest.raises(CSVError, match="the model was trained on a, b") as info:
            read_features_csv(_write(tmp_path, text), 2, **names)
        assert f"the file's columns are {', '.join(text.split(chr(10))[0].split(','))}" in str(
            info.value
        )
    with pytest.raises(CSVError, match=r"takes 2 features \(a, b\), but the file has 3 columns$"):
        read_features_csv(_write(tmp_path, "1,2,3\n"), 2, label_column=None, **names)


def test_a_json_file_is_not_read_as_a_csv(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('{\n  "format": "backprop-model",\n  "version": 1\n}\n')
    with pytest.raises(CSVError, match="this looks like a saved backprop model, not a CSV file"):
        load_csv(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(CSVError, match="this looks like a JSON file, not a CSV file"):
        read_features_csv(path, 2)


def test_messages_count_in_good_grammar(tmp_path):
    with pytest.raises(CSVError, match="takes 1 feature, but the file has 3 columns"):
        read_features_csv(_write(tmp_path, "1,2,3\n"), 1)
    with pytest.raises(CSVError, match="takes 2 features, but the file has 1 column$"):
        read_features_csv(_write(tmp_path, "1\n"), 2)
    assert repr(Dataset([[1.0]], [0])) == "Dataset(1 row, 1 feature, classes [0])"
    assert [plural(1, "class"), plural(3, "class"), plural(2, "epoch")] == [
        "1 class",
        "3 classes",
        "2 epochs",
    ]


# ---- shipped data ------------------------------------------------------------------------------


def test_names_are_the_makemore_list():
    words = names()
    assert len(words) == 32_033  # `wc -l` says 32,032: the last line has no newline
    assert words[:3] == ["emma", "olivia", "ava"] and words[-1] == "zzyzx"
    assert all(w and set(w) <= set("abcdefghijklmnopqrstuvwxyz") for w in words)
    words.append("changed")  # each call returns a new list
    assert len(names()) == 32_033


def test_shipped_files_carry_their_licences():
    from importlib.resources import files

    folder = files("backprop").joinpath("datasets")
    assert "Copyright (c) 2022 Andrej Karpathy" in folder.joinpath("names.LICENSE.txt").read_text()
    attribution = folder.joinpath("digits.LICENSE.txt").read_text()
    assert "CC BY 4.0" in attribution and "Alpaydin" in attribution and "Kaynak" in attribution


def test_digits_counts_ranges_and_shape():
    everything = digits("all")
    assert len(everything) == 1797 and everything.n_features == 64
    assert everything.classes == list(range(10)) and set(everything.y) == set(range(10))
    assert all(len(row) == 64 for row in everything.X)
    assert {v for row in everything.X for v in row} <= {float(k) for k in range(17)}
    assert min(min(r) for r in everything.X) == 0 and max(max(r) for r in everything.X) == 16
    assert everything.image_shape == (8, 8) and digits("test").image_shape == (8, 8)
    assert (
        everything.feature_names[:2] == ["r1c1", "r1c2"] and everything.feature_names[-1] == "r8c8"
    )
    assert get_dataset("digits", n_samples=None, noise=None, seed=5).X == digits("train").X


DIGITS_TEST_SHA256 = "ac135ad1989a1a41fae4c1648398728a754c2b6cd2a870fed8557d9afd21bada"


def test_digits_split_is_stratified_disjoint_and_fixed():
    train, test, everything = digits("train"), digits("test"), digits()
    assert everything.X == train.X  # the default split is "train"
    full = digits("all")
    assert (len(train), len(test)) == (1347, 450)
    for k in range(10):
        n = full.y.count(k)
        assert test.y.count(k) == round(0.25 * n) and train.y.count(k) == n - round(0.25 * n)
    rows = sorted(map(tuple, train.X + test.X))
    assert rows == sorted(map(tuple, full.X))  # together they are the whole file
    # The same split in a fresh interpreter with another hash seed (no dependence on hash()).
    import hashlib
    import os
    import subprocess
    import sys

    code = "import hashlib;from backprop.data import digits;d=digits('test');"
    code += "print(hashlib.sha256(repr((d.X,d.y)).encode()).hexdigest())"
    here = hashlib.sha256(repr((test.X, test.y)).encode()).hexdigest()
    assert here == DIGITS_TEST_SHA256  # the documented split never changes
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == here, out.stderr


@pytest.mark.parametrize("bad", ["Train", "validation", "", None, 0])
def test_digits_bad_split(bad):
    with pytest.raises(ValueError, match=r"split must be 'train', 'test' or 'all', got"):
        digits(bad)


# ---- hostile CSV files (issue 17, item 9) -------------------------------------------------------


def test_standardize_a_column_whose_square_overflows():
    # 2e154 ** 2 overflows a float: this raised OverflowError before
    X = [[1.0, 2e154], [2.0, 3.0], [3.0, 1e154], [4.0, 5.0]]
    Z, mean, std = standardize(X)
    assert all(math.isfinite(v) for row in Z for v in row) and all(map(math.isfinite, mean + std))
    assert mean[1] == pytest.approx(7.5e153) and std[1] == pytest.approx(8.2915619758885e153)
    col = [row[1] for row in Z]
    assert sum(col) / 4 == pytest.approx(0.0, abs=1e-12)
    assert sum(v * v for v in col) / 4 == pytest.approx(1.0)
    assert standardize([[1.0], [3.0]]) == ([[-1.0], [1.0]], [2.0], [1.0])  # unchanged path
    Z, mean, std = standardize([[1.7e308], [-1.7e308]])
    assert Z == [[1.0], [-1.0]] and mean == [0.0] and std == [1.7e308]
    with pytest.raises(ValueError, match="column 1 holds values up to 1.7e.308, too large"):
        standardize([[1.7e308], [-1.7e308], [-1.7e308]])


def test_a_huge_line_is_refused_before_it_is_read(tmp_path):
    from backprop import data

    path = tmp_path / "commas.csv"
    path.write_text("," * (data.MAX_CSV_LINE_CHARS + 10) + "\n1,2\n")
    with pytest.raises(CSVError, match=r"line 1: longer than 4,194,304 characters .*MAX_CSV_LINE"):
        load_csv(path)
    path.write_text("a,b\n1,2\n")  # a file of lines at the limit reads as before
    assert load_csv(path).X == [[1.0]]


def test_csv_width_and_cell_limits(tmp_path, monkeypatch):
    from backprop import data

    monkeypatch.setattr(data, "MAX_CSV_COLUMNS", 5)
    path = _write(tmp_path, "1,2,3,4,0\n" + "1," * 5 + "0\n")
    with pytest.raises(CSVError, match=r"line 2: 6 fields, over the limit of 5 columns"):
        load_csv(path)
    monkeypatch.setattr(data, "MAX_CSV_COLUMNS", 100)
    monkeypatch.setattr(data, "MAX_CSV_CELLS", 12)
    with pytest.raises(CSVError, match=r"line 3: the file holds over 12 fields .*MAX_CSV_CELLS"):
        load_csv(_write(tmp_path, "1,2,3,4,0\n" * 4))


def test_too_many_distinct_labels_is_one_line(tmp_path):
    rows = "".join(f"{i % 7},{i * 0.5},c{i}\n" for i in range(2000))
    path = _write(tmp_path, "a,b,label\n" + rows)
    with pytest.raises(CSVError) as info:
        load_csv(path)
    message = str(info.value)
    assert "line 1002: over 1,000 distinct labels in column 3 ('label')" in message
    assert "MAX_CLASSES" in message and "\n" not in message and len(message) < 300
    assert len(load_csv(path, max_classes=2000).classes) == 2000


def test_wide_header_errors_stay_short(tmp_path):
    header = ",".join(f"feature{i}" for i in range(20_000))
    path = _write(tmp_path, header + "\n" + ",".join(["1"] * 20_000) + "\n")
    with pytest.raises(CSVError) as info:
        read_features_csv(path, 2, feature_names=["a", "b"])
    message = str(info.value)
    assert len(message) < 400 and "feature0, feature1" in message and "(20,000 in all)" in message
    with pytest.raises(CSVError) as info:
        load_csv(path, label_column="nope")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("header", ["[m],[kg],label", "{a},b,label", '"[1, 2]",3,label'])
def test_a_csv_whose_first_cell_starts_with_a_bracket_is_read(tmp_path, header):
    d = load_csv(_write(tmp_path, f"{header}\n1,2,0\n3,4,1\n"))
    assert d.X == [[1.0, 2.0], [3.0, 4.0]] and d.y == [0, 1]


def test_digits_X_is_a_list_that_says_it_holds_images():
    import copy
    import pickle

    from backprop.data import ImageRows

    X, y = digits("train")
    assert isinstance(X, list) and isinstance(X, ImageRows) and X.image_shape == (8, 8)
    assert X == digits("train").X and len(X) == len(y) == 1347 and X[0] == list(X[0])
    assert X[:10].image_shape == (8, 8) and X[:10] == list(X)[:10]
    for again in (pickle.loads(pickle.dumps(X)), copy.deepcopy(X), copy.copy(X)):
        assert type(again) is ImageRows and again.image_shape == (8, 8) and again == X
    assert Dataset([[1.0, 2.0]], [0], image_shape=(1, 2)).X.image_shape == (1, 2)
    assert type(Dataset([[1.0, 2.0]], [0]).X) is list


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: moons(n_samples=10**9), "n_samples must be at most 1,000,000"),
        (lambda: circles(10**9), "backprop.data.MAX_SAMPLES"),
        (lambda: xor(10**5000), "got an int of 16,610 bits"),
        (lambda: spiral(10**7), "n_samples must be at most 1,000,000"),
        (lambda: spiral(100, classes=10**6), "classes must be at most 1,000"),
        (lambda: blobs(100, centers=10**6), "centers must be at most 1,000"),
        (lambda: get_dataset("blobs", n_samples=10**12), "backprop.data.MAX_SAMPLES"),
    ],
)
def test_generators_refuse_absurd_sizes_at_once_in_one_line(call, message):
    """A billion rows took 44 s and ended in a MemoryError; now refused before any work."""
    with pytest.raises(ValueError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_generators_make_as_many_rows_as_the_limit_allows():
    from backprop.data import MAX_CLASSES, MAX_SAMPLES

    assert MAX_SAMPLES == 1_000_000 and MAX_CLASSES == 1_000
    assert len(blobs(MAX_CLASSES, centers=MAX_CLASSES).classes) == MAX_CLASSES
