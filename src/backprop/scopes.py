"""scope(name): named blocks of a graph, for drawings and step-throughs that show a block at a time.

A node keeps its scope in its label: op nodes made inside ``scope(path)`` get an empty label
that carries the path (one per path, shared), a leaf made there its own text carrying it. So a
node costs no more bytes, and outside any scope nothing changes. Relabelling a node
(``v.label = "h"``) takes it out of its scope: give leaves their label when they are made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ContextDecorator

from . import engine, ops
from .engine import _binary_method, _unary_method

__all__ = ["scope", "current_scope"]

_open = threading.local()  # .blocks: this thread's open scope blocks, innermost last
_LABELS: dict[str, str] = {}  # scope path -> the empty label of its op nodes
_METHODS: dict[str, dict] = {}  # scope path -> methods_in(path)


class _ScopedLabel(str):
    """A label made inside a scope: the same text, carrying the scope's path in .scope, so that
    a node holds its scope at no cost in bytes (the op nodes of one path share one label)."""

    def __new__(cls, text: str, path: str) -> _ScopedLabel:
        label = super().__new__(cls, text)
        label.scope = path
        return label

    def named(self, text: str) -> _ScopedLabel:
        """A leaf's label made in this scope (Value.__init__ asks the open block's label)."""
        return _ScopedLabel(text, self.scope)


class scope(ContextDecorator):
    """Nodes made inside ``with scope("attn"):`` (or in a function decorated ``@scope("attn")``)
    carry its name in ``Value.scope``; nested blocks join theirs with '/': ``"gpt/attn/head0"``.
    Per thread. nn's MLP, Layer and Neuron open their own (``mlp/layer1/neuron3``)."""

    _path = ""  # set by _at(): a block at this whole path, whatever is open around it

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"a scope's name must be a non-empty str without '/', got {name!r}")
        self.name = name

    @classmethod
    def _at(cls, path: str) -> scope:
        block = cls(path.rpartition("/")[2])
        block._path = path
        return block

    def __enter__(self) -> scope:
        outer = current_scope()
        path = self._path or (f"{outer}/{self.name}" if outer else self.name)
        block = engine._block(scope=path, label=_label(path))
        block.__enter__()
        _open.__dict__.setdefault("blocks", []).append(block)
        return self

    def __exit__(self, *exc) -> None:
        _open.blocks.pop().__exit__(*exc)


def current_scope() -> str:
    """The path of the scope() blocks open on this thread ('' outside any)."""
    return engine._state.scope


def _label(path: str) -> str:
    """The empty label of the op nodes made inside scope(path), one per path."""
    label = _LABELS.get(path)
    return _LABELS.setdefault(path, _ScopedLabel("", path)) if label is None else label


def methods_in(path: str) -> dict[str, Callable]:
    """{op name: a function making that op's nodes inside scope(path)}, with no scope() block
    open: nn's Neuron makes its nodes with these, at the cost of the plain methods."""
    methods = _METHODS.get(path)
    if methods is None:
        label = _label(path)
        methods = {
            name: _binary_method(row, True, label)[0]
            if row.arity == 2
            else _unary_method(row, label)
            for name, row in ops.OPS.items()
            if not row.has_arg
        }
        methods = _METHODS.setdefault(path, methods)
    return methods
