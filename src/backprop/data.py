"""Datasets: seeded 2-D generators (moons, circles, spiral, xor, blobs), the notebook's toy set,
two real data sets shipped with the package (``names()``, ``digits()``), CSV loading, a
train/test split and a minibatch iterator. Pure Python, nothing downloaded.

A generator makes at most ``MAX_SAMPLES`` (1,000,000) rows and ``MAX_CLASSES`` (1,000)
classes; a larger request is a one-line ValueError before any work.

Every loader returns a ``Dataset``, which unpacks like scikit-learn's ``(X, y)``::

    X, y = moons(100, noise=0.1, seed=1)   # X: 100 [x1, x2] rows, y: 100 labels 0 or 1
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import random
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._optional import shown
from .datasets import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION, digits_rows, names  # noqa: F401

__all__ = [
    "Dataset",
    "ImageRows",
    "moons",
    "circles",
    "spiral",
    "xor",
    "blobs",
    "toy",
    "names",
    "digits",
    "load_csv",
    "read_features_csv",
    "train_test_split",
    "minibatches",
    "standardize",
    "sorted_classes",
    "DATASETS",
    "get_dataset",
    "CSVError",
    "MAX_CSV_LINE_CHARS",
    "MAX_CSV_COLUMNS",
    "MAX_CSV_CELLS",
    "MAX_CLASSES",
    "MAX_SAMPLES",
]


class CSVError(ValueError):
    """A malformed CSV file; the message names the file, line and column."""


def sorted_classes(labels: Sequence[Hashable]) -> list:
    """The distinct labels in order: numerically if all are numbers, else as strings."""
    distinct = list(dict.fromkeys(labels))
    if all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in distinct):
        return sorted(distinct)
    return sorted(distinct, key=str)


class ImageRows(list):
    """Rows that are images: a list of rows, as any X, that also says their ``image_shape``
    (rows, columns). ``digits()`` returns its X as one, so that ``X, y = digits("train")`` then
    ``fit(model, X, y)`` knows it trains on images (its pixels are scaled while training, see
    fit). A slice is ImageRows too; anything else a list does gives plain lists."""

    def __init__(self, rows=(), image_shape: tuple[int, int] | None = None) -> None:
        super().__init__(rows)
        self.image_shape = image_shape

    def __getitem__(self, index):
        got = super().__getitem__(index)
        return ImageRows(got, self.image_shape) if isinstance(index, slice) else got

    def __reduce_ex__(self, protocol):  # pickle and copy keep the shape
        return ImageRows, (list(self), self.image_shape)


@dataclass
class Dataset:
    """Feature rows ``X``, one label per row ``y``, and the label vocabulary ``classes``.

    Unpacks as ``X, y = dataset``. ``classes`` lists the distinct labels in order; training
    maps the first to the negative class (-1 for hinge, 0 for cross-entropy). With an
    ``image_shape``, ``X`` is ImageRows: a list that carries the shape along when unpacked.
    """

    X: list[list[float]]
    y: list
    classes: list = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    name: str = ""
    label_name: str = "label"
    label_column: int | None = None  # where the labels were in a CSV file
    image_shape: tuple[int, int] | None = None  # (rows, columns) when each row is an image

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise ValueError(
                f"dataset has {plural(len(self.X), 'row')} but {plural(len(self.y), 'label')}"
            )
        if not self.classes:
            self.classes = sorted_classes(self.y)
        if self.image_shape is not None and not isinstance(self.X, ImageRows):
            self.X = ImageRows(self.X, self.image_shape)
        if not self.feature_names and self.X:
            self.feature_names = [f"x{i + 1}" for i in range(len(self.X[0]))]

    def __iter__(self) -> Iterator:
        yield self.X
        yield self.y

    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __repr__(self) -> str:
        name = f"{self.name}: " if self.name else ""
        return (
            f"Dataset({name}{plural(len(self.X), 'row')}, {plural(self.n_features, 'feature')}, "
            f"classes {self.classes!r})"
        )


# The largest data set a generator makes: a million rows of two floats (about 200 MB of Python
# lists), far more than a scalar engine trains on in a day.
MAX_SAMPLES = 1_000_000


def _check_count(name: str, n: object, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {shown(n)}")
    if maximum is not None and n > maximum:
        limit = "MAX_SAMPLES" if name == "n_samples" else "MAX_CLASSES"
        raise ValueError(
            f"{name} must be at most {maximum:,} (backprop.data.{limit}), got {shown(n)}"
        )
    return n


def _check_samples(n: object) -> int:
    return _check_count("n_samples", n, 2, MAX_SAMPLES)


def _check_noise(noise: object) -> float:
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < math.inf:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    return float(noise)


def _rng(seed: int | None) -> random.Random:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}: {seed!r}")
    return random.Random(seed)


def _finish(
    rng: random.Random, X: list[list[float]], y: list, noise: float, name: str, **kw
) -> Dataset:
    """Add gaussian noise to every coordinate and shuffle the rows."""
    X = [[v + rng.gauss(0.0, noise) if noise else v for v in row] for row in X]
    order = list(range(len(X)))
    rng.shuffle(order)
    return Dataset([X[i] for i in order], [y[i] for i in order], name=name, **kw)


def _linspace(start: float, stop: float, n: int) -> list[float]:
    if n == 1:
        return [start]
    return [start + (stop - start) * i / (n - 1) for i in range(n)]


def moons(n_samples: int = 100, noise: float = 0.1, seed: int | None = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn's make_moons); labels 0 and 1."""
    _check_samples(n_samples)
    noise, rng = _check_noise(noise), _rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    X = [[math.cos(t), math.sin(t)] for t in _linspace(0, math.pi, n_out)]
    X += [[1 - math.cos(t), 0.5 - math.sin(t)] for t in _linspace(0, math.pi, n_in)]
    return _finish(rng, X, [0] * n_out + [1] * n_in, noise, "moons", classes=[0, 1])


