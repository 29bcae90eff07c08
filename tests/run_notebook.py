"""Executing a notebook as Jupyter would, for the tests that check the repository's notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(notebook: Path | nbformat.NotebookNode, folder: Path | None = None):
    """Run every cell in order, from ``folder`` (default: the notebook's own), and return the
    notebook with its outputs. ``notebook`` is a path or an already read (or edited) notebook."""
    if isinstance(notebook, Path):
        folder = folder or notebook.parent
        notebook = nbformat.read(notebook, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return notebook
