"""docs/explain.md's shell transcripts and figures are what the code does now.

Its Python blocks run in tests/project/test_docs.py; this checks the rest: each ```bash block
that runs `backprop graph`, followed by a ```text block, prints exactly that text; the allow-list
of functions it names is ``backprop.viz.expr.FUNCTIONS``; the layout limits it quotes are
``backprop.viz.layout``'s.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import backprop.viz.layout as layout_module
from backprop.viz.expr import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "explain.md"
TEXT = PAGE.read_text(encoding="utf-8")
TRANSCRIPT = re.compile(
    r"```bash\n(?P<command>backprop graph .*?)```\n\n```text\n(?P<out>.*?)```", re.S
)
TRANSCRIPTS = [(m.group("command"), m.group("out")) for m in TRANSCRIPT.finditer(TEXT)]


def test_the_page_has_transcripts():
    assert len(TRANSCRIPTS) >= 2, "a run of the neuron and an error, each with its output"


@pytest.mark.parametrize(
    "command, shown", TRANSCRIPTS, ids=[c.split("\n")[0][:60] for c, _ in TRANSCRIPTS]
)
def test_a_transcript_prints_what_the_page_shows(tmp_path, command, shown):
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "backprop"
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # stdout and stderr in the order printed
    done = subprocess.run(
        [sys.executable, "-m", "backprop", *args[1:]],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.stdout == shown


def test_the_allowed_functions_are_the_parsers():
    listed = re.search(r"the functions\s+`([a-z ]+)`", TEXT)
    assert listed, "the allow-list sentence of `backprop graph`"
    assert listed.group(1).split() == list(FUNCTIONS)


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("DOT_LIMIT", r"up to ([\d,]+) boxes \(`DOT_LIMIT`\)"),
        ("DOT_BENDS_LIMIT", r"([\d,]+) bends \(`DOT_BENDS_LIMIT`"),
        ("GRANDALF_LIMIT", r"at most ([\d,]+)\s+\(`GRANDALF_LIMIT`\)"),
        ("DOT_BOUNDED_FROM", r"`DOT_BOUNDED_FROM` \(([\d,]+)\)"),
        ("DOT_TIMEOUT", r"`DOT_TIMEOUT` \(([\d.]+) s\)"),
    ],
)
def test_the_layout_limits_are_the_codes(name, pattern):
    found = re.search(pattern, TEXT)
    assert found, f"docs/explain.md quotes {name}"
    assert float(found.group(1).replace(",", "")) == getattr(layout_module, name)
    options = re.search(r"`DOT_BOUNDED_OPTIONS`: `([^`]+)`", TEXT)
    assert options and options.group(1).split() == list(layout_module.DOT_BOUNDED_OPTIONS)