def circles(
    n_samples: int = 100, noise: float = 0.05, factor: float = 0.5, seed: int | None = 0
) -> Dataset:
    """A small circle (label 1) inside a large one (label 0), as scikit-learn's make_circles."""
    _check_samples(n_samples)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0 < factor < 1:
        raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
    noise, rng = _check_noise(noise), _rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    ring = [2 * math.pi * i / n_out for i in range(n_out)]
    inner = [2 * math.pi * i / n_in for i in range(n_in)]
    X = [[math.cos(t), math.sin(t)] for t in ring]
    X += [[factor * math.cos(t), factor * math.sin(t)] for t in inner]
    return _finish(rng, X, [0] * n_out + [1] * n_in, noise, "circles", classes=[0, 1])


def spiral(
    n_samples: int = 150, classes: int = 3, noise: float = 0.2, seed: int | None = 0
) -> Dataset:
    """``classes`` interleaved spiral arms (CS231n's spiral data); labels 0 .. classes-1.

    Arm j has radius r going 0 -> 1 and angle 4j + 4r plus gaussian noise of std ``noise``
    (in radians), so each arm turns about 230 degrees.
    """
    _check_samples(n_samples)
    _check_count("classes", classes, 2, MAX_CLASSES)
    if n_samples < classes:
        raise ValueError(f"n_samples ({n_samples}) must be at least classes ({classes})")
    noise, rng = _check_noise(noise), _rng(seed)
    X: list[list[float]] = []
    y: list[int] = []
    for j in range(classes):
        n = n_samples // classes + (1 if j < n_samples % classes else 0)
        for r in _linspace(0.0, 1.0, n):
            t = 4 * j + 4 * r + rng.gauss(0.0, noise)
            X.append([r * math.sin(t), r * math.cos(t)])
            y.append(j)
    return _finish(rng, X, y, 0.0, "spiral", classes=list(range(classes)))


def xor(n_samples: int = 100, noise: float = 0.0, seed: int | None = 0) -> Dataset:
    """Points in [-1, 1]^2 away from the axes; label 1 where x1 * x2 > 0 (same-sign quadrants)."""
    _check_samples(n_samples)
    noise, rng = _check_noise(noise), _rng(seed)
    X, y = [], []
    for _ in range(n_samples):
        # a margin of 0.1 around the axes, as TensorFlow Playground's xor has
        row = [rng.choice((-1, 1)) * rng.uniform(0.1, 1.0) for _ in range(2)]
        X.append(row)
        y.append(1 if row[0] * row[1] > 0 else 0)
    return _finish(rng, X, y, noise, "xor", classes=[0, 1])


