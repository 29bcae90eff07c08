"""Data files shipped with the package and their raw loaders (``backprop.data`` builds the
Datasets from them; this package imports nothing of backprop, so the import points one way).

Each file has its licence beside it: ``names.LICENSE.txt`` (MIT, the makemore names) and
``digits.LICENSE.txt`` (CC BY 4.0, the UCI optical digits). They are read through
importlib.resources, so they work from a wheel too.
"""

from __future__ import annotations

import functools
import gzip
import hashlib

__all__ = ["names", "digits_rows", "DIGITS_TEST_FRACTION", "DIGITS_SPLIT_SEED"]


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


def digits_rows(split: str = "train") -> tuple[tuple[tuple[int, ...], int], ...]:
    """The digits file's rows of ``split`` as ``(64 pixels, label)`` pairs, in file order
    (``backprop.data.digits`` wraps them in a Dataset; this module imports nothing of backprop).

    ``split`` is ``"train"``, ``"test"`` or ``"all"``; see ``backprop.data.digits``."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    rows = _digits_rows()
    if split != "all":
        test = _digits_test_rows()
        rows = tuple(r for i, r in enumerate(rows) if (i in test) == (split == "test"))
    return rows
