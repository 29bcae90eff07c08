"""Data files shipped with the package, and their loaders (re-exported by ``backprop.data``).

Each file has its licence beside it: ``names.LICENSE.txt`` (MIT, the makemore names) and
``digits.LICENSE.txt`` (CC BY 4.0, the UCI optical digits). They are read through
importlib.resources, so they work from a wheel too.
"""

from __future__ import annotations

import functools
import gzip
import hashlib

__all__ = ["names", "digits", "DIGITS_TEST_FRACTION", "DIGITS_SPLIT_SEED"]


DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def _shipped(name: str):
    """A file in backprop/datasets (read through importlib.resources, so from a wheel too)."""
    from importlib.resources import files

    return files(__name__).joinpath(name)


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    text = _shipped("names.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def names() -> list[str]:
    """The 32,033 names of Karpathy's makemore (lower case a-z), as microgpt trains on them
    (``wc -l`` says 32,032: the file's last line has no newline). Shipped with the package
    beside its MIT licence (``backprop/datasets/names.LICENSE.txt``); a new list each call."""
    return list(_names())


@functools.lru_cache(maxsize=1)
def _digits_rows() -> tuple[tuple[tuple[int, ...], int], ...]:
    raw = gzip.decompress(_shipped("digits.csv.gz").read_bytes()).decode("ascii")
    rows = []
    for line in raw.splitlines():
        if line.strip():
            *pixels, label = (int(c) for c in line.split(","))
            rows.append((tuple(pixels), label))
    return tuple(rows)


def _split_key(i: int) -> str:
    """Row i's place in the split's shuffle: a SHA-256 of the seed and the row number, so the
    order is the same on every machine and Python version (no random module, no hash seed)."""
    return hashlib.sha256(f"{DIGITS_SPLIT_SEED}:{i}".encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _digits_test_rows() -> frozenset[int]:
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(_digits_rows()):
        by_class.setdefault(label, []).append(i)
    test: set[int] = set()
    for rows in by_class.values():
        rows.sort(key=_split_key)
        test.update(rows[: round(DIGITS_TEST_FRACTION * len(rows))])
    return frozenset(test)


def digits(split: str = "train"):
    """The 8x8 handwritten digits: 64 pixel features from 0 to 16 (row by row), classes 0-9.

    These are the 1,797 images of the UCI "Optical Recognition of Handwritten Digits" test
    set (E. Alpaydin, C. Kaynak, 1998; CC BY 4.0, see ``backprop/datasets/digits.LICENSE.txt``),
    the images scikit-learn ships as ``load_digits()``. Nothing is downloaded.

    ``split`` is ``"train"`` (1,347 rows), ``"test"`` (450 rows) or ``"all"`` (1,797, file
    order). The split is stratified and fixed: within each class, rows are ordered by the
    SHA-256 of ``"0:<row number>"`` and the first round(25%) go to the test set, so every
    machine gets the same split. Rows keep the file's order within a split. The Dataset's
    ``image_shape`` is ``(8, 8)``.
    """
    from ..data import Dataset

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    rows = _digits_rows()
    if split != "all":
        test = _digits_test_rows()
        rows = tuple(r for i, r in enumerate(rows) if (i in test) == (split == "test"))
    return Dataset(
        [[float(p) for p in pixels] for pixels, _ in rows],
        [label for _, label in rows],
        classes=list(range(10)),
        feature_names=[f"r{r + 1}c{c + 1}" for r in range(8) for c in range(8)],
        name="digits" if split == "all" else f"digits {split}",
        label_name="digit",
        image_shape=(8, 8),
    )
