"""The `backprop` command (also `python -m backprop`): the top layer, importing all the others.

- ``commands``: ``demo`` and ``predict``, the parser that joins every subcommand, and ``main``;
- ``train``: ``backprop train`` (fit's own plan, then its loop);
- ``graph``: ``backprop graph "expr"``; ``export``: ``backprop export``;
- ``common``: the one-line ``CommandError``, the argument checkers and the output paths.
"""

from .commands import build_parser, main

__all__ = ["main", "build_parser"]