def blobs(
    n_samples: int = 100,
    centers: int = 3,
    std: float = 0.5,
    box: float = 3.0,
    seed: int | None = 0,
) -> Dataset:
    """Gaussian blobs around ``centers`` random centres in [-box, box]^2; labels 0 .. centers-1."""
    _check_samples(n_samples)
    _check_count("centers", centers, 2, MAX_CLASSES)
    if isinstance(box, bool) or not isinstance(box, numbers.Real) or not 0 < box < math.inf:
        raise ValueError(f"box must be a positive number, got {box!r}")
    std, rng = _check_noise(std), _rng(seed)
    middles = [[rng.uniform(-box, box), rng.uniform(-box, box)] for _ in range(centers)]
    y = [i % centers for i in range(n_samples)]
    X = [list(middles[c]) for c in y]
    return _finish(rng, X, y, std, "blobs", classes=list(range(centers)))


def toy() -> Dataset:
    """The notebook's 4 points: three inputs each and a target of -1 or +1."""
    X = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    y = [1.0, -1.0, -1.0, 1.0]
    return Dataset(X, y, classes=[-1.0, 1.0], name="toy")


def digits(split: str = "train") -> Dataset:
    """The 8x8 handwritten digits: 64 pixel features from 0 to 16 (row by row), classes 0-9.

    These are the 1,797 images of the UCI "Optical Recognition of Handwritten Digits" test
    set (E. Alpaydin, C. Kaynak, 1998; CC BY 4.0, see ``backprop/datasets/digits.LICENSE.txt``),
    the images scikit-learn ships as ``load_digits()``. Nothing is downloaded.

    ``split`` is ``"train"`` (1,347 rows), ``"test"`` (450 rows) or ``"all"`` (1,797, file
    order). The split is stratified and fixed: within each class, rows are ordered by the
    SHA-256 of ``"0:<row number>"`` and the first round(25%) go to the test set, so every
    machine gets the same split. Rows keep the file's order within a split. The Dataset's
    ``image_shape`` is ``(8, 8)``, and its X is ImageRows of that shape, so ``X, y =
    digits("train")`` still tells fit() that the rows are images.
    """
    rows = digits_rows(split)
    return Dataset(
        [[float(p) for p in pixels] for pixels, _ in rows],
        [label for _, label in rows],
        classes=list(range(10)),
        feature_names=[f"r{r + 1}c{c + 1}" for r in range(8) for c in range(8)],
        name="digits" if split == "all" else f"digits {split}",
        label_name="digit",
        image_shape=(8, 8),
    )


DATASETS: dict[str, Callable[..., Dataset]] = {
    "moons": moons,
    "circles": circles,
    "spiral": spiral,
    "xor": xor,
    "blobs": blobs,
    "toy": toy,
    "digits": digits,
}


def get_dataset(name: str, **options) -> Dataset:
    """A registered dataset by name (``DATASETS``), or ``load_csv`` for a path ending in .csv.

    Options a generator does not take (such as ``noise`` for ``toy``) are an error, except
    ``seed`` for a fixed data set (toy, digits), which has nothing to seed and ignores it.
    """
    if name in DATASETS:
        make = DATASETS[name]
        import inspect

        accepted = inspect.signature(make).parameters
        if "seed" not in accepted:
            options = {k: v for k, v in options.items() if k != "seed"}
        unknown = [k for k, v in options.items() if v is not None and k not in accepted]
        if unknown:
            raise ValueError(f"dataset {name!r} does not take {', '.join(unknown)}")
        return make(**{k: v for k, v in options.items() if v is not None})
    if name.lower().endswith(".csv") or Path(name).exists():
        return load_csv(name)
    raise ValueError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} or give a .csv path"
    )


# ---- CSV --------------------------------------------------------------------------------------


