"""What every subcommand shares: the one-line error and the argument checkers."""

from __future__ import annotations

import argparse
import math


class CommandError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, as argparse does but shorter
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(convert, accept, parse_error: str, range_error: str):
    """An argparse type: convert(text), then accept(value), each with its one-line error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {parse_error}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {range_error}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda n: n >= 1, "a positive integer", "a positive integer")
_positive_float = _number(float, lambda x: 0 < x < math.inf, "a number", "a positive number")
_nonnegative_int = _number(int, lambda n: n >= 0, "an integer >= 0", "an integer >= 0")
_nonnegative_float = _number(float, lambda x: 0 <= x < math.inf, "a number", "a number >= 0")
