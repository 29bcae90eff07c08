"""The CSS and JavaScript of the pages backprop writes, shipped as package data.

They are real files so that they can be read, linted and edited as what they are; the pages
inline them when written, so a saved page stays one offline file.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def read_asset(name: str) -> str:
    """The text of one asset file, e.g. read_asset("explain.js")."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")