def _parse_float(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x


def _parse_label(text: str):
    """'1' -> 1, '-1.0' -> -1.0, 'cat' -> 'cat' (whitespace stripped)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    x = _parse_float(text)
    return x if x is not None and math.isfinite(x) else text


# Limits on an untrusted CSV file, checked while it is read (before the rows are kept), so a
# hostile file costs bounded memory and gets a one-line CSVError that names the limit.
MAX_CSV_LINE_CHARS = 4 * 1024 * 1024  # one physical line (100,000 numbers of 40 characters)
MAX_CSV_COLUMNS = 100_000  # fields in a row
MAX_CSV_CELLS = 10_000_000  # fields in the whole file (about 1 GB of Python strings and floats)
MAX_CLASSES = 1_000  # distinct labels that load_csv accepts; classes of spiral and blobs


def _lines(f, path: Path) -> Iterator[str]:
    """The file's lines, each read with a bounded buffer: a line over MAX_CSV_LINE_CHARS is a
    CSVError before it is held in memory."""
    number = 0
    while True:
        line = f.readline(MAX_CSV_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_CSV_LINE_CHARS and not line.endswith("\n"):
            raise CSVError(
                f"{path} line {number}: longer than {MAX_CSV_LINE_CHARS:,} characters "
                f"(the limit, backprop.data.MAX_CSV_LINE_CHARS)"
            )
        yield line


def _bounded_rows(reader, path: Path) -> list[tuple[int, list[str]]]:
    rows, cells = [], 0
    for row in reader:
        if len(row) > MAX_CSV_COLUMNS:
            raise CSVError(
                f"{path} line {reader.line_num}: {len(row):,} fields, over the limit of "
                f"{MAX_CSV_COLUMNS:,} columns (backprop.data.MAX_CSV_COLUMNS)"
            )
        cells += len(row)
        if cells > MAX_CSV_CELLS:
            raise CSVError(
                f"{path} line {reader.line_num}: the file holds over {MAX_CSV_CELLS:,} fields "
                f"(the limit, backprop.data.MAX_CSV_CELLS)"
            )
        if any(c.strip() for c in row):
            rows.append((reader.line_num, [c.strip() for c in row]))
    return rows


def _read_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers, cells stripped."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = _bounded_rows(csv.reader(_lines(f, path)), path)
    except FileNotFoundError:
        raise CSVError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CSVError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as e:
        raise CSVError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise CSVError(f"{path}: {e}") from None
    if rows and rows[0][1][0].startswith(("{", "[")):
        _refuse_json(path)
    return rows


def _refuse_json(path: Path) -> None:
    """A model or other JSON file given as the data is refused; a CSV whose first cell merely
    starts with '{' or '[' (say a header '[m],y') is not, since it does not parse as JSON."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if '"backprop-model"' in text:
        raise CSVError(f"{path}: this looks like a saved backprop model, not a CSV file")
    try:
        json.loads(text)
    except ValueError:
        return
    raise CSVError(f"{path}: this looks like a JSON file, not a CSV file")


def _some(names: Sequence[str], limit: int = 8) -> str:
    """'a, b, c' or, past ``limit`` names, 'a, b, ..., z (1,000 in all)', for one-line errors."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[: limit - 1])}, ..., {names[-1]} ({len(names):,} in all)"


def _is_header(row: list[str], feature_columns: list[int]) -> bool:
    return any(_parse_float(row[c]) is None for c in feature_columns if c < len(row))


def load_csv(
    path: str | Path,
    label_column: int | str = -1,
    header: bool | None = None,
    max_classes: int = MAX_CLASSES,
) -> Dataset:
    """Read numeric feature columns and one label column from a CSV file.

    ``label_column`` is an index (default -1, the last) or a header name. ``header=None``
    detects a header: the first row is one if any of its feature cells is not a number.
    Labels may be anything (0/1, -1/1, names). A malformed file raises ``CSVError`` naming
    the line and column.

    Limits, for files from anywhere: a line of at most ``MAX_CSV_LINE_CHARS`` characters,
    ``MAX_CSV_COLUMNS`` columns and ``MAX_CSV_CELLS`` fields in all, and at most
    ``max_classes`` distinct label texts (``MAX_CLASSES``, 1,000). Each is checked as the
    file is read, and one over it is a ``CSVError`` naming the limit.
    """
    rows = _read_rows(path)
    if not rows:
        raise CSVError(f"{path}: the file holds no rows")
    first_line, first = rows[0]
    width = len(first)
    if width < 2:
        raise CSVError(
            f"{path} line {first_line}: need at least 2 columns (features and a label), got {width}"
        )
    if isinstance(label_column, str):
        if label_column not in first:
            raise CSVError(
                f"{path}: no column named {label_column!r} in the header ({_some(first)})"
            )
        label_index = first.index(label_column)
        header = True
    else:
        if isinstance(label_column, bool) or not isinstance(label_column, int):
            raise TypeError(f"label_column must be an int or a name, got {label_column!r}")
        if not -width <= label_column < width:
            raise CSVError(f"{path}: label column {label_column} is out of range for {width}")
        label_index = label_column % width
    feature_columns = [c for c in range(width) if c != label_index]
    if header is None:
        header = _is_header(first, feature_columns)
    if header:
        names = first
        rows = rows[1:]
        if not rows:
            raise CSVError(f"{path}: the file has a header but no data rows")
    else:
        names = [f"x{i + 1}" for i in range(width)]
        names[label_index] = "label"
    X: list[list[float]] = []
    y: list = []
    distinct: set[str] = set()
    for line, row in rows:
        features = _features(path, line, row, width, feature_columns, names)
        if row[label_index] == "":
            raise CSVError(f"{path} line {line}, column {label_index + 1}: the label is empty")
        distinct.add(row[label_index])
        if len(distinct) > max_classes:
            raise CSVError(
                f"{path} line {line}: over {max_classes:,} distinct labels in column "
                f"{label_index + 1} ({names[label_index]!r}), the limit (max_classes, "
                f"backprop.data.MAX_CLASSES); is that column really the class label?"
            )
        X.append(features)
        y.append(row[label_index])
    labels = [_parse_label(t) for t in y]
    if not all(isinstance(v, numbers.Real) for v in labels):
        labels = y  # mixed numbers and names: keep every label as text
    return Dataset(
        X,
        labels,
        feature_names=[names[c] for c in feature_columns],
        name=Path(path).name,
        label_name=names[label_index],
        label_column=label_index,
    )


def _features(
    path: str | Path, line: int, row: list[str], width: int, columns: list[int], names: list
) -> list[float]:
    """The numbers in a row's feature columns, or a CSVError naming the line and column."""
    if len(row) != width:
        raise CSVError(f"{path} line {line}: expected {plural(width, 'field')}, got {len(row)}")
    features = []
    for c in columns:
        x = _parse_float(row[c])
        if x is None or not math.isfinite(x):
            what = "a finite number" if x is not None else "a number"
            raise CSVError(
                f"{path} line {line}, column {c + 1} ({names[c]!r}): "
                f"expected {what}, got {row[c]!r}"
            )
        features.append(x)
    return features


def read_features_csv(
    path: str | Path,
    n_features: int,
    label_column: int | None = -1,
    feature_names: Sequence[str] | None = None,
    label_name: str = "label",
) -> list[list[float]]:
    """Rows of ``n_features`` numbers for prediction; a header row is skipped.

    A file with one extra column (the training file itself, say) has its ``label_column``
    dropped; ``label_column=None`` allows no extra column. With ``feature_names`` (the
    training columns' names, which ``backprop train`` keeps in the model file) a header must
    name exactly those columns, in order, or those plus ``label_name`` where the label column
    was; a file without a header must have the right width.
    """
    rows = _read_rows(path)
    if not rows:
        raise CSVError(f"{path}: the file holds no rows")
    first_line, first = rows[0]
    width = len(first)
    names_known = feature_names is not None
    expected = list(feature_names) if names_known else None
    if width == n_features:
        columns = list(range(width))
    elif width == n_features + 1 and label_column is not None:
        drop = label_column % width
        columns = [c for c in range(width) if c != drop]
        if expected is not None:
            expected.insert(drop, label_name)
    else:
        what = f" ({_some(feature_names)})" if names_known else ""
        theirs = f" ({_some(first)})" if _is_header(first, list(range(width))) else ""
        raise CSVError(
            f"{path} line {first_line}: the model takes {plural(n_features, 'feature')}{what}, "
            f"but the file has {plural(width, 'column')}{theirs}"
        )
    if _is_header(first, columns):
        names = first
        rows = rows[1:]
        if expected is not None and names != expected:
            raise CSVError(
                f"{path}: the file's columns are {_some(names)}, but the model was trained "
                f"on {_some(feature_names)}"
                + (f" (and the label {label_name})" if len(expected) > n_features else "")
                + "; rename the header, or leave it out"
            )
    else:
        names = [f"column {c + 1}" for c in range(width)]
    X = []
    for line, row in rows:
        X.append(_features(path, line, row, width, columns, names))
    if not X:
        raise CSVError(f"{path}: no data rows")
    return X


def plural(n: int, word: str) -> str:
    """'1 column', '2 columns', '3 classes'."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "x", "sh", "tch")) else f"{n} {word}s"


# ---- splitting and batching --------------------------------------------------------------------


def train_test_split(
    X: Sequence, y: Sequence, test_fraction: float = 0.2, seed: int | None = 0
) -> tuple[list, list, list, list]:
    """Shuffle and split into (X_train, X_test, y_train, y_test); the test part gets
    round(test_fraction * n) rows, at least 1 and leaving at least 1 for training."""
    if len(X) != len(y):
        raise ValueError(f"X has {plural(len(X), 'row')} but y has {plural(len(y), 'label')}")
    if len(X) < 2:
        raise ValueError(f"need at least 2 rows to split, got {len(X)}")
    f = test_fraction
    if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 < f < 1:
        raise ValueError(f"test_fraction must be a number between 0 and 1, got {f!r}")
    order = list(range(len(X)))
    _rng(seed).shuffle(order)
    n_test = min(len(X) - 1, max(1, round(f * len(X))))
    test, train = order[:n_test], order[n_test:]
    return [X[i] for i in train], [X[i] for i in test], [y[i] for i in train], [y[i] for i in test]


def standardize(
    X: Sequence[Sequence[float]],
) -> tuple[list[list[float]], list[float], list[float]]:
    """(X scaled to mean 0 and std 1 per column, the means, the stds); a constant column
    keeps std 1 so that it is only shifted.

    A column of huge values (say 2e154, whose square overflows) is measured in units of its
    largest magnitude instead; one whose mean or std is still not a finite float (values near
    1.8e308) is a ``ValueError`` naming the column.
    """
    if not X:
        raise ValueError("cannot standardize zero rows")
    n, width = len(X), len(X[0])
    mean, std = [], []
    for j in range(width):
        try:
            m = sum(row[j] for row in X) / n
            s = math.sqrt(sum((row[j] - m) ** 2 for row in X) / n)
        except OverflowError:
            m = s = math.inf
        if not (math.isfinite(m) and math.isfinite(s)):
            m, s = _scaled_moments([row[j] for row in X], j)
        mean.append(m)
        std.append(s if s > 0 else 1.0)
    return [[(row[j] - mean[j]) / std[j] for j in range(width)] for row in X], mean, std


def _scaled_moments(column: list[float], j: int) -> tuple[float, float]:
    """The mean and std of a column too large to square, computed on column / max|column|."""
    top = max(abs(v) for v in column)
    if not math.isfinite(top):
        raise ValueError(f"column {j + 1} holds {top!r}: cannot standardize it")
    scaled = [v / top for v in column]
    m = math.fsum(scaled) / len(scaled)
    s = math.sqrt(math.fsum((v - m) ** 2 for v in scaled) / len(scaled))
    mean, std = m * top, s * top
    if not (math.isfinite(mean) and math.isfinite(std)) or not all(
        math.isfinite((v - mean) / std) for v in column if std > 0
    ):
        raise ValueError(
            f"column {j + 1} holds values up to {top:g}, too large to standardize "
            f"(its spread overflows a float); rescale that column"
        )
    return mean, std


def minibatches(
    X: Sequence,
    y: Sequence,
    batch_size: int = 0,
    shuffle: bool = True,
    seed: int | random.Random | None = 0,
) -> Iterator[tuple[list, list]]:
    """Yield (X_batch, y_batch) pairs covering every row once; batch_size 0 means one full batch.

    Pass a ``random.Random`` as ``seed`` to get a new order every epoch from one stream.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {plural(len(X), 'row')} but y has {plural(len(y), 'label')}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size must be an int >= 0 (0 = full batch), got {batch_size!r}")
    order = list(range(len(X)))
    if shuffle:
        rng = seed if isinstance(seed, random.Random) else _rng(seed)
        rng.shuffle(order)
    size = batch_size or len(X)
    for start in range(0, len(X), size):
        chunk = order[start : start + size]
        yield [X[i] for i in chunk], [y[i] for i in chunk]
