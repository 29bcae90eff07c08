"""What every subcommand shares: the one-line error, the argument checkers, the output paths."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable
from pathlib import Path


class CommandError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, as argparse does but shorter
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def quoted(text: str, limit: int = 80) -> str:
    """repr(text) for an error, cut with its length past ``limit`` characters."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 20]!r}... ({len(text):,} characters)"


def _number(convert, accept, parse_error: str, range_error: str):
    """An argparse type: convert(text), then accept(value), each with its one-line error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {parse_error}, got {quoted(text)}"
            ) from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {range_error}, got {quoted(text)}")
        return value

    return parse


_positive_int = _number(int, lambda n: n >= 1, "a positive integer", "a positive integer")
_positive_float = _number(float, lambda x: 0 < x < math.inf, "a number", "a positive number")
_nonnegative_int = _number(int, lambda n: n >= 0, "an integer >= 0", "an integer >= 0")
_nonnegative_float = _number(float, lambda x: 0 <= x < math.inf, "a number", "a number >= 0")
_integer = _number(int, lambda n: True, "an integer", "an integer")


def shown(text: object) -> str:
    """text for the terminal: unprintable characters (a newline, NUL, an escape sequence) as
    their Python escapes, so that a label or a file name cannot forge, colour or hide output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _short(text: object, limit: int = 80) -> str:
    """A user's name for an error message: escaped, and cut with its length if it is long."""
    text = shown(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def path_error(e: OSError | RuntimeError) -> CommandError:
    """A CommandError from an OSError (a name too long, a loop of links, no permission) or
    pathlib's RuntimeError for a loop of links: NAME: reason, on one line."""
    if isinstance(e, OSError):
        where = f"{_short(e.filename)}: " if e.filename is not None else ""
        return CommandError(f"{where}{e.strerror or e}")
    return CommandError(_short(str(e), 300))


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet (or cannot be reached: see resolve)
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError) as e:  # a name too long; a loop of links (RuntimeError)
        raise path_error(e) from None


def _output_path(
    option: str,
    text: str | None,
    suffixes: tuple[str, ...],
    inputs: Iterable[tuple[str, str | Path | None]] = (),
) -> Path | None:
    """Check an output path before any work, so that the result is not lost at the end.

    ``inputs`` are (option, path) pairs of files the command reads: writing over one of them
    is refused. So is a symbolic link: its target may be any file (a model, a script), and
    the message would name the link. ``_distinct_outputs`` checks a command's outputs together.
    """
    if text is None:
        return None
    try:
        return _checked_output(option, text, suffixes, inputs)
    except (OSError, RuntimeError) as e:  # a name too long, a loop of links: one line
        raise path_error(e) from None


def _checked_output(option, text, suffixes, inputs) -> Path:
    path = Path(text)
    if path.is_symlink():  # dangling or not: the write would land elsewhere, or fail at the end
        raise CommandError(
            f"{option} {text!r} is a symbolic link (to {os.readlink(path)!r}): give the file's "
            "own path, or remove the link"
        )
    if path.is_dir():
        raise CommandError(f"{option} {text!r} is a directory")
    if path.suffix.lower() not in suffixes:
        raise CommandError(f"{option} {text!r}: the file name must end in {' or '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise CommandError(f"{option} {text!r}: the folder {str(folder)!r} {what}")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"{option} {text!r}: the folder {str(folder)!r} is not writable")
    for input_option, input_path in inputs:
        if input_path is not None and _same_file(path, Path(input_path)):
            raise CommandError(
                f"{option} {text!r} is the file {input_option} reads: give another output path"
            )
    return path


def _distinct_outputs(outputs: Iterable[tuple[str, Path | None]]) -> None:
    """Refuse two outputs of one command that name the same file (one would overwrite the
    other: a PNG left in the model file)."""
    given = [(option, path) for option, path in outputs if path is not None]
    for k, (option, path) in enumerate(given):
        for other_option, other in given[:k]:
            if _same_file(path, other):
                raise CommandError(
                    f"{other_option} and {option} name the same file ({str(path)!r}): give "
                    "each output its own path"
                )


def _write_output(option: str, path: Path, data: str | bytes) -> None:
    """Write a finished result atomically (the old file stays whole if anything fails)."""
    from ..serialize import write_atomic

    try:
        write_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as e:
        raise CommandError(f"{option}: cannot write {str(path)!r}: {e.strerror or e}") from None
