"""The `backprop` command (also `python -m backprop`): the top layer, importing all the others.

- ``commands``: ``demo``, ``train`` and ``predict``, and the parser that joins every subcommand;
- ``graph``: ``backprop graph "expr"``;
- ``common``: the one-line ``CommandError`` and the argument checkers they share.
"""

from .commands import build_parser, main

__all__ = ["main", "build_parser"]
